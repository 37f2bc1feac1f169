"""OpenSim text formats: ``.mot`` / ``.sto`` tables and ``.trc`` marker files.

``.mot``/``.sto``: a header ending in ``endheader``, a tab-separated column-name row, numeric
rows; the first column is ``time``. Joint-angle files say ``inDegrees=yes|no`` in the header;
translational coordinates (``*_tx``, ``*_ty``, ``*_tz``) are always metres.

``.trc``: ``PathFileType`` line, a key row and a value row (``DataRate``, ``Units``, ...), a row
``Frame# Time name1 <tab> <tab> name2 ...``, a row ``X1 Y1 Z1 X2 ...``, then data. OpenSim's lab
frame is y up; points are rotated to z up. Empty fields and exact ``(0, 0, 0)`` triples (how
many exporters write gaps) are missing (NaN).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from emulator.motion.formats.base import (
    CoordinateTable,
    FormatError,
    MarkerSet,
    read_lines,
    to_z_up,
    uniform_fps,
    unit_scale,
)

__all__ = ["read_opensim_table", "read_coordinates", "read_trc", "is_translation"]

_MAX_HEADER_LINES = 200


def is_translation(name: str) -> bool:
    """OpenSim translational coordinate names: ``pelvis_tx``, ``knee_angle_translation1_r``..."""
    return bool(re.search(r"_t[xyz]$", name)) or "translation" in name


def _parse_float_rows(lines: list[str], first_row: int, n_cols: int, source: str, sep=None) -> np.ndarray:
    rows = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        parts = line.split(sep) if sep else line.split()
        if len(parts) != n_cols:
            raise FormatError(
                f"{source}: line {first_row + k + 1} has {len(parts)} values, the header names {n_cols} columns"
            )
        try:
            rows.append([float(x) for x in parts])
        except ValueError:
            bad = next(x for x in parts if not _is_float(x))
            raise FormatError(f"{source}: line {first_row + k + 1}: {bad!r} is not a number") from None
    return np.array(rows, dtype=float).reshape(-1, n_cols)


def _is_float(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def read_opensim_table(path: str | Path) -> tuple[tuple[str, ...], np.ndarray, dict]:
    """Raw ``.mot``/``.sto`` table: (column names including ``time``, ``[row, column]``, header).

    The header dict holds every ``key=value`` line (lower-cased keys) plus ``"title"``.
    """
    source, lines = read_lines(path)
    end = next(
        (i for i, line in enumerate(lines[:_MAX_HEADER_LINES]) if line.strip().lower() == "endheader"), None
    )
    if end is None:
        raise FormatError(
            f"{source}: not an OpenSim .mot/.sto table: no 'endheader' line in the first {_MAX_HEADER_LINES} lines"
        )
    header: dict = {"title": lines[0].strip() if end > 0 else ""}
    for line in lines[:end]:
        if "=" in line:
            k, v = line.split("=", 1)
            header[k.strip().lower()] = v.strip()
    if end + 1 >= len(lines):
        raise FormatError(f"{source}: no column-name row after 'endheader'")
    names = tuple(lines[end + 1].split())
    if not names or names[0].lower() != "time":
        raise FormatError(f"{source}: first column after 'endheader' must be 'time', got {names[:1]}")
    data = _parse_float_rows(lines[end + 2 :], end + 2, len(names), source)
    if "nrows" in header:
        try:
            n_rows = int(header["nrows"])
        except ValueError:
            raise FormatError(f"{source}: header nRows={header['nrows']!r} is not an integer") from None
        if data.shape[0] < n_rows:
            raise FormatError(
                f"{source}: header says nRows={n_rows}, file has {data.shape[0]} rows (truncated?)"
            )
    if data.shape[0] < 2:
        raise FormatError(f"{source}: need at least 2 rows of data, got {data.shape[0]}")
    return names, data, header


def read_coordinates(path: str | Path) -> CoordinateTable:
    """An OpenSim coordinates file (``.mot``/``.sto``) with rotations converted to radians."""
    source = str(path)
    names, data, header = read_opensim_table(path)
    flag = header.get("indegrees")
    if flag is None:
        raise FormatError(
            f"{source}: header has no 'inDegrees=yes|no' line, so degrees cannot be told from radians"
        )
    if flag.lower() not in ("yes", "no"):
        raise FormatError(f"{source}: header inDegrees={flag!r}, expected 'yes' or 'no'")
    time, values = data[:, 0], data[:, 1:].copy()
    cols = names[1:]
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        r, c = bad[0]
        raise FormatError(f"{source}: NaN/inf in column {cols[c]!r} at row {r + 1} (t={time[r]:.4g} s)")
    uniform_fps(time, source)  # raises on non-monotonic or irregular time
    if flag.lower() == "yes":
        rot = np.array([not is_translation(n) for n in cols])
        values[:, rot] = np.radians(values[:, rot])
    meta = {"in_degrees": flag.lower() == "yes", "title": header.get("title", ""), "format": "opensim-mot"}
    return CoordinateTable(cols, values, time, source, meta)


def _ends_with_newline(path: str | Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) in (b"\n", b"\r")


def read_trc(path: str | Path, *, up: str = "y") -> MarkerSet:
    """An OpenSim ``.trc`` marker file as a :class:`MarkerSet` (metres, z up)."""
    source, lines = read_lines(path)
    if len(lines) < 6 or not lines[0].startswith("PathFileType"):
        raise FormatError(f"{source}: not a TRC file (first line should start with 'PathFileType')")
    keys, vals = lines[1].split("\t"), lines[2].split("\t")
    info = {k.strip(): v.strip() for k, v in zip(keys, vals, strict=False) if k.strip()}
    for key in ("DataRate", "NumMarkers", "Units"):
        if key not in info:
            raise FormatError(f"{source}: TRC header lacks {key!r} (line 2 names {list(info)})")
    try:
        rate = float(info["DataRate"])
        n_markers = int(info["NumMarkers"])
    except ValueError:
        raise FormatError(f"{source}: TRC header DataRate/NumMarkers are not numbers: {info}") from None
    scale = unit_scale(info["Units"], source)
    name_row = lines[3].split("\t")
    if len(name_row) < 2 or not name_row[0].lower().startswith("frame"):
        raise FormatError(f"{source}: line 4 should start 'Frame#  Time  <marker names>'")
    names = tuple(n.strip() for n in name_row[2:] if n.strip())
    if len(names) != n_markers:
        raise FormatError(f"{source}: header says NumMarkers={n_markers}, line 4 names {len(names)} markers")
    n_cols = 2 + 3 * n_markers
    rows = []
    body = [(k + 6, line) for k, line in enumerate(lines[5:]) if line.strip()]
    ends_cleanly = _ends_with_newline(path)
    for number, line in body:
        parts = line.split("\t")
        if len(parts) < n_cols and number == body[-1][0] and not ends_cleanly:
            raise FormatError(
                f"{source}: line {number} is cut short ({len(parts)} of {n_cols} values) and the file "
                "does not end with a newline: the file looks truncated"
            )
        if len(parts) < n_cols:  # some writers drop the empty fields of trailing gaps
            parts = parts + [""] * (n_cols - len(parts))
        try:
            rows.append([float(x) if x.strip() else np.nan for x in parts[:n_cols]])
        except ValueError:
            raise FormatError(f"{source}: line {number}: non-numeric value") from None
    data = np.array(rows, dtype=float).reshape(-1, n_cols)
    promised = info.get("NumFrames", "")
    if promised.strip().isdigit() and int(promised) != data.shape[0]:
        raise FormatError(
            f"{source}: the header promises NumFrames={int(promised)}, the file holds {data.shape[0]} "
            "frame rows (truncated or edited?)"
        )
    if data.shape[0] < 2:
        raise FormatError(f"{source}: need at least 2 frames, got {data.shape[0]}")
    if not (np.isfinite(rate) and rate > 0):
        raise FormatError(f"{source}: TRC header DataRate={info['DataRate']} must be a positive number")
    time = data[:, 1]
    if np.all(np.isfinite(time)):
        uniform_fps(time, source)  # time must increase
    p = data[:, 2:].reshape(-1, n_markers, 3) * scale
    p[np.all(p == 0.0, axis=2)] = np.nan
    p = to_z_up(p, up, source)
    meta = {"format": "trc", "units": info["Units"], "up": up, "time0_s": float(time[0]), "header": info}
    return MarkerSet(names, p, rate, source, meta)
