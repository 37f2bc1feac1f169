"""Policy-diversity analysis on top of the emulator: runs, stores, analysis, figures, CLI.

The Python API mirrors the CLI::

    import diversity
    report = diversity.run(seeds=4, steps=20_000, out="demo.zarr")   # diversity run
    ds = diversity.open_store("demo.zarr")                           # xarray.Dataset
    diversity.info("demo.zarr")                                      # diversity info --json
    diversity.analyze(ds, "analysis/")                               # diversity analyze
"""

from diversity._version import __version__  # noqa: F401  (diversity.__version__)

__all__ = ["RunConfig", "analyze", "info", "open_store", "run", "validate_store"]


def __getattr__(name):
    # lazy: `import diversity` stays cheap (no JAX/MuJoCo until a run starts)
    if name == "RunConfig":
        from .config import RunConfig

        return RunConfig
    if name == "run":
        from .pipeline import run

        return run
    if name == "analyze":
        from .analysis.report import analyze

        return analyze
    if name in ("info", "open_store", "validate_store"):
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module 'diversity' has no attribute {name!r}")
