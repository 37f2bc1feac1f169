"""The batched motion-tracking environment.

Pure in its state: :class:`EnvState` holds the physics state array ``[B, nstate]``, the
reference frame index of each environment and its episode step count; ``reset`` and
``step`` return new states and never keep hidden per-environment state. The same code runs on
both physics backends; observation, tracking error and termination are jit-compiled JAX
functions of the backend's named :class:`~emulator.simulation.signals.Signals`.

Tracking-error vector Δ (all components non-negative, see :func:`delta_names`):

``joint_angle[j]``      |q_j - q_ref_j| for each tracked joint (rad; m for slide joints)
``joint_velocity[j]``   |qd_j - qd_ref_j| (rad/s; m/s)
``body_position[b]``    ||(p_b - p_root) - (p_ref_b - p_ref_root)|| for each tracked body (m)
``root_rotation``       angle of the rotation between root and reference root (rad)
``root_translation``    ||p_root - p_ref_root|| (m)
``root_linear_velocity``  ||v_root - v_ref_root|| (m/s)
``root_angular_velocity`` ||w_root - w_ref_root|| (rad/s)
``root_xcom``           ||(p - p_ref)_xy + (v - v_ref)_xy / w0|| (m), w0 = sqrt(g / mean reference
                        root height): Hof's extrapolated centre of mass with the root for the
                        centre of mass; sees a drift while the position is still close. Free roots.

The paper's four metrics come from Δ: mean joint-angle error (deg, hinge joints), root
rotation error (deg), body position error (cm, mean over tracked bodies, relative to the root)
and root translation error (cm).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from emulator.models import MuscleModel
from emulator.motion.reference import ReferenceMotion
from emulator.schema import FOOT_ORDER, METRIC_NAMES, METRIC_UNITS
from emulator.simulation.config import EnvConfig
from emulator.simulation.physics import Physics, make_physics
from emulator.simulation.servo import balance_reflex_table, basis_matrix, reflex_shift
from emulator.simulation.signals import Servo, Signals, pd_excitation
from emulator.simulation.tracking_reference import (
    Reference,
    build_reference,
    quat_angle,
    quat_conj,
    quat_mul,
    quat_rotate_inv,
)

__all__ = [
    "METRIC_NAMES",
    "METRIC_UNITS",
    "EnvConfig",
    "EnvState",
    "Reference",
    "StepResult",
    "TrackingEnv",
    "Transition",
    "focused_start_probs",
]


class EnvState(NamedTuple):
    """Explicit environment state; every field has a leading batch axis ``B``."""

    physics: jax.Array  # [B, nstate] physics state ([time, qpos, qvel, act])
    index: jax.Array  # [B] reference frame index at the control rate (grows past a cycle)
    steps: jax.Array  # [B] control steps since the last reset
    action: jax.Array | None = None  # [B, muscle] the policy's last action (None: none yet)
    sensed: jax.Array | None = None  # [B, 3 * muscle] muscle length, velocity, reference length (PD)


class Transition(NamedTuple):
    """One control step with automatic resets (:meth:`TrackingEnv.step_autoreset`)."""

    state: EnvState  # environments that ended are already reset
    obs: jax.Array  # [B, obs_dim] observation to act on next (of the reset state where done)
    next_obs: jax.Array  # [B, obs_dim] observation right after the step (before any reset)
    delta: jax.Array  # [B, delta_dim]
    metrics: jax.Array  # [B, 4]
    terminated: jax.Array  # [B] bool
    truncated: jax.Array  # [B] bool (False where terminated)


class StepResult(NamedTuple):
    state: EnvState
    obs: jax.Array  # [B, obs_dim]
    delta: jax.Array  # [B, delta_dim] tracking-error vector
    metrics: jax.Array  # [B, 4] the paper's four metrics, see METRIC_NAMES / METRIC_UNITS
    terminated: jax.Array  # [B] bool: deviated past the threshold
    truncated: jax.Array  # [B] bool: reached the end of the motion / episode
    signals: Signals


class TrackingEnv:
    """Batched reference-motion tracking on a muscle model.

    Args:
        model: the muscle model.
        motion: a reference motion in ``model``'s coordinates.
        physics: a backend from :func:`emulator.simulation.physics.make_physics` for this model.
        config: :class:`EnvConfig`.
    """

    def __init__(
        self,
        model: MuscleModel,
        motion: ReferenceMotion,
        physics: Physics,
        config: EnvConfig | None = None,
    ):
        self.model = model
        self.motion = motion
        self.physics = physics
        self.config = config or EnvConfig()
        m = model.mj_model
        dt = self.config.physics_dt or model.timestep
        if abs(physics.timestep - dt) > 1e-12 * dt:
            raise ValueError(
                f"the physics steps {physics.timestep} s but the env config asks for {dt} s "
                "(TrackingEnv.create builds one; or make_physics(..., timestep=config.physics_dt))"
            )
        self.n_substeps = max(1, int(round(self.config.control_dt / dt)))
        self.control_dt = self.n_substeps * dt
        self.ref = build_reference(model, motion, 1.0 / self.control_dt)
        self.n_envs = physics.n_envs
        self.layout = physics.layout

        tj = model.tracked_joints
        self._jq = np.array([j.qpos_index for j in tj], dtype=int)
        self._jd = np.array([j.dof_index for j in tj], dtype=int)
        self._angular = np.array([j.angular for j in tj], dtype=bool)
        self._root_b = (
            model.tracked_bodies.index(model.root_body) if model.root_body in model.tracked_bodies else 0
        )
        lin, ang, lin_q = [], [], []
        for name in model.root_joints:
            jid = m.joint(name).id
            a, qa = int(m.jnt_dofadr[jid]), int(m.jnt_qposadr[jid])
            if m.jnt_type[jid] == mujoco.mjtJoint.mjJNT_FREE:
                lin += [a, a + 1, a + 2]
                ang += [a + 3, a + 4, a + 5]
                lin_q += [qa, qa + 1, qa + 2]
            elif m.jnt_type[jid] == mujoco.mjtJoint.mjJNT_SLIDE:
                lin.append(a)
                lin_q.append(qa)
            else:
                ang.append(a)
        self._root_lin, self._root_ang = np.array(lin, dtype=int), np.array(ang, dtype=int)
        self._root_lin_q = np.array(lin_q, dtype=int)  # qpos addresses of the root's translation
        self.fixed_base = model.root_kind == "fixed"
        if self.config.observe_foot_contact:
            try:
                model.require_feet()
            except ValueError as e:
                raise ValueError(f"observe_foot_contact: {e}") from None
        free_root_options = ("push_speed_mps", "reset_kick_mps", "root_assist_hz", "termination_xcom_m")
        for option in (*free_root_options, "balance_reflex"):
            if (getattr(self.config, option) or 0) > 0 and model.root_kind != "free":
                raise ValueError(
                    f"{option} needs a model with a free root; {model.name} has a {model.root_kind} root"
                )
        self._max_steps = (
            int(round(self.config.max_episode_s / self.control_dt)) if self.config.max_episode_s else 2**30
        )
        self._basis = basis_matrix(model, self.config.action_basis)
        self._build_functions()
        self.delta_names = delta_names(model)
        self.delta_dim = len(self.delta_names)
        self.action_dim = model.n_muscles if self._basis is None else len(self._basis)
        self.obs_dim = int(self._obs_dim)

    @classmethod
    def create(
        cls,
        model: MuscleModel,
        motion: ReferenceMotion,
        config: EnvConfig | None = None,
        *,
        backend: str | None = "cpu",
        n_envs: int = 1,
    ) -> TrackingEnv:
        """An env with a physics backend of its own, built at the config's physics step
        (``EnvConfig.physics_dt``): what every env of a run is."""
        config = config or EnvConfig()
        physics = make_physics(model, backend, n_envs=n_envs, timestep=config.physics_dt)
        return cls(model, motion, physics, config)

    # ---------------------------------------------------------------- pure functions
    def _build_functions(self):
        R = self.ref
        T = R.qpos.shape[0]
        ref_qpos, ref_qvel = jnp.asarray(R.qpos), jnp.asarray(R.qvel)
        ref_bpos, ref_bquat = jnp.asarray(R.body_pos), jnp.asarray(R.body_quat)
        offset = jnp.asarray(R.offset)
        loop = R.loop
        jq, jd, ang_mask = self._jq, self._jd, jnp.asarray(self._angular)
        rb, rlin, rang = self._root_b, self._root_lin, self._root_ang
        free = self.model.root_kind == "free"
        root_q = self.model.free_root_qpos if free else None
        cfg = self.config
        fixed = self.fixed_base
        future = tuple(cfg.future_frames)
        n_future = len(future)
        max_steps = self._max_steps
        nu = self.model.n_muscles
        n_act = nu if self._basis is None else self._basis.shape[0]  # the policy's action size
        body_weight = self.model.body_weight_n  # observe_foot_contact: GRF in body weights
        if free:  # root_xcom: the inverted pendulum's eigenfrequency at the reference's height
            height = float(np.mean(R.qpos[:, root_q + 2]))
            gravity = float(abs(self.model.mj_model.opt.gravity[2]))
            inv_omega = float(np.sqrt(max(height, 1e-3) / max(gravity, 1e-9)))

        def frame(index):
            """Control-rate ``index`` -> (frame of one pass, completed passes): cycles wrap, a
            non-cyclic motion holds its last frame."""
            if loop:
                return index % T, index // T
            return jnp.minimum(index, T - 1), jnp.zeros_like(index)

        def ref_at(index):
            """Reference (qpos, qvel, body_pos, body_quat) at control-rate frame ``index``."""
            f, k = frame(index)
            shift = k[..., None] * offset  # [B, 3]
            qpos = ref_qpos[f]
            if free:
                qpos = qpos.at[..., root_q : root_q + 2].add(shift[..., :2])
            return qpos, ref_qvel[f], ref_bpos[f] + shift[..., None, :], ref_bquat[f]

        def xcom_error(sig: Signals, rqd, rbp):
            """The root's extrapolated horizontal error ``[B, 2]`` (world x, y; m)."""
            dxy = sig.body_pos[..., rb, :2] - rbp[..., rb, :2]
            return dxy + inv_omega * (sig.qvel[..., rlin[:2]] - rqd[..., rlin[:2]])

        def delta(sig: Signals, index):
            rq, rqd, rbp, rbq = ref_at(index)
            dq = jnp.abs(sig.qpos[..., jq] - rq[..., jq])
            dqd = jnp.abs(sig.qvel[..., jd] - rqd[..., jd])
            if fixed:  # a welded base has no root to err: body positions are world positions
                dbody = jnp.linalg.norm(sig.body_pos - rbp, axis=-1)
                droot_rot = jnp.zeros(dbody.shape[:-1])
                droot_pos = jnp.zeros(dbody.shape[:-1])
            else:
                rel = sig.body_pos - sig.body_pos[..., rb : rb + 1, :]
                rrel = rbp - rbp[..., rb : rb + 1, :]
                dbody = jnp.linalg.norm(rel - rrel, axis=-1)
                droot_rot = quat_angle(sig.body_quat[..., rb, :], rbq[..., rb, :])
                droot_pos = jnp.linalg.norm(sig.body_pos[..., rb, :] - rbp[..., rb, :], axis=-1)
            if len(rlin):
                dlin = jnp.linalg.norm(sig.qvel[..., rlin] - rqd[..., rlin], axis=-1)
            else:
                dlin = jnp.zeros_like(droot_pos)
            if len(rang):
                dang = jnp.linalg.norm(sig.qvel[..., rang] - rqd[..., rang], axis=-1)
            else:
                dang = jnp.zeros_like(droot_pos)
            if free:
                dxcom = jnp.linalg.norm(xcom_error(sig, rqd, rbp), axis=-1)
            else:
                dxcom = jnp.zeros_like(droot_pos)
            return jnp.concatenate(
                [
                    dq,
                    dqd,
                    dbody,
                    droot_rot[..., None],
                    droot_pos[..., None],
                    dlin[..., None],
                    dang[..., None],
                    dxcom[..., None],
                ],
                axis=-1,
            )

        nj, nb = len(jq), len(self.model.tracked_bodies)

        def metrics(d):
            dq = d[..., :nj]
            w = ang_mask.astype(d.dtype)
            joint_deg = jnp.degrees(jnp.sum(dq * w, axis=-1) / jnp.maximum(jnp.sum(w), 1.0))
            body_cm = 100.0 * jnp.mean(d[..., 2 * nj : 2 * nj + nb], axis=-1)
            rot_deg = jnp.degrees(d[..., 2 * nj + nb])
            trans_cm = 100.0 * d[..., 2 * nj + nb + 1]
            return jnp.stack([joint_deg, rot_deg, body_cm, trans_cm], axis=-1)

        reduce_bodies = jnp.max if cfg.termination_body == "max" else jnp.mean

        def terminated(sig: Signals, index, m, d):
            joint = m[..., 0] > cfg.termination_joint_deg
            if fixed:
                return joint
            _, _, rbp, _ = ref_at(index)
            dist = jnp.linalg.norm(sig.body_pos - rbp, axis=-1)
            out = (reduce_bodies(dist, axis=-1) > cfg.termination_distance_m) | joint
            if cfg.termination_xcom_m is not None:  # Δ's last component: root_xcom
                out = out | (d[..., -1] > cfg.termination_xcom_m)
            return out

        def observe(sig: Signals, index, action=None):
            q = sig.qpos[..., jq]
            qd = sig.qvel[..., jd]
            root_quat = sig.body_quat[..., rb, :]
            gravity = quat_rotate_inv(
                root_quat, jnp.broadcast_to(jnp.array([0.0, 0.0, -1.0]), root_quat.shape[:-1] + (3,))
            )
            root_pos = sig.body_pos[..., rb, :]
            parts = [
                q,
                0.1 * qd,
                root_pos[..., 2:3],
                gravity,
                0.1 * sig.qvel[..., rlin] if len(rlin) else jnp.zeros(q.shape[:-1] + (0,)),
                0.1 * sig.qvel[..., rang] if len(rang) else jnp.zeros(q.shape[:-1] + (0,)),
                sig.muscle_length,
                sig.muscle_velocity,
                sig.muscle_force / 1000.0,
                sig.activation,
            ]
            for k in future:
                rq, _, rbp, rbq = ref_at(index + k)
                parts += [
                    rq[..., jq] - q,
                    quat_rotate_inv(root_quat, rbp[..., rb, :] - root_pos),
                    quat_mul(quat_conj(root_quat), rbq[..., rb, :]),
                ]
            if loop:
                phase = 2 * jnp.pi * (index % T) / T
            else:
                phase = jnp.pi * jnp.minimum(index, T - 1) / max(T - 1, 1)
            parts += [jnp.sin(phase)[..., None], jnp.cos(phase)[..., None]]
            if cfg.observe_foot_contact:
                parts.append((sig.grf / body_weight).reshape(sig.grf.shape[:-2] + (-1,)))
            if cfg.observe_previous_action:
                if action is None:
                    action = jnp.full(q.shape[:-1] + (n_act,), cfg.reset_activation)
                parts.append(action)
            return jnp.concatenate([p.astype(jnp.float32) for p in parts], axis=-1)

        def post_step(sig: Signals, index, steps, action=None):
            d = delta(sig, index)
            m = metrics(d)
            term = terminated(sig, index, m, d)
            trunc = steps >= max_steps
            if not loop:
                trunc = trunc | (index >= T - 1)
            return observe(sig, index, action), d, m, term, trunc

        def transition(sig: Signals, index, steps, action, reset_index, reset_sig: Signals):
            """After a physics step: observation, Δ, metrics, termination; then the
            environments that ended restart at ``reset_index`` (their observation from
            ``reset_sig``, the signals of the reference-state table)."""
            index, steps = index + 1, steps + 1
            next_obs, d, m, term, trunc = post_step(sig, index, steps, action)
            trunc = trunc & ~term
            done = term | trunc
            start_sig = jax.tree_util.tree_map(lambda x: x[reset_index], reset_sig)
            start_obs = observe(start_sig, reset_index, None)
            obs = jnp.where(done[:, None], start_obs, next_obs)
            action = jnp.where(done[:, None], jnp.float32(cfg.reset_activation), action)
            index = jnp.where(done, reset_index, index)
            steps = jnp.where(done, 0, steps)
            sensed = jnp.where(done[:, None], sense(start_sig, reset_index), sense(sig, index))
            return obs, next_obs, d, m, term, trunc, index, steps, action, sensed

        lo = jnp.asarray(self.model.mj_model.actuator_lengthrange[:, 0], jnp.float32)
        span = jnp.asarray(
            np.maximum(np.diff(self.model.mj_model.actuator_lengthrange, axis=1)[:, 0], 1e-4), jnp.float32
        )

        ref_length = jnp.asarray(R.muscle_length, jnp.float32)
        lead = cfg.length_lead
        servo = Servo(cfg.length_kp, cfg.length_kd, span)
        reflex = None  # [T, muscle, 2]: EnvConfig.balance_reflex (emulator.simulation.servo)
        if cfg.balance_reflex > 0:
            table = balance_reflex_table(self.model, R.qpos, cfg.balance_reflex_joints)
            reflex = jnp.asarray(cfg.balance_reflex * table, jnp.float32)
        # the PD law inside the physics step: sense() adds the next frame's reference lengths
        per_substep = cfg.servo_rate == "physics" and cfg.action_space != "excitation"

        def sense(sig: Signals, index):
            """What a PD action needs: muscle lengths and velocities now and the reference's
            lengths ``length_lead`` steps ahead ``[B, 3 nu]`` (with ``servo_rate="physics"``
            also one step further, ``[B, 4 nu]``)."""
            f, _ = frame(index + lead)
            shift = 0.0  # the balance reflex: the swing leg's lengths by the extrapolated error
            if reflex is not None:
                shift = reflex_shift(reflex[f], xcom_error(sig, *ref_at(index)[1:3]))
            parts = [
                sig.muscle_length.astype(jnp.float32),
                sig.muscle_velocity.astype(jnp.float32),
                ref_length[f] + shift,
            ]
            if per_substep:
                parts.append(ref_length[frame(index + lead + 1)[0]] + shift)
            return jnp.concatenate(parts, axis=-1)

        def targets(action, sensed):
            """The PD law's target lengths ``[B, muscle]`` at the start of the step and, with a
            physics-rate servo, at its end."""
            action = jnp.clip(action, 0.0, 1.0)
            if cfg.action_space == "muscle_length":
                target = lo + action * span
                return target, target
            offset = (2.0 * action - 1.0) * cfg.length_residual * span  # around the reference's
            end = sensed[..., 3 * nu :] if per_substep else sensed[..., 2 * nu : 3 * nu]
            return sensed[..., 2 * nu : 3 * nu] + offset, end + offset

        basis = None if self._basis is None else jnp.asarray(self._basis, jnp.float32)

        def per_muscle(action):
            """The per-muscle action ``[B, muscle]`` of a policy action (``[B, synergy]`` with
            an ``action_basis``; see ``EnvConfig.action_basis``)."""
            if basis is None:
                return action
            action = jnp.clip(action, 0.0, 1.0)
            if cfg.action_space == "excitation":
                return jnp.clip(action @ basis, 0.0, 1.0)
            return jnp.clip(0.5 + (action - 0.5) @ basis, 0.0, 1.0)

        def excitation(action, sensed):
            """The excitations ``[B, muscle]`` a policy action asks for now (see ``action_space``;
            with a physics-rate servo, those of the step's first substep)."""
            action = per_muscle(action)
            if cfg.action_space == "excitation":
                return jnp.clip(action, 0.0, 1.0)
            return pd_excitation(
                servo, sensed[..., :nu], sensed[..., nu : 2 * nu], targets(action, sensed)[0], jnp
            )

        def drive(action, sensed):
            """What the physics step takes for an action: the excitations to hold, or (physics-
            rate servo) lengths, velocities and the start and end targets ``[B, 4 nu]``."""
            if not per_substep:
                return excitation(action, sensed)
            start, end = targets(per_muscle(action), sensed)
            return jnp.concatenate([sensed[..., : 2 * nu], start, end], axis=-1)

        def initial(index):
            rq, rqd, _, _ = ref_at(index)
            return rq, rqd

        self._ref_at = ref_at
        self._delta = jax.jit(delta)
        self._metrics = jax.jit(metrics)
        self._observe = jax.jit(observe)
        self._post_step = jax.jit(post_step)
        self._initial = jax.jit(initial)
        self.transition_fn = transition  # pure; the trainer fuses it into its own jitted step
        self._transition = jax.jit(transition)
        self.excitation_fn = excitation  # pure: (action, sensed) -> excitation
        self._excitation = jax.jit(excitation)
        self.drive_fn = drive  # pure: (action, sensed) -> what advance() takes
        self._drive = jax.jit(drive)
        # the physics backends take the same law's gains, with the span as float64 numpy
        self._servo = servo._replace(span=np.asarray(span, np.float64)) if per_substep else None
        self._sense = jax.jit(sense)
        self._obs_dim = (
            2 * nj + 1 + 3 + len(rlin) + len(rang) + 4 * nu + n_future * (nj + 3 + 4) + 2
            + (n_act if cfg.observe_previous_action else 0) + (3 * len(FOOT_ORDER) if cfg.observe_foot_contact else 0)
        )  # fmt: skip
        self._T = T

    # ---------------------------------------------------------------- public API
    @property
    def reference_frames(self) -> int:
        """Frames in one pass of the reference at the control rate."""
        return self._T

    def tracking_error(self, signals: Signals, index) -> jax.Array:
        """Δ ``[B, delta_dim]`` of ``signals`` against the reference at frame ``index [B]``."""
        return self._delta(signals, jnp.asarray(index))

    def metrics(self, delta) -> jax.Array:
        """The four metrics ``[B, 4]`` (deg, deg, cm, cm) from Δ."""
        return self._metrics(jnp.asarray(delta))

    def reference_state(self, index) -> np.ndarray:
        """Physics states ``[B, nstate]`` equal to the reference at frames ``index``."""
        rq, rqd = self._initial(jnp.asarray(index))
        rq, rqd = np.asarray(rq, dtype=float), np.asarray(rqd, dtype=float)
        act = np.full((rq.shape[0], self.layout.na), self.config.reset_activation)
        return self.layout.pack(rq, rqd, act)

    def reset_table(self) -> tuple[np.ndarray, Signals]:
        """Physics states ``[T, nstate]`` at every reference frame of one pass (what a reset
        at that frame starts from) and their signals (computed once, in batches of the
        backend's size, so resets during training need no physics call)."""
        if getattr(self, "_table", None) is None:
            states = self.reference_state(np.arange(self._T))
            B = self.n_envs
            chunks = []
            for i in range(0, self._T, B):
                part = states[i : i + B]
                pad = np.concatenate([part, np.repeat(part[-1:], B - len(part), axis=0)])
                sig = self.physics.forward(self._to_backend(pad))
                chunks.append(jax.tree_util.tree_map(lambda x, n=len(part): np.asarray(x)[:n], sig))
            sig = Signals(*[jnp.asarray(np.concatenate(xs)) for xs in zip(*chunks, strict=True)])
            self._table = (states, sig)
        return self._table

    def step_autoreset(self, state: EnvState, action, reset_index) -> Transition:
        """One control step; environments that terminate or truncate restart at the reference
        frames ``reset_index [B]`` (from :meth:`reset_table`, no physics call)."""
        states, table_sig = self.reset_table()
        action = jnp.clip(jnp.asarray(action, dtype=jnp.float32), 0.0, 1.0)
        phys, sig = self.advance(state.physics, self._drive(action, state.sensed))
        reset_index = jnp.asarray(reset_index, dtype=jnp.int32)
        obs, next_obs, d, m, term, trunc, index, steps, act, sensed = self._transition(
            sig, state.index, state.steps, action, reset_index, table_sig
        )
        phys = self.restart(phys, term | trunc, reset_index)
        return Transition(EnvState(phys, index, steps, act, sensed), obs, next_obs, d, m, term, trunc)

    def advance(self, phys, drive):
        """One control step of physics for ``drive`` (from :attr:`drive_fn`): the excitations
        held over the substeps, or the muscle-length servo run at every substep."""
        if self._servo is None:
            return self.physics.step(phys, self._to_backend(drive), self.n_substeps)
        return self.physics.step_servo(phys, self._to_backend(drive), self.n_substeps, self._servo)

    def restart(self, phys, done, reset_index):
        """``phys [B, nstate]`` with the rows where ``done`` replaced by the reference-state table
        at ``reset_index``."""
        states = self.reset_table()[0]
        done = np.asarray(done)
        if not done.any():
            return phys
        if self.physics.name == "mjx":
            return jnp.where(jnp.asarray(done)[:, None], jnp.asarray(states)[reset_index], phys)
        phys = np.array(phys, copy=True)
        phys[done] = states[np.asarray(reset_index)[done]]
        return phys

    def push_kicks(self, key, shape: tuple[int, ...]) -> jax.Array:
        """Random pushes ``[*shape, 2]`` (horizontal velocity changes, m/s; see
        ``EnvConfig.push_speed_mps``): each entry is zero, or with probability ``control_dt /
        push_interval_s`` a change of ``push_speed_mps`` in a uniformly random direction."""
        cfg = self.config
        k_hit, k_dir = jax.random.split(key)
        hit = jax.random.uniform(k_hit, shape) < self.control_dt / cfg.push_interval_s
        angle = jax.random.uniform(k_dir, shape, maxval=2 * jnp.pi)
        return cfg.push_speed_mps * hit[..., None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)

    def push(self, phys, kick):
        """``phys [B, nstate]`` with every body's horizontal velocity changed by ``kick [B, 2]``
        (m/s, world x and y; through the free root's linear velocity, which every body carries)."""
        cols = 1 + self.layout.nq + self._root_lin[:2]
        if self.physics.name == "mjx":
            return jnp.asarray(phys).at[:, cols].add(jnp.asarray(kick, dtype=jnp.asarray(phys).dtype))
        phys = np.array(phys, copy=True)
        phys[:, cols] += np.asarray(kick)
        return phys

    def assist_kick(self, phys, index, strength: float = 1.0):
        """The root assist's horizontal velocity changes ``[B, 2]`` (m/s, world x and y; see
        ``EnvConfig.root_assist_hz``) for states ``phys [B, nstate]`` at reference frames
        ``index [B]``, at ``strength`` (1: full; the training loop fades it), for :meth:`push`."""
        w = 2 * np.pi * self.config.root_assist_hz
        rq, rqd = (np.asarray(x) for x in self._initial(jnp.asarray(index)))
        phys = np.asarray(phys)
        q, qd = (
            phys[:, 1 : 1 + self.layout.nq],
            phys[:, 1 + self.layout.nq : 1 + self.layout.nq + self.layout.nv],
        )
        pos, vel = self._root_lin_q[:2], self._root_lin[:2]
        e_pos, e_vel = q[:, pos] - rq[:, pos], qd[:, vel] - rqd[:, vel]
        return -strength * self.control_dt * (w * w * e_pos + 2 * w * e_vel)

    def _to_backend(self, x):
        return jnp.asarray(x) if self.physics.name == "mjx" else np.asarray(x)

    def start_frames(self, key, n: int, probs=None) -> jax.Array:
        """``n`` random start frames, uniform or drawn with ``probs [T]`` (one per reference
        frame, summing to 1; see :func:`focused_start_probs`); a non-cyclic motion never starts
        on its last frame."""
        if probs is None:
            return jax.random.randint(key, (n,), 0, self._start_high)
        return jax.random.choice(key, self._T, (n,), p=jnp.asarray(probs)).astype(jnp.int32)

    @property
    def _start_high(self) -> int:
        """One past the last frame an episode may start at (the one rule for start frames)."""
        return self._T if self.ref.loop else max(self._T - 1, 1)

    @property
    def start_frame_allowed(self) -> np.ndarray:
        """``[T]`` bool: the reference frames an episode may start at (every frame of a cycle;
        all but the last of a motion that ends)."""
        return np.arange(self._T) < self._start_high

    def _random_index(self, key) -> jax.Array:
        return self.start_frames(key, self.n_envs)

    def reset(self, key, index=None, kick=None, physics=None) -> tuple[EnvState, jax.Array]:
        """Reference-state initialisation at random frames (or the given ``index [B]``), the
        horizontal velocity changed by ``kick [B, 2]`` (m/s, :meth:`push`) if given; ``physics
        [B, nstate]`` starts from those states instead of the reference's (at frames ``index``)."""
        if index is None:
            index = self._random_index(key)
        index = jnp.asarray(index, dtype=jnp.int32)
        phys = self.reference_state(index) if physics is None else np.asarray(physics, dtype=float)
        phys = self._to_backend(phys if kick is None else self.push(phys, kick))
        sig = self.physics.forward(phys)
        n = index.shape[0]
        state = EnvState(phys, index, jnp.zeros_like(index), self._reset_action(n), self._sense(sig, index))
        return state, self._observe(sig, index)

    def _reset_action(self, n: int) -> jax.Array:
        return jnp.full((n, self.action_dim), self.config.reset_activation, dtype=jnp.float32)

    def reset_where(self, state: EnvState, mask, key=None, index=None) -> tuple[EnvState, jax.Array | None]:
        """Reset only the environments where ``mask [B]`` is true (at random frames from ``key``,
        or at ``index [B]``); returns the new state and every environment's observation."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return state, None
        index = np.asarray(self._random_index(key) if index is None else index)
        new_index = np.where(mask, index, np.asarray(state.index))
        fresh = self.reference_state(new_index)
        phys = np.array(state.physics, dtype=float, copy=True)
        phys[mask] = fresh[mask]
        sig = self.physics.forward(self._to_backend(phys))
        prev = state.action if state.action is not None else self._reset_action(len(mask))
        m = jnp.asarray(mask)[:, None]
        sensed = self._sense(sig, jnp.asarray(new_index, dtype=jnp.int32))
        st = EnvState(
            self._to_backend(phys),
            jnp.asarray(new_index, dtype=jnp.int32),
            jnp.where(jnp.asarray(mask), 0, state.steps),
            jnp.where(m, self._reset_action(len(mask)), prev),
            sensed if state.sensed is None else jnp.where(m, sensed, state.sensed),
        )
        return st, self._observe(sig, st.index, st.action)

    def excitation(self, state: EnvState, action) -> jax.Array:
        """The excitations ``[B, muscle]`` the policy action ``[B, action_dim]`` asks for in
        ``state`` (the action itself, the muscle-length PD law, through the synergy basis when
        there is one; see ``action_space`` and ``action_basis``)."""
        return self._excitation(jnp.asarray(action, dtype=jnp.float32), self._sensed(state))

    def _sensed(self, state: EnvState):
        """``state.sensed``, which the length action spaces' PD law needs."""
        if self.config.action_space != "excitation" and state.sensed is None:
            raise ValueError("a muscle_length action needs a state from reset() or step()")
        return state.sensed

    def step(self, state: EnvState, action) -> StepResult:
        """Apply the policy's ``action [B, action_dim]`` in [0, 1] for one control step (excitations,
        or target lengths mapped to excitations; ``signals.excitation`` is what was applied)."""
        action = jnp.clip(jnp.asarray(action, dtype=jnp.float32), 0.0, 1.0)
        phys, sig = self.advance(state.physics, self._drive(action, self._sensed(state)))
        index = state.index + 1
        steps = state.steps + 1
        obs, d, m, term, trunc = self._post_step(sig, index, steps, action)
        return StepResult(
            EnvState(phys, index, steps, action, self._sense(sig, index)), obs, d, m, term, trunc, sig
        )


