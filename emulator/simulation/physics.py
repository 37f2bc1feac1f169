"""Two physics backends behind one interface.

``cpu``
    Native MuJoCo. The batch of B environments is stepped by a thread pool
    (``mujoco.rollout.Rollout``, one thread per core by default). The model is
    *instrumented* with sensors (muscle force/length/velocity, tracked body poses, one
    net-contact-force sensor per foot against the world) so every signal comes back from the
    C thread pool in one contiguous array, with no per-environment Python work.
``mjx``
    MuJoCo MJX, vmapped over the batch and jit-compiled; ``impl="warp"`` (MuJoCo Warp) when an
    NVIDIA GPU and the warp package are present, the JAX implementation otherwise. Ground
    reaction forces are summed from the contact list, since MJX rejects contact sensors.

Both backends use one *state* layout: a ``[B, nstate]`` float array holding
``[time, qpos, qvel, act]`` (MuJoCo's ``mjSTATE_FULLPHYSICS`` for these models). A state is a
plain array, so the environment state is explicit and can be checkpointed or compared.
Each call starts the constraint solver cold (no warm-start carried between calls), which
makes a step a pure function of (state, control) on both backends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from emulator.models import ModelError, MuscleModel, _compile
from emulator.schema import FOOT_ORDER
from emulator.simulation.signals import Servo, Signals, pd_excitation

__all__ = [
    "BACKENDS",
    "CpuPhysics",
    "MjxPhysics",
    "Physics",
    "StateLayout",
    "default_backend",
    "make_physics",
]

BACKENDS = ("cpu", "mjx")


@dataclass(frozen=True)
class StateLayout:
    """Offsets of ``[time, qpos, qvel, act]`` in a state vector."""

    nq: int
    nv: int
    na: int

    @property
    def nstate(self) -> int:
        return 1 + self.nq + self.nv + self.na

    def pack(self, qpos, qvel=None, act=None, time=None, xp=np):
        """Build ``[B, nstate]`` states from ``qpos [B, nq]`` (qvel, act default to zero)."""
        qpos = xp.atleast_2d(xp.asarray(qpos, dtype=float))
        b = qpos.shape[0]
        qvel = xp.zeros((b, self.nv)) if qvel is None else xp.atleast_2d(xp.asarray(qvel, dtype=float))
        act = xp.zeros((b, self.na)) if act is None else xp.atleast_2d(xp.asarray(act, dtype=float))
        t = xp.zeros((b, 1)) if time is None else xp.reshape(xp.asarray(time, dtype=float), (b, 1))
        return xp.concatenate([t, qpos, qvel, act], axis=1)

    def time(self, s):
        return s[..., 0]

    def qpos(self, s):
        return s[..., 1 : 1 + self.nq]

    def qvel(self, s):
        return s[..., 1 + self.nq : 1 + self.nq + self.nv]

    def act(self, s):
        return s[..., 1 + self.nq + self.nv : self.nstate]


def _check_state_layout(m: mujoco.MjModel) -> StateLayout:
    layout = StateLayout(m.nq, m.nv, m.na)
    full = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
    if full != layout.nstate:
        raise ModelError(
            "model has physics state beyond time/qpos/qvel/act (mocap bodies, plugins or "
            f"history: {full} vs {layout.nstate} values); not supported"
        )
    return layout


class Physics(Protocol):
    """What every backend provides. ``state`` is ``[B, nstate]``, ``ctrl`` is ``[B, muscle]``."""

    model: MuscleModel
    n_envs: int
    layout: StateLayout
    name: str
    timestep: float  # the physics step, s (the model's own unless make_physics was given one)

    def step(self, state, ctrl, n_substeps: int = 1) -> tuple[object, Signals]:
        """Advance ``n_substeps`` physics steps holding ``ctrl``; return new state and signals."""

    def step_servo(self, state, drive, n_substeps: int, servo: Servo) -> tuple[object, Signals]:
        """Advance ``n_substeps`` physics steps, each with the excitations of ``servo``'s PD law
        on the lengths and velocities sensed at the step before. ``drive [B, 4 muscle]``:
        lengths and velocities sensed now, the target lengths at the first substep and at the
        end (in between: linear). Signals carry the mean excitation over the substeps."""

    def forward(self, state) -> Signals:
        """Signals at ``state`` without advancing time (zero excitation)."""


def default_backend() -> str:
    """``mjx`` when JAX sees a GPU, ``cpu`` otherwise."""
    try:
        import jax

        if any(d.platform == "gpu" for d in jax.devices()):
            return "mjx"
    except Exception:  # no JAX GPU runtime
        pass
    return "cpu"


def make_physics(
    model: MuscleModel,
    backend: str | None = None,
    *,
    n_envs: int,
    nthread: int | None = None,
    impl: str | None = None,
    x64: bool = False,
    timestep: float | None = None,
) -> Physics:
    """Create a physics backend for ``n_envs`` environments of ``model``.

    Args:
        backend: ``"cpu"``, ``"mjx"`` or None for :func:`default_backend`.
        timestep: the physics step (s) instead of the model's own (``EnvConfig.physics_dt``).
        nthread: cpu backend threads (default: number of cores).
        impl: mjx implementation (``"jax"`` or ``"warp"``); default warp on NVIDIA GPUs when
            MuJoCo Warp is installed, JAX otherwise.
        x64: run MJX in float64 (for validation; default float32).
    """
    backend = backend or default_backend()
    if backend == "cpu":
        return CpuPhysics(model, n_envs=n_envs, nthread=nthread, timestep=timestep)
    if backend == "mjx":
        return MjxPhysics(model, n_envs=n_envs, impl=impl, x64=x64, timestep=timestep)
    raise ValueError(f"unknown physics backend {backend!r}; expected one of {BACKENDS}")


# ----------------------------------------------------------------------------------- cpu


def _spec(model: MuscleModel, timestep: float | None) -> mujoco.MjSpec:
    """The model's spec, at ``timestep`` (s) when given (both backends compile from it)."""
    spec = model.spec()
    if timestep is not None:
        if not timestep > 0:
            raise ValueError(f"timestep must be > 0 s, got {timestep}")
        spec.option.timestep = float(timestep)
    return spec


