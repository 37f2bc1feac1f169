"""Qflex: value-guided flow exploration (Wei, Zuo and Sui, ICLR 2026, arXiv 2601.19707).

An off-policy actor-critic:

* twin Q critics ``Q_i(s, a)`` on excitations ``a`` in [0, 1], with Polyak-averaged targets;
* an initial sampler ``pi0(a0 | s)``: a Gaussian over pre-squash ``u``, ``a0 = sigmoid(u)``,
  trained as in SAC by ``E[alpha log pi0(a0|s) - min_i Q_i(s, a0)]`` with a learned temperature;
* a flow that refines ``a0`` in ``K`` Euler steps ``a_{k+1} = clip(a_k + v(t_k, s, a_k) / K)``,
  whose velocity network ``v`` is regressed (flow matching) onto the normalised action gradient
  of the critic, ``flow_scale * g / |g|`` with ``g = grad_a min_i Q_i(s, a_k)``, so exploration
  moves along directions of rising value rather than isotropic noise.

``K = 0`` is plain Gaussian SAC. Transitions store the tracking error Δ rather than a reward, so
the reward (``exp``, or ``add`` whose discriminator keeps learning) is computed at update time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from emulator.learning.agents.common import (
    MLP,
    RunningNorm,
    gaussian_log_prob,
    log_squash_jacobian,
    norm_init,
    norm_update,
    normalise,
    squash,
)

__all__ = [
    "Buffer",
    "QflexConfig",
    "QflexState",
    "action_dim",
    "buffer_add_one",
    "buffer_init_one",
    "flow_target",
    "qflex_act",
    "qflex_init",
    "qflex_mean_action",
    "qflex_update",
    "td_target",
]


@dataclass(frozen=True)
class QflexConfig:
    """Qflex hyper-parameters.

    Attributes:
        hidden: hidden widths of actor, critics and velocity network.
        learning_rate: Adam step size for all networks and the temperature.
        gamma: discount per control step.
        tau: Polyak rate of the target critics.
        flow_steps: K Euler steps of the flow (0 = Gaussian SAC).
        flow_scale: magnitude of the velocity target (excitation units per unit flow time).
        target_entropy_per_dim: SAC temperature target, per action dimension (in [0, 1] space).
        init_alpha: initial temperature.
        init_excitation: initial mean excitation.
        buffer_size: replay capacity per seed (transitions).
        batch_size: minibatch per gradient step.
        steps_per_update: control steps per environment between updates.
        updates_per_iteration: gradient steps after each collection.
        learning_starts: transitions per seed before gradient steps begin.
        n_envs: default environments per seed (with the two above: 0.5 gradient steps per
            transition, which the elbow needs; fewer updates learn far slower per sample).
        total_steps: default control steps per seed.
    """

    hidden: tuple[int, ...] = (128, 128)
    learning_rate: float = 3e-4
    gamma: float = 0.97
    tau: float = 0.005
    flow_steps: int = 2
    flow_scale: float = 0.1
    target_entropy_per_dim: float = -2.0
    init_alpha: float = 0.05
    init_excitation: float = 0.1
    buffer_size: int = 100_000
    batch_size: int = 256
    steps_per_update: int = 2
    updates_per_iteration: int = 8
    learning_starts: int = 1_000
    n_envs: int = 8
    total_steps: int = 40_000


class _Twin(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs, act):
        x = jnp.concatenate([obs, act], axis=-1)
        return MLP(self.hidden, 0, name="q1")(x), MLP(self.hidden, 0, name="q2")(x)


class _Velocity(nn.Module):
    hidden: tuple[int, ...]
    act_dim: int

    @nn.compact
    def __call__(self, t, obs, act):
        x = jnp.concatenate([obs, act, t[..., None]], axis=-1)
        return MLP(self.hidden, self.act_dim, final_scale=0.01)(x)


class QflexState(NamedTuple):
    """One seed's learner (the replay buffer is kept separately: it is not checkpointed)."""

    actor: dict
    critic: dict
    target_critic: dict
    velocity: dict
    log_alpha: jax.Array
    opt_actor: optax.OptState
    opt_critic: optax.OptState
    opt_velocity: optax.OptState
    opt_alpha: optax.OptState
    obs_norm: RunningNorm
    updates: jax.Array


