"""PPO: clipped surrogate, GAE with truncation masks, optional value clipping, running
observation normalisation, a Gaussian over pre-squash excitations (``sigmoid`` to [0, 1]).

The Gaussian lives on the pre-squash variable ``u``; the probability ratio is the same for ``u``
and for ``sigmoid(u)`` (the Jacobian cancels), so log-densities of ``u`` are used throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from emulator.learning.agents.common import (
    MLP,
    RunningNorm,
    gaussian_log_prob,
    norm_init,
    norm_update,
    normalise,
    squash,
)

ROLLOUT_KEYS = ("obs", "u", "log_prob", "value", "reward", "terminated", "truncated")

__all__ = [
    "ROLLOUT_KEYS",
    "PPOConfig",
    "PPOState",
    "gae",
    "ppo_act",
    "ppo_init",
    "ppo_loss",
    "ppo_mean_action",
    "ppo_update",
]


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyper-parameters (defaults suit the small models; see ``for_model``).

    Attributes:
        hidden: hidden widths of the actor and of the critic.
        learning_rate: Adam step size (actor and critic).
        gamma: discount per control step (0.97: a horizon of ~33 control steps).
        gae_lambda: GAE lambda.
        clip: PPO ratio clip epsilon.
        value_clip: clip the value update around the old value (None: off).
        entropy_coef: entropy bonus weight.
        value_coef: value loss weight.
        epochs: passes over each rollout.
        minibatches: minibatches per pass.
        max_grad_norm: global gradient clipping.
        init_log_std: initial log standard deviation of the pre-squash Gaussian.
        log_std_max: upper bound of the policy's log standard deviation (None: as learned). PPO
            moves the learned one slowly (myolegs walking: -1.0 -> -1.1 over 800k steps); a
            bound below it makes a continued set explore less from its next update on.
        init_excitation: initial mean excitation (the actor's output bias is its logit).
        rollout_steps: control steps per environment between updates.
        n_envs: default environments per seed.
        total_steps: default control steps per seed (150k: on the elbow with the ``exp`` reward
            every one of 50 seeds tracks to < 5 deg, and 50 seeds train in ~12 min on 2 cores).
    """

    hidden: tuple[int, ...] = (128, 128)
    learning_rate: float = 3e-4
    gamma: float = 0.97
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_clip: float | None = None
    entropy_coef: float = 0.0
    value_coef: float = 0.5
    epochs: int = 10
    minibatches: int = 8
    max_grad_norm: float = 0.5
    init_log_std: float = -0.5
    log_std_max: float | None = None
    init_excitation: float = 0.1
    rollout_steps: int = 32
    n_envs: int = 32
    total_steps: int = 150_000


class PPOState(NamedTuple):
    """One seed's learner: actor/critic parameters, log std, optimiser, observation statistics."""

    actor: dict
    critic: dict
    log_std: jax.Array
    opt_state: optax.OptState
    obs_norm: RunningNorm


def _nets(config: PPOConfig, act_dim: int):
    bias = float(np.log(config.init_excitation / (1 - config.init_excitation)))
    return MLP(tuple(config.hidden), act_dim, final_bias=bias, final_scale=0.01), MLP(tuple(config.hidden), 0)


def _optimizer(config: PPOConfig):
    """Adam with gradient-norm clipping applied to the policy and the critic separately (a joint
    clip would let the critic's large early gradients shrink the policy's)."""

    def chain():
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate))

    labels = {"actor": "policy", "log_std": "policy", "critic": "critic"}
    return optax.multi_transform(
        {"policy": chain(), "critic": chain()},
        lambda params: {k: jax.tree_util.tree_map(lambda _, k=k: labels[k], v) for k, v in params.items()},
    )


def ppo_init(key: jax.Array, obs_dim: int, act_dim: int, config: PPOConfig = PPOConfig()) -> PPOState:
    ka, kc = jax.random.split(key)
    actor_net, critic_net = _nets(config, act_dim)
    x = jnp.zeros((1, obs_dim))
    actor, critic = actor_net.init(ka, x), critic_net.init(kc, x)
    log_std = jnp.full(act_dim, config.init_log_std, dtype=jnp.float32)
    params = {"actor": actor, "critic": critic, "log_std": log_std}
    return PPOState(actor, critic, log_std, _optimizer(config).init(params), norm_init(obs_dim))


def _heads(state: PPOState, obs, config: PPOConfig, act_dim: int):
    actor_net, critic_net = _nets(config, act_dim)
    x = normalise(state.obs_norm, obs)
    return actor_net.apply(state.actor, x), critic_net.apply(state.critic, x)


def _noise(log_std: jax.Array, config: PPOConfig) -> jax.Array:
    """The log standard deviation the policy samples with: the learned one, bounded above."""
    return log_std if config.log_std_max is None else jnp.minimum(log_std, config.log_std_max)


def ppo_act(state: PPOState, obs: jax.Array, key: jax.Array, config: PPOConfig = PPOConfig()):
    """Sample: ``(u [B, act], excitation [B, act], log_prob [B], value [B])``."""
    act_dim = state.log_std.shape[0]
    mean, value = _heads(state, obs, config, act_dim)
    log_std = _noise(state.log_std, config)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    return u, squash(u), gaussian_log_prob(u, mean, log_std), value