def _instrument(model: MuscleModel, timestep: float | None = None) -> tuple[mujoco.MjModel, dict[str, slice]]:
    """Compile the model with sensors appended for every signal; return sensordata slices."""
    spec = _spec(model, timestep)
    S, O = mujoco.mjtSensor, mujoco.mjtObj
    n0 = len(spec.sensors)
    groups: list[tuple[str, int]] = []

    def add(kind, objtype, objname, prefix, **kw):
        return spec.add_sensor(
            name=f"_emu_{prefix}_{objname}", type=kind, objtype=objtype, objname=objname, **kw
        )

    for key, kind in (
        ("muscle_force", S.mjSENS_ACTUATORFRC),
        ("muscle_length", S.mjSENS_ACTUATORPOS),
        ("muscle_velocity", S.mjSENS_ACTUATORVEL),
    ):
        for mus in model.muscles:
            add(kind, O.mjOBJ_ACTUATOR, mus, key)
        groups.append((key, len(model.muscles)))
    for body in model.tracked_bodies:
        add(S.mjSENS_FRAMEPOS, O.mjOBJ_XBODY, body, "pos")
    groups.append(("body_pos", 3 * len(model.tracked_bodies)))
    for body in model.tracked_bodies:
        add(S.mjSENS_FRAMEQUAT, O.mjOBJ_XBODY, body, "quat")
    groups.append(("body_quat", 4 * len(model.tracked_bodies)))
    nfoot = 0
    for side in FOOT_ORDER:
        for body in model.feet.get(side, ()):
            s = add(
                S.mjSENS_CONTACT, O.mjOBJ_XBODY, body, f"grf_{side}", reftype=O.mjOBJ_BODY, refname="world"
            )
            # dataspec = force and position; reduce = net force over all matching contacts; 1 slot.
            # MuJoCo reports the force the subtree exerts on the world (world frame) and, with
            # this reduction, the normal-force-weighted centroid of the contact points (the
            # centre of pressure; checked against mj_contactForce by hand: within 1 mm).
            s.intprm[:3] = [(1 << 1) | (1 << 4), 3, 1]
            nfoot += 1
    groups.append(("grf_raw", 6 * nfoot))
    m = _compile(spec, model.source)
    start = int(m.sensor_adr[n0]) if m.nsensor > n0 else m.nsensordata
    slices = {}
    for key, n in groups:
        slices[key] = slice(start, start + n)
        start += n
    return m, slices


