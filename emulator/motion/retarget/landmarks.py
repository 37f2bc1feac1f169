"""Model side of retargeting: landmarks (points on bodies: joint centres such as ``hip_r``)
and segments (the bodies skin markers ride on), found from OpenSim body names or sites; and
the hip joint centres of a marker set by Harrington et al. (2007) regression."""

from __future__ import annotations

import re

import mujoco
import numpy as np

from emulator.models import MuscleModel
from emulator.motion.formats.base import MarkerSet
from emulator.motion.retarget.errors import RetargetError

# ---------------------------------------------------------------------------------------------
# Model side: landmarks (points on bodies) and segments (bodies skin markers ride on)

_SIDES = ("r", "l")
_LANDMARK_BODIES = {  # landmark -> candidate bodies (first present wins); the body origin
    "pelvis": ("pelvis",),
    "torso": ("torso", "thorax"),
    "head": ("head", "skull"),
    "hip_{s}": ("femur_{s}",),
    "knee_{s}": ("tibia_{s}",),
    "ankle_{s}": ("talus_{s}",),
    "heel_{s}": ("calcn_{s}",),
    "toe_{s}": ("toes_{s}",),
    "shoulder_{s}": ("humerus_{s}", "{s}_humerus"),
    "elbow_{s}": ("ulna_{s}", "{s}_ulna_radius_hand"),
    "wrist_{s}": ("lunate_{s}", "hand_{s}"),
}
_SEGMENT_BODIES = {
    "pelvis": ("pelvis",),
    "torso": ("torso", "thorax"),
    "head": ("head", "skull"),
    "thigh_{s}": ("femur_{s}",),
    "shank_{s}": ("tibia_{s}",),
    "foot_{s}": ("calcn_{s}",),
    "toes_{s}": ("toes_{s}",),
    "upper_arm_{s}": ("humerus_{s}", "{s}_humerus"),
    "forearm_{s}": ("radius_{s}", "{s}_ulna_radius_hand"),
    "hand_{s}": ("lunate_{s}", "hand_{s}", "{s}_ulna_radius_hand"),
}
# Landmarks fixed to the pelvis (their positions do not depend on any joint below the root).
_PELVIS_FIXED = {"pelvis", "hip_r", "hip_l", "pelvis_front", "pelvis_back", "torso"}
# Pairs whose distance estimates the subject-to-model scale (long bones first).
_SCALE_PAIRS = [
    ("hip_{s}", "knee_{s}"),
    ("knee_{s}", "ankle_{s}"),
    ("shoulder_{s}", "elbow_{s}"),
    ("elbow_{s}", "wrist_{s}"),
    ("hip_r", "hip_l"),
    ("shoulder_r", "shoulder_l"),
]


