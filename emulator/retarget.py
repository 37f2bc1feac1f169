"""Retargeting: measured points or named coordinates onto a model's joints.

Two routes lead to a :class:`~emulator.motion.ReferenceMotion`:

* **Coordinates** (OpenSim ``.mot``/``.sto``) whose columns already name model joints map
  directly (:func:`coordinates_to_motion`): ``pelvis_*`` onto the free root, sign conventions
  converted where the model differs (gait2392 writes knee flexion negative; myo-sim's
  ``knee_angle_*`` is positive in flexion).
* **Points** (markers, joint centres: TRC, C3D, BVH, AMASS) go through inverse kinematics
  (:func:`retarget_points`): a *point map* (:class:`PointMap`, TOML) says which input points are
  which model *landmarks* (joint centres such as ``hip_r``, ``knee_r``) and which are skin
  markers riding on which *segment* (``thigh_r``). The input is scaled to the model's size, the
  root aligned, and every frame solved by damped least squares on MuJoCo point Jacobians,
  warm-started from the previous frame, joints clamped into their ranges. With skin markers the
  solve runs twice: landmarks only, then every marker with its offset in its segment calibrated
  from the first pass (as a static-trial calibration would).

Landmarks and segments of a model are found from OpenSim body names (``pelvis``, ``femur_r``,
``tibia_r``, ``talus_r``, ``calcn_r``, ``toes_r``, ``torso``, ``humerus_r``, ``ulna_r``,
``radius_r``, ``lunate_r``/``hand_r``, ``head``) or sites named like the landmark; the elbow
model has its own table. A user map can name bodies directly (``body:NAME``).
"""

from __future__ import annotations

import re
import tomllib
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import mujoco
import numpy as np

from .formats.base import CoordinateTable, MarkerSet
from .models import MuscleModel
from .motion import (
    MotionError,
    ReferenceMotion,
    _free_root_adr,
    _normalise_quats,
    apply_joint_couplings,
    from_joint_values,
)

__all__ = [
    "GROUND_MODES",
    "PointMap",
    "RetargetError",
    "describe_motion",
    "load_motion",
    "RetargetReport",
    "coordinates_to_motion",
    "known_maps",
    "load_map",
    "model_landmarks",
    "retarget_points",
    "points_from_motion",
]


class RetargetError(MotionError):
    """Retargeting cannot proceed (unknown map entry, too few points, model lacks a landmark)."""


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
# Input side: point maps


@dataclass(frozen=True)
class PointMap:
    """Which input points are which model landmarks, and which skin markers ride on which segment.

    Attributes:
        name: map name (``falisse2019``).
        keypoints: ``{landmark: [input point names]}``; the landmark's data position is the mean
            of the listed points (a midpoint for a lateral/medial marker pair).
        segments: ``{segment: [marker names]}``; offsets calibrated from the data.
        pelvis_rule: optional ``{"rule": "harrington", "asis": [R, L], "psis": [R, L]}``: hip
            joint centres (``hip_r``, ``hip_l``) by Harrington et al. (2007) regression from the
            pelvis markers, plus the mid-ASIS/mid-PSIS points to orient the pelvis.
        up: the up axis the map's data are usually in (informational).
        description: provenance of the map.
    """

    name: str
    keypoints: dict[str, tuple[str, ...]]
    segments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pelvis_rule: dict | None = None
    description: str = ""
    source: str = ""

    @staticmethod
    def from_toml(path: str | Path) -> PointMap:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise RetargetError(f"{path}: no such point-map file") from None
        except tomllib.TOMLDecodeError as e:
            raise RetargetError(f"{path}: not valid TOML ({e})") from None
        return PointMap.from_dict(data, source=str(path))

    @staticmethod
    def from_dict(data: dict, source: str = "") -> PointMap:
        where = source or data.get("name", "point map")
        known = set(_expand(_LANDMARK_BODIES)) | {"pelvis_front", "pelvis_back", "toe_tip_r", "toe_tip_l"}
        kp = {}
        for k, v in data.get("keypoints", {}).items():
            if k not in known and not k.startswith("body:"):
                raise RetargetError(f"{where}: keypoint {k!r} is not a landmark (known: {sorted(known)})")
            kp[k] = (v,) if isinstance(v, str) else tuple(v)
        segs = {}
        known_segs = set(_expand(_SEGMENT_BODIES))
        for k, v in data.get("segments", {}).items():
            if k not in known_segs and not k.startswith("body:"):
                raise RetargetError(f"{where}: segment {k!r} is not known (known: {sorted(known_segs)})")
            segs[k] = (v,) if isinstance(v, str) else tuple(v)
        rule = data.get("pelvis_rule")
        if rule is not None:
            if (
                rule.get("rule") != "harrington"
                or len(rule.get("asis", [])) != 2
                or len(rule.get("psis", [])) != 2
            ):
                raise RetargetError(
                    f"{where}: pelvis_rule must be {{rule='harrington', asis=[R, L], psis=[R, L]}}, got {rule}"
                )
        if not kp and not rule:
            raise RetargetError(f"{where}: map names no keypoints")
        return PointMap(
            data.get("name", Path(source).stem), kp, segs, rule, data.get("description", ""), source
        )

    def points_used(self) -> set[str]:
        used = {p for v in self.keypoints.values() for p in v} | {
            p for v in self.segments.values() for p in v
        }
        if self.pelvis_rule:
            used |= set(self.pelvis_rule["asis"]) | set(self.pelvis_rule["psis"])
        return used


