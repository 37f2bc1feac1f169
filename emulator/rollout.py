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

from .env import METRIC_NAMES, TrackingEnv
from .motion import _free_root_adr
from .physics import make_physics
from .types import FOOT_ORDER

__all__ = ["ROLLOUT_UNITS", "RolloutResult", "rollout"]

# name -> (units, long name); dims are in RolloutResult.dims
ROLLOUT_UNITS = {
    "excitation": ("1", "muscle excitation (control), 0-1"),
    "activation": ("1", "muscle activation, 0-1"),
    "muscle_force": ("N", "muscle tension (positive when pulling)"),
    "muscle_length": ("m", "muscle-tendon actuator length"),
    "muscle_velocity": ("m/s", "muscle-tendon actuator lengthening velocity"),
    "joint_angle": ("rad", "tracked joint angle (m for slide joints)"),
    "joint_velocity": ("rad/s", "tracked joint velocity (m/s for slide joints)"),
    "reference_joint_angle": ("rad", "reference joint angle"),
    "root_position": ("m", "root position, world frame"),
    "root_orientation": ("1", "root orientation quaternion w-x-y-z, world frame"),
    "reference_root_position": ("m", "reference root position, world frame"),
    "grf": ("N", "ground reaction force on each foot, world frame"),
    "tracking_error": ("mixed", "tracking-error vector (rad, rad/s, m, m/s per component)"),
    "metrics": ("mixed", "tracking metrics (deg, deg, cm, cm)"),
    "terminated": ("1", "the environment's termination test fired at this step"),
}


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


def rollout(
    trainer, agent, n_cycles: float = 1.0, backend: str | None = None, start_frame: int = 0
) -> RolloutResult:
    """Roll every seed's deterministic policy out for ``n_cycles`` passes of the motion.

    Args:
        trainer: the :class:`~emulator.train.Trainer` the agent was trained with (model,
            motion, observation layout, mean-action function).
        agent: learner state with a leading seed axis.
        n_cycles: passes of the reference (a non-cyclic motion stops at its last frame).
        backend: physics backend (default: the training config's).
    """
    model, motion = trainer.model, trainer.motion
    S = jax.tree_util.tree_leaves(agent)[0].shape[0]
    env_cfg = dataclasses.replace(trainer.config.env, max_episode_s=None)
    phys = make_physics(model, backend or trainer.config.backend, n_envs=S)
    env = TrackingEnv(model, motion, phys, env_cfg)
    T_ref = env.reference_frames
    n = int(round(n_cycles * T_ref)) if motion.loop else T_ref - 1 - start_frame
    index = np.full(S, start_frame)
    state, obs = env.reset(None, index=index)
    jq = [j.qpos_index for j in model.tracked_joints]
    jd = [j.dof_index for j in model.tracked_joints]
    ra = _free_root_adr(model)
    free = ra is not None
    rec: dict[str, list] = {k: [] for k in ROLLOUT_UNITS if not k.startswith("reference")}
    ref_q = []
    for _ in range(n):
        exc = np.asarray(trainer.mean_action(agent, jnp.asarray(obs).reshape(S, 1, -1))).reshape(S, -1)
        res = env.step(state, exc)
        sig = res.signals
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
        rec["tracking_error"].append(np.asarray(res.delta))
        rec["metrics"].append(np.asarray(res.metrics))
        rec["terminated"].append(np.asarray(res.terminated))
        ref_q.append(env.layout.qpos(env.reference_state(np.asarray(res.state.index)[:1]))[0])
        state, obs = res.state, res.obs
    data = {k: np.stack(v, axis=1) for k, v in rec.items() if v}
    ref_q = np.stack(ref_q)
    data["reference_joint_angle"] = ref_q[:, jq]
    if free:
        data["reference_root_position"] = ref_q[:, ra : ra + 3]
    dims = {
        "excitation": ("seed", "time", "muscle"),
        "activation": ("seed", "time", "muscle"),
        "muscle_force": ("seed", "time", "muscle"),
        "muscle_length": ("seed", "time", "muscle"),
        "muscle_velocity": ("seed", "time", "muscle"),
        "joint_angle": ("seed", "time", "joint"),
        "joint_velocity": ("seed", "time", "joint"),
        "reference_joint_angle": ("time", "joint"),
        "root_position": ("seed", "time", "axis"),
        "root_orientation": ("seed", "time", "quaternion"),
        "reference_root_position": ("time", "axis"),
        "grf": ("seed", "time", "foot", "axis"),
        "tracking_error": ("seed", "time", "component"),
        "metrics": ("seed", "time", "metric"),
        "terminated": ("seed", "time"),
    }
    coords = {
        "time": (np.arange(n) + 1) * env.control_dt,
        "muscle": list(model.muscles),
        "joint": [j.name for j in model.tracked_joints],
        "foot": list(FOOT_ORDER),
        "axis": ["x", "y", "z"],
        "quaternion": ["w", "x", "y", "z"],
        "component": list(env.delta_names),
        "metric": list(METRIC_NAMES),
    }
    return RolloutResult(data, {k: v for k, v in dims.items() if k in data}, coords, env.control_dt)
