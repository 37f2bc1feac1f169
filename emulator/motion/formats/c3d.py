"""C3D marker files (and their analog channels) through ``ezc3d``.

Points come out in metres (from ``POINT:UNITS``), rotated so that ``up`` becomes z (C3D files
from most labs are already z up; pass ``up="y"`` for y-up labs). Points whose residual is
negative (the C3D "invalid" flag) or that are NaN are missing.

A damaged file must not take the process down: the 512-byte header and the parameter section's
extent are checked in Python first (a file shorter than its header promises is refused with the
numbers), and ezc3d then parses it in a child process (:class:`_Worker`), so a crash inside
the C++ parser becomes a :class:`FormatError` naming the file.
"""

from __future__ import annotations

import atexit
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emulator.motion.formats.base import FormatError, MarkerSet, to_z_up, unit_scale

__all__ = ["AnalogChannels", "read_c3d", "read_c3d_analogs"]


def _parse(source: str) -> dict:
    """Runs in the child: ezc3d's parse, reduced to plain arrays and lists (picklable)."""
    import ezc3d

    try:
        c = ezc3d.c3d(source)
    except Exception as e:  # ezc3d raises OSError/RuntimeError with C++ messages
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return {"error": msg}
    params = {
        g: {n: {"value": c["parameters"][g][n]["value"]} for n in c["parameters"][g] if n != "__METADATA__"}
        for g in c["parameters"]
        if g != "__METADATA__"
    }
    return {
        "parameters": params,
        "data": {
            "points": np.asarray(c["data"]["points"]),
            "analogs": np.asarray(c["data"]["analogs"]),
            "meta_points": {"residuals": np.asarray(c["data"]["meta_points"]["residuals"])},
        },
        "header": {"points": {"first_frame": int(c["header"]["points"]["first_frame"])}},
    }


class _Worker:
    """One child Python process that parses C3D files with ezc3d, started on first use and kept
    (starting one per file costs ~1 s). It is a plain ``python -m`` of this module, talking over
    its own pipes, so it never re-imports the caller's ``__main__`` (a script, a notebook or
    ``python -`` all work) and anything ezc3d prints cannot mix into the replies."""

    def __init__(self):
        import os
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.motion.formats.c3d", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.send, self.recv = Connection(to_child_w), Connection(from_child_r)

    def parse(self, path: str, timeout_s: float) -> dict | None:
        """The child's reply for ``path``; None when the child died (the parser crashed) or
        ``TimeoutError`` after ``timeout_s``."""
        try:
            self.send.send(path)
            if not self.recv.poll(timeout_s):
                raise TimeoutError(path)
            return self.recv.recv()  # our own child's plain arrays and lists, not the file's bytes
        except (EOFError, OSError):
            return None

    def close(self) -> None:
        for c in (self.send, self.recv):
            c.close()
        try:
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


_WORKER: _Worker | None = None


def _worker() -> _Worker:
    global _WORKER
    if _WORKER is None or _WORKER.proc.poll() is not None:
        _WORKER = _Worker()
    return _WORKER


def _close_worker() -> None:
    global _WORKER
    if _WORKER is not None:
        _WORKER.close()
        _WORKER = None


atexit.register(_close_worker)  # once: a no-op when no worker was started


def _serve(read_fd: int, write_fd: int) -> None:
    """The child's loop: a path in, ezc3d's parse (or its error) out, until the parent closes."""
    from multiprocessing.connection import Connection

    inbox, outbox = Connection(read_fd), Connection(write_fd)
    while True:
        try:
            path = inbox.recv()
        except EOFError:
            return
        outbox.send(_parse(path))


def _open(path: str | Path):
    global _WORKER
    source = str(path)
    if not Path(path).is_file():
        raise FormatError(f"{source}: no such file")
    _check_header(path)
    worker = _worker()
    try:
        out = worker.parse(str(Path(path).resolve()), timeout_s=120.0)
    except TimeoutError:
        worker.proc.kill()
        _close_worker()
        raise FormatError(f"{source}: not a readable C3D file: parsing took over 120 s") from None
    if out is None:
        _close_worker()
        raise FormatError(f"{source}: not a readable C3D file: the C3D parser crashed on it")
    if "error" in out:
        raise FormatError(f"{source}: not a readable C3D file (truncated or corrupt?): {out['error']}")
    return out


def _check_header(path: str | Path) -> None:
    """The C3D header's promises against the file's size, before any parser sees it."""
    source = str(path)
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(512)
        if len(head) < 512:
            raise FormatError(
                f"{source}: not a readable C3D file: {size} bytes, shorter than the 512-byte header"
            )
        if head[1] != 0x50:
            raise FormatError(f"{source}: not a readable C3D file (byte 2 is {head[1]}, a C3D header has 80)")
        param_at = (max(head[0], 1) - 1) * 512
        f.seek(param_at)
        param = f.read(4)
    if len(param) < 4:
        raise FormatError(
            f"{source}: not a readable C3D file (truncated): the parameter section (at byte {param_at}) is missing"
        )
    if param[3] not in (84, 85, 86):
        raise FormatError(
            f"{source}: not a readable C3D file: unknown processor type {param[3]} in the parameters"
        )
    endian = ">" if param[3] == 86 else "<"
    if param_at + param[2] * 512 > size:
        raise FormatError(
            f"{source}: not a readable C3D file (truncated): the parameter section needs {param[2]} blocks from byte "
            f"{param_at}, the file has {size} bytes"
        )
    n_points, n_analog, first, last = struct.unpack(endian + "HHHH", head[2:10])
    data_block = struct.unpack(endian + "H", head[16:18])[0]
    raw = head[12:16]
    if param[3] == 85:  # DEC floats: swap the 16-bit words, then a factor 4 off IEEE
        scale = struct.unpack("<f", raw[2:4] + raw[0:2])[0] / 4.0
    else:
        scale = struct.unpack(endian + "f", raw)[0]
    if last < first or last == 65535 or data_block < 2:  # long trials overflow the 16-bit fields
        return
    frames = last - first + 1
    per_value = 4 if scale < 0 else 2
    needed = (data_block - 1) * 512 + frames * (4 * n_points + n_analog) * per_value
    if needed > size:
        held = max(0, size - (data_block - 1) * 512) // max((4 * n_points + n_analog) * per_value, 1)
        raise FormatError(
            f"{source}: not a readable C3D file (truncated): the header promises {frames} frames "
            f"({needed} bytes), the file holds {size} bytes (about {held} frames)"
        )


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


if __name__ == "__main__":  # the parsing child (see _Worker)
    import sys

    _serve(int(sys.argv[1]), int(sys.argv[2]))
