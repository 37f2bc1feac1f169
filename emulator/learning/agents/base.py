"""One shape for every learner, and the registry the trainer picks from.

An :class:`Agent` is a set of pure functions over one seed's explicit state; the trainer vmaps
them over the seed axis and jit-compiles them once. A collection iteration gives the agent a
batch of ``T`` control steps from ``E`` environments (``[T, E, ...]`` arrays):

``obs``, ``next_obs``  observations before the step and right after it (before any reset)
``action``            excitations applied ``[T, E, muscle]`` in [0, 1]
``delta``             tracking-error vectors Δ after the step
``reward``            rewards of Δ with the reward state of this iteration
``terminated``, ``truncated``  episode ends (1.0 / 0.0)
plus whatever :meth:`Agent.act` returned in its ``extras`` (PPO: pre-squash action, log-density,
value). ``update`` may keep a *memory* between iterations (Qflex: the replay buffer; PPO: none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jax

from emulator.learning.agents import ppo as ppo_lib
from emulator.learning.agents import qflex as qflex_lib

__all__ = ["AGENTS", "Agent", "PPOAgent", "QflexAgent", "make_agent"]


class Agent(Protocol):
    """What the trainer needs from a learner (everything per seed, pure)."""

    name: str
    steps_per_iteration: int  # control steps per environment between updates

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> Any:
        """The untrained learner state."""

    def act(self, state, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, dict]:
        """Exploring excitations ``[E, muscle]`` for ``obs [E, obs]`` and extras to store."""

    def mean_action(self, state, obs: jax.Array) -> jax.Array:
        """Deterministic excitations ``[E, muscle]``."""

    def memory_init(self, obs_dim: int, act_dim: int, delta_dim: int) -> Any:
        """What the learner keeps between iterations besides its state (None: nothing)."""

    def update(
        self, state, memory, batch: dict, last_obs: jax.Array, reward_fn: Callable, key: jax.Array
    ) -> tuple[Any, Any, dict]:
        """Learn from one iteration's ``batch``; ``reward_fn(Δ) -> reward`` uses the current
        reward state; ``last_obs [E, obs]`` is what the environments show next."""


@dataclass(frozen=True)
class PPOAgent:
    """Clipped PPO (:mod:`emulator.learning.agents.ppo`)."""

    config: ppo_lib.PPOConfig
    name: str = "ppo"

    @property
    def steps_per_iteration(self) -> int:
        return self.config.rollout_steps

    def init(self, key, obs_dim, act_dim):
        return ppo_lib.ppo_init(key, obs_dim, act_dim, self.config)

    def act(self, state, obs, key):
        u, exc, logp, value = ppo_lib.ppo_act(state, obs, key, self.config)
        return exc, {"u": u, "log_prob": logp, "value": value}

    def mean_action(self, state, obs):
        return ppo_lib.ppo_mean_action(state, obs, self.config)

    def memory_init(self, obs_dim, act_dim, delta_dim):
        return None

    def update(self, state, memory, batch, last_obs, reward_fn, key):
        last_value = ppo_lib.ppo_value(state, last_obs, self.config)
        rollout = {k: batch[k] for k in ppo_lib.ROLLOUT_KEYS}
        state, info = ppo_lib.ppo_update(state, rollout, last_value, key, self.config)
        return state, memory, info


@dataclass(frozen=True)
class QflexAgent:
    """Qflex (:mod:`emulator.learning.agents.qflex`); ``flow_steps=0`` is SAC. Its memory is the replay
    buffer of Δ (rewards are recomputed at update time, since ADD keeps changing)."""

    config: qflex_lib.QflexConfig
    name: str = "qflex"

    @property
    def steps_per_iteration(self) -> int:
        return self.config.steps_per_update

    def init(self, key, obs_dim, act_dim):
        return qflex_lib.qflex_init(key, obs_dim, act_dim, self.config)

    def act(self, state, obs, key):
        _, exc = qflex_lib.qflex_act(state, obs, key, self.config, qflex_lib.action_dim(state))
        return exc, {}

    def mean_action(self, state, obs):
        return qflex_lib.qflex_mean_action(state, obs, self.config, qflex_lib.action_dim(state))

    def memory_init(self, obs_dim, act_dim, delta_dim):
        return qflex_lib.buffer_init_one(self.config.buffer_size, obs_dim, act_dim, delta_dim)

    def update(self, state, memory, batch, last_obs, reward_fn, key):
        memory = qflex_lib.buffer_add_one(memory, batch)
        state, info = qflex_lib.qflex_update(
            state, memory.obs, memory.action, memory.delta, memory.next_obs, memory.terminated,
            memory.size, reward_fn, key, batch["obs"].reshape(-1, batch["obs"].shape[-1]), self.config,
        )  # fmt: skip
        return state, memory, info


AGENTS: dict[str, Callable[..., Agent]] = {"ppo": PPOAgent, "qflex": QflexAgent}


def make_agent(name: str, config) -> Agent:
    """The learner ``name`` (a key of :data:`AGENTS`) with its config."""
    if name not in AGENTS:
        raise ValueError(f"unknown learner {name!r}; expected one of {tuple(AGENTS)}")
    return AGENTS[name](config)
