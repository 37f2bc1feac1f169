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
STANCE_BAND_M = 0.005  # a foot geom is in stance within this height of the frame's lowest foot geom


def _foot_sides(m: mujoco.MjModel, model: MuscleModel) -> list[tuple[list[int], list[int], int | None]]:
    """Per foot: its hindfoot collision geoms, its toes' collision geoms and the toe joint (None
    without one)."""
    collides = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
    sides = []
    for side in model.feet.values():
        foot = {m.body(b).id for b in side}
        toes = [b for b in range(m.nbody) if m.body_parentid[b] in foot and m.body_jntnum[b] == 1]
        hind = [g for g in range(m.ngeom) if m.geom_bodyid[g] in foot and collides[g]]
        toe_g = [g for g in range(m.ngeom) if m.geom_bodyid[g] in toes and collides[g]]
        toe_j = [int(m.body_jntadr[b]) for b in toes]
        sides.append((hind, toe_g, toe_j[0] if toe_j else None))
    return sides


def _floor_plane(m: mujoco.MjModel) -> int | None:
    """The world's first plane geom (the floor), None without one."""
    planes = [
        g for g in range(m.ngeom) if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE and m.geom_bodyid[g] == 0
    ]
    return planes[0] if planes else None


def _foot_geoms(m: mujoco.MjModel, model: MuscleModel) -> list[int]:
    """The collision geoms of both feet (hindfoot and toes)."""
    return [g for hind, toe_g, _ in _foot_sides(m, model) for g in hind + toe_g]


def stance_translation_scale(model: MuscleModel, qpos: np.ndarray, walked: np.ndarray, fps: float) -> float:
    """The factor on the root's translation at which the feet in stance do not slide.

    ``qpos [frame, nq]`` is a motion whose root carries the translation ``walked [frame, 3]``
    (m) once; scaling it by ``k`` moves every point of the body horizontally by
    ``(k - 1) * walked``. The stance samples are each foot collision geom's lowest point in the
    frames where it is within :data:`STANCE_BAND_M` of the frame's lowest foot geom (the
    supporting foot, as if every frame touched the floor) and moves at less than half the
    root's speed (not a swing foot brushing the floor); the velocity of that material point
    of the foot (rolling over a heel or the toes moves the contact, not the foot's skin)
    is ``v + (k - 1) * dwalked/dt`` and the least-squares ``k`` is closed-form. A retarget that
    scales the translation by another factor (a pelvis-height ratio, say) leaves a reference
    whose root outruns or trails its own feet: tracking its joint angles exactly then drifts
    from its root. 1.0 when the motion does not translate.
    """
    m = model.mj_model
    geoms = _foot_geoms(m, model)
    n = len(qpos)
    if not geoms or n < 3:
        return 1.0
    d = mujoco.MjData(m)
    centre = np.empty((n, len(geoms), 3))
    axes = np.empty((n, len(geoms), 3, 3))
    low = np.empty((n, len(geoms), 3))  # each geom's lowest point (world)
    for i, q in enumerate(qpos):
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        centre[i] = d.geom_xpos[geoms]
        axes[i] = d.geom_xmat[geoms].reshape(-1, 3, 3)
        for j, g in enumerate(geoms):
            low[i, j] = _lowest_point(m, d, g)
    local = np.einsum("fgji,fgj->fgi", axes, low - centre)  # the lowest point in the geom's frame
    before = np.einsum("fgij,fgj->fgi", axes[:-2], local[1:-1]) + centre[:-2]
    after = np.einsum("fgij,fgj->fgi", axes[2:], local[1:-1]) + centre[2:]
    v = (after - before)[..., :2] * fps / 2  # [frame - 2, geom, 2] material velocity at the contact
    z = low[1:-1, :, 2]
    vw = (walked[2:, :2] - walked[:-2, :2]) * fps / 2
    # a swing foot can brush the floor (toe clearance ~0 in mid-swing): it moves at about twice
    # the walking speed, a stance foot at a small fraction of it
    slow = np.linalg.norm(v, axis=-1) < 0.5 * np.linalg.norm(vw, axis=-1)[:, None]
    stance = (z - z.min(axis=1, keepdims=True) < STANCE_BAND_M) & slow
    a, b = np.broadcast_to(vw[:, None, :], v.shape)[stance], v[stance]
    den = float(np.sum(a * a))
    if den < 1e-9:
        return 1.0
    return 1.0 - float(np.sum(a * b)) / den


def _lowest_point(m: mujoco.MjModel, d: mujoco.MjData, g: int) -> np.ndarray:
    """A geom's lowest point in the world (spheres, capsules, ellipsoids and boxes exactly, other
    shapes at their bounding sphere's bottom)."""
    c, R, size = d.geom_xpos[g], d.geom_xmat[g].reshape(3, 3), m.geom_size[g]
    t = m.geom_type[g]
    down = np.array([0.0, 0.0, -1.0])
    if t == mujoco.mjtGeom.mjGEOM_SPHERE:
        return c + size[0] * down
    if t == mujoco.mjtGeom.mjGEOM_CAPSULE:
        end = R[:, 2] * size[1] * (1.0 if R[2, 2] < 0 else -1.0)  # the lower end of the segment
        return c + end + size[0] * down
    if t == mujoco.mjtGeom.mjGEOM_BOX:
        return c + R @ (-np.sign(R[2, :]) * size)
    if t == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
        # the support point of an ellipsoid x^T A x = 1 (A = R diag(1/r^2) R^T) in direction -z
        M = R @ np.diag(size**2) @ R.T
        return c + M @ down / np.sqrt(down @ M @ down)
    return c + m.geom_rbound[g] * down


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
    plane = _floor_plane(m)
    sides = _foot_sides(m, model)
    if plane is None or not any(h for h, _, _ in sides):
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
