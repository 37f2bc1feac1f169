"""Training restarts on the policies' own walk (``EnvConfig.reset_walked``).

A reset puts an environment in the reference's state at some frame, and that state is not where
the policies' own walk passes (docs/walking.md, session 17: at early single stance their root
moves 0.1-0.15 m/s faster sideways and forward). Episodes also end after a few seconds, so the
slow drift a long walk accumulates is rare in the learner's batches. :class:`WalkedStarts`
keeps, per seed, a pool of states that seed's environments walked to and restarts a share of
ended episodes there: a state is taken once its lineage (the walk since its last reference
start, carried on through walked restarts) has lasted ``reset_walked_after_s``.

A pooled state is everything an environment's next step needs: the physics row, the
observation, the reference frame index and the servo's sensed quantities, all taken at the same
moment, so a walked restart is exactly the state the walk was in. Draws use one numpy generator
per seed, seeded from that seed's key: a seed trained alone reproduces itself in a block.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

POOL_SIZE = 256  # states per seed; one is taken per seed and control step, so it turns over fast


class WalkedStarts:
    """The pool and the per-environment walked time of one training block (``S`` seeds x ``E``
    environments each); inert (every method a no-op, :meth:`offer` None) when ``share`` is 0.

    Args:
        share: the share of ended episodes that restart from the pool (``EnvConfig.reset_walked``).
        after_steps: control steps a lineage must have walked before its states are pooled.
        S, E: seeds and environments per seed.
        seed_keys: ``[S, 2]`` keys, one per seed (its generator's seed).
    """

    def __init__(self, share: float, after_steps: int, S: int, E: int, seed_keys):
        self.share, self.after, self.S, self.E = float(share), int(after_steps), S, E
        self.on = self.share > 0
        if not self.on:
            return
        # the project's keys are raw uint32 pairs (``seed_keys``): each seeds its own generator
        self.rngs = [np.random.default_rng([int(x) for x in np.ravel(k)]) for k in np.asarray(seed_keys)]
        self.walked = np.zeros(S * E, dtype=np.int64)  # control steps since the lineage's reference start
        self.filled = np.zeros(S, dtype=np.int64)
        self.cursor = np.zeros(S, dtype=np.int64)
        self.pool: dict[str, np.ndarray] | None = None  # allocated at the first take
        self._rows = self._use = None

    def offer(self):
        """Before a step: where each environment would restart if it ended now, as the jitted
        step's ``walked`` argument ``(use [S*E] bool, obs, index, sensed)`` (None when off or
        the pool is still empty)."""
        if not self.on or self.pool is None:
            return None
        use = np.zeros(self.S * self.E, dtype=bool)
        rows = np.zeros(self.S * self.E, dtype=np.int64)
        for s, rng in enumerate(self.rngs):
            envs = slice(s * self.E, (s + 1) * self.E)
            draw = rng.random(self.E) < self.share
            use[envs] = draw & (self.filled[s] > 0)
            rows[envs] = s * POOL_SIZE + rng.integers(0, max(self.filled[s], 1), self.E)
        self._rows, self._use = rows, use
        p = self.pool
        return (
            jnp.asarray(use),
            jnp.asarray(p["obs"][rows]),
            jnp.asarray(p["index"][rows]),
            jnp.asarray(p["sensed"][rows]),
        )

    def after_step(self, phys, done, obs, index, sensed):
        """After a step whose ended environments are ``done [S*E]``: returns ``(phys, restarted)``,
        the physics ``[S*E, nstate]`` with the walked restarts placed (the other ended rows are
        the caller's to restart from the reference table) and which rows those are; then the
        walked times move on and each seed's pool takes one state of an environment that walked
        long enough (``obs``, ``index``, ``sensed`` as the step returned them)."""
        if not self.on:
            return phys, None
        done = np.asarray(done)
        restarted = done & self._use if self._use is not None else np.zeros_like(done)
        self.walked += 1
        self.walked[done] = 0
        if restarted.any():
            rows = self._rows[restarted]
            self.walked[restarted] = self.pool["walked"][rows]
            phys = _place(phys, restarted, self.pool["phys"][rows])
        self._take(phys, done, obs, index, sensed)
        self._rows = self._use = None
        return phys, restarted

    def _take(self, phys, done, obs, index, sensed):
        ready = (self.walked >= self.after) & ~done
        if not ready.any():
            return
        phys_np = np.asarray(phys)
        obs, index, sensed = (np.asarray(x).reshape(self.S * self.E, -1) for x in (obs, index, sensed))
        if self.pool is None:
            n = self.S * POOL_SIZE
            self.pool = {
                "phys": np.zeros((n, phys_np.shape[1]), phys_np.dtype),
                "obs": np.zeros((n, obs.shape[1]), obs.dtype),
                "index": np.zeros(n, index.dtype),
                "sensed": np.zeros((n, sensed.shape[1]), sensed.dtype),
                "walked": np.zeros(n, np.int64),
            }
        for s, rng in enumerate(self.rngs):
            candidates = np.flatnonzero(ready[s * self.E : (s + 1) * self.E]) + s * self.E
            if len(candidates) == 0:
                continue
            env = candidates[rng.integers(len(candidates))]
            row = s * POOL_SIZE + self.cursor[s]
            for name, value in (("phys", phys_np), ("obs", obs), ("sensed", sensed)):
                self.pool[name][row] = value[env]
            self.pool["index"][row] = index[env, 0]
            self.pool["walked"][row] = self.walked[env]
            self.cursor[s] = (self.cursor[s] + 1) % POOL_SIZE
            self.filled[s] = min(self.filled[s] + 1, POOL_SIZE)


def apply_walked(walked, done, obs, index, sensed):
    """Inside the jitted step: the ended environments ``done [S*E]`` that ``walked`` (from
    :meth:`WalkedStarts.offer`) restarts on the walk take its observation, frame and sensed
    quantities instead of the reference table's."""
    if walked is None:
        return obs, index, sensed
    use, w_obs, w_index, w_sensed = walked
    use = use & done
    return (
        jnp.where(use[:, None], w_obs, obs),
        jnp.where(use, w_index, index),
        jnp.where(use[:, None], w_sensed, sensed),
    )


def _place(phys, rows_mask, values):
    """``phys`` with the rows where ``rows_mask`` replaced by ``values`` (numpy or jax rows)."""
    if isinstance(phys, np.ndarray):
        phys = np.array(phys, copy=True)
        phys[rows_mask] = values
        return phys
    return jnp.asarray(phys).at[np.flatnonzero(rows_mask)].set(jnp.asarray(values))
