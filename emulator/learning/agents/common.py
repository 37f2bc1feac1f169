"""Pieces both agents share: MLPs, running observation normalisation, the excitation squash."""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """SiLU hidden layers, a linear output of ``out`` units (``out=0``: a scalar)."""

    hidden: tuple[int, ...]
    out: int
    final_bias: float = 0.0
    final_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = nn.silu(nn.Dense(h)(x))
        init = nn.initializers.variance_scaling(self.final_scale, "fan_in", "truncated_normal")
        y = nn.Dense(max(self.out, 1), kernel_init=init, bias_init=nn.initializers.constant(self.final_bias))(
            x
        )
        return y[..., 0] if self.out == 0 else y


class RunningNorm(NamedTuple):
    """Running mean and variance of observations (parallel-Welford over batches)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array


def norm_init(dim: int) -> RunningNorm:
    # explicit dtypes: a weakly typed count would change type after the first update and
    # make every jitted function that takes the state compile twice
    return RunningNorm(
        jnp.zeros(dim, jnp.float32), jnp.ones(dim, jnp.float32), jnp.asarray(1e-4, jnp.float32)
    )


def norm_update(norm: RunningNorm, x: jax.Array) -> RunningNorm:
    """Fold a batch ``x [..., dim]`` into the running statistics."""
    x = x.reshape(-1, x.shape[-1])
    b_mean, b_var, n = jnp.mean(x, 0), jnp.var(x, 0), x.shape[0]
    delta = b_mean - norm.mean
    tot = norm.count + n
    mean = norm.mean + delta * n / tot
    m2 = norm.var * norm.count + b_var * n + jnp.square(delta) * norm.count * n / tot
    return RunningNorm(mean, m2 / tot, tot)


def normalise(norm: RunningNorm, x: jax.Array, clip: float = 10.0) -> jax.Array:
    return jnp.clip((x - norm.mean) / jnp.sqrt(norm.var + 1e-8), -clip, clip)


def squash(u: jax.Array) -> jax.Array:
    """Pre-squash action -> muscle excitation in [0, 1] (logistic)."""
    return jax.nn.sigmoid(u)


def log_squash_jacobian(u: jax.Array) -> jax.Array:
    """``log |d squash / du|`` summed over action dimensions (for log-densities in [0, 1])."""
    return jnp.sum(jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u), axis=-1)


def gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Diagonal Gaussian log-density of ``u``, summed over the last axis."""
    z = (u - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
