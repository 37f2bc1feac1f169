"""BVH (Biovision hierarchy) motion capture: a small parser plus forward kinematics.

A BVH file is a joint hierarchy (``OFFSET`` per joint, ``CHANNELS`` per joint, ``End Site``
leaves) followed by ``MOTION``: ``Frames: N``, ``Frame Time: dt`` and one row of channel values
per frame. Rotations are in degrees and compose in the order the channels are listed
(``Zrotation Xrotation Yrotation`` is ``Rz @ Rx @ Ry``); a joint's local translation is its
``OFFSET`` plus its position channels, if it has any. The result is every joint's (and end
site's, named ``<parent>_end``) world position, converted to metres and z up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulator.motion.formats.base import FormatError, MarkerSet, read_lines, to_z_up, unit_scale

__all__ = ["read_bvh"]

_CHANNELS = {"xposition", "yposition", "zposition", "xrotation", "yrotation", "zrotation"}


@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str]
    first_channel: int


def _rot(axis: str, deg: np.ndarray) -> np.ndarray:
    """``[T, 3, 3]`` rotations about ``axis`` by ``deg``."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    if axis == "x":
        m = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == "y":
        m = [[c, z, s], [z, o, z], [-s, z, c]]
    else:
        m = [[c, -s, z], [s, c, z], [z, z, o]]
    return np.moveaxis(np.array(m), (0, 1), (-2, -1))


def _parse(text: str, source: str) -> tuple[list[_Joint], int, float, np.ndarray]:
    tokens_by_line = [(i + 1, line.split()) for i, line in enumerate(text.splitlines())]
    toks: list[tuple[int, str]] = [(ln, t) for ln, parts in tokens_by_line for t in parts]
    pos = 0

    def take(expect: str | None = None) -> tuple[int, str]:
        nonlocal pos
        if pos >= len(toks):
            raise FormatError(f"{source}: file ends inside the hierarchy (expected {expect or 'more'})")
        ln, t = toks[pos]
        if expect is not None and t.upper() != expect.upper():
            raise FormatError(f"{source}: line {ln}: expected {expect!r}, found {t!r}")
        pos += 1
        return ln, t

    take("HIERARCHY")
    joints: list[_Joint] = []
    n_channels = 0
    stack: list[int] = []

    def number(ln: int, t: str) -> float:
        try:
            return float(t)
        except ValueError:
            raise FormatError(f"{source}: line {ln}: expected a number, found {t!r}") from None

    ln, kind = take()
    if kind.upper() != "ROOT":
        raise FormatError(f"{source}: line {ln}: expected 'ROOT', found {kind!r}")
    while True:
        # kind is ROOT / JOINT / End
        if kind.upper() in ("ROOT", "JOINT"):
            _, name = take()
            take("{")
            ln, _ = take("OFFSET")
            off = np.array([number(*take()) for _ in range(3)])
            ln, _ = take("CHANNELS")
            n = take()
            count = int(number(*n))
            chans = []
            for _ in range(count):
                cln, ch = take()
                if ch.lower() not in _CHANNELS:
                    raise FormatError(
                        f"{source}: line {cln}: joint {name!r} declares {count} channels but lists "
                        f"{len(chans)} before {ch!r} (a channel is missing or misspelt)"
                    )
                chans.append(ch.lower())
            joints.append(_Joint(name, stack[-1] if stack else -1, off, chans, n_channels))
            n_channels += count
            stack.append(len(joints) - 1)
        elif kind.upper() == "END":
            take("Site")
            take("{")
            take("OFFSET")
            off = np.array([number(*take()) for _ in range(3)])
            take("}")
            parent = stack[-1]
            joints.append(_Joint(joints[parent].name + "_end", parent, off, [], n_channels))
        elif kind == "}":
            stack.pop()
            if not stack:
                break
        else:
            raise FormatError(f"{source}: line {ln}: unexpected {kind!r} in the hierarchy")
        ln, kind = take()
    take("MOTION")
    take("Frames:")
    n_frames = int(number(*take()))
    take("Frame")
    take("Time:")
    dt = number(*take())
    values = [t for _, t in toks[pos:]]
    first_line = toks[pos][0] if pos < len(toks) else None
    if len(values) != n_frames * n_channels:
        have = len(values) / n_channels if n_channels else 0
        raise FormatError(
            f"{source}: MOTION says {n_frames} frames x {n_channels} channels = {n_frames * n_channels} "
            f"values, found {len(values)} ({have:.2f} frames; from line {first_line}): a channel or "
            "frame is missing"
        )
    try:
        data = np.array(values, dtype=float).reshape(n_frames, n_channels)
    except ValueError:
        raise FormatError(f"{source}: MOTION section holds a non-number") from None
    return joints, n_frames, dt, data


def read_bvh(path: str | Path, *, units: str = "cm", up: str = "y") -> MarkerSet:
    """Joint (and end-site) world positions of a BVH file as a :class:`MarkerSet`.

    Args:
        units: length unit of the file's offsets (BVH does not say; most are cm).
        up: the file's up axis (``"y"`` for nearly all BVH files).
    """
    source, lines = read_lines(path)
    joints, n_frames, dt, data = _parse("\n".join(lines), source)
    if n_frames < 2:
        raise FormatError(f"{source}: need at least 2 frames, got {n_frames}")
    if not dt > 0:
        raise FormatError(f"{source}: Frame Time must be > 0, got {dt}")
    T = n_frames
    rot = [np.empty((T, 3, 3))] * len(joints)
    pos = [np.empty((T, 3))] * len(joints)
    for j, jt in enumerate(joints):
        local_t = np.tile(jt.offset, (T, 1))
        local_r = np.tile(np.eye(3), (T, 1, 1))
        for k, ch in enumerate(jt.channels):
            v = data[:, jt.first_channel + k]
            if ch.endswith("position"):
                local_t[:, "xyz".index(ch[0])] += v
            else:
                local_r = local_r @ _rot(ch[0], v)
        if jt.parent < 0:
            pos[j], rot[j] = local_t, local_r
        else:
            pr = rot[jt.parent]
            pos[j] = pos[jt.parent] + np.einsum("tij,tj->ti", pr, local_t)
            rot[j] = pr @ local_r
    p = to_z_up(np.stack(pos, axis=1) * unit_scale(units, source), up, source)
    names = tuple(j.name for j in joints)
    meta = {"format": "bvh", "units": units, "up": up, "parents": [j.parent for j in joints]}
    return MarkerSet(names, p, 1.0 / dt, source, meta)