_MAP_PACKAGE = "emulator.maps"


def known_maps() -> dict[str, str]:
    """``{name: description}`` of the shipped point maps."""
    out = {}
    for f in sorted(resources.files(_MAP_PACKAGE).iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml"):
            out[f.name[:-5]] = tomllib.loads(f.read_text()).get("description", "")
    return out


def load_map(name_or_path: str | Path | PointMap) -> PointMap:
    """A shipped map by name (``falisse2019``, ``smpl``, ``landmarks``) or a TOML file."""
    if isinstance(name_or_path, PointMap):
        return name_or_path
    s = str(name_or_path)
    f = resources.files(_MAP_PACKAGE) / f"{s}.toml"
    if not s.endswith(".toml") and f.is_file():
        m = PointMap.from_dict(tomllib.loads(f.read_text()), source=f"map {s}")
        return m
    if Path(s).is_file():
        return PointMap.from_toml(s)
    raise RetargetError(f"no point map {s!r}: not a shipped map ({sorted(known_maps())}) nor a file")


def guess_map(points: MarkerSet) -> PointMap:
    """The shipped map that uses the most of these points (at least 3)."""
    best, best_n = None, 0
    for name in known_maps():
        pm = load_map(name)
        n = len(pm.points_used() & set(points.names))
        if n > best_n:
            best, best_n = pm, n
    if best is None or best_n < 3:
        raise RetargetError(
            f"{points.source}: no shipped point map matches these point names ({list(points.names)[:8]}...); "
            "pass --map FILE (see README, 'Point maps')"
        )
    return best


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
    translation_scale: float | str = "auto",
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
    * ``translation_scale="auto"`` scales the root translation by model/subject pelvis height
      (stride fits leg length); ``floor`` then lowers the root so the feet touch the floor.

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
    a = _free_root_adr(model)
    if a is not None and all(p in cols for p in _PELVIS):
        if R_pb is None:
            raise RetargetError(f"model {model.name!r} has no 'pelvis' body to carry pelvis_* coordinates")
        tilt, lst, rot, tx, ty, tz = (table.column(p) for p in _PELVIS)
        root_body = m.joint(model.root_joints[0]).id
        root_b = int(m.jnt_bodyid[root_body])
        off = d.xmat[root_b].reshape(3, 3).T @ (d.xpos[lms["pelvis"][0]] - d.xpos[root_b])
        if translation_scale == "auto":
            k = float(_posed(model).xpos[lms["pelvis"][0]][2] / np.mean(ty))
        else:
            k = float(translation_scale)
        root = np.empty((table.n_frames, 7))
        for i in range(table.n_frames):
            R_os = _axis_rot(2, tilt[i]) @ _axis_rot(0, lst[i]) @ _axis_rot(1, rot[i])
            R_root = R_pb @ R_os @ R_pb.T
            qq = np.zeros(4)
            mujoco.mju_mat2Quat(qq, R_root.ravel())
            root[i, 3:] = qq
            root[i, :3] = k * (R_pb @ np.array([tx[i], ty[i], tz[i]])) - R_root @ off
        values[model.root_joints[0]] = root
    elif any(p in cols for p in _PELVIS):
        unmapped.extend(p for p in _PELVIS if p in cols)
    if not values:
        raise RetargetError(
            f"{table.source}: no column names a joint of model {model.name!r} ({cols[:6]}...)"
        )
    meta = {"unmapped": unmapped, "sign_flipped": sorted(signs), **table.meta}
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


# ---------------------------------------------------------------------------------------------
# Any file onto a model


def load_motion(
    path: str | Path,
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
    """Read any supported motion file and bring it onto ``model``.

    Model-coordinate ``.npz`` files are mapped by joint name, OpenSim coordinates directly, and
    point files (TRC, C3D, BVH, AMASS) by inverse kinematics. ``start_s``/``stop_s`` select a
    time window (seconds from the first frame) before retargeting.

    Returns:
        (motion, report): the report says how the motion was obtained (``route``) and, for
        points, the retargeting summary (residuals in cm, scale).
    """
    from .formats import read

    data = read(path, up=up, units=units, body_model=body_model)
    stem = name or Path(path).stem
    if isinstance(data, ReferenceMotion):
        mot = ReferenceMotion.load(path, model)
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
