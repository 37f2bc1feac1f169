"""DeepMimic mocap clips (``humanoid3d_*.txt``) to joint positions, through the humanoid skeleton.

A clip is JSON ``{"Loop": "wrap" | "none", "Frames": [[44 floats], ...]}``; each frame is
``[dt, root position xyz (m, y up), root quaternion (w, x, y, z), chest, neck, right hip
(quaternions), right knee (rad), right ankle, right shoulder (quaternions), right elbow (rad),
left hip, left knee, left ankle, left shoulder, left elbow]``. Rotations are local to the parent
link; the skeleton (joint offsets, revolute axes) comes from DeepMimic's ``humanoid.urdf``,
whose lengths are 4x the clips' metres (pybullet loads it with ``globalScaling=0.25``).

Forward kinematics gives the 15 joint positions plus ``right_heel``/``right_toe`` (and left):
the back and front of the bottom face of the foot collision box. Everything is returned z up
(x forward, y left), in metres, as a :class:`~emulator.motion.formats.base.MarkerSet`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulator.motion.formats.base import FormatError, MarkerSet, to_z_up

__all__ = ["DEEPMIMIC_FRAME", "DeepMimicSkeleton", "default_skeleton", "is_deepmimic", "read_deepmimic"]

# (joint, number of values) after dt, root position and root rotation
DEEPMIMIC_FRAME = (
    ("chest", 4),
    ("neck", 4),
    ("right_hip", 4),
    ("right_knee", 1),
    ("right_ankle", 4),
    ("right_shoulder", 4),
    ("right_elbow", 1),
    ("left_hip", 4),
    ("left_knee", 1),
    ("left_ankle", 4),
    ("left_shoulder", 4),
    ("left_elbow", 1),
)
FRAME_WIDTH = 1 + 3 + 4 + sum(n for _, n in DEEPMIMIC_FRAME)  # 44
URDF_SCALE = 0.25


@dataclass(frozen=True)
class DeepMimicSkeleton:
    """Joints in parent-first order: name -> (parent or None, offset from the parent joint [3]
    in the parent link frame (m, y up), type, axis [3]); and per-foot box (centre, size)."""

    joints: dict
    feet: dict
    source: str = ""


def _xyz(el, attr="xyz") -> np.ndarray:
    return np.array([float(x) for x in el.get(attr, "0 0 0").split()])


def read_skeleton(path: str | Path, scale: float = URDF_SCALE) -> DeepMimicSkeleton:
    """Parse DeepMimic's ``humanoid.urdf`` (joint tree, offsets x ``scale``, foot boxes)."""
    path = Path(path)
    try:
        root = ET.fromstring(path.read_bytes().replace(b"\x00", b""))
    except (OSError, ET.ParseError) as e:
        raise FormatError(f"{path}: cannot read the DeepMimic skeleton ({e})") from None
    joints = {}
    for j in root.iter("joint"):
        name, kind = j.get("name"), j.get("type")
        parent, child = j.find("parent"), j.find("child")
        origin = j.find("origin")
        if parent is None or child is None or origin is None:
            raise FormatError(f"{path}: joint {name!r} lacks parent, child or origin")
        axis = j.find("axis")
        joints[child.get("link")] = (
            parent.get("link"),
            _xyz(origin) * scale,
            kind,
            _xyz(axis) if axis is not None else np.zeros(3),
        )
    feet = {}
    for link in root.iter("link"):
        if link.get("name") in ("right_ankle", "left_ankle"):
            col = link.find("collision")
            box = col.find("geometry/box") if col is not None else None
            if box is None:
                raise FormatError(f"{path}: link {link.get('name')!r} has no collision box (the foot)")
            feet[link.get("name")] = (_xyz(col.find("origin")) * scale, _xyz(box, "size") * scale)
    missing = [n for n, _ in DEEPMIMIC_FRAME if n not in joints] + [
        w for w in ("right_wrist", "left_wrist") if w not in joints
    ]
    if missing:
        raise FormatError(f"{path}: skeleton has no joints {missing}")
    return DeepMimicSkeleton(joints, feet, str(path))