class Buffer(NamedTuple):
    """One seed's replay ring: ``obs, action, delta, next_obs [N, ...]``, ``terminated [N]``."""

    obs: jax.Array
    action: jax.Array
    delta: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    ptr: jax.Array  # [] next slot
    size: jax.Array  # [] filled slots


def action_dim(state: QflexState) -> int:
    """Muscles the learner acts on (the sampler's last layer outputs mean and log std of each)."""
    layers = state.actor["params"]
    last = max(layers, key=lambda k: int(k.rsplit("_", 1)[-1]))
    return layers[last]["bias"].shape[-1] // 2


def _nets(config: QflexConfig, act_dim: int):
    bias = float(np.log(config.init_excitation / (1 - config.init_excitation)))
    h = tuple(config.hidden)
    return MLP(h, 2 * act_dim, final_bias=0.0, final_scale=0.01), _Twin(h), _Velocity(h, act_dim), bias


def _opt(config: QflexConfig):
    return optax.adam(config.learning_rate)


def qflex_init(key: jax.Array, obs_dim: int, act_dim: int, config: QflexConfig = QflexConfig()) -> QflexState:
    actor_net, twin, vel, _ = _nets(config, act_dim)
    ka, kc, kv = jax.random.split(key, 3)
    o, a = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
    actor = actor_net.init(ka, o)
    critic = twin.init(kc, o, a)
    velocity = vel.init(kv, jnp.zeros(1), o, a)
    log_alpha = jnp.log(jnp.asarray(config.init_alpha))
    opt = _opt(config)
    return QflexState(
        actor, critic, critic, velocity, log_alpha,
        opt.init(actor), opt.init(critic), opt.init(velocity), opt.init(log_alpha),
        norm_init(obs_dim), jnp.zeros((), jnp.int32),
    )  # fmt: skip


def _pi0(actor_params, obs_n, config: QflexConfig, act_dim: int):
    actor_net, _, _, bias = _nets(config, act_dim)
    out = actor_net.apply(actor_params, obs_n)
    mean = out[..., :act_dim] + bias
    log_std = jnp.clip(out[..., act_dim:] - 1.0, -5.0, 1.0)
    return mean, log_std


def _sample_pi0(actor_params, obs_n, key, config, act_dim):
    """``(a0 in [0,1], log pi0(a0|s))`` with the reparameterisation trick."""
    mean, log_std = _pi0(actor_params, obs_n, config, act_dim)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    logp = gaussian_log_prob(u, mean, log_std) - log_squash_jacobian(u)
    return squash(u), logp


def _flow(velocity_params, obs_n, a0, config: QflexConfig, act_dim: int):
    """K Euler steps from ``a0``; returns the final action and the path ``[K, ..., act]``."""
    _, _, vel, _ = _nets(config, act_dim)
    K = config.flow_steps
    a = a0
    path = []
    for k in range(K):
        t = jnp.full(a.shape[:-1], k / K)
        path.append(a)
        a = jnp.clip(a + vel.apply(velocity_params, t, obs_n, a) / K, 0.0, 1.0)
    return a, path


def qflex_act(state: QflexState, obs: jax.Array, key: jax.Array, config: QflexConfig, act_dim: int):
    """Explore: ``(a0, action)``: the sampler's action and the flow-refined one applied."""
    obs_n = normalise(state.obs_norm, obs)
    a0, _ = _sample_pi0(state.actor, obs_n, key, config, act_dim)
    a, _ = _flow(state.velocity, obs_n, a0, config, act_dim)
    return a0, a


