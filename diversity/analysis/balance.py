"""Staying up: how long each seed's rollout stays upright, and how it falls when it does.

A rollout goes on after the environment's termination test fires (the store keeps the fallen
body), so averages over a whole rollout mix walking with falling. :func:`balance_table` says per
seed how long it stayed up and where the root was when it stopped; :func:`upright` masks every
sample from the first termination on, so that gait cycles, GRF and EMG are compared only over
what the policy actually walked.

Directions: *along* is the reference root's horizontal displacement over the rollout (the
walking direction; world x when the reference stays in place), *sideways* is 90 degrees to its
left. Root offsets are the body's from the reference: ``root_forward_cm > 0`` means ahead of the
reference root, ``root_left_cm > 0`` to its left, ``root_sink_cm > 0`` below it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..store import completed_seeds

__all__ = [
    "FALL_SINK_M",
    "balance_table",
    "first_termination",
    "max_root_sink",
    "rollout_s",
    "upright",
    "upright_summary",
]

FALL_SINK_M = 0.15  # a seed fell when its root sank this far below the reference root


def first_termination(ds: xr.Dataset) -> xr.DataArray:
    """``[seed]`` index of the first sample whose termination test fired (the number of
    samples when it never fired)."""
    term = ds["terminated"].astype(bool)
    n = ds.sizes["time"]
    return xr.where(term.any("time"), term.argmax("time"), n)


def upright(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every time-varying float variable set to NaN from each seed's first
    termination on (seeds that never terminate are unchanged)."""
    if "terminated" not in ds:
        return ds
    keep = xr.DataArray(np.arange(ds.sizes["time"]), dims="time") < first_termination(ds)
    out = ds.copy()
    for name, da in ds.data_vars.items():
        if {"seed", "time"} <= set(da.dims) and np.issubdtype(da.dtype, np.floating):
            out[name] = da.where(keep)
    return out


def max_root_sink(ds: xr.Dataset) -> xr.DataArray:
    """``[seed]`` (or a scalar for one seed) deepest the root got below the reference root, in m
    (0 for stores without a free root)."""
    if "root_position" not in ds or "reference_root_position" not in ds:
        return xr.zeros_like(ds["seed"], dtype=float)
    sink = ds["reference_root_position"].sel(axis="z") - ds["root_position"].sel(axis="z")
    return sink.max("time")


def _step(ds: xr.Dataset) -> float:
    time = ds["time"].values
    return float(np.median(np.diff(time))) if len(time) > 1 else float(ds.attrs.get("control_dt_s", 0.0))


def rollout_s(ds: xr.Dataset) -> float:
    """The rollout's length in seconds (sample k is the end of control step k)."""
    return float(ds["time"].values[-1] - ds["time"].values[0] + _step(ds))


def _directions(reference_root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit horizontal vectors (along, left) from the reference root ``[time, 3]``."""
    walk = reference_root[-1, :2] - reference_root[0, :2]
    norm = float(np.linalg.norm(walk))
    along = walk / norm if norm > 0.05 else np.array([1.0, 0.0])  # in place: world x
    return along, np.array([-along[1], along[0]])


def balance_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per completed seed:

    ``upright_s`` time until the first termination (the rollout's length when none),
    ``terminated``, ``fell`` (terminated, or the root sank more than :data:`FALL_SINK_M` below
    the reference root), ``fall_s`` (first time it sank that far; NaN when it never did),
    ``joint_angle_error_upright`` (deg, mean over the upright part) and, at the first
    termination (the last sample when none), ``root_forward_cm``, ``root_left_cm``,
    ``root_sink_cm`` and ``root_rotation_error`` (deg). Stores without a free root (the elbow)
    give the time columns only."""
    ds = ds.sel(seed=completed_seeds(ds))
    time = ds["time"].values
    dt = _step(ds)
    first = first_termination(ds).values if "terminated" in ds else np.full(ds.sizes["seed"], len(time))
    has_root = "root_position" in ds and "reference_root_position" in ds
    if has_root:
        ref = ds["reference_root_position"].values
        along, left = _directions(ref)
    rows = []
    for k, seed in enumerate(ds["seed"].values):
        i = int(first[k])
        at = min(i, len(time) - 1)
        row = {
            "seed": int(seed),
            # sample k is the end of control step k: the rollout starts one step before time[0]
            "upright_s": float(time[at] - (time[0] - dt)),
            "terminated": bool(i < len(time)),
        }
        if "joint_angle_error" in ds:
            err = ds["joint_angle_error"].values[k, :i]
            row["joint_angle_error_upright"] = float(np.mean(err)) if len(err) else float("nan")
        fall_s = float("nan")
        if has_root:
            off = ds["root_position"].values[k] - ref  # [time, 3] the body's offset
            sunk = np.flatnonzero(-off[:, 2] > FALL_SINK_M)
            if len(sunk):
                fall_s = float(time[sunk[0]])
            row |= {
                "root_forward_cm": 100 * float(off[at, :2] @ along),
                "root_left_cm": 100 * float(off[at, :2] @ left),
                "root_sink_cm": -100 * float(off[at, 2]),
            }
            if "root_rotation_error" in ds:
                row["root_rotation_error"] = float(ds["root_rotation_error"].values[k, at])
        row["fell"] = row["terminated"] or not np.isnan(fall_s)
        row["fall_s"] = fall_s
        rows.append(row)
    return pd.DataFrame(rows)


def upright_summary(ds: xr.Dataset, tolerance_deg: float = 5.0) -> dict | None:
    """For a store with a free root (None otherwise): of the completed seeds, how many stayed up
    the whole rollout (no termination, the root never :data:`FALL_SINK_M` below the
    reference's; the walking bar) and how many of those tracked under ``tolerance_deg`` mean
    joint-angle error, and each seed's ``upright_s`` and ``joint_angle_error_upright`` (deg, mean
    over the samples before its first termination: the whole-rollout mean mixes in the fall)."""
    if "root_position" not in ds or not len(completed_seeds(ds)):
        return None
    table = balance_table(ds)
    up = ~table["fell"]
    close = up & (table["joint_angle_error_upright"] < tolerance_deg)
    return {
        "rollout_s": rollout_s(ds),
        "n_seeds": len(table),
        "n_up_whole_rollout": int(up.sum()),
        "n_up_and_under_tolerance": int(close.sum()),
        "tolerance_deg": tolerance_deg,
        "upright_s": {
            int(s): round(float(u), 3) for s, u in zip(table["seed"], table["upright_s"], strict=True)
        },
        "joint_angle_error_upright": {
            int(s): round(float(e), 3)
            for s, e in zip(table["seed"], table["joint_angle_error_upright"], strict=True)
        },
    }