def default_skeleton() -> DeepMimicSkeleton:
    """The skeleton shipped with the clips (``datasets/deepmimic/humanoid.urdf``)."""
    from emulator.paths import datasets_dir

    return read_skeleton(datasets_dir() / "deepmimic" / "humanoid.urdf")


def is_deepmimic(path: str | Path) -> bool:
    """A JSON text file with ``Frames`` (a DeepMimic clip)."""
    p = Path(path)
    if p.suffix.lower() not in (".txt", ".json"):
        return False
    try:
        head = p.read_text(errors="replace")[:200]
    except OSError:
        return False
    return '"Frames"' in head or '"Loop"' in head


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (w, x, y, z) -> ``[..., 3, 3]`` (normalised first)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    half = angle / 2
    q = np.concatenate([np.cos(half)[:, None], np.sin(half)[:, None] * a[None]], axis=1)
    return _quat_to_mat(q)


def read_deepmimic(path: str | Path, skeleton: DeepMimicSkeleton | str | Path | None = None) -> MarkerSet:
    """Joint positions ``[time, point, 3]`` (z up, m) of a DeepMimic clip.

    ``meta`` carries ``loop`` (the clip's ``Loop`` is ``"wrap"``) and ``root_quat``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: not a DeepMimic clip (JSON with 'Frames'): {e}") from None
    frames = data.get("Frames") if isinstance(data, dict) else None
    if not isinstance(frames, list) or len(frames) < 2:
        raise FormatError(f"{path}: needs a 'Frames' list of at least 2 frames")
    for i, f in enumerate(frames):
        if not isinstance(f, list) or len(f) != FRAME_WIDTH:
            got = len(f) if isinstance(f, list) else type(f).__name__
            raise FormatError(
                f"{path}: frame {i} has {got} values, expected {FRAME_WIDTH} (DeepMimic humanoid3d)"
            )
    a = np.asarray(frames, dtype=float)
    if not np.all(np.isfinite(a)):
        raise FormatError(
            f"{path}: non-finite values in frames {sorted(set(np.nonzero(~np.isfinite(a))[0]))[:5]}"
        )
    dt = a[:-1, 0] if a[-1, 0] == 0 else a[:, 0]
    if np.any(dt <= 0):
        raise FormatError(f"{path}: frame durations (column 0) must be > 0")
    fps = 1.0 / float(np.median(dt))
    sk = (
        skeleton
        if isinstance(skeleton, DeepMimicSkeleton)
        else (read_skeleton(skeleton) if skeleton is not None else default_skeleton())
    )
    T = len(a)
    pos = {"root": a[:, 1:4]}
    rot = {"root": _quat_to_mat(a[:, 4:8])}
    local = {}
    k = 8
    for name, n in DEEPMIMIC_FRAME:
        v = a[:, k : k + n]
        k += n
        local[name] = _quat_to_mat(v) if n == 4 else _axis_angle(sk.joints[name][3], v[:, 0])
    # parent-first: the URDF lists parents before children
    for child, (parent, offset, _, _) in sk.joints.items():
        if parent not in pos:
            if parent == "base" or child == "root":
                continue
            raise FormatError(f"{sk.source}: joint {child!r} comes before its parent {parent!r}")
        pos[child] = pos[parent] + rot[parent] @ offset
        rot[child] = rot[parent] @ local[child] if child in local else rot[parent]
    names = ["root", *(n for n, _ in DEEPMIMIC_FRAME), "right_wrist", "left_wrist"]
    points = [pos[n] for n in names]
    for side in ("right", "left"):
        centre, size = sk.feet[f"{side}_ankle"]
        for label, dx in (("heel", -size[0] / 2), ("toe", size[0] / 2)):
            local_pt = centre + np.array([dx, -size[1] / 2, 0.0])
            points.append(pos[f"{side}_ankle"] + rot[f"{side}_ankle"] @ local_pt)
            names.append(f"{side}_{label}")
    xyz = to_z_up(np.stack(points, axis=1), "y", str(path))
    names = ["pelvis" if n == "root" else n for n in names]
    return MarkerSet(
        tuple(names),
        xyz.reshape(T, len(names), 3),
        fps,
        str(path),
        {"format": "deepmimic", "loop": data.get("Loop") == "wrap", "up": "y", "skeleton": sk.source},
    )
