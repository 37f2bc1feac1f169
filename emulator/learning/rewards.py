"""Rewards from the tracking-error vector Δ (``[batch, delta]``, non-negative, 0 = perfect).

``exp``
    The hand-weighted sum of Gaussian kernels DeepMimic-style tracking uses: per family of Δ
    components (joint angles, joint velocities, body positions, root rotation, root
    translation, root velocities) ``w_f * exp(-mean_i(Δ_i²) / σ_f²)``, weights renormalised over
    the families the model has (a welded base has no root terms). Bounded in [0, 1].
``add``
    Adversarial reward aggregation (ADD; Zhang et al., SIGGRAPH Asia 2025, arXiv 2505.04961).
    A discriminator D scores the normalised Δ; the zero vector (perfect tracking) is the single
    positive sample, the policy's Δ are the negatives (least-squares GAN targets +1 / -1), with a
    gradient penalty on D at the policy's Δ so it cannot become a spike at zero. Reward
    ``max(0, 1 - (D(Δ̂) - 1)² / 4)`` in [0, 1]: 1 where D takes Δ̂ for perfect. Δ is normalised
    per component by a running root-mean-square, so D sees comparable scales. D re-weights the
    error components as training goes; no hand-set weights.

Everything here is a pure function of explicit state (:class:`AddState`), so a leading seed
axis is added with ``jax.vmap``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import NamedTuple, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "AddConfig",
    "AddState",
    "ExpConfig",
    "REWARDS",
    "AddReward",
    "ExpReward",
    "Reward",
    "make_reward",
    "add_init",
    "add_loss",
    "add_reward",
    "add_update",
    "delta_families",
    "exp_reward",
]


_FAMILY_PREFIX = {
    "joint_angle": "joint_angle/",
    "joint_velocity": "joint_velocity/",
    "body_position": "body_position/",
    "root_rotation": "root_rotation",
    "root_translation": "root_translation",
    "root_velocity": ("root_linear_velocity", "root_angular_velocity"),
    "root_xcom": "root_xcom",
}


def delta_families(delta_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``{family: indices into Δ}`` for the families present in ``delta_names``."""
    out = {}
    for fam, pre in _FAMILY_PREFIX.items():
        pres = pre if isinstance(pre, tuple) else (pre,)
        idx = [i for i, n in enumerate(delta_names) if any(n.startswith(p) for p in pres)]
        if idx:
            out[fam] = np.array(idx, dtype=int)
    return out


@dataclass(frozen=True)
class ExpConfig:
    """Weights and kernel widths of the ``exp`` reward (widths in Δ's units: rad, rad/s, m).

    Attributes:
        weights: relative weight per family (renormalised over the families present).
        sigmas: kernel width per family: a family whose RMS error equals its sigma scores e^-1.
        fixed_base: drop the root families (a welded base has no root error).
        effort: an effort cost subtracted from every control step's reward (0: none): this
            times the mean squared muscle activation (:func:`effort_cost`; KINESIS weights such
            an energy term 0.1). Tracking alone does not ask for economy, and the walking
            policies co-contract (docs/walking.md, session 18). The learner's reward only
            (PPO; Qflex recomputes rewards from stored Δ and has no activations); a continued
            set may change it.
    """

    weights: dict = field(
        default_factory=lambda: {
            "joint_angle": 0.4,
            "joint_velocity": 0.1,
            "body_position": 0.2,
            "root_rotation": 0.1,
            "root_translation": 0.1,
            "root_velocity": 0.1,
            "root_xcom": 0.0,  # off unless a recipe weights it, so recipes written before it keep their reward
        }
    )
    sigmas: dict = field(
        default_factory=lambda: {
            "joint_angle": 0.3,  # rad (17 deg): wide enough to guide an untrained policy
            "joint_velocity": 3.0,  # rad/s
            "body_position": 0.1,  # m
            "root_rotation": 0.3,  # rad
            "root_translation": 0.2,  # m
            "root_velocity": 1.5,  # m/s and rad/s
            "root_xcom": 0.05,  # m: a drift of 0.15 m/s (x 0.31 s) scores e^-1
        }
    )
    fixed_base: bool = False
    effort: float = 0.0

    def __post_init__(self):
        if not self.effort >= 0:
            raise ValueError(f"exp effort must be >= 0, got {self.effort}")
        # a partial table (``[exp.sigmas] root_rotation = 0.15``) changes those families only
        defaults = {f.name: f.default_factory() for f in fields(self) if f.name in ("weights", "sigmas")}
        for name, full in defaults.items():
            given = dict(getattr(self, name))
            unknown = sorted(set(given) - set(full))
            if unknown:
                raise ValueError(f"exp {name}: unknown families {unknown} (known: {sorted(full)})")
            object.__setattr__(self, name, {**full, **given})


