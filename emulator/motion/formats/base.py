"""Shared types of the motion readers: point trajectories and named coordinate tables.

Readers return one of three things:

* :class:`MarkerSet`: named 3-D points over time (markers, joint centres, keypoints), metres,
  **z up**, NaN where a point is missing. Needs retargeting (IK) onto a model.
* :class:`CoordinateTable`: named joint coordinates over time (OpenSim ``.mot``/``.sto``), angles
  in radians and translations in metres. Maps onto a model by joint name (no IK).
* :class:`~emulator.motion.reference.ReferenceMotion`: already in a model's coordinates (the ``.npz`` format).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emulator.motion.reference import MotionError

__all__ = [
    "CoordinateTable",
    "FormatError",
    "MarkerSet",
    "Y_UP_TO_Z_UP",
    "read_lines",
    "to_z_up",
    "uniform_fps",
]


class FormatError(MotionError):
    """A motion file is malformed; the message names the file and what is wrong where."""


# Rotation taking a y-up frame (OpenSim, BVH, SMPL) to z-up: (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

_UNIT_SCALE = {"m": 1.0, "mm": 1e-3, "cm": 1e-2, "dm": 0.1, "in": 0.0254, "inch": 0.0254, "ft": 0.3048}


def unit_scale(units: str, source: str) -> float:
    """Metres per ``units`` (``"mm"`` -> 0.001); a clear error for an unknown unit."""
    u = units.strip().lower()
    if u not in _UNIT_SCALE:
        raise FormatError(f"{source}: unknown length unit {units!r} (expected one of {sorted(_UNIT_SCALE)})")
    return _UNIT_SCALE[u]


def read_lines(path: str | Path) -> tuple[str, list[str]]:
    """``(source name, lines)`` of a text file; a FormatError naming the file if unreadable."""
    source = str(path)
    try:
        return source, Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        raise FormatError(f"{source}: cannot read ({e.strerror or e})") from None


def to_z_up(p: np.ndarray, up: str, source: str) -> np.ndarray:
    """Points ``[..., 3]`` in a y-up or z-up frame, returned z up."""
    if up == "z":
        return p
    if up == "y":
        return p @ Y_UP_TO_Z_UP.T
    raise FormatError(f"{source}: up axis must be 'y' or 'z', got {up!r}")


def uniform_fps(time: np.ndarray, source: str, rtol: float = 0.05) -> float:
    """Frame rate of a time column; error on non-monotonic or clearly non-uniform sampling."""
    t = np.asarray(time, dtype=float)
    if t.size < 2:
        raise FormatError(f"{source}: need at least 2 frames, got {t.size}")
    dt = np.diff(t)
    bad = np.where(~(dt > 0))[0]
    if bad.size:
        i = int(bad[0])
        raise FormatError(
            f"{source}: time is not increasing at row {i + 1} -> {i + 2} ({t[i]:.6g} s -> {t[i + 1]:.6g} s)"
        )
    med = float(np.median(dt))
    worst = int(np.argmax(np.abs(dt - med)))
    if abs(dt[worst] - med) > rtol * med:
        raise FormatError(
            f"{source}: time steps are not uniform (median {med:.6g} s, {dt[worst]:.6g} s at row "
            f"{worst + 1}); resample the file to a fixed rate first"
        )
    return 1.0 / med


@dataclass(frozen=True)
class MarkerSet:
    """Point trajectories.

    Attributes:
        names: point names (markers, joints or keypoints), unique.
        positions: ``[time, point, 3]`` in metres, world z up; NaN where a point is missing.
        fps: frames per second.
        source: the file (or generator) they came from.
        meta: provenance (original units, up axis, format-specific extras).
    """

    names: tuple[str, ...]
    positions: np.ndarray = field(repr=False)
    fps: float
    source: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        p = np.asarray(self.positions, dtype=float)
        if p.ndim != 3 or p.shape[2] != 3 or p.shape[1] != len(self.names):
            raise FormatError(
                f"{self.source}: positions must be [time, {len(self.names)} points, 3], got {p.shape}"
            )
        if p.shape[0] < 2:
            raise FormatError(f"{self.source}: need at least 2 frames, got {p.shape[0]}")
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise FormatError(f"{self.source}: duplicate point names {dup[:5]}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise FormatError(f"{self.source}: frame rate must be > 0, got {self.fps}")
        object.__setattr__(self, "positions", p)

    @property
    def n_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def duration_s(self) -> float:
        return (self.n_frames - 1) / self.fps

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise FormatError(f"{self.source}: no point named {name!r}") from None

    def point(self, name: str) -> np.ndarray:
        """``[time, 3]`` trajectory of one point."""
        return self.positions[:, self.index(name)]

    def frames(self, start: int, stop: int | None = None) -> MarkerSet:
        """Frames ``start:stop`` (start time recorded in ``meta['start_frame']``)."""
        p = self.positions[start:stop]
        meta = dict(self.meta, start_frame=int(self.meta.get("start_frame", 0)) + start)
        return MarkerSet(self.names, p, self.fps, self.source, meta)


@dataclass(frozen=True)
class CoordinateTable:
    """Named generalized coordinates over time (OpenSim ``Coordinates`` / ``States`` tables).

    Attributes:
        names: coordinate names as written in the file (``hip_flexion_r``, ``pelvis_tx``).
        values: ``[time, coordinate]``; rotational coordinates in radians, translations in metres.
        time: ``[time]`` seconds, strictly increasing.
        source: the file.
        meta: header fields (``inDegrees`` as read, original file name, ...).
    """

    names: tuple[str, ...]
    values: np.ndarray = field(repr=False)
    time: np.ndarray = field(repr=False)
    source: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    @property
    def fps(self) -> float:
        return uniform_fps(self.time, self.source)

    @property
    def n_frames(self) -> int:
        return self.values.shape[0]

    def column(self, name: str) -> np.ndarray:
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise FormatError(f"{self.source}: no column named {name!r}") from None

    def between(self, t0: float, t1: float) -> CoordinateTable:
        """Rows with ``t0 <= time <= t1``."""
        keep = (self.time >= t0 - 1e-9) & (self.time <= t1 + 1e-9)
        return CoordinateTable(self.names, self.values[keep], self.time[keep], self.source, dict(self.meta))


def source_name(path: str | Path) -> str:
    return str(path)
