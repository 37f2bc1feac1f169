"""Many seeds in one program: ``make_train(config) -> train(keys)``.

Every array of the training state carries a leading seed axis; the learner's update, the policy's
action and the reward are ``jax.vmap``-ed over it and ``jax.jit``-compiled once. The physics
batch is seeds x envs-per-seed: on the ``cpu`` backend MuJoCo's thread pool steps it, on ``mjx``
one vmapped XLA program does. Seeds share nothing: each has its own keys, networks, optimiser
state, observation statistics, discriminator and start frames, so seed ``s`` trained alone
reproduces seed ``s`` of a batch.

Learning curves (per seed, per iteration) come back as arrays; ``progress_fn(info)`` is called
after every iteration for the CLI and notebooks.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from .agents import AGENTS
from .agents import ppo as ppo_lib
from .agents import qflex as qflex_lib
from .demos import resolve_motion
from .env import EnvConfig, TrackingEnv
from .models import MuscleModel, load_model
from .motion import ReferenceMotion
from .physics import make_physics
from .rewards import REWARDS, AddConfig, ExpConfig, add_init, add_reward, add_update, exp_reward

__all__ = ["CURVE_NAMES", "TrainConfig", "TrainResult", "Trainer", "make_train", "seed_keys"]

CURVE_NAMES = (
    "env_steps",
    "wall_time_s",
    "reward",
    "episode_return",
    "joint_angle_error_deg",
    "root_rotation_error_deg",
    "body_position_error_cm",
    "root_translation_error_cm",
    "termination_rate",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (with the seed).

    Attributes:
        model: built-in model name or MJCF path.
        motion: shipped demo name or motion file.
        algo: ``ppo`` or ``qflex``.
        reward: ``exp`` or ``add``.
        backend: ``cpu`` (native MuJoCo, threads) or ``mjx``.
        n_envs: environments per seed (None: the learner's default, ``ppo.n_envs`` /
            ``qflex.n_envs``).
        total_steps: control steps per seed, summed over its environments (None: the learner's
            default).
        env: the tracking environment's settings.
        ppo / qflex: learner hyper-parameters.
        add / exp: reward settings.
    """

    model: str = "elbow"
    motion: str = "elbow_flexion"
    algo: str = "ppo"
    reward: str = "add"
    backend: str = "cpu"
    n_envs: int | None = None
    total_steps: int | None = None
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: ppo_lib.PPOConfig = field(default_factory=ppo_lib.PPOConfig)
    qflex: qflex_lib.QflexConfig = field(default_factory=qflex_lib.QflexConfig)
    add: AddConfig = field(default_factory=AddConfig)
    exp: ExpConfig = field(default_factory=ExpConfig)

    def __post_init__(self):
        if self.algo not in AGENTS:
            raise ValueError(f"algo must be one of {AGENTS}, got {self.algo!r}")
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        agent = self.ppo if self.algo == "ppo" else self.qflex
        if self.n_envs is None:
            object.__setattr__(self, "n_envs", agent.n_envs)
        if self.total_steps is None:
            object.__setattr__(self, "total_steps", agent.total_steps)
        if self.n_envs < 1 or self.total_steps < 1:
            raise ValueError(f"n_envs and total_steps must be >= 1, got {self.n_envs}, {self.total_steps}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict` (nested dataclasses rebuilt; unknown keys are an error)."""
        sub = {
            "env": EnvConfig,
            "ppo": ppo_lib.PPOConfig,
            "qflex": qflex_lib.QflexConfig,
            "add": AddConfig,
            "exp": ExpConfig,
        }
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown} (known: {sorted(known)})")
        kw = {}
        for k, v in d.items():
            if k in sub and isinstance(v, dict):
                fields = {f.name for f in dataclasses.fields(sub[k])}
                bad = sorted(set(v) - fields)
                if bad:
                    raise ValueError(f"unknown {k} options {bad} (known: {sorted(fields)})")
                v = sub[k](**{kk: tuple(vv) if isinstance(vv, list) else vv for kk, vv in v.items()})
            kw[k] = v
        return TrainConfig(**kw)


class TrainResult(NamedTuple):
    """What :func:`train` returns: the final learner/reward states (leading seed axis) and the
    learning curves ``{name: [seed, iteration]}`` (names in :data:`CURVE_NAMES`)."""

    agent: tuple
    reward_state: tuple | None
    curves: dict