def exp_reward(delta: jax.Array, delta_names: tuple[str, ...], config: ExpConfig = ExpConfig()) -> jax.Array:
    """``[batch]`` rewards in [0, 1] from Δ ``[batch, delta]``."""
    fams = delta_families(delta_names)
    if config.fixed_base:
        fams = {k: v for k, v in fams.items() if not k.startswith("root")}
    total_w = sum(config.weights[k] for k in fams)
    r = jnp.zeros(delta.shape[:-1])
    for fam, idx in fams.items():
        msq = jnp.mean(jnp.square(delta[..., idx]), axis=-1)
        r = r + config.weights[fam] / total_w * jnp.exp(-msq / config.sigmas[fam] ** 2)
    return r


def effort_cost(activation: jax.Array, config: ExpConfig) -> jax.Array:
    """``[batch]`` effort costs (``ExpConfig.effort`` x mean squared activation) of
    activations ``[batch, muscle]``."""
    return config.effort * jnp.mean(jnp.square(activation), axis=-1)


@dataclass(frozen=True)
class AddConfig:
    """The ADD discriminator.

    Attributes:
        hidden: hidden layer widths of D.
        learning_rate: Adam step size.
        gradient_penalty: weight of E[|grad D(Δ̂)|²] at the policy's Δ̂.
        norm_decay: EMA decay of the running mean-square used to normalise Δ.
        norm_floor: lower bound on the per-component scale (Δ's units), so components that are
            always ~0 (a welded root) are not blown up.
        updates_per_batch: discriminator steps per batch of policy Δ.
    """

    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 3e-4
    gradient_penalty: float = 5.0
    norm_decay: float = 0.99
    norm_floor: float = 1e-3
    updates_per_batch: int = 1


