"""Tracking accuracy: the four metrics per seed and their distributions (Fig. 3h), joint-angle
time series of simulation vs reference with mean +/- SD over seeds (Fig. 3i)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from emulator.schema import METRICS

from ..store import completed_seeds

__all__ = ["completed", "distribution", "joint_angle_bands", "tracking_table"]


def completed(ds: xr.Dataset) -> xr.Dataset:
    """The store restricted to completed seeds (pending seeds hold no data)."""
    return ds.sel(seed=completed_seeds(ds))


def tracking_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per completed seed: the four metrics averaged over the rollout (units in
    :data:`~diversity.store.METRICS`), plus ``motion`` and ``model``."""
    ds = completed(ds)
    table = pd.DataFrame({m: ds[m].mean("time").values.astype(float) for m in METRICS if m in ds})
    table.insert(0, "seed", ds["seed"].values.astype(int))
    table.insert(1, "motion", ds.attrs.get("motion"))
    table.insert(2, "model", ds.attrs.get("model"))
    return table


def distribution(table: pd.DataFrame) -> pd.DataFrame:
    """Median, IQR (q1, q3) and n per metric over seeds."""
    rows = []
    for m, (units, _) in METRICS.items():
        if m not in table:
            continue
        v = table[m].to_numpy(dtype=float)
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        rows.append(
            {"metric": m, "units": units, "median": med, "q1": q1, "q3": q3, "iqr": q3 - q1, "n": len(v)}
        )
    return pd.DataFrame(rows)


def joint_angle_bands(ds: xr.Dataset, joints: list[str] | None = None) -> xr.Dataset:
    """Per joint and time, in degrees for hinges: ``mean`` and ``sd`` over completed seeds and the
    ``reference``."""
    ds = completed(ds)
    ja = ds["joint_angle"]
    ref = ds["reference_joint_angle"]
    if joints is not None:
        ja, ref = ja.sel(joint=joints), ref.sel(joint=joints)
    units = (
        ds["joint_units"].sel(joint=ja["joint"]).values
        if "joint_units" in ds
        else ["rad"] * ja.sizes["joint"]
    )
    scale = xr.DataArray(
        [180 / np.pi if u == "rad" else 1.0 for u in units], dims="joint", coords={"joint": ja["joint"]}
    )
    out = xr.Dataset(
        {"mean": ja.mean("seed") * scale, "sd": ja.std("seed") * scale, "reference": ref * scale},
    )
    out["joint_units"] = ("joint", ["deg" if u == "rad" else str(u) for u in units])
    return out.compute()
