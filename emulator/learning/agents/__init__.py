"""Learners: ``ppo`` (on-policy, clipped) and ``qflex`` (off-policy, value-guided flow exploration).

Each agent module is pure functions over an explicit NamedTuple state for **one seed**; the
trainer adds the seed axis with ``jax.vmap``. :mod:`emulator.learning.agents.base` gives every learner one
shape (:class:`~emulator.learning.agents.base.Agent`: init, act, mean action, memory, update) and
:data:`AGENTS` maps names to them, so the trainer never branches on the algorithm.
"""

from emulator.learning.agents.base import AGENTS, Agent, make_agent

__all__ = ["AGENTS", "Agent", "make_agent"]
