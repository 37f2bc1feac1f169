"""Gait events from vertical GRF and time-normalised cycles.

Heel strike = the per-foot vertical GRF rising through ``threshold_bw`` body weights, toe-off =
falling through it; crossing times are interpolated between samples. Contact and no-contact
runs shorter than ``min_phase_s`` are merged away (contact chatter), so flight phases (both feet
off, running) and double support (both feet on, walking) need no special case: each foot is
read on its own. A cycle is one heel strike to the next of the same foot, resampled to 101
points (0, 1, ..., 100 %).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["DEFAULT_THRESHOLD_BW", "cut_cycles", "gait_cycles", "gait_events", "motion_cycles"]

DEFAULT_THRESHOLD_BW = 0.05  # 5 % of body weight: above force-plate noise, below any stance load
PERCENT = np.linspace(0.0, 100.0, 101)


def _runs(mask: np.ndarray) -> list[tuple[int, int, bool]]:
    """(start, stop, value) runs of a boolean array."""
    if len(mask) == 0:
        return []
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    starts = np.r_[0, change]
    stops = np.r_[change, len(mask)]
    return [(int(a), int(b), bool(mask[a])) for a, b in zip(starts, stops, strict=True)]


def gait_events(
    fz: np.ndarray,
    dt: float,
    body_weight_n: float,
    threshold_bw: float = DEFAULT_THRESHOLD_BW,
    min_phase_s: float = 0.05,
    t0: float = 0.0,
) -> dict[str, np.ndarray]:
    """Heel-strike and toe-off times (s) of one foot's vertical GRF ``fz [time]`` (N).

    Args:
        dt: sample interval (s); ``t0``: time of sample 0.
        threshold_bw: contact threshold in body weights.
        min_phase_s: contact / no-contact runs shorter than this are absorbed by their
            neighbours.
    Returns:
        ``{"heel_strike": [k], "toe_off": [m]}`` times in seconds. A contact already under
        way at the first sample is not a heel strike (its start is unknown).
    """
    fz = np.asarray(fz, dtype=float)
    thr = threshold_bw * body_weight_n
    contact = fz > thr
    min_len = max(1, int(round(min_phase_s / dt)))
    # absorb short runs (except at the edges, whose true length is unknown)
    changed = True
    while changed:
        changed = False
        runs = _runs(contact)
        for i, (a, b, v) in enumerate(runs):
            if 0 < i < len(runs) - 1 and b - a < min_len:
                contact[a:b] = not v
                changed = True
                break

    def crossing(i):  # time where fz crosses thr between samples i-1 and i
        y0, y1 = fz[i - 1], fz[i]
        frac = 0.5 if y1 == y0 else np.clip((thr - y0) / (y1 - y0), 0.0, 1.0)
        return t0 + (i - 1 + frac) * dt

    strikes, offs = [], []
    for i in np.flatnonzero(np.diff(contact.astype(np.int8))) + 1:
        (strikes if contact[i] else offs).append(crossing(i))
    return {"heel_strike": np.asarray(strikes), "toe_off": np.asarray(offs)}


def cut_cycles(series: np.ndarray, time: np.ndarray, starts: np.ndarray, n_points: int = 101) -> np.ndarray:
    """Cycles ``[cycle, n_points, ...]`` of ``series [time, ...]`` between consecutive ``starts``
    (times), each resampled linearly to ``n_points`` (0-100 %)."""
    series = np.asarray(series, dtype=float)
    flat = series.reshape(len(time), -1)
    out = []
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        if a < time[0] or b > time[-1]:
            continue
        t = np.linspace(a, b, n_points)
        out.append(np.stack([np.interp(t, time, flat[:, k]) for k in range(flat.shape[1])], axis=1))
    shape = (len(out), n_points, *series.shape[1:])
    return np.stack(out).reshape(shape) if out else np.zeros(shape)


def _stack_seeds(per_seed: list[np.ndarray], rest_shape) -> np.ndarray:
    n = max((len(c) for c in per_seed), default=0)
    out = np.full((len(per_seed), n, 101, *rest_shape), np.nan)
    for i, c in enumerate(per_seed):
        out[i, : len(c)] = c
    return out


def _wrap(arr, da: xr.DataArray, name: str) -> xr.DataArray:
    dims = ("seed", "cycle", "percent", *da.dims[2:])
    coords = {"seed": da["seed"].values, "cycle": np.arange(arr.shape[1]), "percent": PERCENT}
    coords |= {d: da[d].values for d in da.dims[2:]}
    return xr.DataArray(arr, dims=dims, coords=coords, name=name, attrs=dict(da.attrs))


def gait_cycles(
    ds: xr.Dataset,
    variable: str,
    foot: str = "right",
    threshold_bw: float = DEFAULT_THRESHOLD_BW,
    body_weight_n: float | None = None,
) -> xr.DataArray:
    """``variable [seed, time, ...]`` cut into ``foot``'s gait cycles: ``[seed, cycle, percent, ...]``
    (NaN-padded where seeds have fewer cycles). Needs ``grf`` in the store."""
    if "grf" not in ds:
        raise ValueError(f"store has no 'grf' (model {ds.attrs.get('model')!r} has no feet): no gait events")
    bw = body_weight_n or float(ds.attrs["model_mass_kg"]) * 9.81
    time = ds["time"].values
    dt = float(np.median(np.diff(time)))
    da = ds[variable]
    fz = ds["grf"].sel(foot=foot, axis="z").values  # [seed, time]
    values = da.values
    cycles = []
    for i in range(ds.sizes["seed"]):
        ev = gait_events(fz[i], dt, bw, threshold_bw, t0=float(time[0]))
        cycles.append(cut_cycles(values[i], time, ev["heel_strike"]))
    return _wrap(_stack_seeds(cycles, values.shape[2:]), da, variable)


def motion_cycles(ds: xr.Dataset, variable: str) -> xr.DataArray:
    """``variable`` cut at the reference motion's period (for motions without gait events, e.g.
    the elbow): ``[seed, cycle, percent, ...]``; one cycle when the motion does not loop."""
    time = ds["time"].values
    dt = float(np.median(np.diff(time)))
    # the cycle as the rollout played it (whole control steps), else the source's length
    period = float(ds.attrs.get("motion_cycle_s", ds.attrs.get("motion_duration_s", time[-1] - time[0] + dt)))
    if ds.attrs.get("motion_loop", 1):
        starts = np.arange(time[0] - dt, time[-1] + 1e-9, period)
    else:
        starts = np.array([time[0], time[-1]])
    starts = starts[starts >= time[0] - dt - 1e-9]
    da = ds[variable]
    values = da.values
    # the rollout's sample k is the end of step k: the cycle starts one step before time[0]
    t = np.r_[time[0] - dt, time]
    cycles = [cut_cycles(np.concatenate([v[:1], v]), t, starts) for v in values]
    return _wrap(_stack_seeds(cycles, values.shape[2:]), da, variable)