def qflex_mean_action(state: QflexState, obs: jax.Array, config: QflexConfig, act_dim: int) -> jax.Array:
    """Deterministic excitation: the sampler's mean, squashed, then the flow."""
    obs_n = normalise(state.obs_norm, obs)
    mean, _ = _pi0(state.actor, obs_n, config, act_dim)
    a, _ = _flow(state.velocity, obs_n, squash(mean), config, act_dim)
    return a


def td_target(reward, terminated, next_q1, next_q2, next_log_prob, gamma: float, alpha):
    """Soft TD target ``r + gamma (1 - done) (min(Q1', Q2') - alpha log pi0(a0'|s'))``."""
    return reward + gamma * (1.0 - terminated) * (jnp.minimum(next_q1, next_q2) - alpha * next_log_prob)


def flow_target(grad_q: jax.Array, scale: float, eps: float = 1e-6) -> jax.Array:
    """The velocity target: ``scale * g / |g|`` (the unit direction of rising value)."""
    return scale * grad_q / (jnp.linalg.norm(grad_q, axis=-1, keepdims=True) + eps)


def buffer_init_one(capacity: int, obs_dim: int, act_dim: int, delta_dim: int) -> Buffer:
    """One seed's empty replay (the trainer vmaps it): arrays ``[N, ...]``, scalar ptr/size."""
    z = jnp.zeros
    return Buffer(
        z((capacity, obs_dim), jnp.float32), z((capacity, act_dim), jnp.float32),
        z((capacity, delta_dim), jnp.float32), z((capacity, obs_dim), jnp.float32),
        z((capacity,), jnp.float32), z((), jnp.int32), z((), jnp.int32),
    )  # fmt: skip


def buffer_add_one(buf: Buffer, batch: dict) -> Buffer:
    """Append one seed's ``[T, E, ...]`` batch (obs, action, delta, next_obs, terminated)."""
    obs = batch["obs"]
    n = obs.shape[0] * obs.shape[1]
    cap = buf.obs.shape[0]
    idx = (buf.ptr + jnp.arange(n)) % cap

    def put(store, x):
        return store.at[idx].set(x.reshape((n,) + x.shape[2:]).astype(store.dtype))

    return Buffer(
        put(buf.obs, obs), put(buf.action, batch["action"]), put(buf.delta, batch["delta"]),
        put(buf.next_obs, batch["next_obs"]), put(buf.terminated, batch["terminated"]),
        (buf.ptr + n) % cap, jnp.minimum(buf.size + n, cap),
    )  # fmt: skip


