"""Measured EMG and GRF as OpenSim users keep them: an EMG ``.sto``/``.mot`` (named channels, any
sampling rate, raw or already-processed envelopes) and a force-plate ``.mot`` (newtons, y up).

Gait cycles come from the right foot's heel strikes in the GRF file (vertical force rising
through 5 % of body weight; body weight = the trial's mean total vertical force, or
``body_mass_kg`` x 9.81), else from a given window, else the whole trial is one cycle. Each cycle
is resampled to 101 points and the cycles are averaged (``sd`` over cycles).

Channel names map to model muscles through a default table of the usual surface-EMG names
(``emg_names_<model>.toml`` in the shipped measured data: soleus, gastrocnemius medialis /
lateralis, tibialis anterior, peroneus longus, biceps femoris, semitendinosus /
semimembranosus / medial hamstrings, vastus lateralis / medialis, rectus femoris, gluteus
maximus / medius, adductor longus, tensor fasciae latae), matched case- and
separator-insensitively with the side taken from the name (right when none).
"""

from __future__ import annotations

import re
import tomllib

import numpy as np
import xarray as xr

from emulator.motion.formats.base import FormatError, uniform_fps
from emulator.motion.formats.opensim import read_opensim_table

from .emg import emg_envelope
from .measured import MeasuredError, measured_dir

__all__ = ["default_emg_map", "heel_strikes", "read_emg_opensim", "read_grf_opensim"]

GRAVITY = 9.81
_SIDE_WORDS = {"r": "right", "right": "right", "l": "left", "left": "left", "rt": "right", "lt": "left"}


def _table(path) -> tuple[list[str], np.ndarray]:
    try:
        names, data, _ = read_opensim_table(path)
    except FormatError as e:
        raise MeasuredError(str(e)) from None
    if data.shape[0] < 4:
        raise MeasuredError(f"{path}: {data.shape[0]} rows; a gait trial needs more")
    try:
        uniform_fps(data[:, 0], str(path))  # time increasing and evenly sampled
    except FormatError as e:
        raise MeasuredError(str(e)) from None
    if not np.all(np.isfinite(data)):
        r, c = np.argwhere(~np.isfinite(data))[0]
        raise MeasuredError(f"{path}: non-finite value in column {names[c]!r} at row {r + 1}")
    return list(names), data


def read_grf_opensim(path, body_mass_kg: float | None = None) -> dict:
    """Right/left vertical and horizontal forces (N, y up) from an OpenSim GRF ``.mot``.

    Columns ``ground_force_{r,l}_v{x,y,z}``, or the older per-plate ``ground_force_v*`` /
    ``1_ground_force_v*``, which name no side: with their centres of pressure
    (``*_p{x,z}``) the right foot is the one whose pressure lies to the right of the other's
    (the walking direction along x from how the pressure moves during stance; right = +z when
    walking +x, OpenSim's frame); without them, the first is taken as the right foot. Returns
    time, per-side ``[time, 3]`` forces in the y-up lab frame, ``forward_x`` (+1 / -1: the
    walking direction along x, +1 when it cannot be told), ``sides`` (which columns are which
    foot, and how that was decided) and the body weight (N)."""
    names, data = _table(path)
    t = data[:, 0]
    col = {n: data[:, i] for i, n in enumerate(names)}
    sides, cop, where = {}, {}, {}
    for side, prefixes in (
        ("right", ("ground_force_r_", "ground_force_")),
        ("left", ("ground_force_l_", "1_ground_force_")),
    ):
        for p in prefixes:
            if all(f"{p}v{a}" in col for a in "xyz"):
                sides[side] = np.stack([col[f"{p}v{a}"] for a in "xyz"], axis=1)
                where[side] = f"{p}v*"
                if all(f"{p}p{a}" in col for a in "xz"):
                    cop[side] = np.stack([col[f"{p}px"], col[f"{p}pz"]], axis=1)
                break
    forward_x, how = 1.0, "column names"
    if len(cop) == 2:
        forward_x, swap = _sides_from_pressure(sides, cop)
        if where["right"] == "ground_force_v*":  # the unsided names: the pressure decides
            how = "centre of pressure"
            if swap:
                sides = {"right": sides["left"], "left": sides["right"]}
                where = {"right": where["left"], "left": where["right"]}
    elif where.get("right") == "ground_force_v*":
        how = "assumed: first plate = right foot (no centre of pressure columns)"
    if "right" not in sides:
        raise MeasuredError(
            f"{path}: no right-foot force columns (ground_force_r_vx/vy/vz); has {names[1:8]}"
        )
    if body_mass_kg is not None:
        if not body_mass_kg > 0:
            raise MeasuredError(f"--body-mass must be > 0 kg, got {body_mass_kg}")
        bw = float(body_mass_kg) * GRAVITY
    else:
        total = sum(f[:, 1] for f in sides.values())
        if len(sides) < 2:
            raise MeasuredError(
                f"{path}: one foot only; body weight cannot come from the trial: pass --body-mass"
            )
        bw = float(np.mean(total))
        if not bw > 100.0:
            raise MeasuredError(
                f"{path}: mean vertical force {bw:.1f} N is not a body weight; is y up? pass --body-mass"
            )
    return {
        "time": t,
        "force": sides,
        "forward_x": forward_x,
        "sides": {**where, "decided_by": how},
        "body_weight_n": bw,
        "source": str(path),
    }