def seed_keys(seeds) -> jax.Array:
    """``[S, 2]`` PRNG keys for integer seeds (seed s -> ``jax.random.PRNGKey(s)``)."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


class Trainer:
    """The compiled pieces of one configuration; ``train(keys)`` runs them."""

    def __init__(
        self, config: TrainConfig, model: MuscleModel | None = None, motion: ReferenceMotion | None = None
    ):
        self.config = config
        self.model = model or load_model(config.model)
        self.motion = motion or resolve_motion(config.motion, self.model)[0]
        self.motion.check_model(self.model)
        probe = TrackingEnv(
            self.model, self.motion, make_physics(self.model, config.backend, n_envs=1), config.env
        )
        self.obs_dim, self.act_dim = probe.obs_dim, probe.action_dim
        self.delta_names = probe.delta_names
        self.reference_frames = probe.reference_frames
        self.control_dt = probe.control_dt
        self._fixed_base = probe.fixed_base
        self._build(probe)

    # -- compiled pieces ---------------------------------------------------------------
    def _build(self, probe: TrackingEnv):
        c = self.config
        exp_cfg = dataclasses.replace(c.exp, fixed_base=self._fixed_base)
        names = self.delta_names

        def reward_fn(rstate, delta):
            if c.reward == "exp":
                return exp_reward(delta, names, exp_cfg)
            return add_reward(rstate, delta, c.add)

        self._reward = jax.jit(jax.vmap(reward_fn))
        self._reward_update = jax.jit(jax.vmap(lambda s, d: add_update(s, d, c.add)))
        if c.algo == "ppo":
            cfg = c.ppo
            self._init_agent = jax.jit(
                jax.vmap(lambda k: ppo_lib.ppo_init(k, self.obs_dim, self.act_dim, cfg))
            )
            self._act = jax.jit(jax.vmap(lambda s, o, k: ppo_lib.ppo_act(s, o, k, cfg)))
            self._value = jax.jit(jax.vmap(lambda s, o: ppo_lib.ppo_value(s, o, cfg)))
            self._update = jax.jit(jax.vmap(lambda s, r, v, k: ppo_lib.ppo_update(s, r, v, k, cfg)))
            self._mean_action = jax.jit(jax.vmap(lambda s, o: ppo_lib.ppo_mean_action(s, o, cfg)))
        else:
            cfg, A = c.qflex, self.act_dim
            self._init_agent = jax.jit(jax.vmap(lambda k: qflex_lib.qflex_init(k, self.obs_dim, A, cfg)))
            self._act = jax.jit(jax.vmap(lambda s, o, k: qflex_lib.qflex_act(s, o, k, cfg, A)))
            self._mean_action = jax.jit(jax.vmap(lambda s, o: qflex_lib.qflex_mean_action(s, o, cfg, A)))

            def upd(s, bo, ba, bd, bn, bt, size, rs, k, new_obs):
                return qflex_lib.qflex_update(
                    s, bo, ba, bd, bn, bt, size, lambda d: reward_fn(rs, d), k, new_obs, cfg
                )

            self._qflex_update = jax.jit(jax.vmap(upd))
        # per-seed start frames; a non-cyclic motion never starts on its last frame (the env's rule)
        self._starts = jax.jit(jax.vmap(lambda k: probe.start_frames(k, c.n_envs)))
        self._split = jax.jit(jax.vmap(lambda k: jax.random.split(k, 4)))
        self.n_steps = c.ppo.rollout_steps if c.algo == "ppo" else c.qflex.steps_per_update
        self._split_steps = jax.jit(jax.vmap(lambda k: jax.random.split(k, self.n_steps)))

    @property
    def n_iterations(self) -> int:
        """Training iterations (collect + update) per seed: ``ceil(total_steps / (n_envs x
        steps per iteration))``."""
        return max(1, int(np.ceil(self.config.total_steps / (self.config.n_envs * self.n_steps))))

    def make_env(self, n_seeds: int) -> TrackingEnv:
        phys = make_physics(self.model, self.config.backend, n_envs=n_seeds * self.config.n_envs)
        return TrackingEnv(self.model, self.motion, phys, self.config.env)

    def mean_action(self, agent, obs):
        """Deterministic excitations ``[S, E, act]`` for observations ``[S, E, obs]``."""
        return self._mean_action(agent, obs)

    def init_state(self, keys: jax.Array) -> TrainResult:
        """The untrained learner and reward states for ``keys [S, 2]`` (what :meth:`train`
        starts from; also the template :func:`load_checkpoint` fills), with empty curves."""
        k = self._split(jnp.asarray(keys))
        agent = self._init_agent(k[:, 1])
        rstate = (
            jax.vmap(lambda kk: add_init(kk, len(self.delta_names), self.config.add))(k[:, 2])
            if self.config.reward == "add"
            else None
        )
        return TrainResult(agent, rstate, {})

    # -- the loop ----------------------------------------------------------------------
    def train(
        self,
        keys: jax.Array,
        progress_fn: Callable[[dict], None] | None = None,
        checkpoint: Callable[[int, TrainResult], None] | None = None,
        checkpoint_every: int = 0,
        resume: tuple[int, TrainResult] | None = None,
    ) -> TrainResult:
        """Train ``S = len(keys)`` independent seeds.

        Args:
            keys: ``[S, 2]`` PRNG keys (see :func:`seed_keys`).
            progress_fn: called after each iteration with ``{"iteration", "iterations",
                "env_steps", "wall_time_s", "steps_per_s", "curves", "agent"}`` (curves so far, the
                current learner state).
            checkpoint: called every ``checkpoint_every`` iterations with (iteration, state).
            resume: (iteration, state) from a checkpoint to continue from.
        """
        c = self.config
        keys = jnp.asarray(keys)
        S, E = keys.shape[0], c.n_envs
        env = self.make_env(S)
        n_steps = self.n_steps
        per_iter = E * n_steps
        n_iters = self.n_iterations
        k = self._split(keys)  # [S, 4, 2]
        loop_keys, k_start = k[:, 0], k[:, 3]
        if resume is not None:
            start_iter, prev = resume
            agent, rstate, curves = (
                prev.agent,
                prev.reward_state,
                {n: list(v.T) for n, v in prev.curves.items()},
            )
            loop_keys = jax.vmap(lambda kk: jax.random.fold_in(kk, start_iter))(loop_keys)
        else:
            start_iter = 0
            agent, rstate, _ = self.init_state(keys)
            curves = {n: [] for n in CURVE_NAMES}
        starts = np.asarray(self._starts(k_start)).reshape(S * E)
        env_state, obs = env.reset(None, index=starts)
        obs = jnp.asarray(obs).reshape(S, E, -1)
        ep_ret = np.zeros((S, E))
        t0 = time.perf_counter()
        done_before = int(np.max(curves["env_steps"][-1])) if curves["env_steps"] else 0
        steps_done = done_before
        if c.algo == "qflex":
            buffer = qflex_lib.buffer_init(
                S, c.qflex.buffer_size, self.obs_dim, self.act_dim, len(self.delta_names)
            )
            # the replay buffer is not checkpointed: after a resume it refills
        for it in range(start_iter, n_iters):
            ks = self._split(loop_keys)
            loop_keys, k_act, k_upd, k_reset = ks[:, 0], ks[:, 1], ks[:, 2], ks[:, 3]
            act_keys = self._split_steps(k_act)  # [S, T, 2]
            reset_keys = self._split_steps(k_reset)
            traj = {n: [] for n in (*ppo_lib.ROLLOUT_KEYS, "action", "delta", "next_obs")}
            sum_metrics = np.zeros((S, 4))
            sum_reward = np.zeros(S)
            ended_ret: list[list[float]] = [[] for _ in range(S)]
            n_term = np.zeros(S)
            n_end = np.zeros(S)
            for t in range(n_steps):
                out = self._act(agent, obs, act_keys[:, t])
                if c.algo == "ppo":
                    u, exc, logp, val = out
                else:
                    u, exc = out
                    logp = val = jnp.zeros((S, E))
                res = env.step(env_state, np.asarray(exc).reshape(S * E, -1))
                delta = jnp.asarray(res.delta).reshape(S, E, -1)
                rew = self._reward(rstate, delta)
                term = np.asarray(res.terminated).reshape(S, E)
                trunc = np.asarray(res.truncated).reshape(S, E) & ~term
                next_obs = jnp.asarray(res.obs).reshape(S, E, -1)
                for name, v in (
                    ("obs", obs), ("u", u), ("log_prob", logp), ("value", val), ("reward", rew),
                    ("terminated", term.astype(np.float32)), ("truncated", trunc.astype(np.float32)),
                    ("delta", delta), ("next_obs", next_obs), ("action", exc),
                ):  # fmt: skip
                    traj[name].append(v)
                r = np.asarray(rew)
                ep_ret += r
                sum_reward += r.mean(1)
                sum_metrics += np.asarray(res.metrics).reshape(S, E, 4).mean(1)
                done = term | trunc
                n_term += term.sum(1)
                n_end += done.sum(1)
                for s, e in zip(*np.nonzero(done), strict=True):
                    ended_ret[s].append(ep_ret[s, e])
                    ep_ret[s, e] = 0.0
                env_state = res.state
                if done.any():
                    new = np.asarray(self._starts(reset_keys[:, t]))
                    env_state, robs = env.reset_where(env_state, done.reshape(-1), index=new.reshape(-1))
                    obs = jnp.where(
                        jnp.asarray(done)[..., None], jnp.asarray(robs).reshape(S, E, -1), next_obs
                    )
                else:
                    obs = next_obs
            batch = {n: jnp.stack(v, axis=1) for n, v in traj.items()}  # [S, T, E, ...]
            if c.algo == "ppo":
                last_value = self._value(agent, obs)
                agent, info = self._update(
                    agent, {k: batch[k] for k in ppo_lib.ROLLOUT_KEYS}, last_value, k_upd
                )
            else:
                buffer = qflex_lib.buffer_add(buffer, batch)
                agent, info = self._qflex_update(
                    agent, buffer.obs, buffer.action, buffer.delta, buffer.next_obs, buffer.terminated, buffer.size,
                    rstate, k_upd, batch["obs"].reshape(S, -1, self.obs_dim),
                )  # fmt: skip
            if c.reward == "add":
                rstate, _ = self._reward_update(
                    rstate, batch["delta"].reshape(S, -1, batch["delta"].shape[-1])
                )
            steps_done += n_steps * E
            wall = time.perf_counter() - t0
            m = sum_metrics / n_steps
            with np.errstate(invalid="ignore"):
                row = {
                    "env_steps": np.full(S, steps_done, dtype=float),
                    "wall_time_s": np.full(S, wall),
                    "reward": sum_reward / n_steps,
                    "episode_return": np.array([np.mean(x) if x else np.nan for x in ended_ret]),
                    "joint_angle_error_deg": m[:, 0],
                    "root_rotation_error_deg": m[:, 1],
                    "body_position_error_cm": m[:, 2],
                    "root_translation_error_cm": m[:, 3],
                    "termination_rate": np.where(n_end > 0, n_term / np.maximum(n_end, 1), np.nan),
                }
            for n in CURVE_NAMES:
                curves[n].append(row[n])
            result = None
            due = checkpoint is not None and checkpoint_every and (it + 1) % checkpoint_every == 0
            if progress_fn is not None or due:
                result = TrainResult(agent, rstate, {n: np.stack(v, axis=1) for n, v in curves.items()})
            if progress_fn is not None:
                progress_fn(
                    {
                        "iteration": it + 1,
                        "iterations": n_iters,
                        "env_steps": steps_done,
                        "total_steps": n_iters * per_iter,
                        "wall_time_s": wall,
                        "steps_per_s": (steps_done - done_before) * S / max(wall, 1e-9),
                        "curves": result.curves,
                        "agent": agent,
                        "reward_state": rstate,
                    }
                )
            if due:
                checkpoint(it + 1, result)
        return TrainResult(agent, rstate, {n: np.stack(v, axis=1) for n, v in curves.items()})


def make_train(config: TrainConfig, **kwargs) -> Callable[..., TrainResult]:
    """``train(keys [S, 2], progress_fn=None, ...) -> TrainResult`` for ``config``."""
    return Trainer(config, **kwargs).train


# ---------------------------------------------------------------------------------------------
# Checkpoints: one msgpack file per seed block


def save_checkpoint(path: str | Path, iteration: int, result: TrainResult, config: TrainConfig) -> Path:
    """Write ``result`` (all seeds of a block) and the iteration to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "iteration": iteration,
        "config": config.to_json(),
        "agent": serialization.to_state_dict(result.agent),
        "reward_state": serialization.to_state_dict(result.reward_state)
        if result.reward_state is not None
        else {},
        "curves": {k: np.asarray(v) for k, v in result.curves.items()},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(serialization.msgpack_serialize(payload))
    tmp.replace(path)
    return path


def load_checkpoint(
    path: str | Path, template: TrainResult, config: TrainConfig
) -> tuple[int, TrainResult] | None:
    """Read a checkpoint written by :func:`save_checkpoint` for the same config (else None)."""
    path = Path(path)
    if not path.is_file():
        return None
    payload = serialization.msgpack_restore(path.read_bytes())
    if payload.get("config") != config.to_json():
        return None
    agent = serialization.from_state_dict(template.agent, payload["agent"])
    rstate = (
        serialization.from_state_dict(template.reward_state, payload["reward_state"])
        if template.reward_state is not None
        else None
    )
    curves = {k: np.asarray(v) for k, v in payload["curves"].items()}
    return int(payload["iteration"]), TrainResult(agent, rstate, curves)
