"""The run store: one Zarr v3 group per run, opened as an ``xarray.Dataset``.

Layout (schema version :data:`SCHEMA_VERSION`):

- dimensions ``seed, time, muscle, joint, foot, axis, quaternion, component, iteration``;
  string coordinates for names, ``time`` in seconds (the end of each control step);
- per-seed rollout series ``[seed, time, ...]`` (:data:`VARIABLES`), the reference
  ``[time, ...]``, the four tracking metrics ``[seed, time]``, training curves
  ``train_* [seed, iteration]`` and ``completed [seed]`` (1 once a seed's data are written);
- ``units`` and ``long_name`` on every variable and numeric coordinate; CF-style root
  attributes with provenance (:func:`provenance`).

Writing is fault tolerant: the template (metadata, coordinates, the reference) is written to a
temporary directory and renamed into place, so a store either exists whole or not at all. Every
per-seed variable is chunked one seed wide; a finished seed writes its own region and then its
``completed`` flag, so concurrent writers never share a chunk and a crash between the two leaves
the seed marked unfinished (it is redone). zarr's local store writes each chunk atomically.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import platform
import shutil
import subprocess
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from emulator import schema
from emulator.schema import COORDS, CURVES, METRICS, ROLLOUT_DIMS

# every run keeps its seeds' policies in STORE/policies/ (msgpack files, not Zarr nodes); zarr
# warns about any such folder when it walks the hierarchy (consolidation, validation)
warnings.filterwarnings("ignore", message="Object at policies is not recognized as a component")

__all__ = [
    "SCHEMA_VERSION",
    "StoreError",
    "completed_seeds",
    "create_store",
    "finalise_store",
    "info",
    "open_store",
    "store_variables",
    "summarise",
    "validate_store",
    "write_seed",
]

SCHEMA_VERSION = "1"
CONVENTIONS = "CF-1.10"

# names, dims and units: the emulator's one schema table. The store keeps the rollout's
# variables under their names, with ``metrics`` split into the four named metric variables.
VARIABLES = {
    **{k: (units, long) for k, (_, units, long) in schema.VARIABLES.items() if k != "metrics"},
    **METRICS,
}
REQUIRED_ATTRS = (
    "schema_version",
    "Conventions",
    "title",
    "model",
    "model_hash",
    "motion",
    "motion_hash",
    "config",
    "identity",
    "created",
)
# present for every model; root_* need a free root, grf needs feet
CORE = (
    "excitation",
    "activation",
    "muscle_force",
    "muscle_length",
    "muscle_velocity",
    "joint_angle",
    "joint_velocity",
    "reference_joint_angle",
    "tracking_error",
    "terminated",
    *METRICS,
    *(f"train_{c}" for c in CURVES),
    "completed",
)


class StoreError(Exception):
    """A store that cannot be used as asked: the message names the store and what is wrong."""


# ---------------------------------------------------------------------------------------------
# layout


def store_variables(dims: dict, data: dict | None = None) -> dict:
    """Rollout series (emulator names) -> store variables ``{name: (dims, array or None)}``.

    The emulator's ``metrics [seed, time, metric]`` becomes the four named metric variables.
    """
    out = {}
    for name, d in dims.items():
        if name == "metrics":
            for i, m in enumerate(METRICS):
                out[m] = (d[:2], None if data is None else data[name][..., i])
        else:
            out[name] = (d, None if data is None else data[name])
    return out


def _attrs(name: str, table: dict) -> dict:
    units, long_name = table[name]
    return {"long_name": long_name} if units is None else {"units": units, "long_name": long_name}


def _template(schema, seeds: list[int], n_iterations: int, attrs: dict) -> xr.Dataset:
    """The whole store as lazy NaN arrays (metadata only) plus the reference and coordinates."""
    import dask.array as da

    coords = {
        "seed": ("seed", np.asarray(seeds, dtype=np.int64)),
        "iteration": ("iteration", np.arange(1, n_iterations + 1, dtype=np.int64)),
    }
    sizes = {"seed": len(seeds), "iteration": n_iterations}
    for dim, values in schema.coords.items():
        if dim == "metric":  # the metrics are stored as four named variables
            continue
        if isinstance(values, tuple):  # auxiliary coordinate (dim, values)
            coords[dim] = (values[0], np.asarray(values[1], dtype=object))
        else:
            arr = np.asarray(values)
            coords[dim] = (dim, arr.astype(object) if arr.dtype.kind in "UO" else arr)
            sizes[dim] = len(arr)
    ref = schema.reference
    data_vars = {}
    for name, (dims, _) in store_variables(schema.dims).items():
        shape = tuple(sizes[d] for d in dims)
        if "seed" not in dims:
            arr = np.asarray(ref[name], dtype=np.float32)
        else:
            dtype = np.int8 if name == "terminated" else np.float32
            fill = 0 if dtype == np.int8 else np.nan
            arr = da.full(shape, fill, dtype=dtype, chunks=(1, *shape[1:]))
        data_vars[name] = (dims, arr, _attrs(name, VARIABLES))
    for c in CURVES:
        arr = da.full((len(seeds), n_iterations), np.nan, dtype=np.float64, chunks=(1, n_iterations))
        data_vars[f"train_{c}"] = (("seed", "iteration"), arr, _attrs(c, CURVES))
    data_vars["completed"] = (
        ("seed",),
        da.zeros(len(seeds), dtype=np.int8, chunks=1),
        {"units": "1", "long_name": "1 once the seed's trained policy and rollout are written"},
    )
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    for name in ds.coords:
        ds[name].attrs.update(_attrs(name, COORDS))
    return ds


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, v in ds.data_vars.items():
        if "seed" in v.dims:
            enc[name] = {"chunks": (1, *v.shape[1:])}
            enc[name]["fill_value"] = 0 if v.dtype == np.int8 else np.nan
    return enc


# ---------------------------------------------------------------------------------------------
# provenance


def _git_commit() -> str:
    """The commit of the source tree this package runs from ("" when not a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def provenance(
    *,
    model: dict,
    motion: dict,
    config: dict,
    identity: dict,
    versions: dict,
    reproducibility: dict | None = None,
) -> dict:
    """CF-style root attributes with full provenance (JSON-ready); ``reproducibility``: the
    runtime record (versions, thread/XLA settings, device) of the process that wrote it."""
    from ._version import __version__

    now = _now()
    return {
        "schema_version": SCHEMA_VERSION,
        "Conventions": CONVENTIONS,
        "title": f"{len(identity['seeds'])} {config['algo']}/{config['reward']} policies tracking "
        f"{motion['name']!r} on {model['name']!r}",
        "institution": "",
        "source": f"ms-diversity {__version__}",
        "history": f"{now} created by diversity run",
        "references": "MS-Emulator (whole-body musculoskeletal behaviour emulation)",
        "model": model["name"],
        "model_source": model["source"],
        "model_hash": model["hash"],
        "model_mass_kg": model["mass_kg"],
        "model_has_feet": int(model["has_feet"]),
        "model_feet": json.dumps(model.get("feet", {}), sort_keys=True),
        "model_root_kind": model["root_kind"],
        "motion": motion["name"],
        "motion_source": motion["source"],
        "motion_hash": motion["hash"],
        "motion_fps": motion["fps"],
        "motion_loop": int(motion["loop"]),
        "motion_duration_s": motion["duration_s"],
        "motion_cycle_s": motion.get("cycle_s", motion["duration_s"]),
        "control_dt_s": model["control_dt"],
        "config": json.dumps(config, sort_keys=True),
        "identity": json.dumps(identity, sort_keys=True),
        "package_version": __version__,
        "versions": json.dumps(versions, sort_keys=True),
        "reproducibility": json.dumps(reproducibility or {}, sort_keys=True),
        "git_commit": _git_commit(),
        "host": platform.node(),
        "user": _user(),
        "created": now,
        "updated": now,
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


# ---------------------------------------------------------------------------------------------
# create / write / finalise


@contextlib.contextmanager
def _quiet():
    """Silence zarr's note that consolidated metadata is not in the v3 spec (we know; readers
    fall back to the per-array metadata)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        yield


def create_store(path: str | Path, schema, seeds: list[int], n_iterations: int, attrs: dict) -> Path:
    """Write the template store at ``path`` (which must not exist): all metadata, coordinates
    and the reference; every per-seed chunk still missing (reads as NaN / 0)."""
    path = Path(path)
    ds = _template(schema, seeds, n_iterations, attrs)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    with _quiet():
        ds.to_zarr(tmp, mode="w-", compute=False, consolidated=False, zarr_format=3, encoding=_encoding(ds))
    tmp.rename(path)  # fails if something appeared at `path` meanwhile; never merges
    return path


def write_seed(path: str | Path, seed: int, data: dict, curves: dict) -> None:
    """Write one finished seed's region, then mark it completed.

    Args:
        data: store variables ``{name: array [time, ...]}`` for this seed (from
            :func:`store_variables` on a rollout, seed axis removed).
        curves: ``{curve name: [iteration]}``.
    """
    path = Path(path)
    with _quiet():
        template = xr.open_zarr(path, consolidated=False)
        seeds = template["seed"].values
        hit = np.nonzero(seeds == seed)[0]
        if len(hit) != 1:
            raise StoreError(f"{path}: seed {seed} is not in this store (seeds {seeds.tolist()})")
        i = int(hit[0])
        region = {"seed": slice(i, i + 1)}
        out = {}
        for name, arr in data.items():
            v = template[name]
            arr = np.asarray(arr, dtype=v.dtype)[None]
            if arr.shape[1:] != v.shape[1:]:
                raise StoreError(
                    f"{path}: {name} for seed {seed} has shape {arr.shape[1:]}, store has {v.shape[1:]}"
                )
            out[name] = (v.dims, arr)
        for c, arr in curves.items():
            name = f"train_{c}"
            arr = np.asarray(arr, dtype=np.float64)
            n = template.sizes["iteration"]
            if arr.shape != (n,):
                raise StoreError(
                    f"{path}: curve {c} for seed {seed} has {arr.shape} iterations, store has {n}"
                )
            out[name] = (("seed", "iteration"), arr[None])
        xr.Dataset(out).to_zarr(path, region=region, mode="r+", consolidated=False)
        xr.Dataset({"completed": (("seed",), np.ones(1, np.int8))}).to_zarr(
            path, region=region, mode="r+", consolidated=False
        )


def finalise_store(path: str | Path, history: str | None = None) -> None:
    """Stamp ``updated`` (and a ``history`` line) and consolidate the metadata."""
    import zarr

    path = Path(path)
    with _quiet():
        group = zarr.open_group(path, mode="r+")
        attrs = dict(group.attrs)
        now = _now()
        update = {"updated": now}
        if history:
            update["history"] = f"{attrs.get('history', '')}\n{now} {history}".strip()
        group.attrs.update(update)
        zarr.consolidate_metadata(path)


# ---------------------------------------------------------------------------------------------
# read / check


def open_store(path: str | Path) -> xr.Dataset:
    """The store as a lazily loaded ``xarray.Dataset`` (consolidated metadata when present)."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path}: not a Zarr store (no zarr.json)")
    with _quiet():
        try:
            return xr.open_zarr(path, consolidated=True)
        except (KeyError, ValueError, FileNotFoundError):
            return xr.open_zarr(path, consolidated=False)


def open_checked(path: str | Path) -> xr.Dataset:
    """:func:`open_store` after checking every completed seed's data: a missing path, a file
    where a store should be, a missing or corrupt chunk is one :class:`StoreError` (zarr would
    otherwise read a lost chunk as fill values and the analyses would run on them). Metadata
    gaps (a hand-made store without provenance) are left to :func:`validate_store`."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store")
    if not path.is_dir():
        raise StoreError(f"{path}: is a file, not a store (a store is a directory)")
    ds = open_store(path)
    try:
        if "completed" not in ds or "seed" not in ds.dims:
            raise StoreError(f"{path}: not a diversity store (no 'completed' flags per seed)")
        problems = _seed_data_problems(ds, list(ds.data_vars), f"{path}:")
    except StoreError:
        raise
    except Exception as e:  # noqa: BLE001 - unreadable flags are the finding
        problems = [f"{path}: 'completed' cannot be read ({type(e).__name__}: {e})"]
    if problems:
        more = f" (+{len(problems) - 1} more: `diversity info {path}`)" if len(problems) > 1 else ""
        raise StoreError(f"{problems[0]}{more}")
    return ds


def completed_seeds(ds: xr.Dataset) -> list[int]:
    """Seed ids whose ``completed`` flag is 1."""
    flags = np.asarray(ds["completed"].values)
    return [int(s) for s in ds["seed"].values[flags == 1]]


def validate_store(path: str | Path, deep: bool = True) -> list[str]:
    """What is wrong with the store at ``path`` (empty list: nothing).

    Checks the schema version and root attributes, dimensions, every required variable with
    its dims, ``units`` and ``long_name``, the ``completed`` flags (0 or 1 only) and, with
    ``deep``, that every completed seed's data are present and readable (no chunk missing or
    corrupt).
    """
    path = Path(path)
    try:
        ds = open_store(path)
    except StoreError as e:
        return [str(e)]
    except Exception as e:  # noqa: BLE001 - any failure to open is the finding
        return [f"{path}: cannot be opened as a Zarr store ({type(e).__name__}: {e})"]
    problems = []
    where = f"{path}:"
    missing_attrs = [a for a in REQUIRED_ATTRS if a not in ds.attrs]
    if missing_attrs:
        problems.append(f"{where} missing root attributes {missing_attrs}")
    version = ds.attrs.get("schema_version")
    if version is not None and str(version) != SCHEMA_VERSION:
        problems.append(f"{where} schema_version {version!r}, this version reads {SCHEMA_VERSION!r}")
    required = list(CORE)
    if ds.attrs.get("model_root_kind") == "free":
        required += ["root_position", "root_orientation", "reference_root_position"]
    if ds.attrs.get("model_has_feet"):
        required.append("grf")
    expected_dims = {name: dims for name, (dims, _) in store_variables(ROLLOUT_DIMS).items()}
    expected_dims["completed"] = ("seed",)
    for name in required:
        if name not in ds.variables:
            problems.append(f"{where} variable {name!r} is missing")
            continue
        v = ds[name]
        want = expected_dims.get(name)
        if want is not None and tuple(v.dims) != want:
            problems.append(f"{where} variable {name!r} has dims {tuple(v.dims)}, expected {want}")
        for a in ("units", "long_name"):
            if a not in v.attrs:
                problems.append(f"{where} variable {name!r} has no {a!r} attribute")
    for dim in ("seed", "time", "muscle", "joint", "iteration"):
        if dim not in ds.dims:
            problems.append(f"{where} dimension {dim!r} is missing")
    if "seed" in ds.variables and len(np.unique(ds["seed"].values)) != ds.sizes.get("seed", 0):
        problems.append(f"{where} seed coordinate has repeated ids")
    if "completed" not in ds.variables or "seed" not in ds.dims:
        return problems
    try:
        flags = np.asarray(ds["completed"].values)
    except Exception as e:  # noqa: BLE001
        return [*problems, f"{where} 'completed' cannot be read ({type(e).__name__}: {e})"]
    seeds = ds["seed"].values
    bad = [(int(s), int(f)) for s, f in zip(seeds, flags, strict=True) if f not in (0, 1)]
    for s, f in bad:
        problems.append(f"{where} completed[seed={s}] = {f}, expected 0 (pending) or 1 (done)")
    if not deep:
        return problems
    return problems + _seed_data_problems(ds, required, where)


def _seed_data_problems(ds: xr.Dataset, names, where: str) -> list[str]:
    """Completed seeds whose data in ``names`` cannot be read or hold nothing (a lost chunk)."""
    problems = []
    seeds = ds["seed"].values
    done = np.nonzero(np.asarray(ds["completed"].values) == 1)[0]
    for name in names:
        if name not in ds.variables or "seed" not in ds[name].dims or name == "completed":
            continue
        for i in done:
            try:
                arr = np.asarray(ds[name].isel(seed=int(i)).values)
            except Exception as e:  # noqa: BLE001 - a corrupt chunk shows up here
                problems.append(
                    f"{where} {name!r} for seed {int(seeds[i])} cannot be read ({type(e).__name__}: {e})"
                )
                continue
            # training curves may be NaN where no episode ended; rollout series never are
            if arr.dtype.kind == "f" and not name.startswith("train_") and np.isnan(arr).all():
                problems.append(
                    f"{where} seed {int(seeds[i])} is marked completed but {name!r} holds no data for it"
                )
    return problems


def info(path: str | Path) -> dict:
    """``diversity info STORE --json``: :func:`summarise` plus the validator's ``problems``; a
    store too broken to summarise still gets its model, motion and problems reported."""
    ds = open_store(path)
    try:
        out = summarise(ds)
    except Exception as e:  # noqa: BLE001 - a broken store still gets its problems reported
        out = {"model": ds.attrs.get("model"), "motion": ds.attrs.get("motion"), "error": str(e)}
    out["problems"] = validate_store(path)
    return out


def summarise(ds: xr.Dataset) -> dict:
    """What ``diversity info`` reports: dims, variables, completion, provenance and the four
    tracking metrics (per-seed means over the rollout) as median and IQR over completed seeds."""
    done = completed_seeds(ds)
    metrics = {}
    sub = ds.sel(seed=done) if done else None
    for m, (units, _) in METRICS.items():
        if sub is None or m not in ds:
            continue
        per_seed = np.asarray(sub[m].mean("time").values, dtype=float)
        q1, med, q3 = np.nanpercentile(per_seed, [25, 50, 75])
        metrics[m] = {
            "units": units,
            "median": float(med),
            "iqr": float(q3 - q1),
            "q1": float(q1),
            "q3": float(q3),
            "min": float(np.nanmin(per_seed)),
            "max": float(np.nanmax(per_seed)),
            "n": len(per_seed),
            "per_seed": {str(s): float(x) for s, x in zip(done, per_seed, strict=True)},
        }
    seeds = [int(s) for s in ds["seed"].values]
    a = ds.attrs
    config = {}
    with contextlib.suppress(ValueError, TypeError):
        config = json.loads(a.get("config", "{}"))
    return {
        "model": a.get("model"),
        "motion": a.get("motion"),
        "n_seeds": len(seeds),
        "seeds": seeds,
        "completed_seeds": done,
        "pending_seeds": [s for s in seeds if s not in set(done)],
        "dims": {k: int(v) for k, v in ds.sizes.items()},
        "variables": {
            k: {"dims": list(v.dims), "units": v.attrs.get("units"), "long_name": v.attrs.get("long_name")}
            for k, v in ds.data_vars.items()
        },
        "metrics": metrics,
        "provenance": {
            k: a.get(k)
            for k in (
                "title",
                "model_source",
                "model_hash",
                "motion_source",
                "motion_hash",
                "package_version",
                "git_commit",
                "host",
                "created",
                "updated",
                "schema_version",
            )
        },
        "config": config,
    }
