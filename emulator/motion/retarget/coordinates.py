"""Named coordinates onto a model: OpenSim ``.mot``/``.sto`` columns that name model joints
(``pelvis_*`` onto the free root, sign conventions converted where the model differs)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import mujoco
import numpy as np

from emulator.models import MuscleModel
from emulator.motion.formats.base import CoordinateTable
from emulator.motion.reference import (
    ReferenceMotion,
    _free_root_adr,
    from_joint_values,
)
from emulator.motion.retarget.errors import RetargetError
from emulator.motion.retarget.ground import _ground, stance_translation_scale
from emulator.motion.retarget.landmarks import _posed, model_landmarks

# ---------------------------------------------------------------------------------------------
# Named coordinates (OpenSim) straight onto model joints

_PELVIS = ("pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty", "pelvis_tz")
# gait2392/Rajagopal names -> other OpenSim-family names, with the OpenSim axis in the pelvis frame.
_RENAMES = {
    "lumbar_extension": ("flex_extension", np.array([0.0, 0.0, 1.0])),
    "lumbar_bending": ("lat_bending", np.array([1.0, 0.0, 0.0])),
    "lumbar_rotation": ("axial_rotation", np.array([0.0, 1.0, 0.0])),
}


def _axis_rot(axis: int, a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    if axis == 0:
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == 1:
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def coordinates_to_motion(
    table: CoordinateTable,
    model: MuscleModel,
    *,
    name: str | None = None,
    translation_scale: float | str | None = None,
    floor: bool | str = True,
    on_range: str = "clip",
    loop: bool = False,
) -> ReferenceMotion:
    """Map an OpenSim coordinate table onto a model by joint name.

    * Columns named like model joints map one to one; ``knee_angle_*`` changes sign when the file
      writes flexion negative (gait2392) and the model's range is positive (myo-sim).
    * ``lumbar_*`` map onto ``flex_extension``/``lat_bending``/``axial_rotation`` where the model
      has those instead, with the sign of the model's joint axis.
    * ``pelvis_tilt/list/rotation`` (body-fixed Z-X-Y rotations of the OpenSim pelvis in a y-up
      ground) and ``pelvis_tx/ty/tz`` become the free root: OpenSim's ground axes are taken to be
      the model pelvis's rest axes, so the model walks the way it faces.
    * ``translation_scale`` multiplies the subject's pelvis translation: ``"stance"`` picks the
      factor at which the feet in stance do not slide over the floor
      (:func:`~emulator.motion.retarget.ground.stance_translation_scale`; the joint angles
      decide how far each step carries the body, so any other factor makes the reference root
      outrun or trail its own feet); ``"auto"`` the model/subject pelvis-height ratio; a number
      that factor; None: ``"stance"`` with ``floor="always"`` (a supporting foot in every
      frame, walking: the rule's premise), else ``"auto"``. ``floor`` then lowers the root so
      the feet touch the floor. The factor used is in ``meta["translation_scale"]``.

    Columns without a model joint are reported in ``meta["unmapped"]``.
    """
    m = model.mj_model
    model_joints = {m.joint(j).name for j in range(m.njnt)}
    cols = list(table.names)
    values: dict[str, np.ndarray] = {}
    unmapped, signs = [], {}
    d = _posed(model, m.qpos0)
    lms = model_landmarks(model)
    R_pb = None
    if "pelvis" in lms:
        R_pb = d.xmat[lms["pelvis"][0]].reshape(3, 3)  # pelvis rest axes in the world (root unrotated)
    for c in cols:
        if c in _PELVIS:
            continue
        v = table.column(c)
        target, sign = c, 1.0
        if c not in model_joints and c in _RENAMES and _RENAMES[c][0] in model_joints and R_pb is not None:
            target = _RENAMES[c][0]
            axis_world = d.xaxis[m.joint(target).id]
            sign = float(np.sign(axis_world @ (R_pb @ _RENAMES[c][1])) or 1.0)
        if target not in model_joints:
            unmapped.append(c)
            continue
        jt = model.joint(target)
        if re.match(r"knee_angle_[rl]$", target) and jt.range[0] >= -1e-6 and np.median(v) < 0:
            sign = -1.0
        if sign < 0:
            signs[target] = -1
        values[target] = sign * v
    mot_name = name or Path(table.source).stem
    translation = {}
    a = _free_root_adr(model)
    if a is not None and all(p in cols for p in _PELVIS):
        if R_pb is None:
            raise RetargetError(f"model {model.name!r} has no 'pelvis' body to carry pelvis_* coordinates")
        tilt, lst, rot, tx, ty, tz = (table.column(p) for p in _PELVIS)
        root_body = m.joint(model.root_joints[0]).id
        root_b = int(m.jnt_bodyid[root_body])
        off = d.xmat[root_b].reshape(3, 3).T @ (d.xpos[lms["pelvis"][0]] - d.xpos[root_b])
        root = np.empty((table.n_frames, 7))
        walked = np.empty((table.n_frames, 3))  # the subject's pelvis translation, model axes (m)
        for i in range(table.n_frames):
            R_os = _axis_rot(2, tilt[i]) @ _axis_rot(0, lst[i]) @ _axis_rot(1, rot[i])
            R_root = R_pb @ R_os @ R_pb.T
            qq = np.zeros(4)
            mujoco.mju_mat2Quat(qq, R_root.ravel())
            root[i, 3:] = qq
            walked[i] = R_pb @ np.array([tx[i], ty[i], tz[i]])
            root[i, :3] = walked[i] - R_root @ off
        values[model.root_joints[0]] = root
        if translation_scale is None:
            translation_scale = "stance" if floor == "always" else "auto"
        if translation_scale == "auto":
            k = float(_posed(model).xpos[lms["pelvis"][0]][2] / np.mean(ty))
        elif translation_scale == "stance":
            probe = from_joint_values(model, values, table.fps, name=mot_name, loop=loop, source=table.source)
            k = stance_translation_scale(model, probe.qpos, walked, table.fps)
        elif isinstance(translation_scale, (int, float)) and translation_scale > 0:
            k = float(translation_scale)
        else:
            raise RetargetError(
                f"translation_scale must be 'stance', 'auto' or a number > 0, got {translation_scale!r}"
            )
        root[:, :3] += (k - 1.0) * walked
        translation = {"translation_scale": round(k, 4)}
    elif any(p in cols for p in _PELVIS):
        unmapped.extend(p for p in _PELVIS if p in cols)
    if not values:
        raise RetargetError(
            f"{table.source}: no column names a joint of model {model.name!r} ({cols[:6]}...)"
        )
    meta = {"unmapped": unmapped, "sign_flipped": sorted(signs), **translation, **table.meta}
    mot = from_joint_values(
        model, values, table.fps, name=mot_name, loop=loop, source=table.source, meta=meta
    )
    if floor and a is not None:
        q, ground = _ground(model, mot.qpos, lms, "shift" if floor is True else floor)
        mot = mot._replace(qpos=q, meta=dict(mot.meta, ground=ground))
    if unmapped:
        warnings.warn(
            f"{table.source}: columns with no joint in model {model.name!r}: {unmapped}", stacklevel=2
        )
    return mot.check_ranges(model, on_violation=on_range)
