"""Points onto a model by inverse kinematics: scale, root alignment (Kabsch) and damped least
squares on MuJoCo point Jacobians, frame by frame, with skin-marker offsets calibrated on a
landmark-only first pass."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from emulator.models import MuscleModel
from emulator.motion.formats.base import MarkerSet
from emulator.motion.reference import (
    ReferenceMotion,
    _free_root_adr,
    _normalise_quats,
    apply_joint_couplings,
)
from emulator.motion.retarget.errors import RetargetError
from emulator.motion.retarget.ground import _ground
from emulator.motion.retarget.landmarks import (
    _PELVIS_FIXED,
    _SCALE_PAIRS,
    _SIDES,
    _harrington,
    _model_pelvis_points,
    _point,
    _posed,
    model_landmarks,
    model_segments,
)
from emulator.motion.retarget.point_maps import PointMap, guess_map, load_map

# ---------------------------------------------------------------------------------------------
# IK


@dataclass(frozen=True)
class RetargetReport:
    """What retargeting did and how well it fits.

    Attributes:
        map: the point map's name.
        scale: input-to-model size ratio the input was divided by.
        keypoint_residual_cm: ``[time]`` mean landmark distance per frame (NaN: no landmark seen).
        marker_residual_cm: ``[time]`` mean skin-marker distance per frame (NaN without markers).
        used_keypoints / used_markers: names fitted.
        skipped: map entries the input or the model lacks.
    """

    map: str
    scale: float
    keypoint_residual_cm: np.ndarray
    marker_residual_cm: np.ndarray
    used_keypoints: tuple[str, ...]
    used_markers: tuple[str, ...]
    skipped: tuple[str, ...]
    ground: dict = field(default_factory=dict)

    def summary(self) -> dict:
        def stats(x):
            x = x[np.isfinite(x)]
            return {"mean": float(x.mean()), "max": float(x.max())} if x.size else None

        return {
            "map": self.map,
            "scale": round(self.scale, 4),
            "keypoint_residual_cm": stats(self.keypoint_residual_cm),
            "marker_residual_cm": stats(self.marker_residual_cm),
            "n_keypoints": len(self.used_keypoints),
            "n_markers": len(self.used_markers),
            "skipped": list(self.skipped),
            "ground": self.ground,
        }


class _Solver:
    """Damped least squares IK over the model's independent DOFs (root + uncoupled joints)."""

    def __init__(self, model: MuscleModel, damping: float = 1e-4):
        self.model = model
        m = self.m = model.mj_model
        self.d = mujoco.MjData(m)
        self.damping = damping
        coupled = {
            int(m.eq_obj1id[e])
            for e in range(m.neq)
            if m.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT and m.eq_active0[e]
        }
        cols = []  # dof indices that are free variables
        for j in range(m.njnt):
            if j in coupled:
                continue
            a, t = int(m.jnt_dofadr[j]), int(m.jnt_type[j])
            width = {int(mujoco.mjtJoint.mjJNT_FREE): 6, int(mujoco.mjtJoint.mjJNT_BALL): 3}.get(t, 1)
            cols.extend(range(a, a + width))
        self.cols = np.array(cols, dtype=int)
        self.limited = [
            (int(m.jnt_qposadr[j]), m.jnt_range[j].copy())
            for j in range(m.njnt)
            if j not in coupled
            and m.jnt_limited[j]
            and int(m.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        ]
        self.eqs = [
            (
                int(m.jnt_dofadr[m.eq_obj1id[e]]),
                int(m.jnt_dofadr[m.eq_obj2id[e]]),
                int(m.jnt_qposadr[m.eq_obj2id[e]]),
                m.eq_data[e, :5].copy(),
            )
            for e in range(m.neq)
            if m.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT and m.eq_active0[e] and m.eq_obj2id[e] >= 0
        ]
        self.jacp = np.zeros((3, m.nv))

    def _E(self, q: np.ndarray) -> np.ndarray:
        """``[nv, n_free]``: full velocity from free-variable velocity (chain rule through couplings)."""
        m = self.m
        E = np.zeros((m.nv, len(self.cols)))
        E[self.cols, np.arange(len(self.cols))] = 1.0
        for _ in range(2):  # twice, so a coupling driven by a coupled joint settles
            for d1, d2, a2, c in self.eqs:
                x = q[a2] - m.qpos0[a2]
                E[d1] = (c[1] + x * (2 * c[2] + x * (3 * c[3] + x * 4 * c[4]))) * E[d2]
        return E

    def points(self, q: np.ndarray, targets) -> np.ndarray:
        d = self.d
        d.qpos[:] = q
        mujoco.mj_kinematics(self.m, d)
        return np.array([_point(d, b, off) for b, off in targets]).reshape(-1, 3)

    def solve(
        self, q: np.ndarray, targets, goal: np.ndarray, weight: np.ndarray, iters: int = 30, tol: float = 1e-5
    ):
        """Refine ``q`` so the target points reach ``goal [k, 3]``; rows with NaN goals skipped."""
        m, d = self.m, self.d
        ok = np.isfinite(goal).all(axis=1) & (weight > 0)
        if not ok.any():
            return q, np.full(len(targets), np.nan)
        tg = [t for t, k in zip(targets, ok, strict=True) if k]
        g, w = goal[ok], np.repeat(np.sqrt(weight[ok]), 3)
        q = q.copy()
        n = len(self.cols)
        for _ in range(iters):
            d.qpos[:] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            E = self._E(q)
            J = np.empty((3 * len(tg), n))
            r = np.empty(3 * len(tg))
            for i, (b, off) in enumerate(tg):
                p = _point(d, b, off)
                mujoco.mj_jac(m, d, self.jacp, None, p, b)
                J[3 * i : 3 * i + 3] = self.jacp @ E
                r[3 * i : 3 * i + 3] = g[i] - p
            Jw, rw = J * w[:, None], r * w
            H = Jw.T @ Jw
            lam = self.damping * (1.0 + np.trace(H) / n)
            dx = np.linalg.solve(H + lam * np.eye(n), Jw.T @ rw)
            dq = E @ dx
            mujoco.mj_integratePos(m, q, dq, 1.0)
            for a, (lo, hi) in self.limited:
                q[a] = min(max(q[a], lo), hi)
            _normalise_quats(m, q[None])
            apply_joint_couplings(self.model, q)
            if np.max(np.abs(dx)) < tol:
                break
        res = np.full(len(targets), np.nan)
        res[ok] = np.linalg.norm(self.points(q, tg) - g, axis=1)
        return q, res


def _kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t minimising |R src + t - dst| (rows are points)."""
    cs, cd = src.mean(0), dst.mean(0)
    H = (src - cs).T @ (dst - cd)
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    return R, cd - R @ cs


def _move_root(q: np.ndarray, adr: int, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``q`` with its free root (at qpos ``adr``) moved rigidly by ``x -> R x + t``."""
    Rr = np.zeros(9)
    mujoco.mju_quat2Mat(Rr, q[adr + 3 : adr + 7])
    qq = np.zeros(4)
    mujoco.mju_mat2Quat(qq, (R @ Rr.reshape(3, 3)).ravel())
    q = q.copy()
    q[adr : adr + 3] = R @ q[adr : adr + 3] + t
    q[adr + 3 : adr + 7] = qq
    return q


def _data_keypoints(points: MarkerSet, pmap: PointMap) -> tuple[dict[str, np.ndarray], list[str], dict]:
    """``{landmark: [time, 3]}`` from the input points, plus skipped entries and rule extras."""
    have = set(points.names)
    out: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    extra: dict = {}
    if pmap.pelvis_rule:
        needed = list(pmap.pelvis_rule["asis"]) + list(pmap.pelvis_rule["psis"])
        if all(n in have for n in needed):
            h = _harrington(points, pmap.pelvis_rule)
            extra["pd_over_pw"] = float(np.nanmedian(h.pop("_pd") / h.pop("_pw")))
            out.update(h)
        else:
            skipped.append("pelvis_rule (missing " + ", ".join(n for n in needed if n not in have) + ")")
    for lm, names in pmap.keypoints.items():
        if not all(n in have for n in names):
            skipped.append(f"{lm} (missing {[n for n in names if n not in have]})")
            continue
        out[lm] = np.mean([points.point(n) for n in names], axis=0)
    return out, skipped, extra


def _landmark_target(model: MuscleModel, lms, name: str):
    if name.startswith("body:"):
        b = name[5:]
        try:
            return (model.mj_model.body(b).id, np.zeros(3))
        except KeyError:
            return None
    return lms.get(name)


def _estimate_scale(kp: dict[str, np.ndarray], model: MuscleModel, lms) -> float:
    d = _posed(model)
    ratios = []
    for a_t, b_t in _SCALE_PAIRS:
        for s in _SIDES if "{s}" in a_t else (None,):
            a, b = (a_t.format(s=s), b_t.format(s=s)) if s else (a_t, b_t)
            if a in kp and b in kp and a in lms and b in lms:
                data = np.nanmedian(np.linalg.norm(kp[a] - kp[b], axis=1))
                dm = np.linalg.norm(_point(d, *lms[a]) - _point(d, *lms[b]))
                if np.isfinite(data) and dm > 1e-3:
                    ratios.append(data / dm)
    return float(np.median(ratios)) if ratios else 1.0


def retarget_points(
    points: MarkerSet,
    model: MuscleModel,
    point_map: str | Path | PointMap | None = None,
    *,
    name: str | None = None,
    scale: float | None = None,
    floor: bool | str = True,
    iterations: int = 30,
    on_range: str = "clip",
) -> tuple[ReferenceMotion, RetargetReport]:
    """Inverse kinematics of measured points onto ``model``.

    Args:
        points: input trajectories (metres, z up).
        point_map: a shipped map name, a TOML file or a :class:`PointMap`; None guesses the shipped
            map matching most point names.
        scale: input-to-model size ratio; None estimates it from bone lengths (hip-knee,
            knee-ankle, shoulder-elbow, elbow-wrist, hip width) against the standing model.
        floor: for a free-root model with feet, put the feet on the floor: ``True`` or
            ``"shift"``: one constant shift; ``"lowest"``: shift so the hindfoot touches, toes
            bent / root lifted where they would go through; ``"always"``: every frame touches
            (motions with continuous support); ``False``: leave heights alone.
        iterations: Gauss-Newton iterations per frame (the first frame gets 10x).
    Returns:
        (motion, report); the motion's meta carries the report summary.
    """
    pmap = load_map(point_map) if point_map is not None else guess_map(points)
    m = model.mj_model
    lms = model_landmarks(model)
    segs = model_segments(model)
    kp, skipped, extra = _data_keypoints(points, pmap)
    if pmap.pelvis_rule and "pd_over_pw" in extra:
        if all(k in lms for k in ("pelvis", "hip_r", "hip_l")):
            lms = dict(lms, **_model_pelvis_points(model, lms, extra["pd_over_pw"]))
        else:
            skipped.append(f"pelvis_rule (model {model.name!r} has no pelvis and hip landmarks)")
    targets, goals, kp_names = [], [], []
    for k, traj in kp.items():
        t = _landmark_target(model, lms, k)
        if t is None:
            skipped.append(f"{k} (model {model.name!r} has no such landmark)")
            continue
        targets.append(t)
        goals.append(traj)
        kp_names.append(k)
    if len(kp_names) < (2 if model.root_kind == "fixed" else 3):
        raise RetargetError(
            f"{points.source}: only {len(kp_names)} landmarks of map {pmap.name!r} are in both the input and model "
            f"{model.name!r} ({kp_names}); need at least 3 (2 on a fixed base). Skipped: {skipped[:6]}"
        )
    s = scale if scale is not None else _estimate_scale(kp, model, lms)
    if not (np.isfinite(s) and s > 0):
        raise RetargetError(f"{points.source}: bad scale {s}")
    G = np.stack(goals, axis=1) / s  # [T, k, 3]
    T = G.shape[0]
    solver = _Solver(model)
    q0 = model.standing_qpos.copy()
    a = _free_root_adr(model)
    first = int(np.argmax(np.isfinite(G).all(axis=2).sum(axis=1)))  # the best-observed frame
    if a is not None:  # align the root: rotation + translation from standing-pose landmarks
        ok = np.isfinite(G[first]).all(axis=1)
        src = solver.points(q0, [t for t, k in zip(targets, ok, strict=True) if k])
        q0 = _move_root(q0, a, *_kabsch(src, G[first][ok]))
    weights = np.ones(len(targets))
    q0_joints = model.standing_qpos.copy()

    # pelvis-fixed keypoints: per frame, the root is first re-aligned to them (Kabsch), so fast
    # whole-body rotations (a backflip at 16 fps turns ~40 deg per frame) do not leave the
    # warm-started solver in a wrong local minimum
    rigid = [i for i, k in enumerate(kp_names) if k in _PELVIS_FIXED]

    def realign(q, goal_i):
        if a is None or len(rigid) < 3:
            return q
        dst = goal_i[rigid]
        ok = np.isfinite(dst).all(axis=1)
        if ok.sum() < 3:
            return q
        src = solver.points(q, [targets[i] for i in rigid])[ok]
        sv = np.linalg.svd(src - src.mean(0), compute_uv=False)
        if sv[1] < 0.1 * sv[0]:  # (nearly) collinear: the rotation about that line is unknown
            return q
        return _move_root(q, a, *_kabsch(src, dst[ok]))

    def sweep(tg, goal, w, qstart):
        Q = np.empty((T, m.nq))
        res = np.full((T, len(tg)), np.nan)
        q, _ = solver.solve(qstart, tg, goal[first], w, iters=iterations * 10)
        q_first = q.copy()
        for order in (range(first, T), range(first - 1, -1, -1)):
            q = q_first.copy()
            for i in order:
                q, res[i] = solver.solve(realign(q, G[i]), tg, goal[i], w, iters=iterations)
                if a is not None and np.nanmean(res[i]) > 0.08:
                    # lost track (a limb folded the wrong way): restart the joints from standing
                    fresh = q0_joints.copy()
                    fresh[a : a + 7] = q[a : a + 7]
                    q2, r2 = solver.solve(realign(fresh, G[i]), tg, goal[i], w, iters=iterations * 5)
                    if np.nanmean(r2) < np.nanmean(res[i]):
                        q, res[i] = q2, r2
                Q[i] = q
        return Q, res

    Q, kres = sweep(targets, G, weights, q0)
    used_markers: list[str] = []
    mres = np.full((T, 0), np.nan)
    if pmap.segments:
        mk_targets, mk_goals = [], []
        # body poses of the first pass, once per frame (every marker is expressed in them)
        xpos = np.empty((T, m.nbody, 3))
        xmat = np.empty((T, m.nbody, 3, 3))
        d = mujoco.MjData(m)
        for i in range(T):
            d.qpos[:] = Q[i]
            mujoco.mj_kinematics(m, d)
            xpos[i], xmat[i] = d.xpos, d.xmat.reshape(-1, 3, 3)
        for seg, names in pmap.segments.items():
            body = segs.get(seg) if not seg.startswith("body:") else _landmark_target(model, lms, seg)
            body = body[0] if isinstance(body, tuple) else body
            if body is None:
                skipped.append(f"segment {seg} (model {model.name!r} has no such segment)")
                continue
            for n in names:
                if n not in points.names:
                    skipped.append(f"{n} (not in input)")
                    continue
                P = points.point(n) / s
                local = np.einsum("tji,tj->ti", xmat[:, body], P - xpos[:, body])  # NaN where unseen
                if np.isfinite(local).all(axis=1).sum() < 2:
                    skipped.append(f"{n} (seen in fewer than 2 frames)")
                    continue
                mk_targets.append((body, np.nanmedian(local, axis=0)))
                mk_goals.append(P)
                used_markers.append(n)
        if mk_targets:
            all_t = targets + mk_targets
            all_g = np.concatenate([G, np.stack(mk_goals, axis=1)], axis=1)
            w = np.concatenate([weights, np.ones(len(mk_targets))])
            Q, res = sweep(all_t, all_g, w, Q[first])
            kres, mres = res[:, : len(targets)], res[:, len(targets) :]
    ground: dict = {}
    if floor:
        Q, ground = _ground(model, Q, lms, "shift" if floor is True else floor)
    report = RetargetReport(
        map=pmap.name,
        scale=float(s),
        keypoint_residual_cm=_row_mean(kres) * 100,
        marker_residual_cm=_row_mean(mres) * 100,
        used_keypoints=tuple(kp_names),
        used_markers=tuple(used_markers),
        skipped=tuple(skipped),
        ground=ground,
    )
    names = tuple(m.joint(j).name for j in range(m.njnt))
    meta = dict(points.meta, retarget=report.summary())
    meta = {k: v for k, v in meta.items() if k != "header"}
    mot = ReferenceMotion(
        name or Path(points.source).stem or "motion",
        model.name,
        names,
        Q,
        points.fps,
        False,
        points.source,
        meta,
    )
    return mot.check_ranges(model, on_violation=on_range) if on_range != "fail" else mot, report


def _row_mean(x: np.ndarray) -> np.ndarray:
    if x.shape[1] == 0:
        return np.full(x.shape[0], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=1)


def points_from_motion(
    motion: ReferenceMotion, model: MuscleModel, landmarks: list[str] | None = None
) -> MarkerSet:
    """Forward kinematics: landmark positions ``[time, landmark, 3]`` of a motion (for round trips,
    and to export a motion as markers)."""
    motion.check_model(model)
    lms = model_landmarks(model)
    names = [n for n in (landmarks or sorted(lms)) if n in lms]
    missing = sorted(set(landmarks or []) - set(lms))
    if missing:
        raise RetargetError(f"model {model.name!r} has no landmarks {missing}")
    solver = _Solver(model)
    tg = [lms[n] for n in names]
    P = np.stack([solver.points(q, tg) for q in motion.qpos])
    return MarkerSet(tuple(names), P, motion.fps, f"fk:{motion.name}", {"format": "fk", "up": "z"})
