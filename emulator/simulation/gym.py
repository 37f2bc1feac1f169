"""A Gymnasium view of the tracking task: one environment, Box spaces, the ``exp`` reward.

Registered on ``import emulator`` as ``emulator/MuscleTracking-v0``::

    import gymnasium, emulator
    env = gymnasium.make("emulator/MuscleTracking-v0", model="myolegs", motion="walk",
                         action_space="muscle_length")

It is the same :class:`~emulator.simulation.env.TrackingEnv` the trainers use (one environment on the cpu
backend by default): observations ``float32 [obs]``, actions ``[muscle]`` in [0, 1] (excitations,
or target lengths with ``action_space="muscle_length"``), ``terminated`` when the body deviates
past the env's threshold, ``truncated`` at ``max_episode_s`` (or the end of a non-cyclic
motion). ``info`` carries the paper's four metrics (deg, deg, cm, cm), the reference frame and
the excitations applied. ``reset(seed=s)`` starts at a random reference frame drawn from the
seeded generator (``options={"frame": i}`` picks it).
"""

from __future__ import annotations

import dataclasses

import gymnasium
import numpy as np

from emulator.learning.rewards import ExpConfig, effort_cost, exp_reward
from emulator.models import MuscleModel, load_model
from emulator.motion.sources import DEFAULT_MOTIONS, load_motion
from emulator.schema import METRIC_NAMES
from emulator.simulation.env import EnvConfig, TrackingEnv

__all__ = ["ENV_ID", "MuscleTrackingEnv"]

ENV_ID = "emulator/MuscleTracking-v0"


class MuscleTrackingEnv(gymnasium.Env):
    """One muscle-driven tracking environment (see the module docstring).

    Args:
        model: a built-in model name, an MJCF path or a :class:`MuscleModel`.
        motion: a shipped demo name or a motion file (default: the model's own motion).
        backend: physics backend (``cpu`` | ``mjx``).
        reward: :class:`~emulator.learning.rewards.ExpConfig` for the ``exp`` reward.
        **env_options: any :class:`~emulator.simulation.env.EnvConfig` field.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        model: str | MuscleModel = "elbow",
        motion: str | None = None,
        backend: str = "cpu",
        reward: ExpConfig | None = None,
        **env_options,
    ):
        self.model = model if isinstance(model, MuscleModel) else load_model(model)
        if motion is None:
            if self.model.name not in DEFAULT_MOTIONS:
                raise ValueError(f"model {self.model.name!r} has no default motion; pass motion=")
            motion = DEFAULT_MOTIONS[self.model.name]
        self.motion = load_motion(motion, self.model)[0]
        known = {f.name for f in dataclasses.fields(EnvConfig)}
        bad = sorted(set(env_options) - known)
        if bad:
            raise TypeError(f"unknown env options {bad} (known: {sorted(known)})")
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in env_options.items()}
        self.tracking = TrackingEnv.create(self.model, self.motion, EnvConfig(**opts), backend=backend)
        self._reward_config = dataclasses.replace(reward or ExpConfig(), fixed_base=self.tracking.fixed_base)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (self.tracking.obs_dim,), np.float32)
        self.action_space = gymnasium.spaces.Box(0.0, 1.0, (self.tracking.action_dim,), np.float32)
        self._state = None

    def _frames(self) -> int:
        T = self.tracking.reference_frames
        return T if self.motion.loop else max(T - 1, 1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        frame = (options or {}).get("frame")
        if frame is None:
            frame = int(self.np_random.integers(0, self._frames()))
        elif not 0 <= int(frame) < self._frames():
            raise ValueError(f"options['frame'] must be within [0, {self._frames()}), got {frame}")
        self._state, obs = self.tracking.reset(None, index=np.array([int(frame)]))
        return np.asarray(obs[0], dtype=np.float32), {"frame": int(frame)}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32).reshape(1, -1)
        r = self.tracking.step(self._state, action)
        self._state = r.state
        delta = np.asarray(r.delta)
        reward = exp_reward(delta, self.tracking.delta_names, self._reward_config)
        reward = float(np.asarray(reward - effort_cost(r.signals.activation, self._reward_config))[0])
        terminated = bool(np.asarray(r.terminated)[0])
        truncated = bool(np.asarray(r.truncated)[0]) and not terminated
        metrics = np.asarray(r.metrics)[0]
        info = {name: float(v) for name, v in zip(METRIC_NAMES, metrics, strict=True)}
        info["frame"] = int(np.asarray(r.state.index)[0])
        info["excitation"] = np.asarray(r.signals.excitation, dtype=np.float32)[0]
        return np.asarray(r.obs[0], dtype=np.float32), reward, terminated, truncated, info

    def close(self):
        close = getattr(self.tracking.physics, "close", None)
        if close is not None:
            close()
