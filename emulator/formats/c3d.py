"""C3D marker files (and their analog channels) through ``ezc3d``.

Points come out in metres (from ``POINT:UNITS``), rotated so that ``up`` becomes z (C3D files
from most labs are already z up; pass ``up="y"`` for y-up labs). Points whose residual is
negative (the C3D "invalid" flag) or that are NaN are missing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import FormatError, MarkerSet, to_z_up, unit_scale

__all__ = ["AnalogChannels", "read_c3d", "read_c3d_analogs"]


def _open(path: str | Path):
    import ezc3d

    source = str(path)
    if not Path(path).is_file():
        raise FormatError(f"{source}: no such file")
    try:
        return ezc3d.c3d(source)
    except Exception as e:  # ezc3d raises OSError/RuntimeError with C++ messages
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FormatError(f"{source}: not a readable C3D file (truncated or corrupt?): {msg}") from None


def _param(c, group: str, name: str, source: str, default=None):
    try:
        return c["parameters"][group][name]["value"]
    except KeyError:
        if default is not None:
            return default
        raise FormatError(f"{source}: C3D parameter {group}:{name} is missing") from None


def read_c3d(path: str | Path, *, up: str = "z") -> MarkerSet:
    """The 3-D points of a C3D file as a :class:`MarkerSet` (metres, z up, NaN = missing)."""
    source = str(path)
    c = _open(path)
    labels = [str(s).strip() for s in _param(c, "POINT", "LABELS", source)]
    rate = float(np.ravel(_param(c, "POINT", "RATE", source))[0])
    units = str(np.ravel(_param(c, "POINT", "UNITS", source, default=["mm"]))[0]).strip() or "mm"
    pts = np.asarray(c["data"]["points"], dtype=float)  # [4, point, frame]
    expected = _header_frames(path)
    if expected is not None and pts.shape[2] < expected:
        raise FormatError(
            f"{source}: not a readable C3D file (truncated or corrupt?): the header announces {expected} frames, "
            f"the data hold {pts.shape[2]}"
        )
    if pts.shape[1] == 0:
        raise FormatError(f"{source}: C3D file holds no 3-D points")
    labels = labels[: pts.shape[1]] + [f"point{i}" for i in range(len(labels), pts.shape[1])]
    labels = _unique(labels)
    p = np.transpose(pts[:3], (2, 1, 0)) * unit_scale(units, source)  # [frame, point, 3]
    res = np.asarray(c["data"]["meta_points"]["residuals"], dtype=float)[0].T  # [frame, point]
    p[res < 0] = np.nan
    p = to_z_up(p, up, source)
    first = int(c["header"]["points"]["first_frame"])
    meta = {"format": "c3d", "units": units, "up": up, "first_frame": first, "time0_s": first / rate}
    return MarkerSet(tuple(labels), p, rate, source, meta)


def _header_frames(path: str | Path) -> int | None:
    """Frame count from the raw C3D header (ezc3d silently shortens truncated files)."""
    with open(path, "rb") as f:
        head = f.read(512)
        if len(head) < 10:
            return None
        f.seek(max(head[0] - 1, 0) * 512)
        param = f.read(4)
    endian = ">" if len(param) == 4 and param[3] == 86 else "<"  # 84 Intel, 85 DEC, 86 MIPS
    first, last = struct.unpack(endian + "HH", head[6:10])
    if last < first or last == 65535:  # the 16-bit field overflows for very long trials
        return None
    return last - first + 1


@dataclass(frozen=True)
class AnalogChannels:
    """Analog channels (EMG, force plates) of a C3D file: ``values [time, channel]``."""

    names: tuple[str, ...]
    values: np.ndarray = field(repr=False)
    fps: float
    units: tuple[str, ...]
    source: str = ""

    def channel(self, name: str) -> np.ndarray:
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise FormatError(
                f"{self.source}: no analog channel {name!r} (has {list(self.names)[:10]})"
            ) from None


def read_c3d_analogs(path: str | Path) -> AnalogChannels:
    """Analog channels of a C3D file, in the file's units (``ANALOG:UNITS``)."""
    source = str(path)
    c = _open(path)
    a = np.asarray(c["data"]["analogs"], dtype=float)  # [1, channel, frame]
    if a.size == 0:
        raise FormatError(f"{source}: C3D file holds no analog channels")
    labels = _unique([str(s).strip() for s in _param(c, "ANALOG", "LABELS", source)][: a.shape[1]])
    rate = float(np.ravel(_param(c, "ANALOG", "RATE", source))[0])
    units = [str(u) for u in _param(c, "ANALOG", "UNITS", source, default=[""] * a.shape[1])]
    units = tuple(units[: a.shape[1]] + [""] * (a.shape[1] - len(units)))
    return AnalogChannels(tuple(labels), a[0].T.copy(), rate, units, source)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}#{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out