def qflex_update(
    state: QflexState,
    buf_obs, buf_action, buf_delta, buf_next, buf_term, size,
    reward_fn: Callable,
    key: jax.Array,
    new_obs: jax.Array,
    config: QflexConfig = QflexConfig(),
):  # fmt: skip
    """``updates_per_iteration`` gradient steps for one seed (buffer slices of that seed).

    ``reward_fn(delta) -> reward`` turns stored Δ into rewards with the current reward state;
    ``new_obs`` (the latest collected observations) updates the observation statistics first.
    """
    act_dim = buf_action.shape[-1]
    _, twin, vel, _ = _nets(config, act_dim)
    state = state._replace(obs_norm=norm_update(state.obs_norm, new_obs))
    opt = _opt(config)
    target_entropy = config.target_entropy_per_dim * act_dim
    ready = size >= config.learning_starts

    def step(st: QflexState, k):
        kb, kn, kp, kf = jax.random.split(k, 4)
        idx = jax.random.randint(kb, (config.batch_size,), 0, jnp.maximum(size, 1))
        obs = normalise(st.obs_norm, buf_obs[idx])
        nxt = normalise(st.obs_norm, buf_next[idx])
        act, term = buf_action[idx], buf_term[idx]
        rew = reward_fn(buf_delta[idx])
        alpha = jnp.exp(st.log_alpha)

        # critics
        a0n, logp_n = _sample_pi0(st.actor, nxt, kn, config, act_dim)
        an, _ = _flow(st.velocity, nxt, a0n, config, act_dim)
        tq1, tq2 = twin.apply(st.target_critic, nxt, an)
        y = jax.lax.stop_gradient(td_target(rew, term, tq1, tq2, logp_n, config.gamma, alpha))

        def critic_loss(p):
            q1, q2 = twin.apply(p, obs, act)
            return jnp.mean(jnp.square(q1 - y)) + jnp.mean(jnp.square(q2 - y))

        lc, gc = jax.value_and_grad(critic_loss)(st.critic)
        upd, opt_c = opt.update(gc, st.opt_critic, st.critic)
        critic = optax.apply_updates(st.critic, upd)

        # initial sampler (SAC) and temperature
        def actor_loss(p):
            a0, logp = _sample_pi0(p, obs, kp, config, act_dim)
            q1, q2 = twin.apply(critic, obs, a0)
            return jnp.mean(alpha * logp - jnp.minimum(q1, q2)), logp

        (la, logp), ga = jax.value_and_grad(actor_loss, has_aux=True)(st.actor)
        upd, opt_a = opt.update(ga, st.opt_actor, st.actor)
        actor = optax.apply_updates(st.actor, upd)
        lalpha, gal = jax.value_and_grad(
            lambda la_: -jnp.mean(la_ * jax.lax.stop_gradient(logp + target_entropy))
        )(st.log_alpha)
        upd, opt_al = opt.update(gal, st.opt_alpha, st.log_alpha)
        log_alpha = optax.apply_updates(st.log_alpha, upd)

        # flow: regress v(t_k, s, a_k) onto the normalised action gradient of min Q
        lv = jnp.zeros(())
        velocity, opt_v = st.velocity, st.opt_velocity
        if config.flow_steps > 0:
            a0, _ = _sample_pi0(actor, obs, kf, config, act_dim)
            _, path = _flow(st.velocity, obs, jax.lax.stop_gradient(a0), config, act_dim)
            a_k = jax.lax.stop_gradient(jnp.stack(path))  # [K, batch, act]
            t_k = jnp.broadcast_to(
                (jnp.arange(config.flow_steps) / config.flow_steps)[:, None], a_k.shape[:2]
            )
            qmin = lambda a, o: jnp.minimum(*twin.apply(critic, o, a))  # noqa: E731
            g = jax.vmap(jax.vmap(jax.grad(qmin)))(a_k, jnp.broadcast_to(obs, a_k.shape[:2] + obs.shape[-1:]))
            target = jax.lax.stop_gradient(flow_target(g, config.flow_scale))

            def flow_loss(p):
                v = vel.apply(p, t_k, jnp.broadcast_to(obs, a_k.shape[:2] + obs.shape[-1:]), a_k)
                return jnp.mean(jnp.sum(jnp.square(v - target), axis=-1))

            lv, gv = jax.value_and_grad(flow_loss)(st.velocity)
            upd, opt_v = opt.update(gv, st.opt_velocity, st.velocity)
            velocity = optax.apply_updates(st.velocity, upd)

        target = jax.tree_util.tree_map(
            lambda t, s: (1 - config.tau) * t + config.tau * s, st.target_critic, critic
        )
        new = QflexState(
            actor,
            critic,
            target,
            velocity,
            log_alpha,
            opt_a,
            opt_c,
            opt_v,
            opt_al,
            st.obs_norm,
            st.updates + 1,
        )
        new = jax.tree_util.tree_map(lambda n, o: jnp.where(ready, n, o), new, st)
        info = {
            "critic_loss": lc,
            "actor_loss": la,
            "flow_loss": lv,
            "alpha": alpha,
            "entropy": -jnp.mean(logp),
        }
        return new, info

    state, info = jax.lax.scan(step, state, jax.random.split(key, config.updates_per_iteration))
    return state, jax.tree_util.tree_map(jnp.mean, info)
