"""Deterministic rollouts of trained policies: the named time series the store will hold.

Every seed's policy (mean action, no exploration noise) starts at the reference's first frame
and runs ``n_cycles`` passes of the motion in one physics batch (one environment per seed).
Episodes are not reset: a policy that falls keeps being recorded, and ``terminated`` marks the
control steps at which the environment's termination test fired.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from emulator.motion.reference import _free_root_adr
from emulator.schema import FOOT_ORDER, METRIC_NAMES, ROLLOUT_DIMS, ROLLOUT_UNITS
from emulator.simulation.env import EnvConfig, TrackingEnv

__all__ = ["ROLLOUT_UNITS", "RolloutResult", "RolloutSchema", "reference_qpos", "rollout", "rollout_schema"]


@dataclass(frozen=True)
class RolloutResult:
    """Arrays ``[seed, time, ...]`` (reference arrays ``[time, ...]``) plus the names along each axis.

    Attributes:
        data: name -> array (see :data:`ROLLOUT_UNITS`; missing for models without a free root
            or without feet).
        dims: name -> dimension names (``("seed", "time", "muscle")``...).
        coords: dimension -> names/values (``muscle``, ``joint``, ``foot``, ``axis``, ``time``...).
        control_dt: seconds per step.
    """

    data: dict = field(repr=False)
    dims: dict = field(repr=False)
    coords: dict = field(repr=False)
    control_dt: float = 0.01


@dataclass(frozen=True)
class RolloutSchema:
    """What :func:`rollout` will return, known before training (for writing a store template).

    Attributes:
        dims: name -> dimension names, only for the series this model produces.
        coords: dimension -> names/values (``time`` in seconds).
        control_dt: seconds per step.
        n_steps: length of the ``time`` axis.
    """

    dims: dict = field(repr=False)
    coords: dict = field(repr=False)
    control_dt: float
    n_steps: int
    reference: dict = field(repr=False, default_factory=dict)


def _n_steps(env: TrackingEnv, loop: bool, n_cycles: float, start_frame: int) -> int:
    return int(round(n_cycles * env.reference_frames)) if loop else env.reference_frames - 1 - start_frame


def _layout(model, env: TrackingEnv, n: int) -> tuple[dict, dict]:
    """Dimension names per series (only those ``model`` produces) and coordinates for ``n`` steps."""
    skip = set()
    if _free_root_adr(model) is None:
        skip |= {"root_position", "root_orientation", "reference_root_position"}
    if not model.has_feet:
        skip |= {"grf", "cop"}
    dims = {k: v for k, v in ROLLOUT_DIMS.items() if k not in skip}
    coords = {
        "time": (np.arange(n) + 1) * env.control_dt,
        "muscle": list(model.muscles),
        "joint": [j.name for j in model.tracked_joints],
        "foot": list(FOOT_ORDER),
        "axis": ["x", "y", "z"],
        "quaternion": ["w", "x", "y", "z"],
        "component": list(env.delta_names),
        "metric": list(METRIC_NAMES),
        # auxiliary coordinates: (dimension, values)
        "joint_units": ("joint", ["rad" if j.angular else "m" for j in model.tracked_joints]),
        "component_units": ("component", _component_units(model, env.delta_names)),
    }
    return dims, coords


def _component_units(model, names) -> list[str]:
    """Units of each Δ component (see :mod:`emulator.simulation.env`)."""
    kind = {j.name: j.angular for j in model.tracked_joints}
    fixed = {"body_position": "m", "root_rotation": "rad", "root_translation": "m", "root_xcom": "m"}
    fixed |= {"root_linear_velocity": "m/s", "root_angular_velocity": "rad/s"}
    out = []
    for n in names:
        group, _, joint = n.partition("/")
        if group == "joint_angle":
            out.append("rad" if kind[joint] else "m")
        elif group == "joint_velocity":
            out.append("rad/s" if kind[joint] else "m/s")
        else:
            out.append(fixed[group])
    return out


def _reference_q(env: TrackingEnv, start_frame: int, n: int) -> np.ndarray:
    """Reference ``qpos [time, nq]`` at the end of each of ``n`` control steps from
    ``start_frame`` (cycles carry the root forward)."""
    return env.layout.qpos(env.reference_state(start_frame + np.arange(1, n + 1)))


def reference_qpos(model, motion, n_steps: int, start_frame: int = 0, env_config=None) -> np.ndarray:
    """The reference pose ``[time, nq]`` a rollout of ``n_steps`` from ``start_frame`` is compared
    with (``env_config``: the run's, which sets the control rate; default ``EnvConfig()``)."""
    env = TrackingEnv.create(model, motion, env_config or EnvConfig())
    return _reference_q(env, start_frame, n_steps)


def _reference_series(model, env: TrackingEnv, start_frame: int, n: int) -> dict:
    """The reference at the end of each of ``n`` control steps from ``start_frame`` (what the
    rollout is compared with): ``reference_joint_angle [time, joint]`` and, with a free root,
    ``reference_root_position [time, axis]``."""
    q = _reference_q(env, start_frame, n)
    out = {"reference_joint_angle": q[:, [j.qpos_index for j in model.tracked_joints]]}
    ra = _free_root_adr(model)
    if ra is not None:
        out["reference_root_position"] = q[:, ra : ra + 3]
    return out


def rollout_schema(trainer, n_cycles: float = 1.0, start_frame: int = 0) -> RolloutSchema:
    """The names, dimensions and coordinates :func:`rollout` will produce, without running it."""
    env = TrackingEnv.create(trainer.model, trainer.motion, trainer.config.env)
    n = _n_steps(env, trainer.motion.loop, n_cycles, start_frame)
    dims, coords = _layout(trainer.model, env, n)
    return RolloutSchema(
        dims, coords, env.control_dt, n, _reference_series(trainer.model, env, start_frame, n)
    )


def rollout(
    trainer,
    agent,
    n_cycles: float = 1.0,
    backend: str | None = None,
    start_frame: int = 0,
    kick=None,
    physics=None,
) -> RolloutResult:
    """Roll every seed's deterministic policy out for ``n_cycles`` passes of the motion.

    Args:
        trainer: the :class:`~emulator.learning.train.Trainer` the agent was trained with (model,
            motion, observation layout, mean-action function).
        agent: learner state with a leading seed axis.
        n_cycles: passes of the reference (a non-cyclic motion stops at its last frame).
        backend: physics backend (default: the training config's).
        start_frame: the reference frame every seed starts at.
        kick: a horizontal velocity change ``[2]`` (m/s, world x and y) at the start, a shove
            the policies must recover from (free roots; ``benchmarks/walking_basin.py``).
        physics: start states ``[seed, nstate]`` at ``start_frame`` instead of the reference's
            (``benchmarks/walking_reset_state.py``).
    """
    model, motion = trainer.model, trainer.motion
    S = jax.tree_util.tree_leaves(agent)[0].shape[0]
    env_cfg = dataclasses.replace(trainer.config.env, max_episode_s=None)
    env = TrackingEnv.create(model, motion, env_cfg, backend=backend or trainer.config.backend, n_envs=S)
    n = _n_steps(env, motion.loop, n_cycles, start_frame)
    index = np.full(S, start_frame)
    kicks = None if kick is None else np.tile(np.asarray(kick, float), (S, 1))
    state, obs = env.reset(None, index=index, kick=kicks, physics=physics)
    jq = [j.qpos_index for j in model.tracked_joints]
    jd = [j.dof_index for j in model.tracked_joints]
    ra = _free_root_adr(model)
    free = ra is not None
    rec: dict[str, list] = {k: [] for k in ROLLOUT_UNITS if not k.startswith("reference")}
    for _ in range(n):
        action = np.asarray(trainer.mean_action(agent, jnp.asarray(obs).reshape(S, 1, -1))).reshape(S, -1)
        res = env.step(state, action)
        sig = res.signals
        exc = np.asarray(sig.excitation)  # what the muscles got (a PD action maps to it)
        q = np.asarray(sig.qpos)
        rec["excitation"].append(exc)
        rec["activation"].append(np.asarray(sig.activation))
        rec["muscle_force"].append(np.asarray(sig.muscle_force))
        rec["muscle_length"].append(np.asarray(sig.muscle_length))
        rec["muscle_velocity"].append(np.asarray(sig.muscle_velocity))
        rec["joint_angle"].append(q[:, jq])
        rec["joint_velocity"].append(np.asarray(sig.qvel)[:, jd])
        if free:
            rec["root_position"].append(q[:, ra : ra + 3])
            rec["root_orientation"].append(q[:, ra + 3 : ra + 7])
        if model.has_feet:
            rec["grf"].append(np.asarray(sig.grf))
            rec["cop"].append(np.asarray(sig.cop))
        rec["tracking_error"].append(np.asarray(res.delta))
        rec["metrics"].append(np.asarray(res.metrics))
        rec["terminated"].append(np.asarray(res.terminated))
        state, obs = res.state, res.obs
    data = {k: np.stack(v, axis=1) for k, v in rec.items() if v}
    data.update(_reference_series(model, env, start_frame, n))
    dims, coords = _layout(model, env, n)
    return RolloutResult(data, dims, coords, env.control_dt)