def _expand(table: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    out = {}
    for k, cands in table.items():
        if "{s}" in k:
            for s in _SIDES:
                out[k.format(s=s)] = tuple(c.format(s=s) for c in cands)
        else:
            out[k] = cands
    return out


def _bodies(m: mujoco.MjModel) -> dict[str, int]:
    return {m.body(b).name: b for b in range(m.nbody)}


def _posed(model: MuscleModel, qpos: np.ndarray | None = None) -> mujoco.MjData:
    """MjData after forward kinematics at ``qpos`` (default: the standing pose)."""
    d = mujoco.MjData(model.mj_model)
    d.qpos[:] = model.standing_qpos if qpos is None else qpos
    mujoco.mj_kinematics(model.mj_model, d)
    return d


def _point(d: mujoco.MjData, body: int, offset: np.ndarray) -> np.ndarray:
    """World position of ``offset`` (body frame) on ``body``, from ``d``'s kinematics."""
    return d.xpos[body] + d.xmat[body].reshape(3, 3) @ offset


def model_landmarks(model: MuscleModel) -> dict[str, tuple[int, np.ndarray]]:
    """``{landmark: (body id, offset in body frame)}`` for the landmarks this model has.

    A site named like the landmark (``wrist``, ``wrist_r``) wins over a body origin.
    """
    m = model.mj_model
    bodies = _bodies(m)
    sites = {m.site(i).name: i for i in range(m.nsite)}
    out: dict[str, tuple[int, np.ndarray]] = {}
    # decorative bodies welded to the world (the elbow model's skeleton) cannot follow a motion
    bodies = {n: b for n, b in bodies.items() if m.body_weldid[b] != 0}
    for lm, cands in _expand(_LANDMARK_BODIES).items():
        for c in cands:
            if c in bodies:
                out[lm] = (bodies[c], np.zeros(3))
                break
    d = _posed(model)
    for s in _SIDES:  # toe tip: 5 cm ahead of the MTP joint, along the heel->MTP line at rest
        if f"toe_{s}" in out and f"heel_{s}" in out:
            tb, hb = out[f"toe_{s}"][0], out[f"heel_{s}"][0]
            fwd = d.xpos[tb] - d.xpos[hb]
            fwd[2] = 0.0
            if np.linalg.norm(fwd) > 1e-6:
                local = d.xmat[tb].reshape(3, 3).T @ (0.05 * fwd / np.linalg.norm(fwd))
                out[f"toe_tip_{s}"] = (tb, local)
    for lm in list(_expand(_LANDMARK_BODIES)):
        for sname in (lm, lm.rsplit("_", 1)[0] if lm[-2:] in ("_r", "_l") else None):
            if sname and sname in sites:
                i = sites[sname]
                side = lm[-1] if lm[-2:] in ("_r", "_l") else None
                body = m.body(m.site_bodyid[i]).name
                if side is None or re.search(rf"(^|_){side}(_|$)", body):
                    out[lm] = (int(m.site_bodyid[i]), m.site_pos[i].copy())
                    break
    return out


def model_segments(model: MuscleModel) -> dict[str, int]:
    """``{segment: body id}`` for the segments this model has."""
    m = model.mj_model
    bodies = {n: b for n, b in _bodies(m).items() if m.body_weldid[b] != 0}
    out = {}
    for seg, cands in _expand(_SEGMENT_BODIES).items():
        for c in cands:
            if c in bodies:
                out[seg] = bodies[c]
                break
    return out


# ---------------------------------------------------------------------------------------------
# Harrington hip joint centres


def _harrington(points: MarkerSet, rule: dict) -> dict[str, np.ndarray]:
    """Hip joint centres and pelvis front/back points ``[time, 3]`` from ASIS/PSIS markers.

    Harrington et al., J Biomech 40:595 (2007): in a pelvis frame at mid-ASIS (x anterior,
    y superior, z toward the hip's side), hip = (-0.24 PD - 9.9 mm, -0.30 PW - 10.9 mm,
    0.33 PW + 7.3 mm), PW = inter-ASIS distance, PD = mid-ASIS to mid-PSIS distance.
    """
    ra, la = (points.point(n) for n in rule["asis"])
    rp, lp = (points.point(n) for n in rule["psis"])
    front = (ra + la) / 2
    back = (rp + lp) / 2
    z = ra - la
    pw = np.linalg.norm(z, axis=1, keepdims=True)
    z = z / pw
    x = front - back
    x = x - np.sum(x * z, axis=1, keepdims=True) * z
    pd = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / pd
    y = np.cross(z, x)
    out = {"pelvis_front": front, "pelvis_back": back}
    for side, sgn in (("r", 1.0), ("l", -1.0)):
        lx = -0.24 * pd - 0.0099
        ly = -0.30 * pw - 0.0109
        lz = sgn * (0.33 * pw + 0.0073)
        out[f"hip_{side}"] = front + lx * x + ly * y + lz * z
    out["_pw"] = pw[:, 0]
    out["_pd"] = pd[:, 0]
    return out


def _model_pelvis_points(model: MuscleModel, lms, pd_over_pw: float) -> dict[str, tuple[int, np.ndarray]]:
    """Model-side mid-ASIS/mid-PSIS on the pelvis, inverted from its hip centres by the same
    regression (pelvis frame assumed OpenSim-like: x anterior, y superior, z right)."""
    if not all(k in lms for k in ("pelvis", "hip_r", "hip_l")):
        raise RetargetError(f"model {model.name!r} lacks pelvis/hip landmarks for the Harrington pelvis rule")
    d = _posed(model)
    pb = lms["pelvis"][0]
    R = d.xmat[pb].reshape(3, 3)
    hips = [R.T @ (d.xpos[lms[h][0]] - d.xpos[pb]) for h in ("hip_r", "hip_l")]
    mid = (hips[0] + hips[1]) / 2
    pw = (abs(hips[0][2] - hips[1][2]) / 2 - 0.0073) / 0.33
    pd = pd_over_pw * pw
    front = mid + np.array([0.24 * pd + 0.0099, 0.30 * pw + 0.0109, 0.0])
    back = front - np.array([pd, 0.0, 0.0])
    return {"pelvis_front": (pb, front), "pelvis_back": (pb, back)}
