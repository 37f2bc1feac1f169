"""Learners: ``ppo`` (on-policy, clipped) and ``qflex`` (off-policy, value-guided flow exploration).

Each agent module is pure functions over an explicit NamedTuple state for **one seed**; the
trainer adds the seed axis with ``jax.vmap``.
"""

AGENTS = ("ppo", "qflex")