def _sides_from_pressure(force: dict, cop: dict) -> tuple[float, bool]:
    """(walking direction along x, whether the 'right' and 'left' columns hold the other
    foot) from each foot's centre of pressure ``[time, (x, z)]`` while it carries load."""
    loaded = {k: force[k][:, 1] > 0.2 * max(float(np.max(force[k][:, 1])), 1e-9) for k in force}
    # the pressure rolls from heel to toe in every stance: along x it moves the walking way
    roll = 0.0
    for k, m in loaded.items():
        idx = np.flatnonzero(m)
        if len(idx) < 2:
            continue
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        roll += sum(cop[k][r[-1], 0] - cop[k][r[0], 0] for r in runs if len(r) > 1)
    forward_x = 1.0 if roll >= 0 else -1.0
    z = {k: float(np.mean(cop[k][loaded[k], 1])) if loaded[k].any() else 0.0 for k in cop}
    # OpenSim's frame is y up: walking +x, the walker's right is +z
    return forward_x, bool(forward_x * (z["right"] - z["left"]) < 0)


def heel_strikes(
    time: np.ndarray, vertical: np.ndarray, threshold: float, min_gap_s: float = 0.3
) -> np.ndarray:
    """Times (s) where ``vertical`` rises through ``threshold`` (linear interpolation), at
    least ``min_gap_s`` apart."""
    above = vertical >= threshold
    idx = np.where(~above[:-1] & above[1:])[0]
    out: list[float] = []
    for i in idx:
        f0, f1 = vertical[i], vertical[i + 1]
        t = time[i] + (threshold - f0) / (f1 - f0) * (time[i + 1] - time[i])
        if not out or t - out[-1] >= min_gap_s:
            out.append(float(t))
    return np.asarray(out)


def _cycles(t: np.ndarray, x: np.ndarray, bounds: list[tuple[float, float]]) -> np.ndarray:
    """``x [time, channel]`` cut at ``bounds`` and resampled to 101 points: ``[cycle, 101, channel]``."""
    out = []
    for t0, t1 in bounds:
        grid = np.linspace(t0, t1, 101)
        out.append(np.stack([np.interp(grid, t, x[:, k]) for k in range(x.shape[1])], axis=1))
    return np.stack(out)


def cycle_bounds(grf: dict | None, cycle_s: tuple[float, float] | None, t: np.ndarray) -> tuple[list, str]:
    if grf is not None:
        strikes = heel_strikes(grf["time"], grf["force"]["right"][:, 1], 0.05 * grf["body_weight_n"])
        strikes = strikes[(strikes >= t[0]) & (strikes <= t[-1])]
        if len(strikes) >= 2:
            return list(
                zip(strikes[:-1], strikes[1:], strict=True)
            ), f"{len(strikes) - 1} gait cycles (right heel strikes)"
        raise MeasuredError(
            f"{grf['source']}: fewer than 2 right heel strikes within the EMG recording; pass a cycle window"
        )
    if cycle_s is not None:
        if not (t[0] <= cycle_s[0] < cycle_s[1] <= t[-1] + 1e-9):
            raise MeasuredError(
                f"cycle window {cycle_s} s is outside the recording ({t[0]:.3f}-{t[-1]:.3f} s)"
            )
        return [tuple(cycle_s)], "the given window"
    return [(float(t[0]), float(t[-1]))], "the whole trial"


