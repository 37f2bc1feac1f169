"""Feet on the floor: the vertical shift (or per-frame lift) that puts a retargeted motion's
feet on the ground."""

from __future__ import annotations

import mujoco
import numpy as np

from emulator.models import MuscleModel
from emulator.motion.reference import (
    _free_root_adr,
    apply_joint_couplings,
)
from emulator.motion.retarget.errors import RetargetError
from emulator.motion.retarget.landmarks import _point

GROUND_MODES = ("shift", "lowest", "always")


def _ground(model: MuscleModel, qpos: np.ndarray, lms, mode: str = "lowest") -> tuple[np.ndarray, dict]:
    """Put the feet on the floor: returns (qpos, stats).

    ``mode="shift"``: one constant vertical shift so the lowest foot collision geom over the
    motion just touches the floor (keeps measured heights; the default).
    ``mode="always"`` (motions with a foot on the ground in every frame, such as walking):
    each frame's root height is shifted so its lowest foot collision geom touches the floor.
    ``mode="lowest"`` (motions with flight phases):

    1. Shift the root vertically so the lowest foot (hindfoot) collision geom over the motion
       just touches the floor plane.
    2. Where the toes would then go through the floor (a reference without toe angles, or with
       toe angles the model's range cannot reach), bend the toe joint within its range, in the
       direction that lifts them, just enough.
    3. If anything still penetrates, raise the root by the remaining depth.

    Models without a floor plane fall back to heel/toe landmarks at their standing height.
    """
    a = _free_root_adr(model)
    q = qpos.copy()
    if a is None:
        return q, {}
    if mode not in GROUND_MODES:
        raise RetargetError(f"ground mode must be one of {GROUND_MODES}, got {mode!r}")
    m = model.mj_model
    d = mujoco.MjData(m)
    planes = [
        g for g in range(m.ngeom) if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE and m.geom_bodyid[g] == 0
    ]
    collides = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
    sides = []
    for side in model.feet.values():
        foot = {m.body(b).id for b in side}
        toes = [b for b in range(m.nbody) if m.body_parentid[b] in foot and m.body_jntnum[b] == 1]
        hind = [g for g in range(m.ngeom) if m.geom_bodyid[g] in foot and collides[g]]
        toe_g = [g for g in range(m.ngeom) if m.geom_bodyid[g] in toes and collides[g]]
        toe_j = [int(m.body_jntadr[b]) for b in toes]
        sides.append((hind, toe_g, toe_j[0] if toe_j else None))
    if not planes or not any(h for h, _, _ in sides):
        feet = [k for k in ("heel_r", "heel_l", "toe_r", "toe_l") if k in lms]
        if not feet:
            return q, {}

        def lowest(qq):
            d.qpos[:] = qq
            mujoco.mj_kinematics(m, d)
            return min(float(_point(d, *lms[k])[2]) for k in feet)

        shift = lowest(model.standing_qpos) - min(lowest(x) for x in q)
        q[:, a + 2] += shift
        return q, {"floor_shift_m": round(float(shift), 4)}
    plane = planes[0]
    fromto = np.zeros(6)

    def clearance(qq, geoms):
        d.qpos[:] = qq
        mujoco.mj_kinematics(m, d)
        return min(mujoco.mj_geomDistance(m, d, g, plane, 1.0, fromto) for g in geoms)

    hind_all = [g for h, _, _ in sides for g in h]
    all_g = hind_all + [g for _, t, _ in sides for g in t]
    if mode == "always":  # every frame has a supporting foot (walking): each frame touches
        per_frame = -np.array([clearance(x, all_g) for x in q])
        q[:, a + 2] += per_frame
        return q, {
            "mode": mode,
            "root_shift_mean_m": round(float(per_frame.mean()), 4),
            "root_shift_range_m": round(float(np.ptp(per_frame)), 4),
        }
    if mode == "shift":  # one constant shift: the lowest foot geom over the motion touches
        shift = -min(clearance(x, all_g) for x in q)
        q[:, a + 2] += shift
        return q, {"mode": mode, "floor_shift_m": round(float(shift), 4)}
    shift = -min(clearance(x, hind_all) for x in q)
    q[:, a + 2] += shift
    bent = 0
    for i in range(q.shape[0]):
        for _, toe_g, j in sides:
            if not toe_g or j is None or clearance(q[i], toe_g) >= 0:
                continue
            adr = int(m.jnt_qposadr[j])
            lo, hi = m.jnt_range[j] if m.jnt_limited[j] else (q[i, adr] - np.pi / 2, q[i, adr] + np.pi / 2)
            probe = q[i].copy()
            probe[adr] = min(q[i, adr] + 0.05, hi)
            up = clearance(probe, toe_g) > clearance(q[i], toe_g)
            x0, x1 = q[i, adr], (hi if up else lo)
            probe[adr] = x1
            if clearance(probe, toe_g) < 0:
                q[i, adr] = x1  # as far as the range allows; step 3 lifts the rest
            else:
                for _ in range(30):  # bisection for the first angle with the toes on the floor
                    mid = (x0 + x1) / 2
                    probe[adr] = mid
                    if clearance(probe, toe_g) < 0:
                        x0 = mid
                    else:
                        x1 = mid
                q[i, adr] = x1
            bent += 1
    need = np.maximum(0.0, -np.array([clearance(x, all_g) for x in q]))
    lift = _smooth_cover(need)
    q[:, a + 2] += lift
    apply_joint_couplings(model, q)
    return q, {
        "mode": mode,
        "floor_shift_m": round(float(shift), 4),
        "toe_bent_frames": bent,
        "root_lift_max_m": round(float(lift.max()), 4),
        "root_lift_frames": int((lift > 1e-4).sum()),
    }


def _smooth_cover(need: np.ndarray, half_width: int = 6) -> np.ndarray:
    """A smooth curve >= ``need`` that is 0 where nothing is needed nearby: a running maximum
    over +/-``half_width`` frames, smoothed by a raised-cosine window, then floored at ``need``."""
    if not need.any():
        return need
    n = need.size
    pad = np.pad(need, half_width, mode="edge")
    runmax = np.array([pad[i : i + 2 * half_width + 1].max() for i in range(n)])
    w = np.hanning(2 * half_width + 3)[1:-1]
    w /= w.sum()
    smooth = np.convolve(np.pad(runmax, half_width, mode="edge"), w, mode="valid")
    return np.maximum(smooth, need)