def ppo_mean_action(state: PPOState, obs: jax.Array, config: PPOConfig = PPOConfig()) -> jax.Array:
    """Deterministic excitation ``[B, act]`` (the Gaussian's mean, squashed)."""
    mean, _ = _heads(state, obs, config, state.log_std.shape[0])
    return squash(mean)


def ppo_value(state: PPOState, obs: jax.Array, config: PPOConfig = PPOConfig()) -> jax.Array:
    return _heads(state, obs, config, state.log_std.shape[0])[1]


def gae(rewards, values, next_values, terminations, truncations, gamma: float, lam: float):
    """Generalised advantage estimation over ``[time, ...]`` arrays.

    ``next_values[t]`` is V(s_{t+1}); a termination bootstraps with 0; a truncated step (episode
    cut by the time limit, next state unknown after the reset) gets zero advantage and does not
    carry the recursion across the boundary. Returns ``(advantages, returns)``.
    """
    not_term = 1.0 - terminations
    not_trunc = 1.0 - truncations
    deltas = (rewards + gamma * not_term * next_values - values) * not_trunc

    def back(acc, x):
        d, nt, ntr = x
        acc = d + gamma * lam * nt * ntr * acc
        return acc, acc

    _, adv = jax.lax.scan(back, jnp.zeros_like(deltas[0]), (deltas, not_term, not_trunc), reverse=True)
    return adv, adv + values


def ppo_loss(params, batch, config: PPOConfig, apply_actor, apply_critic):
    """Clipped surrogate + value loss - entropy bonus, on one minibatch (already normalised obs).

    ``batch``: ``obs``, ``u``, ``log_prob`` (old), ``value`` (old), ``advantage``, ``return``.
    """
    mean = apply_actor(params["actor"], batch["obs"])
    value = apply_critic(params["critic"], batch["obs"])
    log_std = _noise(params["log_std"], config)
    logp = gaussian_log_prob(batch["u"], mean, log_std)
    # with hundreds of muscles the summed log-ratio can exceed float32's exp range after one
    # update; clamping it keeps the clipped objective finite (ratios this far from 1 are
    # clipped anyway)
    ratio = jnp.exp(jnp.clip(logp - batch["log_prob"], -20.0, 20.0))
    adv = batch["advantage"]
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * adv)
    policy_loss = -jnp.mean(surrogate)
    v_err = jnp.square(value - batch["return"])
    if config.value_clip is not None:
        v_clipped = batch["value"] + jnp.clip(value - batch["value"], -config.value_clip, config.value_clip)
        v_err = jnp.maximum(v_err, jnp.square(v_clipped - batch["return"]))
    value_loss = 0.5 * jnp.mean(v_err)
    entropy = jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e))
    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
    clip_frac = jnp.mean(jnp.abs(ratio - 1) > config.clip)
    return loss, {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "clip_fraction": clip_frac,
    }


def ppo_update(
    state: PPOState, rollout: dict, last_value: jax.Array, key: jax.Array, config: PPOConfig = PPOConfig()
):
    """One PPO update from a rollout of one seed.

    ``rollout``: ``obs [T, E, obs]``, ``u [T, E, act]``, ``log_prob``, ``value``, ``reward``,
    ``terminated``, ``truncated`` (``[T, E]``); ``last_value [E]`` = V of the state after the
    rollout. Observation statistics are updated from the rollout first (old-policy log-probs
    were computed with the old statistics, so they are recomputed consistently here).
    """
    act_dim = state.log_std.shape[0]
    actor_net, critic_net = _nets(config, act_dim)
    next_values = jnp.concatenate([rollout["value"][1:], last_value[None]], axis=0)
    adv, ret = gae(
        rollout["reward"], rollout["value"], next_values, rollout["terminated"], rollout["truncated"],
        config.gamma, config.gae_lambda,
    )  # fmt: skip
    obs_n = normalise(state.obs_norm, rollout["obs"])
    flat = {
        "obs": obs_n,
        "u": rollout["u"],
        "log_prob": rollout["log_prob"],
        "value": rollout["value"],
        "advantage": adv,
        "return": ret,
    }
    flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), flat)
    n = flat["obs"].shape[0]
    a = flat["advantage"]
    flat["advantage"] = (a - jnp.mean(a)) / (jnp.std(a) + 1e-8)
    mb = n // config.minibatches
    opt = _optimizer(config)
    params = {"actor": state.actor, "critic": state.critic, "log_std": state.log_std}

    def epoch(carry, k):
        params, opt_state = carry
        perm = jax.random.permutation(k, n)[: mb * config.minibatches].reshape(config.minibatches, mb)

        def minibatch(carry, idx):
            params, opt_state = carry
            b = jax.tree_util.tree_map(lambda x: x[idx], flat)
            (loss, info), g = jax.value_and_grad(ppo_loss, has_aux=True)(
                params, b, config, actor_net.apply, critic_net.apply
            )
            upd, opt_state = opt.update(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), dict(info, loss=loss)

        return jax.lax.scan(minibatch, (params, opt_state), perm)

    (params, opt_state), info = jax.lax.scan(
        epoch, (params, state.opt_state), jax.random.split(key, config.epochs)
    )
    info = jax.tree_util.tree_map(jnp.mean, info)
    new = PPOState(
        params["actor"],
        params["critic"],
        params["log_std"],
        opt_state,
        norm_update(state.obs_norm, rollout["obs"]),
    )
    return new, info
