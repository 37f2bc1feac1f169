"""Readers for the motion formats users bring.

:func:`read` picks a reader by suffix and returns a :class:`MarkerSet` (points to retarget), a
:class:`CoordinateTable` (named joint coordinates) or a
:class:`~emulator.motion.reference.ReferenceMotion` (already in model coordinates).

=================  ==============================  ======================================
suffix             reader                          returns
=================  ==============================  ======================================
``.npz``           project format / AMASS          ReferenceMotion / MarkerSet (joints)
``.mot``, ``.sto`` :func:`read_coordinates`        CoordinateTable (radians, metres)
``.trc``           :func:`read_trc`                MarkerSet (metres, z up)
``.c3d``           :func:`read_c3d` (ezc3d)        MarkerSet (metres, z up)
``.bvh``           :func:`read_bvh`                MarkerSet of joint positions
``.txt`` (JSON)    :func:`read_deepmimic`          MarkerSet (DeepMimic clip: joints, heels, toes)
=================  ==============================  ======================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emulator.motion.formats.amass import read_amass
from emulator.motion.formats.base import CoordinateTable, FormatError, MarkerSet
from emulator.motion.formats.bvh import read_bvh
from emulator.motion.formats.c3d import AnalogChannels, read_c3d, read_c3d_analogs
from emulator.motion.formats.deepmimic import is_deepmimic, read_deepmimic
from emulator.motion.formats.opensim import read_coordinates, read_opensim_table, read_trc
from emulator.motion.reference import ReferenceMotion

__all__ = [
    "AnalogChannels",
    "CoordinateTable",
    "FormatError",
    "MarkerSet",
    "SUFFIXES",
    "is_amass",
    "is_deepmimic",
    "read",
    "read_amass",
    "read_bvh",
    "read_c3d",
    "read_c3d_analogs",
    "read_deepmimic",
    "read_coordinates",
    "read_opensim_table",
    "read_trc",
]

SUFFIXES = (".npz", ".mot", ".sto", ".trc", ".c3d", ".bvh", ".txt")


def is_amass(path: str | Path) -> bool:
    """An ``.npz`` holding AMASS pose parameters (``poses`` and ``trans``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "poses" in z.files and "trans" in z.files
    except Exception:
        return False


def read(
    path: str | Path,
    *,
    up: str | None = None,
    units: str | None = None,
    body_model: str | Path | None = None,
) -> MarkerSet | CoordinateTable | ReferenceMotion:
    """Read any supported motion file (see the module table).

    Args:
        up: the file's up axis where the format does not fix it (TRC default y, C3D z, BVH y).
        units: BVH length unit (default cm).
        body_model: SMPL-H/SMPL-X body-model ``.npz`` for AMASS files (user-supplied).
    """
    p = Path(path)
    if not p.exists():
        raise FormatError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return read_amass(p, body_model=body_model) if is_amass(p) else ReferenceMotion.load(p)
    if suffix in (".mot", ".sto"):
        return read_coordinates(p)
    if suffix == ".trc":
        return read_trc(p, up=up or "y")
    if suffix == ".c3d":
        return read_c3d(p, up=up or "z")
    if suffix == ".bvh":
        return read_bvh(p, units=units or "cm", up=up or "y")
    if suffix in (".txt", ".json") and is_deepmimic(p):
        return read_deepmimic(p)
    raise FormatError(f"{p}: unknown motion format {suffix!r} (readable: {', '.join(SUFFIXES)})")
