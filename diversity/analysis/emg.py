"""Simulated muscle activity vs measured EMG envelopes over the gait cycle (Fig. 5a).

Several model muscles may map to one EMG channel: the channel's simulated signal is their mean
activation. Each seed contributes its cycle-mean; r is computed between the mean over seeds and
the measured envelope, with a bootstrap interval over seeds and an optional bounded lag.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .stats import best_lag_r, bootstrap_ci

__all__ = ["emg_correlation", "emg_envelope", "simulated_channels"]


def simulated_channels(activation_cycles: xr.DataArray, mapping: dict[str, list[str]]) -> xr.DataArray:
    """``[seed, cycle, percent, muscle]`` cycles -> per-seed cycle means ``[seed, percent, channel]``."""
    per_seed = activation_cycles.mean("cycle", skipna=True)
    missing = sorted({m for ms in mapping.values() for m in ms} - set(per_seed["muscle"].values.tolist()))
    if missing:
        raise ValueError(f"EMG map names muscles not in the store: {missing[:5]}")
    chans = [per_seed.sel(muscle=ms).mean("muscle") for ms in mapping.values()]
    return xr.concat(chans, dim=pd.Index(list(mapping), name="channel")).transpose(
        "seed", "percent", "channel"
    )


def emg_correlation(
    simulated: xr.DataArray,
    measured: xr.DataArray,
    max_lag_pct: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Pearson r per channel between the seed-mean simulated activity ``[seed, percent, channel]``
    and the measured envelope ``[percent, channel]`` (both on the 101-point cycle).

    Returns a table: ``channel, r, ci_low, ci_high, lag_pct, n_seeds`` (lag: the shift, within
    +/- ``max_lag_pct`` % of the cycle, that maximises r; 0 when no lag is allowed)."""
    rows = []
    for ch in simulated["channel"].values:
        if ch not in measured["channel"].values:
            continue
        sim = simulated.sel(channel=ch).values  # [seed, percent]
        sim = sim[~np.isnan(sim).all(axis=1)]
        meas = measured.sel(channel=ch).values
        if len(sim) == 0 or np.isnan(meas).all():
            continue
        r, lag = best_lag_r(sim.mean(0), meas, max_lag_pct)
        lo, hi = bootstrap_ci(
            sim, lambda s, m=meas: best_lag_r(s.mean(0), m, max_lag_pct)[0], n_boot, level, seed
        )
        rows.append(
            {"channel": str(ch), "r": r, "ci_low": lo, "ci_high": hi, "lag_pct": lag, "n_seeds": len(sim)}
        )
    return pd.DataFrame(rows, columns=["channel", "r", "ci_low", "ci_high", "lag_pct", "n_seeds"])


def emg_envelope(
    raw: np.ndarray, rate_hz: float, band_hz: tuple[float, float] = (20.0, 450.0), lowpass_hz: float = 6.0
) -> np.ndarray:
    """Linear envelope of raw EMG ``[time, channel]``: band-pass (4th-order Butterworth, zero
    phase), full-wave rectification, low-pass, then normalisation to each channel's peak."""
    from scipy.signal import butter, filtfilt

    x = np.asarray(raw, float)
    nyq = rate_hz / 2
    hi = min(band_hz[1], 0.95 * nyq)
    b, a = butter(4, [band_hz[0] / nyq, hi / nyq], btype="band")
    x = np.abs(filtfilt(b, a, x, axis=0))
    b, a = butter(4, lowpass_hz / nyq)
    x = filtfilt(b, a, x, axis=0)
    peak = np.nanmax(np.abs(x), axis=0)
    return x / np.where(peak > 0, peak, 1.0)
