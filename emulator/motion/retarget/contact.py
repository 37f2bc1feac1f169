"""Feet on the floor at the gait events: contact-constrained inverse kinematics of a walking cycle.

Measured joint angles put on a model whose segments and feet differ from the subject's do not
keep the feet where the subject's were. On myolegs the averaged walk's trailing foot, on straight
toes (the IK has no toe angles), props the body up so the leading heel hangs ~3 cm above the
floor at its strike and lands ~0.2 s late, and the stance toes slide. :func:`ground_on_contacts`
re-solves the whole cycle at once (Gauss-Newton over every frame's root and leg coordinates) so that

* each foot is on the floor from its strike to its toe-off (its lowest collision geom touches),
  with its hindfoot down for ``heel_window`` of the cycle after the strike;
* its toes (the toe body's origin, the metatarsal heads) do not slide while it is flat;
* no foot goes below the floor, and a swinging foot clears it by ``swing_clearance_m``;

while staying close to the measured pose (a weighted prior per coordinate: the toe joints, which
the measurement lacks, are cheap; the root's heading and horizontal path are dear) and smooth in
time (second differences, the root's translation weighted most). The contact terms switch on
and off over ``ramp_frames`` frames at each event.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from emulator.models import MuscleModel
from emulator.motion.reference import (
    ReferenceMotion,
    _apply_offset,
    _cycle_offset,
    _free_root_adr,
    _normalise_quats,
    apply_joint_couplings,
)
from emulator.motion.retarget.errors import RetargetError
from emulator.motion.retarget.ground import _floor_plane, _foot_sides

__all__ = ["ContactEvents", "ContactFit", "ground_on_contacts", "kinematic_events"]


@dataclass(frozen=True)
class ContactEvents:
    """When each foot is on the floor, as fractions of a cycle (0 = its first frame).

    Attributes:
        strike: foot name (a key of ``model.feet``) -> the fraction at which it lands.
        toe_off: foot name -> the fraction at which it leaves the floor (after its strike,
            wrapping round the cycle).
    """

    strike: dict[str, float]
    toe_off: dict[str, float]

    def stance(self, foot: str) -> float:
        """The fraction of the cycle the foot spends on the floor."""
        return (self.toe_off[foot] - self.strike[foot]) % 1.0

    def since_strike(self, foot: str, phase: float) -> float:
        """Fraction of the cycle since the foot's strike; negative in the second half of its
        swing (time to the next strike)."""
        s = (phase - self.strike[foot]) % 1.0
        swing_middle = self.stance(foot) + (1.0 - self.stance(foot)) / 2
        return s if s < swing_middle else s - 1.0


def kinematic_events(model: MuscleModel, motion: ReferenceMotion, arrive: float = 0.3, leave: float = 0.5):
    """Each foot's strike and toe-off from the motion itself: the frames at which its toes
    (the toe body's origin) slow below ``arrive`` times the walking speed and speed up past
    ``leave`` times it. Needs a cycle that translates (walking, running)."""
    m = model.mj_model
    sides = dict(zip(model.feet, _foot_sides(m, model), strict=True))
    if not motion.loop:
        raise RetargetError(f"{motion.name}: gait events need a cycle (loop)")
    q = motion.qpos
    n = len(q)
    off = _cycle_offset(model, q)
    speed = np.linalg.norm(off) * motion.fps / n
    if speed < 0.05:
        raise RetargetError(f"{motion.name}: the cycle moves {speed:.3f} m/s; gait events need walking")
    d = mujoco.MjData(m)
    xy = np.empty((n + 1, len(sides), 2))
    for i in range(n + 1):
        d.qpos[:] = q[i] if i < n else _apply_offset(model, q[0], off)
        mujoco.mj_kinematics(m, d)
        for k, (_, _, joint) in enumerate(sides.values()):
            if joint is None:
                raise RetargetError(f"model {model.name!r} has no toe joint to time the gait events on")
            xy[i, k] = d.xpos[m.jnt_bodyid[joint], :2]
    v = np.linalg.norm(np.diff(xy, axis=0), axis=-1) * motion.fps / speed  # [frame, foot] in walking speeds
    # a 3-frame running median (round the cycle): a seam that does not quite close (a stride cut
    # by time) jumps for one frame, which is not a step
    v = np.median(np.stack([np.roll(v, 1, axis=0), v, np.roll(v, -1, axis=0)]), axis=0)
    strike, toe_off = {}, {}
    for k, foot in enumerate(sides):
        lands, leaves = _crossings(v[:, k], arrive, leave)
        if len(lands) != 1 or len(leaves) != 1:
            raise RetargetError(
                f"{motion.name}: foot {foot!r} does not land and leave once per cycle "
                f"({len(lands)} landings, {len(leaves)} departures)"
            )
        strike[foot], toe_off[foot] = float(lands[0] / n), float(leaves[0] / n)
    return ContactEvents(strike, toe_off)


def _crossings(v: np.ndarray, arrive: float, leave: float) -> tuple[list[int], list[int]]:
    """Frames of a cyclic speed trace at which it settles below ``arrive`` after being above
    ``leave`` (landings) and the reverse (departures): hysteresis, so a wobble near one
    threshold is not a second step."""
    slow = np.flatnonzero(v < arrive)
    if not len(slow) or not (v > leave).any():
        return [], []
    n, start = len(v), int(slow[0])
    moving, lands, leaves = False, [], []
    for j in range(1, n + 1):
        i = (start + j) % n
        if not moving and v[i] > leave:
            moving = True
            leaves.append(i)
        elif moving and v[i] < arrive:
            moving = False
            lands.append(i)
    return lands, leaves


@dataclass(frozen=True)
class ContactFit:
    """How :func:`ground_on_contacts` trades the contacts against the measured pose.

    Attributes:
        swing_clearance_m: least height of a swinging foot over the floor through the middle
            of its swing (people clear it by 1-2 cm at mid-swing; a reference that skims it
            trips a policy that tracks it within a few degrees).
        swing_edge: share of the swing at each end over which that clearance ramps from 0.
        heel_window: fraction of the cycle after a strike during which the hindfoot touches.
        ramp_frames: frames over which a contact term switches on or off at an event.
        weight_contact: per m^2 of a foot's height error (near-hard).
        weight_pin: per m^2 of a stance foot's toes' horizontal slide.
        weight_joint / weight_toe: per rad^2 of a joint's change / a toe joint's change.
        weight_root_xy / weight_root_z: per m^2 of the root's horizontal / vertical change.
        weight_root_rotation: per rad^2 of the root's rotation change.
        smooth_joint / smooth_root: per rad^2 / m^2 of a second difference over three frames.
        iterations: Gauss-Newton iterations over the whole cycle.
    """

    swing_clearance_m: float = 0.02
    swing_edge: float = 0.2
    heel_window: float = 0.12
    ramp_frames: int = 3
    weight_contact: float = 1e6
    weight_pin: float = 1e5
    weight_joint: float = 1.0
    weight_toe: float = 0.05
    weight_root_xy: float = 100.0
    weight_root_z: float = 1.0
    weight_root_rotation: float = 10.0
    smooth_joint: float = 10.0
    smooth_root: float = 1e4
    iterations: int = 25


def ground_on_contacts(
    model: MuscleModel, motion: ReferenceMotion, events: ContactEvents, fit: ContactFit = ContactFit()
) -> tuple[ReferenceMotion, dict]:
    """The cycle ``motion`` re-solved with its feet on the floor at ``events`` (module docstring).

    Returns the motion (same frames; ``meta["ground"]`` says what was done) and a report: the
    largest change per joint (deg), the root's largest change, and the residual contact
    errors (mm)."""
    from emulator.motion.retarget.ik import _Solver  # ik imports ground; keep the import graph a tree

    m = model.mj_model
    a = _free_root_adr(model)
    if a is None or not motion.loop:
        raise RetargetError(f"{motion.name}: contact grounding needs a cycle of a model with a free root")
    sides = dict(zip(model.feet, _foot_sides(m, model), strict=True))
    if set(events.strike) != set(sides) or set(events.toe_off) != set(sides):
        raise RetargetError(
            f"gait events name feet {sorted(events.strike)}; model {model.name!r} has {sorted(sides)}"
        )
    plane = _floor_plane(m)
    if plane is None:
        raise RetargetError(f"model {model.name!r} has no floor plane to put the feet on")
    problem = _Problem(model, motion, events, fit, sides, plane, _Solver(model))
    q = problem.solve()
    report = problem.report(q)
    meta = dict(
        motion.meta,
        ground={
            "mode": "contact_ik",
            "strike": {k: round(v, 4) for k, v in events.strike.items()},
            "toe_off": {k: round(v, 4) for k, v in events.toe_off.items()},
            "swing_clearance_m": fit.swing_clearance_m,
            "heel_window": fit.heel_window,
        },
    )
    return motion._replace(qpos=q, qvel=None, meta=meta), report


class _Problem:
    """The whole cycle's least squares: prior + smoothness + contacts, over each frame's free
    coordinates (``solver.cols``), solved by damped Gauss-Newton on the normal equations."""

    def __init__(self, model, motion, events, fit, sides, plane, solver):
        self.model, self.events, self.fit = model, events, fit
        self.sides, self.plane, self.solver = sides, plane, solver
        m = self.m = model.mj_model
        self.d = mujoco.MjData(m)
        self.q0 = motion.qpos.copy()
        self.n = len(self.q0)
        self.cols = _leg_columns(m, sides, solver.cols)
        self._in_solver = np.searchsorted(solver.cols, self.cols)  # their columns of solver._E
        w = np.full(m.nv, fit.weight_joint)
        dof = self.root_dof = int(m.jnt_dofadr[m.joint(model.root_joints[0]).id])  # the free root's 6 dofs
        w[dof : dof + 2] = fit.weight_root_xy
        w[dof + 2] = fit.weight_root_z
        w[dof + 3 : dof + 6] = fit.weight_root_rotation
        s = np.full(m.nv, fit.smooth_joint)
        s[dof : dof + 3] = fit.smooth_root
        for _, _, j in sides.values():
            if j is not None:
                w[m.jnt_dofadr[j]] = fit.weight_toe
        self.w_prior = np.sqrt(w[self.cols])
        self.w_smooth = np.sqrt(s[self.cols])
        self.offset = _cycle_offset(model, self.q0)
        self.toes = {f: int(m.jnt_bodyid[j]) for f, (_, _, j) in sides.items() if j is not None}
        self.anchor = self._anchors()
        self.active = [set() for _ in range(self.n)]  # violated inequality geoms stay in (no chatter)
        self._fromto = np.zeros(6)
        self._jac = np.zeros((3, m.nv))

    # ---- events ---------------------------------------------------------------------------
    def _weights(self, foot: str, i: int) -> tuple[float, float, float]:
        """(stance, heel, since): contact-term weights of a foot at frame i, ramped at events."""
        ev, r = self.events, max(self.fit.ramp_frames, 1) / self.n
        s = ev.since_strike(foot, i / self.n)
        up = np.clip(1.0 + s / r, 0.0, 1.0)  # reaches 1 at the strike
        stance = float(min(up, np.clip((ev.stance(foot) - s) / r, 0.0, 1.0)))
        heel = float(min(up, np.clip((self.fit.heel_window - s) / r, 0.0, 1.0)))
        return stance, heel, s

    def _lift(self, foot: str, s: float) -> float:
        """0..1: the share of the swing clearance a foot needs ``s`` after its strike: 0 in
        stance, rising linearly over the first ``swing_edge`` of the swing, 1, falling over the
        last ``swing_edge`` to its next strike."""
        stance = self.events.stance(foot)
        u = (s % 1.0 - stance) / (1.0 - stance)
        if u <= 0.0:
            return 0.0
        return float(np.clip(min(u, 1.0 - u) / self.fit.swing_edge, 0.0, 1.0))

    def _stride(self, foot: str, i: int) -> int:
        """Which cycle's stance frame i's contact belongs to (0: the one that starts in this cycle)."""
        s = self.events.since_strike(foot, i / self.n)
        return int(round(i / self.n - s - self.events.strike[foot]))

    def _anchors(self) -> dict[str, np.ndarray]:
        """Where each foot's toes stand: their mean position over the flat part of its stance."""
        anchors = {}
        for foot, body in self.toes.items():
            pts = []
            for i in range(self.n):
                s = self.events.since_strike(foot, i / self.n)
                if 0.05 <= s <= self.events.stance(foot) - 0.05:
                    self._pose(self.q0[i])
                    pts.append(self.d.xpos[body, :2] - self._stride(foot, i) * self.offset)
            anchors[foot] = np.mean(pts, axis=0) if pts else None
        return anchors

    # ---- geometry -------------------------------------------------------------------------
    def _pose(self, q):
        self.d.qpos[:] = q
        mujoco.mj_kinematics(self.m, self.d)

    def _height(self, g: int) -> tuple[float, np.ndarray]:
        dist = mujoco.mj_geomDistance(self.m, self.d, g, self.plane, 1.0, self._fromto)
        return dist, self._fromto[:3].copy()

    def _contact_rows(self, i: int, E: np.ndarray):
        """Frame i's contact residuals and Jacobians (rows of the weighted system), at the pose
        last set by :meth:`_pose`."""
        m, d, fit = self.m, self.d, self.fit
        rows_r, rows_j = [], []

        def point_row(body, point, axis, target, value, weight):
            mujoco.mj_jac(m, d, self._jac, None, point, body)
            rows_r.append(np.sqrt(weight) * (target - value))
            rows_j.append(np.sqrt(weight) * (self._jac[axis] @ E))

        for foot, (hind, toes, _) in self.sides.items():
            stance, heel, s = self._weights(foot, i)
            feet = hind + toes
            heights = [self._height(g) for g in feet]
            if stance > 0:
                k = int(np.argmin([h for h, _ in heights]))
                point_row(
                    m.geom_bodyid[feet[k]], heights[k][1], 2, 0.0, heights[k][0], fit.weight_contact * stance
                )
                anchor = self.anchor.get(foot)
                if anchor is not None:
                    body = self.toes[foot]
                    target = anchor + self._stride(foot, i) * self.offset
                    for axis in (0, 1):
                        point_row(
                            body,
                            d.xpos[body],
                            axis,
                            target[axis],
                            d.xpos[body, axis],
                            fit.weight_pin * stance,
                        )
            if heel > 0:
                k = int(np.argmin([heights[j][0] for j in range(len(hind))]))
                point_row(
                    m.geom_bodyid[hind[k]], heights[k][1], 2, 0.0, heights[k][0], fit.weight_contact * heel
                )
            floor = fit.swing_clearance_m * self._lift(foot, s)
            for g, (h, p) in zip(feet, heights, strict=True):
                if h < floor:
                    self.active[i].add(g)
                if g in self.active[i]:
                    point_row(m.geom_bodyid[g], p, 2, floor, h, fit.weight_contact)
        return np.array(rows_r), np.array(rows_j).reshape(len(rows_r), len(self.cols))

    # ---- the solve ------------------------------------------------------------------------
    def _neighbour(self, q: np.ndarray, i: int) -> np.ndarray:
        """Frame i of the cycle continued past its ends (one stride's displacement on)."""
        n = self.n
        if i < 0:
            return _apply_offset(self.model, q[i + n], -self.offset)
        if i >= n:
            return _apply_offset(self.model, q[i - n], self.offset)
        return q[i]

    def _diff(self, qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
        """``qb - qa`` in the free coordinates' tangent space."""
        v = np.zeros(self.m.nv)
        mujoco.mj_differentiatePos(self.m, v, 1.0, qa, qb)
        return v[self.cols]

    def solve(self) -> np.ndarray:
        m, n, k = self.m, self.n, len(self.cols)
        q = self.q0.copy()
        wp2, ws2 = self.w_prior**2, self.w_smooth**2
        coef = (1.0, -2.0, 1.0)
        for _ in range(self.fit.iterations):
            H = np.zeros((n * k, n * k))
            g = np.zeros(n * k)
            Es = []
            for i in range(n):
                blk = slice(i * k, (i + 1) * k)
                self._pose(q[i])
                mujoco.mj_comPos(m, self.d)
                E = self.solver._E(q[i])[:, self._in_solver]
                Es.append(E)
                r, J = self._contact_rows(i, E)
                if len(r):
                    H[blk, blk] += J.T @ J
                    g[blk] += J.T @ r
                H[blk, blk] += np.diag(wp2)
                g[blk] += wp2 * self._diff(q[i], self.q0[i])
                # second difference around frame i: (q[i-1] - q[i]) + (q[i+1] - q[i]) -> 0
                f = self._diff(q[i], self._neighbour(q, i - 1)) + self._diff(q[i], self._neighbour(q, i + 1))
                idx = [(i - 1) % n, i, (i + 1) % n]
                for a_, ca in zip(idx, coef, strict=True):
                    g[a_ * k : (a_ + 1) * k] += ca * ws2 * (-f)
                    for b_, cb in zip(idx, coef, strict=True):
                        H[a_ * k : (a_ + 1) * k, b_ * k : (b_ + 1) * k] += np.diag(ca * cb * ws2)
            H[np.diag_indices_from(H)] += 1e-9 * (1.0 + np.diag(H))
            # H is block-tridiagonal but for the seam's corner blocks: a sparse LU is ~50x faster
            dx = scipy.sparse.linalg.spsolve(scipy.sparse.csc_matrix(H), g).reshape(n, k)
            dx *= min(1.0, 0.1 / (np.abs(dx).max() + 1e-12))  # at most 0.1 rad / 10 cm a step
            for i in range(n):
                mujoco.mj_integratePos(m, q[i], Es[i] @ dx[i], 1.0)
                for adr, (lo, hi) in self.solver.limited:
                    q[i, adr] = min(max(q[i, adr], lo), hi)
            _normalise_quats(m, q)
            apply_joint_couplings(self.model, q)
            if np.abs(dx).max() < 1e-5:  # 0.01 mm / 1e-5 rad (a clamped joint keeps asking ~4e-6)
                break
        return q

    def report(self, q: np.ndarray) -> dict:
        m = self.m
        change = np.array([self._diff(self.q0[i], q[i]) for i in range(self.n)])  # [frame, free dof]
        joints = {}
        for j in range(m.njnt):
            dof = int(m.jnt_dofadr[j])
            if int(m.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_HINGE),) and dof in self.cols:
                c = np.degrees(np.abs(change[:, list(self.cols).index(dof)])).max()
                joints[m.joint(j).name] = round(float(c), 2)
        root = list(self.cols).index(self.root_dof)
        errors = []
        for i in range(self.n):
            self._pose(q[i])
            for foot, (hind, toes, _) in self.sides.items():
                stance, _, _ = self._weights(foot, i)
                if stance >= 1.0:
                    errors.append(min(self._height(g)[0] for g in hind + toes))
        return {
            "joint_change_max_deg": joints,
            "root_translation_change_max_m": np.round(np.abs(change[:, root : root + 3]).max(0), 4).tolist(),
            "root_rotation_change_max_deg": np.round(
                np.degrees(np.abs(change[:, root + 3 : root + 6]).max(0)), 2
            ).tolist(),
            "stance_height_error_max_mm": round(1000 * float(np.abs(errors).max()), 2) if errors else None,
        }


def _leg_columns(m: mujoco.MjModel, sides: dict, cols: np.ndarray) -> np.ndarray:
    """The free dofs that move a foot: the root's and the joints between it and each foot
    (an arm or a finger cannot help a foot touch; leaving them out keeps the solve small)."""
    bodies = set()
    for hind, toes, _ in sides.values():
        for g in hind + toes:
            b = int(m.geom_bodyid[g])
            while b > 0:
                bodies.add(b)
                b = int(m.body_parentid[b])
    dofs = {d for d in range(m.nv) if int(m.dof_bodyid[d]) in bodies}
    return np.array([c for c in cols if int(c) in dofs], dtype=int)
