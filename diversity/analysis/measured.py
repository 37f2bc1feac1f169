"""Measured reference data: EMG envelopes and GRF over the gait cycle, and channel-to-muscle maps.

Shipped set ``walking`` (``datasets/measured/walking/``, built from Falisse et al. 2019's
``ExperimentalData.mat`` by ``python -m diversity.analysis.measured``):

- ``emg.csv``: ``percent`` (0-100, right heel strike to the next), then one column per EMG
  channel (mean over 11 trials, arbitrary units: compare shapes) and ``<channel>_sd``.
- ``grf.csv``: ``percent``, ``anterior_posterior``, ``vertical``, ``medio_lateral`` (+ ``_sd``),
  right foot, in body weights (the source's percent / 100).
- ``emg_map_<model>.toml``: ``[channels]`` table, channel -> list of model muscles (their mean
  activation is compared with the channel).

The EMG CSV layout is also what :func:`read_emg_csv` accepts from users.
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from emulator.motion.formats.base import FormatError, read_lines
from emulator.paths import measured_dir_root

__all__ = [
    "MEASURED_FOR_MOTION",
    "MeasuredError",
    "emg_map",
    "measured_dir",
    "measured_set",
    "read_curve_csv",
    "read_emg_csv",
    "read_emg_map",
]

# which shipped measured set belongs to which shipped motion
MEASURED_FOR_MOTION = {"walk": "walking", "walk_trial": "walking"}
GRF_COMPONENTS = ("anterior_posterior", "vertical", "medio_lateral")


class MeasuredError(ValueError):
    """A measured-data file or map that cannot be used; the message names the file and field."""


def measured_dir(name: str = "walking") -> Path:
    d = measured_dir_root() / name
    if not d.is_dir():
        have = sorted(p.name for p in measured_dir_root().glob("*") if p.is_dir())
        raise MeasuredError(f"no measured data set {name!r} (shipped: {have})")
    return d


def read_curve_csv(path: str | Path, dim: str) -> xr.Dataset:
    """A gait-cycle CSV (first column ``percent``, then one column per channel, optional
    ``<channel>_sd``) -> Dataset with ``mean`` and ``sd`` ``[percent, dim]``, resampled to
    101 points (0, 1, ..., 100 %)."""
    path = Path(path)
    if not path.is_file():
        raise MeasuredError(f"{path}: no such file")
    try:
        _, lines = read_lines(path)  # undecodable bytes become U+FFFD, then fail as numbers
    except FormatError as e:
        raise MeasuredError(str(e)) from None
    rows = list(csv.reader(row for row in lines if row.strip() and not row.startswith("#")))
    if len(rows) < 3:
        raise MeasuredError(f"{path}: expected a header and at least 2 rows, got {len(rows)} lines")
    header = [h.strip() for h in rows[0]]
    if header[0].lower() not in ("percent", "gait_cycle_percent", "%"):
        raise MeasuredError(f"{path}: first column must be 'percent' (gait cycle 0-100), got {header[0]!r}")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise MeasuredError(
                f"{path}: data row {i - 1} has {len(r)} values, the header has {len(header)} columns (file cut short?)"
            )
    try:  # an empty cell or nan is a missing sample; anything else must be a number
        table = np.array(
            [[float(x) if x.strip() not in ("", "nan", "NaN") else np.nan for x in r] for r in rows[1:]]
        )
    except ValueError as e:
        raise MeasuredError(f"{path}: non-numeric value ({e})") from None
    if np.isinf(table).any():
        r, c = np.argwhere(np.isinf(table))[0]
        raise MeasuredError(f"{path}: infinite value in column {header[c]!r} at data row {r + 1}")
    pct = table[:, 0]
    if np.isnan(pct).any() or np.any(np.diff(pct) <= 0) or pct[0] < -1e-9 or pct[-1] > 100 + 1e-9:
        raise MeasuredError(f"{path}: 'percent' must increase within 0-100")
    if pct[0] > 1.0 or pct[-1] < 99.0:  # a cycle table that stops early was cut or mislabelled
        raise MeasuredError(
            f"{path}: 'percent' runs {pct[0]:g}-{pct[-1]:g}; a gait-cycle table covers 0-100 (file cut short?)"
        )
    names = [h for h in header[1:] if not h.endswith("_sd")]
    grid = np.linspace(0.0, 100.0, 101)

    def col(name):
        y = table[:, header.index(name)]
        ok = ~np.isnan(y)
        return np.interp(grid, pct[ok], y[ok]) if ok.sum() >= 2 else np.full(101, np.nan)

    mean = np.stack([col(n) for n in names], axis=1)
    sd = np.stack([col(f"{n}_sd") if f"{n}_sd" in header else np.full(101, np.nan) for n in names], axis=1)
    coords = {"percent": ("percent", grid, {"units": "%", "long_name": "gait cycle"}), dim: names}
    return xr.Dataset(
        {"mean": (("percent", dim), mean), "sd": (("percent", dim), sd)},
        coords=coords,
        attrs={"source": str(path)},
    )


def read_emg_csv(path: str | Path) -> xr.Dataset:
    """Measured EMG envelopes: ``mean``/``sd`` ``[percent, channel]`` (see module docstring)."""
    return read_curve_csv(path, "channel")


def read_emg_map(path: str | Path, muscles: list[str] | None = None) -> dict[str, list[str]]:
    """``{channel: [muscle, ...]}`` from a TOML map; with ``muscles``, every named muscle must
    exist in the model."""
    path = Path(path)
    if not path.is_file():
        raise MeasuredError(f"{path}: no such EMG map file")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise MeasuredError(f"{path}: not valid TOML ({e})") from None
    table = raw.get("channels")
    if not isinstance(table, dict) or not table:
        raise MeasuredError(f"{path}: needs a [channels] table of channel = [muscles]")
    out = {}
    for ch, ms in table.items():
        ms = [ms] if isinstance(ms, str) else ms
        if not isinstance(ms, list) or not ms or not all(isinstance(m, str) for m in ms):
            raise MeasuredError(f"{path}: channel {ch!r} must map to a list of muscle names")
        if muscles is not None:
            bad = [m for m in ms if m not in set(muscles)]
            if bad:
                raise MeasuredError(f"{path}: channel {ch!r} names muscles not in the model: {bad}")
        out[ch] = list(ms)
    return out


def emg_map(model: str, name: str = "walking") -> Path:
    """The shipped channel-to-muscle map for ``model`` in measured set ``name``."""
    f = measured_dir(name) / f"emg_map_{model}.toml"
    if not f.is_file():
        raise MeasuredError(f"no shipped EMG map for model {model!r} in {name!r}; pass --emg-map FILE")
    return f


def measured_set(name: str = "walking") -> dict:
    """``{"emg": Dataset [percent, channel], "grf": Dataset [percent, component] (body weights),
    "dir": Path}`` for a shipped set."""
    d = measured_dir(name)
    return {"emg": read_emg_csv(d / "emg.csv"), "grf": read_curve_csv(d / "grf.csv", "direction"), "dir": d}
