"""Simulated vs measured ground reaction forces in body weights (Fig. 5c).

The store's GRF is in newtons in the world frame (z up). Directions here: ``vertical`` (z),
``anterior_posterior`` (along the reference's direction of travel) and ``medio_lateral``
(horizontal, perpendicular to it, positive to the walker's left).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .stats import pearson_r

__all__ = ["COMPONENTS", "grf_body_weights", "grf_comparison"]

COMPONENTS = ("anterior_posterior", "vertical", "medio_lateral")


def grf_body_weights(ds: xr.Dataset) -> xr.DataArray:
    """``grf [seed, time, foot, direction]`` in body weights (moving mass x 9.81 m/s^2)."""
    bw = float(ds.attrs["model_mass_kg"]) * 9.81
    grf = ds["grf"]
    forward = np.array([1.0, 0.0])
    if "reference_root_position" in ds:
        p = ds["reference_root_position"].values
        d = p[-1, :2] - p[0, :2]
        if np.linalg.norm(d) > 1e-6:
            forward = d / np.linalg.norm(d)
    left = np.array([-forward[1], forward[0]])
    x, y = grf.sel(axis="x"), grf.sel(axis="y")
    comps = [x * forward[0] + y * forward[1], grf.sel(axis="z"), x * left[0] + y * left[1]]
    out = xr.concat(comps, dim=pd.Index(list(COMPONENTS), name="direction")) / bw
    out = out.drop_vars("axis", errors="ignore").transpose("seed", "time", "foot", "direction")
    out.attrs = {"units": "BW", "long_name": "ground reaction force in body weights"}
    return out


def grf_comparison(simulated: xr.DataArray, measured: xr.DataArray) -> pd.DataFrame:
    """Per direction: Pearson r and RMSE (body weights) between the seed-mean simulated cycle
    ``[seed, percent, direction]`` and the measured mean ``[percent, direction]``."""
    rows = []
    for c in simulated["direction"].values:
        if c not in measured["direction"].values:
            continue
        sim = simulated.sel(direction=c).values
        sim = sim[~np.isnan(sim).all(axis=1)]
        if len(sim) == 0:
            continue
        s, m = sim.mean(0), measured.sel(direction=c).values
        rows.append(
            {
                "direction": str(c),
                "r": pearson_r(s, m),
                "rmse_bw": float(np.sqrt(np.nanmean((s - m) ** 2))),
                "n_seeds": len(sim),
            }
        )
    return pd.DataFrame(rows, columns=["direction", "r", "rmse_bw", "n_seeds"])