def read_emg_opensim(
    path,
    grf: dict | None = None,
    cycle_s: tuple[float, float] | None = None,
    processed: bool | None = None,
    band_hz: tuple[float, float] = (20.0, 450.0),
    lowpass_hz: float = 6.0,
) -> xr.Dataset:
    """EMG ``mean``/``sd`` ``[percent, channel]`` over the trial's gait cycles.

    ``processed``: None detects it (raw EMG swings negative; envelopes do not), True uses the
    values as they are, False filters them (band-pass ``band_hz``, rectify, low-pass
    ``lowpass_hz``). Each channel is normalised to its peak mean cycle. The attributes say what
    was done (``processing``, ``rate_hz``, ``cycles``)."""
    names, data = _table(path)
    t, x = data[:, 0], data[:, 1:]
    rate = uniform_fps(t, str(path))
    is_raw = bool(np.any(x < 0)) if processed is None else not processed
    if is_raw:
        if rate < 2.5 * band_hz[0]:
            raise MeasuredError(
                f"{path}: {rate:.0f} Hz is too slow for raw EMG (band-pass from {band_hz[0]} Hz)"
            )
        x = emg_envelope(x, rate, band_hz=band_hz, lowpass_hz=lowpass_hz)
        processing = {"kind": "raw", "band_pass_hz": list(band_hz), "rectified": True, "low_pass_hz": lowpass_hz,
                      "filter": "4th-order Butterworth, zero phase"}  # fmt: skip
    else:
        processing = {"kind": "envelope (used as given)"}
    bounds, how = cycle_bounds(grf, cycle_s, t)
    cyc = _cycles(t, x, bounds)
    mean = cyc.mean(0)
    peak = np.nanmax(mean, axis=0)
    scale = np.where(peak > 0, peak, 1.0)
    sd = cyc.std(0) / scale if len(cyc) > 1 else np.full_like(mean, np.nan)
    return xr.Dataset(
        {"mean": (("percent", "channel"), mean / scale), "sd": (("percent", "channel"), sd)},
        coords={"percent": np.linspace(0.0, 100.0, 101), "channel": names[1:]},
        attrs={
            "source": str(path),
            "rate_hz": rate,
            "processing": processing,
            "cycles": how,
            "n_cycles": len(bounds),
        },  # fmt: skip
    )


def grf_cycles_opensim(grf: dict, cycle_s: tuple[float, float] | None = None) -> xr.Dataset:
    """The right foot's force over the gait cycles, body-weight normalised, in the store's
    directions: ``anterior_posterior`` (along the walking direction, ``grf["forward_x"]`` x),
    ``vertical`` (+y) and ``medio_lateral`` (positive to the walker's left: -z in OpenSim's
    y-up frame when walking +x)."""
    f = grf["force"]["right"] / grf["body_weight_n"]
    fwd = float(grf.get("forward_x", 1.0))
    comps = np.stack([fwd * f[:, 0], f[:, 1], -fwd * f[:, 2]], axis=1)
    bounds, how = cycle_bounds(grf, cycle_s, grf["time"])
    cyc = _cycles(grf["time"], comps, bounds)
    sd = cyc.std(0) if len(cyc) > 1 else np.full(cyc.shape[1:], np.nan)
    return xr.Dataset(
        {"mean": (("percent", "direction"), cyc.mean(0)), "sd": (("percent", "direction"), sd)},
        coords={
            "percent": np.linspace(0.0, 100.0, 101),
            "direction": ["anterior_posterior", "vertical", "medio_lateral"],
        },
        attrs={
            "source": grf["source"],
            "cycles": how,
            "n_cycles": len(bounds),
            "body_weight_n": grf["body_weight_n"],
        },
    )


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _split_side(channel: str) -> tuple[str, str]:
    """(side, name without the side word) of a channel name like ``R_Soleus`` or ``soleus-left``."""
    parts = [p for p in re.split(r"[\s_\-.]+", channel.strip()) if p]
    side = "right"
    kept = []
    for p in parts:
        if p.lower() in _SIDE_WORDS and len(parts) > 1:
            side = _SIDE_WORDS[p.lower()]
        else:
            kept.append(p)
    return side, "".join(kept)


def default_emg_map(
    channels: list[str], model: str, muscles: list[str] | None = None
) -> tuple[dict, list[str]]:
    """``({channel: [muscles]}, unmatched channels)`` from the shipped name table of ``model``."""
    f = measured_dir("walking") / f"emg_names_{model}.toml"
    if not f.is_file():
        raise MeasuredError(f"no default EMG channel names for model {model!r}; pass --emg-map FILE")
    table = tomllib.loads(f.read_text())
    aliases = {_norm(a): key for key, entry in table["muscles"].items() for a in [key, *entry["names"]]}
    mapping, unmatched = {}, []
    for ch in channels:
        side, name = _split_side(ch)
        key = aliases.get(_norm(name))
        if key is None:
            unmatched.append(ch)
            continue
        ms = [m.format(s=side[0]) for m in table["muscles"][key]["muscles"]]
        if muscles is not None and not set(ms) <= set(muscles):
            unmatched.append(ch)
            continue
        mapping[ch] = ms
    return mapping, unmatched
