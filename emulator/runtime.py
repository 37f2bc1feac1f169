"""What a result depends on besides its configuration: package versions, thread and XLA
settings, the device. Written into every store (``reproducibility`` attribute) so a number can
be traced to the software and hardware that produced it."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys

__all__ = ["PACKAGES", "runtime_record"]

PACKAGES = (
    "ms-diversity", "jax", "jaxlib", "mujoco", "mujoco-mjx", "numpy", "flax", "optax", "scipy",
    "xarray", "zarr", "myo-sim", "musclemimic-models",
)  # fmt: skip

# environment variables that change numbers or their speed
_SETTINGS = ("XLA_FLAGS", "JAX_ENABLE_X64", "JAX_PLATFORMS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "MUJOCO_GL")  # fmt: skip


def runtime_record(backend: str | None = None, nthread: int | None = None) -> dict:
    """Versions, settings and device of this process (JSON-ready).

    Args:
        backend: the physics backend used (``cpu`` | ``mjx``).
        nthread: the cpu backend's MuJoCo threads (default: one per core).
    """
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        import jax

        dev = jax.devices()[0]
        device = {
            "platform": dev.platform,
            "kind": getattr(dev, "device_kind", ""),
            "count": jax.device_count(),
        }
        x64 = bool(jax.config.jax_enable_x64)
    except Exception as e:  # no JAX runtime: say so rather than fail a run's bookkeeping
        device, x64 = {"error": f"{type(e).__name__}: {e}"}, False
    return {
        "python": sys.version.split()[0],
        "versions": versions,
        "settings": {k: os.environ[k] for k in _SETTINGS if k in os.environ},
        "jax_x64": x64,
        "device": device,
        "machine": {"system": platform.system(), "cpu": platform.machine(), "cores": os.cpu_count()},
        "physics": {"backend": backend or "", "mujoco_threads": nthread or os.cpu_count()},
    }