class _Disc(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = nn.relu(nn.Dense(h)(x))
        return nn.Dense(1)(x)[..., 0]


class AddState(NamedTuple):
    """Discriminator parameters, optimiser state and the running Δ scale (one seed)."""

    params: dict
    opt_state: optax.OptState
    mean_sq: jax.Array  # [delta] running E[Δ²]
    count: jax.Array  # [] batches seen


def _disc(config: AddConfig) -> _Disc:
    return _Disc(tuple(config.hidden))


def add_init(key: jax.Array, delta_dim: int, config: AddConfig = AddConfig()) -> AddState:
    params = _disc(config).init(key, jnp.zeros((1, delta_dim)))
    opt = optax.adam(config.learning_rate)
    return AddState(params, opt.init(params), jnp.ones(delta_dim), jnp.zeros((), jnp.int32))


def _normalise(state: AddState, delta: jax.Array, config: AddConfig) -> jax.Array:
    scale = jnp.maximum(jnp.sqrt(state.mean_sq), config.norm_floor)
    return delta / scale


def add_reward(state: AddState, delta: jax.Array, config: AddConfig = AddConfig()) -> jax.Array:
    """``[batch]`` rewards in [0, 1]: ``max(0, 1 - (D(Δ̂) - 1)² / 4)``."""
    d = _disc(config).apply(state.params, _normalise(state, delta, config))
    return jnp.maximum(0.0, 1.0 - 0.25 * jnp.square(d - 1.0))


def add_loss(params, apply_fn, delta_hat: jax.Array, gradient_penalty: float):
    """Least-squares discriminator loss with the zero vector as the only positive sample.

    ``(D(0) - 1)² + mean((D(Δ̂) + 1)²) + gp * mean(|∇_Δ̂ D(Δ̂)|²)``; returns (loss, parts).
    """
    zero = jnp.zeros((1, delta_hat.shape[-1]))
    pos = apply_fn(params, zero)
    neg = apply_fn(params, delta_hat)
    grads = jax.vmap(jax.grad(lambda x: apply_fn(params, x[None])[0]))(delta_hat)
    gp = jnp.mean(jnp.sum(jnp.square(grads), axis=-1))
    l_pos = jnp.mean(jnp.square(pos - 1.0))
    l_neg = jnp.mean(jnp.square(neg + 1.0))
    loss = l_pos + l_neg + gradient_penalty * gp
    return loss, {"disc_pos": l_pos, "disc_neg": l_neg, "disc_gp": gp}


def add_update(state: AddState, delta: jax.Array, config: AddConfig = AddConfig()) -> tuple[AddState, dict]:
    """Update the running scale with ``delta [batch, delta]``, then the discriminator."""
    batch_msq = jnp.mean(jnp.square(delta), axis=0)
    first = state.count == 0
    mean_sq = jnp.where(
        first, batch_msq, config.norm_decay * state.mean_sq + (1 - config.norm_decay) * batch_msq
    )
    state = state._replace(mean_sq=mean_sq, count=state.count + 1)
    delta_hat = _normalise(state, delta, config)
    apply_fn = _disc(config).apply
    opt = optax.adam(config.learning_rate)

    def one(carry, _):
        params, opt_state = carry
        (loss, parts), g = jax.value_and_grad(add_loss, has_aux=True)(
            params, apply_fn, delta_hat, config.gradient_penalty
        )
        upd, opt_state = opt.update(g, opt_state, params)
        return (optax.apply_updates(params, upd), opt_state), dict(parts, disc_loss=loss)

    (params, opt_state), info = jax.lax.scan(
        one, (state.params, state.opt_state), None, config.updates_per_batch
    )
    info = jax.tree_util.tree_map(lambda x: x[-1], info)
    return state._replace(params=params, opt_state=opt_state), info


# ---------------------------------------------------------------------------------------------
# One shape for every reward (the trainer picks by name and never branches on it)


class Reward(Protocol):
    """A reward of Δ with optional learned state (per seed, pure; the trainer vmaps it)."""

    name: str

    def init(self, key: jax.Array, delta_names: tuple[str, ...]):
        """The reward's state (None when it has none)."""

    def __call__(self, state, delta: jax.Array) -> jax.Array:
        """``[batch]`` rewards for Δ ``[batch, delta]``."""

    def update(self, state, delta: jax.Array):
        """The state after seeing the policy's Δ ``[batch, delta]`` of one iteration."""


@dataclass(frozen=True)
class ExpReward:
    """Hand-weighted Gaussian kernels (:func:`exp_reward`); no state."""

    config: ExpConfig
    delta_names: tuple[str, ...]
    name: str = "exp"

    def init(self, key, delta_names):
        return None

    def __call__(self, state, delta):
        return exp_reward(delta, self.delta_names, self.config)

    def update(self, state, delta):
        return state


@dataclass(frozen=True)
class AddReward:
    """The adversarial differential discriminator (:func:`add_reward`, :func:`add_update`)."""

    config: AddConfig
    delta_names: tuple[str, ...]
    name: str = "add"

    def init(self, key, delta_names):
        return add_init(key, len(delta_names), self.config)

    def __call__(self, state, delta):
        return add_reward(state, delta, self.config)

    def update(self, state, delta):
        return add_update(state, delta, self.config)[0]


REWARDS: dict[str, type] = {"exp": ExpReward, "add": AddReward}


def make_reward(name: str, config, delta_names: tuple[str, ...]) -> Reward:
    """The reward ``name`` (a key of :data:`REWARDS`) over Δ components ``delta_names``."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; expected one of {tuple(REWARDS)}")
    return REWARDS[name](config, tuple(delta_names))