class CpuPhysics:
    """Native MuJoCo, B environments stepped by ``mujoco.rollout``'s thread pool."""

    name = "cpu"

    def __init__(
        self, model: MuscleModel, *, n_envs: int, nthread: int | None = None, timestep: float | None = None
    ):
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.model = model
        self.n_envs = n_envs
        self.nthread = int(nthread or os.cpu_count() or 1)
        self.mj_model, self._slices = _instrument(model, timestep)
        self.timestep = float(self.mj_model.opt.timestep)
        self.layout = _check_state_layout(self.mj_model)
        self._datas = [mujoco.MjData(self.mj_model) for _ in range(max(self.nthread, 1))]
        self._pool = mj_rollout.Rollout(nthread=self.nthread if self.nthread > 1 else 0)
        self._foot_groups = [
            (FOOT_ORDER.index(side), len(model.feet.get(side, ())))
            for side in FOOT_ORDER
            if model.feet.get(side)
        ]
        self._nsd = self.mj_model.nsensordata
        self._fwd_data = mujoco.MjData(self.mj_model)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self):  # the pool's threads must not outlive the object
        try:
            self.close()
        except Exception:
            pass

    def _signals(self, state: np.ndarray, ctrl: np.ndarray, sd: np.ndarray) -> Signals:
        b = state.shape[0]
        sl = self._slices
        nb = len(self.model.tracked_bodies)
        raw = sd[:, sl["grf_raw"]].reshape(b, -1, 6)
        n_feet = len(FOOT_ORDER) if self._foot_groups else 0
        grf = np.zeros((b, n_feet, 3))
        cop = np.full((b, n_feet, 3), np.nan)
        k = 0
        for foot_index, count in self._foot_groups:
            force, pos = -raw[:, k : k + count, :3], raw[:, k : k + count, 3:]  # force ON the foot
            grf[:, foot_index] = force.sum(axis=1)
            weight = np.abs(force[..., 2])  # each body's centroid, weighted by its normal load
            total = weight.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                cop[:, foot_index] = np.where(
                    total[:, None] > 0, (weight[..., None] * pos).sum(axis=1) / total[:, None], np.nan
                )
            k += count
        return Signals(
            qpos=self.layout.qpos(state),
            qvel=self.layout.qvel(state),
            excitation=np.asarray(ctrl, dtype=float),
            activation=self.layout.act(state),
            muscle_force=-sd[:, sl["muscle_force"]],
            muscle_length=sd[:, sl["muscle_length"]],
            muscle_velocity=sd[:, sl["muscle_velocity"]],
            body_pos=sd[:, sl["body_pos"]].reshape(b, nb, 3),
            body_quat=sd[:, sl["body_quat"]].reshape(b, nb, 4),
            grf=grf,
            cop=cop,
        )

    def step(self, state, ctrl, n_substeps: int = 1, *, all_substeps: bool = False):
        """Step every environment ``n_substeps`` times with ``ctrl`` held.

        Args:
            state: ``[B, nstate]``.
            ctrl: ``[B, muscle]`` excitations (clipped to [0, 1] by MuJoCo's ctrlrange).
            all_substeps: also return every substep's signals (``[B, n_substeps, ...]``).
        """
        state = np.ascontiguousarray(state, dtype=np.float64)
        ctrl = np.clip(np.ascontiguousarray(ctrl, dtype=np.float64), 0.0, 1.0)
        b = state.shape[0]
        if ctrl.shape != (b, self.mj_model.nu):
            raise ValueError(f"ctrl must have shape {(b, self.mj_model.nu)}, got {ctrl.shape}")
        control = np.ascontiguousarray(np.broadcast_to(ctrl[:, None, :], (b, n_substeps, ctrl.shape[1])))
        out_state = np.empty((b, n_substeps, self.layout.nstate))
        out_sd = np.empty((b, n_substeps, self._nsd))
        self._pool.rollout(
            [self.mj_model] * b,
            self._datas,
            state,
            control,
            nstep=n_substeps,
            state=out_state,
            sensordata=out_sd,
            skip_checks=True,
        )
        new_state = out_state[:, -1]
        if all_substeps:
            flat = self._signals(
                out_state.reshape(b * n_substeps, -1),
                control.reshape(b * n_substeps, -1),
                out_sd.reshape(b * n_substeps, -1),
            )
            per = Signals(*[x.reshape(b, n_substeps, *x.shape[1:]) for x in flat])
            return new_state, per
        return new_state, self._signals(new_state, ctrl, out_sd[:, -1])

    def step_servo(self, state, drive, n_substeps: int, servo: Servo):
        """See :meth:`Physics.step_servo`: one ``mujoco.rollout`` call per substep, the PD law
        in numpy between them."""
        state = np.ascontiguousarray(state, dtype=np.float64)
        b, nu = state.shape[0], self.mj_model.nu
        drive = np.asarray(drive, dtype=np.float64).reshape(b, 4, nu)
        length, velocity, start, end = drive[:, 0], drive[:, 1], drive[:, 2], drive[:, 3]
        sl = self._slices
        total = np.zeros((b, nu))
        out_state = np.empty((b, 1, self.layout.nstate))
        out_sd = np.empty((b, 1, self._nsd))
        for k in range(n_substeps):
            w = k / n_substeps
            ctrl = pd_excitation(servo, length, velocity, (1.0 - w) * start + w * end, np)
            total += ctrl
            self._pool.rollout(
                [self.mj_model] * b,
                self._datas,
                state,
                np.ascontiguousarray(ctrl[:, None, :]),
                nstep=1,
                state=out_state,
                sensordata=out_sd,
                skip_checks=True,
            )
            state = np.ascontiguousarray(out_state[:, 0])
            length, velocity = out_sd[:, 0, sl["muscle_length"]], out_sd[:, 0, sl["muscle_velocity"]]
        return state, self._signals(state, total / n_substeps, out_sd[:, 0])

    def forward(self, state) -> Signals:
        """Signals at each state (``mj_forward`` per environment; used at resets)."""
        state = np.atleast_2d(np.asarray(state, dtype=np.float64))
        b = state.shape[0]
        sd = np.empty((b, self._nsd))
        d = self._fwd_data
        for i in range(b):
            mujoco.mj_setState(self.mj_model, d, state[i], mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
            d.ctrl[:] = 0.0
            d.qacc_warmstart[:] = 0.0
            mujoco.mj_forward(self.mj_model, d)
            sd[i] = d.sensordata
        return self._signals(state, np.zeros((b, self.mj_model.nu)), sd)


# ----------------------------------------------------------------------------------- mjx


def _warp_available() -> bool:
    try:
        import jax

        if not any(d.platform == "gpu" for d in jax.devices()):
            return False
        import warp  # noqa: F401

        return True
    except Exception:
        return False


class MjxPhysics:
    """MuJoCo MJX inside ``jit``; the whole batch is one vmapped program."""

    name = "mjx"

    def __init__(
        self,
        model: MuscleModel,
        *,
        n_envs: int,
        impl: str | None = None,
        x64: bool = False,
        timestep: float | None = None,
    ):
        """``x64=True`` runs MJX in float64 (validation against native MuJoCo); the default is
        JAX's float32, what GPU training uses."""
        import jax

        self.x64 = bool(x64)
        with jax.enable_x64(self.x64):
            self._build(model, n_envs, impl, timestep)

    def _build(self, model: MuscleModel, n_envs: int, impl: str | None, timestep: float | None):
        import jax
        import jax.numpy as jnp
        from mujoco import mjx

        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.model = model
        self.n_envs = n_envs
        self.impl = impl or ("warp" if _warp_available() else "jax")
        spec = _spec(model, timestep)
        for s in list(spec.sensors):  # MJX rejects several sensor types; signals come from data
            spec.delete(s)
        m = _compile(spec, model.source)
        self.mj_model = m
        self.timestep = float(m.opt.timestep)
        self.layout = _check_state_layout(m)
        try:
            self.mx = mjx.put_model(m, impl=self.impl)
        except Exception as e:
            # NotImplementedError's text already names the feature; other errors need their type
            detail = str(e) if isinstance(e, NotImplementedError) else f"{type(e).__name__}: {e}"
            raise ModelError(
                f"{model.source}: MJX ({self.impl}) cannot take model {model.name!r}: {detail}"
            ) from e
        self._d0 = mjx.make_data(self.mx)
        body_ids = np.array([m.body(b).id for b in model.tracked_bodies], dtype=int)
        # side index of each geom on a foot subtree (-1 elsewhere), and world-static geoms
        foot_of_geom = np.full(m.ngeom, -1, dtype=int)
        for side in FOOT_ORDER:
            for top in model.feet.get(side, ()):
                top_id = m.body(top).id
                for g in range(m.ngeom):
                    b = int(m.geom_bodyid[g])
                    while b > 0 and b != top_id:
                        b = int(m.body_parentid[b])
                    if b == top_id:
                        foot_of_geom[g] = FOOT_ORDER.index(side)
        world_geom = np.array([m.body_weldid[m.geom_bodyid[g]] == 0 for g in range(m.ngeom)])
        n_feet = len(FOOT_ORDER) if model.feet else 0
        L = self.layout
        mx = self.mx
        d0 = self._d0

        def grf_of(d):
            """Net force on each foot and its centre of pressure (normal-force-weighted contact
            centroid, as the cpu backend's contact sensor reports it)."""
            if n_feet == 0:
                return jnp.zeros((0, 3)), jnp.zeros((0, 3))
            impl = d._impl
            con = impl.contact
            total = jnp.zeros((n_feet, 3))
            moment = jnp.zeros((n_feet, 3))
            load = jnp.zeros(n_feet)
            dims = np.unique(np.asarray(con.dim)) if np.asarray(con.dim).size else []
            from mujoco.mjx._src import support

            for dim in dims:
                force, idx = support.contact_force_dim(mx, d, int(dim))
                if len(idx) == 0:
                    continue
                frame = con.frame[idx].reshape(-1, 3, 3)
                f_world = jnp.einsum("ni,nij->nj", force[:, :3], frame)  # force geom1 -> geom2
                g1, g2 = con.geom1[idx], con.geom2[idx]
                fog = jnp.asarray(foot_of_geom)
                wg = jnp.asarray(world_geom)
                valid = con.dist[idx] < con.includemargin[idx]
                for k in range(n_feet):
                    on2 = (fog[g2] == k) & wg[g1] & valid
                    on1 = (fog[g1] == k) & wg[g2] & valid
                    sign = on2.astype(float) - on1.astype(float)
                    total = total.at[k].add(jnp.sum(sign[:, None] * f_world, axis=0))
                    w = jnp.abs(sign) * jnp.abs(force[:, 0])  # normal force of this foot's contacts
                    load = load.at[k].add(jnp.sum(w))
                    moment = moment.at[k].add(jnp.sum(w[:, None] * con.pos[idx], axis=0))
            cop = jnp.where(load[:, None] > 0, moment / jnp.maximum(load, 1e-12)[:, None], jnp.nan)
            return total, cop

        def field(d, name):
            impl = getattr(d, "_impl", None)
            return getattr(impl, name) if hasattr(impl, name) else getattr(d, name)

        def signals_of(d, ctrl):
            grf = grf_of(d)
            return Signals(
                qpos=d.qpos,
                qvel=d.qvel,
                excitation=ctrl,
                activation=d.act,
                muscle_force=-d.actuator_force,
                muscle_length=field(d, "actuator_length"),
                muscle_velocity=field(d, "actuator_velocity"),
                body_pos=d.xpos[body_ids],
                body_quat=d.xquat[body_ids],
                grf=grf[0],
                cop=grf[1],
            )

        def load(state, ctrl):
            return d0.replace(
                time=state[0],
                qpos=state[1 : 1 + L.nq],
                qvel=state[1 + L.nq : 1 + L.nq + L.nv],
                act=state[1 + L.nq + L.nv :],
                ctrl=ctrl,
            )

        def pack(d):
            return jnp.concatenate([jnp.reshape(d.time, (1,)), d.qpos, d.qvel, d.act])

        def one_step(state, ctrl, n_substeps):
            ctrl = jnp.clip(ctrl, 0.0, 1.0)
            d = load(state, ctrl)
            d = mjx.step(mx, d)
            if n_substeps > 1:  # after one step the carry has MJX's own dtypes
                d = jax.lax.fori_loop(0, n_substeps - 1, lambda _, dd: mjx.step(mx, dd), d)
            return pack(d), signals_of(d, ctrl)

        def one_servo_step(state, drive, n_substeps, kp, kd, span):
            servo = Servo(kp, kd, span)
            length, velocity, start, end = drive[0], drive[1], drive[2], drive[3]

            def sub(k, d, length, velocity):
                w = k / n_substeps
                ctrl = pd_excitation(servo, length, velocity, (1.0 - w) * start + w * end, jnp)
                d = mjx.step(mx, d.replace(ctrl=ctrl))
                return d, field(d, "actuator_length"), field(d, "actuator_velocity"), ctrl

            d, length, velocity, total = sub(0, load(state, jnp.zeros(m.nu)), length, velocity)
            if n_substeps > 1:  # after one step the carry has MJX's own dtypes

                def body(k, carry):
                    d, length, velocity, total = carry
                    d, length, velocity, ctrl = sub(k, d, length, velocity)
                    return d, length, velocity, total + ctrl

                d, length, velocity, total = jax.lax.fori_loop(
                    1, n_substeps, body, (d, length, velocity, total)
                )
            return pack(d), signals_of(d, total / n_substeps)

        def one_forward(state):
            d = mjx.forward(mx, load(state, jnp.zeros(m.nu)))
            return signals_of(d, jnp.zeros(m.nu))

        self._step = jax.jit(jax.vmap(one_step, in_axes=(0, 0, None)), static_argnums=2)
        self._forward = jax.jit(jax.vmap(one_forward))
        self._servo_step = jax.jit(
            jax.vmap(one_servo_step, in_axes=(0, 0, None, None, None, None)), static_argnums=(2, 3, 4)
        )
        self.step_one = one_step  # un-batched, for callers that vmap/scan themselves

    def step(self, state, ctrl, n_substeps: int = 1):
        import jax

        with jax.enable_x64(self.x64):
            return self._step(state, ctrl, int(n_substeps))

    def step_servo(self, state, drive, n_substeps: int, servo: Servo):
        """See :meth:`Physics.step_servo`: the PD law inside the jitted substep loop."""
        import jax
        import jax.numpy as jnp

        b = state.shape[0]
        with jax.enable_x64(self.x64):
            drive = jnp.reshape(jnp.asarray(drive), (b, 4, self.mj_model.nu))
            span = jnp.asarray(servo.span, dtype=drive.dtype)
            return self._servo_step(state, drive, int(n_substeps), float(servo.kp), float(servo.kd), span)

    def forward(self, state) -> Signals:
        import jax

        with jax.enable_x64(self.x64):
            return self._forward(state)