def focused_start_probs(failure_rate, focus: float, allowed=None) -> np.ndarray:
    """Start-frame probabilities ``[..., T]`` for ``EnvConfig.start_focus``: a share ``1 -
    focus`` spread evenly over the allowed frames, the share ``focus`` in proportion to how
    often the episodes started at each frame fail (their terminations per control step lived,
    so an episode cut short by the end of the motion or ``max_episode_s`` is no failure). A
    frame not measured yet (NaN) counts as the least failing one measured; with no failure at
    all the share ``focus`` is uniform too.

    Args:
        failure_rate: ``[..., T]`` terminations per control step (>= 0) of the episodes
            started at each reference frame, NaN where none has been measured.
        focus: in [0, 1].
        allowed: ``[T]`` bool, the frames an episode may start at (default: all).
    """
    rate = np.asarray(failure_rate, dtype=float)
    allowed = np.ones(rate.shape[-1], dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    uniform = np.where(allowed, 1.0, 0.0) / allowed.sum()
    measured = np.isfinite(rate) & allowed
    lowest = np.min(np.where(measured, rate, np.inf), axis=-1, keepdims=True)
    filled = np.where(measured, rate, lowest)  # a row with nothing measured: inf, no share
    weight = np.where(allowed & np.isfinite(filled), filled, 0.0)
    total = weight.sum(axis=-1, keepdims=True)
    focused = np.where(total > 0, weight / np.where(total > 0, total, 1.0), uniform)
    return (1.0 - focus) * uniform + focus * focused


def delta_names(model: MuscleModel) -> tuple[str, ...]:
    """Names of Δ's components, in order."""
    tj = [j.name for j in model.tracked_joints]
    return (
        tuple(f"joint_angle/{n}" for n in tj)
        + tuple(f"joint_velocity/{n}" for n in tj)
        + tuple(f"body_position/{b}" for b in model.tracked_bodies)
        + ("root_rotation", "root_translation", "root_linear_velocity", "root_angular_velocity", "root_xcom")
    )
