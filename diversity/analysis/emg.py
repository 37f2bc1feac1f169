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

__all__ = ["emg_correlation", "emg_envelope", "read_emg", "read_emg_c3d", "simulated_channels"]


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
    phase), full-wave rectification, low-pass (clipped at 0), then normalisation to each channel's peak."""
    from scipy.signal import butter, filtfilt

    x = np.asarray(raw, float)
    nyq = rate_hz / 2
    hi = min(band_hz[1], 0.95 * nyq)
    b, a = butter(4, [band_hz[0] / nyq, hi / nyq], btype="band")
    x = np.abs(filtfilt(b, a, x, axis=0))
    b, a = butter(4, lowpass_hz / nyq)
    x = np.clip(filtfilt(b, a, x, axis=0), 0.0, None)  # the low-pass rings slightly below zero
    peak = np.nanmax(np.abs(x), axis=0)
    return x / np.where(peak > 0, peak, 1.0)


def read_emg_c3d(
    path,
    channels: list[str] | None = None,
    cycle_s: tuple[float, float] | None = None,
    lowpass_hz: float = 6.0,
) -> xr.Dataset:
    """EMG envelopes from a C3D file's analog channels, as :func:`~.measured.read_emg_csv` returns
    them: ``mean [percent, channel]`` over the window ``cycle_s`` (seconds from the first analog
    sample; default the whole trial) resampled to 0-100 % (101 points); ``sd`` is NaN (one trial).

    ``channels`` default: every channel whose name contains ``EMG`` (case-insensitive). Each is
    band-passed, rectified, low-passed at ``lowpass_hz`` and normalised to its peak in the window.
    """
    from emulator.motion.formats.base import FormatError
    from emulator.motion.formats.c3d import read_c3d_analogs

    from .measured import MeasuredError

    try:
        analogs = read_c3d_analogs(path)
    except FormatError as e:
        raise MeasuredError(str(e)) from None
    names = channels or [n for n in analogs.names if "emg" in n.lower()]
    if not names:
        raise MeasuredError(
            f"{path}: no analog channel named like EMG (has {list(analogs.names)[:10]}); pass channels"
        )
    raw = np.stack([analogs.channel(n) for n in names], axis=1)
    t = np.arange(len(raw)) / analogs.fps
    t0, t1 = cycle_s if cycle_s is not None else (t[0], t[-1])
    if not (t[0] <= t0 < t1 <= t[-1] + 1e-9):
        raise MeasuredError(f"{path}: cycle window {t0}-{t1} s is outside the recording (0-{t[-1]:.3f} s)")
    win = (t >= t0) & (t <= t1)
    env = emg_envelope(raw, analogs.fps, lowpass_hz=lowpass_hz)[win]
    env = env / np.where(env.max(0) > 0, env.max(0), 1.0)
    grid = np.linspace(t0, t1, 101)
    mean = np.stack([np.interp(grid, t[win], env[:, k]) for k in range(len(names))], axis=1)
    return xr.Dataset(
        {"mean": (("percent", "channel"), mean), "sd": (("percent", "channel"), np.full_like(mean, np.nan))},
        coords={"percent": np.linspace(0.0, 100.0, 101), "channel": list(names)},
        attrs={"source": str(path), "window_s": [float(t0), float(t1)]},
    )


def read_emg(path, cycle_s: tuple[float, float] | None = None) -> xr.Dataset:
    """Measured EMG from a CSV (gait-cycle layout) or a C3D file (analog channels)."""
    from pathlib import Path

    from .measured import read_emg_csv

    if Path(path).suffix.lower() == ".c3d":
        return read_emg_c3d(path, cycle_s=cycle_s)
    return read_emg_csv(path)
