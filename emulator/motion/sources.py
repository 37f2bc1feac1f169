"""The one way in for motions: a shipped motion's name, a file in any supported format, or a
:class:`~emulator.motion.reference.ReferenceMotion` -> a motion on a model.

Shipped motions live in ``datasets/motions/<model>/<name>.npz`` (the project's motion format;
``scripts/build_datasets.py`` rebuilds them from the data shipped in ``datasets/``):

=============  ==================================  ==============================================
model          motions                             derived from
=============  ==================================  ==============================================
elbow          ``elbow_flexion``                   analytic minimum-jerk cycle (not measured)
myolegs        ``walk``, ``run``                   Falisse et al. 2019 gait-cycle averaged IK
myofullbody    ``walk``, ``run``, the repertoire   (+ DeepMimic clips retargeted by keypoint IK)
=============  ==================================  ==============================================

Files: model-coordinate ``.npz`` files map by joint name, OpenSim coordinates directly, point
files (TRC, C3D, BVH, AMASS, DeepMimic) by inverse kinematics (:mod:`emulator.motion.retarget`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emulator.models import MuscleModel
from emulator.motion.formats import read
from emulator.motion.formats.base import CoordinateTable
from emulator.motion.reference import MotionError, ReferenceMotion
from emulator.motion.retarget.coordinates import coordinates_to_motion
from emulator.motion.retarget.ik import retarget_points
from emulator.motion.retarget.point_maps import PointMap
from emulator.paths import motions_dir

__all__ = [
    "DEFAULT_MOTIONS",
    "DemoMotion",
    "describe_motion",
    "find_demo",
    "list_demos",
    "load_demo",
    "load_motion",
    "resolve_motion",
]

# Each built-in model's natural motion: what a run or an env uses when it names no motion.
DEFAULT_MOTIONS = {"elbow": "elbow_flexion", "myolegs": "walk", "myofullbody": "walk"}


class DemoMotion(dict):
    """One row of :func:`list_demos`: name, model, file, n_frames, fps, duration_s, loop, source."""


def list_demos() -> list[DemoMotion]:
    """The shipped motions (read from their files, not from a table)."""
    out = []
    for f in sorted(motions_dir().glob("*/*.npz")):
        mot = ReferenceMotion.load(f)
        out.append(
            DemoMotion(
                name=mot.name,
                model=f.parent.name,
                file=str(f),
                n_frames=mot.n_frames,
                fps=mot.fps,
                duration_s=round(mot.duration_s, 4),
                loop=mot.loop,
                source=mot.source,
            )
        )
    return out


def find_demo(name: str, model: str) -> Path:
    """The file of shipped motion ``name`` for ``model``; a clear error listing what exists."""
    f = motions_dir() / model / f"{name}.npz"
    if not f.is_file():
        have = [f"{d['model']}/{d['name']}" for d in list_demos()]
        raise MotionError(f"no demo motion {name!r} for model {model!r}; shipped: {have}")
    return f


def load_demo(name: str, model: MuscleModel) -> ReferenceMotion:
    """A shipped motion on ``model`` (validated against the model)."""
    return ReferenceMotion.load(find_demo(name, model.name), model)


def load_motion(
    spec: str | Path | ReferenceMotion,
    model: MuscleModel,
    *,
    point_map: str | Path | PointMap | None = None,
    name: str | None = None,
    start_s: float | None = None,
    stop_s: float | None = None,
    up: str | None = None,
    units: str | None = None,
    body_model: str | Path | None = None,
    floor: bool | str = True,
    loop: bool = False,
    on_range: str = "clip",
) -> tuple[ReferenceMotion, dict]:
    """A motion on ``model`` from a shipped motion's name, a motion file in any supported format,
    or a :class:`ReferenceMotion` (checked against the model).

    ``start_s``/``stop_s`` select a time window (seconds from the first frame) of a file before
    retargeting; the other options are the retargeting's (:func:`retarget_points`,
    :func:`coordinates_to_motion`).

    Returns:
        (motion, report): the report says how the motion was obtained (``route``) and, for
        points, the retargeting summary (residuals in cm, scale).
    """
    if isinstance(spec, ReferenceMotion):
        spec.check_model(model)
        return spec, {"route": "given"}
    p = Path(spec)
    if not (p.suffix and p.exists()):
        if p.suffix or len(p.parts) > 1:
            raise MotionError(f"{spec}: no such file")
        return load_demo(str(spec), model), {"route": "shipped demo"}
    data = read(p, up=up, units=units, body_model=body_model)
    stem = name or p.stem
    if isinstance(data, ReferenceMotion):
        mot = ReferenceMotion.load(p, model)
        if start_s is not None or stop_s is not None:
            mot = mot.between(start_s or 0.0, stop_s if stop_s is not None else np.inf)
        mot = mot.check_ranges(model, on_violation=on_range)
        return (mot._replace(name=name) if name else mot), {"route": "model coordinates"}
    if isinstance(data, CoordinateTable):
        if start_s is not None or stop_s is not None:
            t0 = data.time[0]
            data = data.between(t0 + (start_s or 0.0), t0 + (stop_s if stop_s is not None else np.inf))
        mot = coordinates_to_motion(data, model, name=stem, floor=floor, on_range=on_range, loop=loop)
        return mot, {"route": "coordinates by name", "unmapped": mot.meta.get("unmapped", [])}
    i0 = int(round((start_s or 0.0) * data.fps))
    i1 = None if stop_s is None else int(round(stop_s * data.fps)) + 1
    if i0 or i1 is not None:
        data = data.frames(i0, i1)
    mot, report = retarget_points(data, model, point_map, name=stem, floor=floor, on_range=on_range)
    if loop:
        mot = mot.as_cycle(model)
    return mot, {"route": "inverse kinematics", **report.summary()}


def resolve_motion(spec: str | Path, model: MuscleModel, **options) -> tuple[ReferenceMotion, dict]:
    """The same as :func:`load_motion` (its earlier name)."""
    return load_motion(spec, model, **options)


def describe_motion(motion: ReferenceMotion, model: MuscleModel) -> dict:
    """JSON-ready description: size, rate, duration, per-joint ranges in the model's conventions
    (angular joints in degrees), root travel for a free root."""
    motion.check_model(model)
    joints = []
    for jt in model.tracked_joints:
        col = motion.qpos[:, jt.qpos_index]
        if jt.angular:
            joints.append({"name": jt.name, "min_deg": round(float(np.degrees(col.min())), 3),
                           "max_deg": round(float(np.degrees(col.max())), 3)})  # fmt: skip
        else:
            joints.append(
                {"name": jt.name, "min_m": round(float(col.min()), 5), "max_m": round(float(col.max()), 5)}
            )
    out = {
        "name": motion.name,
        "model": model.name,
        "n_frames": motion.n_frames,
        "fps": motion.fps,
        "duration_s": round(motion.duration_s, 6),
        "loop": motion.loop,
        "source": motion.source,
        "content_hash": motion.content_hash,
        "joints": joints,
    }
    root = motion.root_trajectory(model)
    if root is not None:
        p = root[0]
        dist = float(np.linalg.norm(p[-1, :2] - p[0, :2]))
        out["root"] = {
            "horizontal_distance_m": round(dist, 4),
            "mean_speed_m_s": round(dist / max((motion.n_frames - 1) / motion.fps, 1e-9), 4),
            "height_min_m": round(float(p[:, 2].min()), 4),
            "height_max_m": round(float(p[:, 2].max()), 4),
        }
    for k in ("retarget", "ground", "unmapped", "sign_flipped", "clipped_joints"):
        if k in motion.meta:
            out[k] = motion.meta[k]
    return out
