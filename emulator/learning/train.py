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

from emulator.learning.agents import AGENTS, make_agent
from emulator.learning.agents import ppo as ppo_lib
from emulator.learning.agents import qflex as qflex_lib
from emulator.learning.rewards import REWARDS, AddConfig, ExpConfig, effort_cost, make_reward
from emulator.learning.walked import WalkedStarts, apply_walked
from emulator.models import MuscleModel, load_model
from emulator.motion.reference import ReferenceMotion
from emulator.motion.sources import load_motion
from emulator.schema import CURVE_NAMES
from emulator.simulation.env import EnvConfig, TrackingEnv, focused_start_probs

__all__ = [
    "CURVE_NAMES",
    "assist_strength",
    "START_FOCUS_DECAY",
    "TrainConfig",
    "TrainResult",
    "TrainStart",
    "Trainer",
    "make_train",
    "seed_keys",
]


# ``EnvConfig.start_focus``: each iteration the per-start-frame episode statistics are multiplied
# by this, so they describe about the last 1 / (1 - decay) = 10 iterations' episodes (a few dozen
# per frame with 128 envs and a 31-frame cycle): the policy's present, not its past
START_FOCUS_DECAY = 0.9


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
    reward: str = "exp"
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
        agent = getattr(self, self.algo)  # the learner's settings table has the learner's name
        if self.n_envs is None:
            object.__setattr__(self, "n_envs", agent.n_envs)
        if self.total_steps is None:
            object.__setattr__(self, "total_steps", agent.total_steps)
        if self.n_envs < 1 or self.total_steps < 1:
            raise ValueError(f"n_envs and total_steps must be >= 1, got {self.n_envs}, {self.total_steps}")
        if self.exp.effort > 0 and (self.reward != "exp" or self.algo != "ppo"):
            raise ValueError(
                f"exp effort needs reward 'exp' and algo 'ppo' (Qflex recomputes rewards from stored "
                f"Δ, which has no activations), got reward {self.reward!r}, algo {self.algo!r}"
            )

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

    @staticmethod
    def with_new_defaults(d: dict) -> dict | None:
        """The settings ``d`` (a :meth:`to_dict`, maybe written by an older version) with the
        options added since at their defaults, which reproduce what the older code did (None
        if ``d`` is not a config this code reads). Stored settings compare through this, so a
        new option does not make every earlier run look like another one."""
        try:
            return json.loads(TrainConfig.from_dict(d).to_json())
        except (TypeError, ValueError):
            return None


def option_differences(old: dict, new: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """``(dotted option, old value, new value)`` wherever two settings dicts differ, nested
    tables walked, in sorted order (``"<absent>"`` for an option one of them lacks)."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += option_differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append((f"{prefix}{k}", a, b))
    return out


class TrainStart(NamedTuple):
    """Where :meth:`Trainer.train` begins when it continues policies trained before: their
    learner states (leading seed axis; a lean policy file's optimiser moments start afresh)
    and the env steps and training wall time they already had, which the curves count on from."""

    agent: tuple
    env_steps: int
    wall_time_s: float


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
    """The compiled pieces of one configuration; ``train(keys)`` runs them.

    Args:
        config: the training configuration.
        model, motion: the model and reference to train on (default: loaded from the config's
            names).
        env: a tracking environment to take sizes (observation, action, Δ) from; by default a
            one-environment ``cpu`` view of the task (no MJX compile for the sizes).
    """

    def __init__(
        self,
        config: TrainConfig,
        model: MuscleModel | None = None,
        motion: ReferenceMotion | None = None,
        env: TrackingEnv | None = None,
    ):
        self.config = config
        self.model = model or (env.model if env is not None else load_model(config.model))
        self.motion = motion or (env.motion if env is not None else load_motion(config.motion, self.model)[0])
        self.motion.check_model(self.model)
        if env is not None and env.config != config.env:
            raise ValueError("the env given to the Trainer has other settings than config.env")
        spec = env or TrackingEnv.create(self.model, self.motion, config.env)
        self.spec_env = spec
        self.obs_dim, self.act_dim = spec.obs_dim, spec.action_dim
        self.delta_names = spec.delta_names
        self.reference_frames = spec.reference_frames
        self.control_dt = spec.control_dt
        self._fixed_base = spec.fixed_base
        self.agent = make_agent(config.algo, getattr(config, config.algo))
        reward_cfg = getattr(config, config.reward)
        if config.reward == "exp":
            reward_cfg = dataclasses.replace(reward_cfg, fixed_base=self._fixed_base)
        self.reward = make_reward(config.reward, reward_cfg, self.delta_names)
        self._build(spec)

    # -- compiled pieces ---------------------------------------------------------------
    def _build(self, spec: TrackingEnv):
        c, agent, reward = self.config, self.agent, self.reward
        obs_dim, act_dim, delta_dim = self.obs_dim, self.act_dim, len(self.delta_names)

        def init(k_agent, k_reward):
            return agent.init(k_agent, obs_dim, act_dim), reward.init(k_reward, self.delta_names)

        self._init = jax.jit(jax.vmap(init))
        self._memory_init = jax.jit(jax.vmap(lambda _: agent.memory_init(obs_dim, act_dim, delta_dim)))
        self._mean_action = jax.jit(jax.vmap(agent.mean_action))

        def update(state, memory, rstate, batch, last_obs, key):
            state, memory, info = agent.update(
                state, memory, batch, last_obs, lambda d: reward(rstate, d), key
            )
            flat_delta = batch["delta"].reshape(-1, batch["delta"].shape[-1])
            return state, memory, reward.update(rstate, flat_delta), info

        self._update = jax.jit(jax.vmap(update))
        # per-seed start frames; a non-cyclic motion never starts on its last frame (the env's rule)
        self._starts = jax.jit(jax.vmap(lambda k: spec.start_frames(k, c.n_envs)))
        # with EnvConfig.start_focus: per seed [S], per step [T], drawn with that seed's probs
        self._focused_starts = jax.jit(
            jax.vmap(jax.vmap(lambda k, p: spec.start_frames(k, c.n_envs, p), in_axes=(0, None)))
        )
        self._start_allowed = spec.start_frame_allowed
        self._split = jax.jit(jax.vmap(lambda k: jax.random.split(k, 4)))
        self.n_steps = agent.steps_per_iteration
        self._split_steps = jax.jit(jax.vmap(lambda k: jax.random.split(k, self.n_steps)))
        self._programs: dict[int, tuple[TrackingEnv, Callable]] = {}

    def _collect_step_fn(self, env: TrackingEnv, S: int, E: int):
        """One jitted function per control step, after the physics: the env's transition (Δ,
        metrics, termination, resets from the reference table), the reward, episode-return
        bookkeeping and the next exploring action, all seeds at once."""
        agent, reward = self.agent, self.reward
        table_sig = env.reset_table()[1]
        # ExpConfig.effort: economy is not part of tracking, so its cost joins the reward here
        effort_cfg = self.config.exp if self.config.reward == "exp" and self.config.exp.effort > 0 else None

        def seeds(x):  # [S*E, ...] -> [S, E, ...]
            return x.reshape((S, E) + x.shape[1:])

        def act(state, obs, key, sensed):
            """Exploring policy actions ``[S, E, muscle]`` and the excitations ``[S*E, muscle]``
            they ask for (the env's action space)."""
            action, extras = jax.vmap(agent.act)(state, obs, key)
            return action, env.drive_fn(action.reshape(S * E, -1), sensed), extras

        def step(state, rstate, sig, index, steps, action, reset_index, ep_ret, key, walked=None):
            length = seeds(steps + 1)  # control steps of each episode after this one
            obs, next_obs, d, m, term, trunc, index, steps, _, sensed = env.transition_fn(
                sig, index, steps, action.reshape(S * E, -1), reset_index, table_sig
            )
            obs, index, sensed = apply_walked(walked, term | trunc, obs, index, sensed)
            d, m, term, trunc = seeds(d), seeds(m), seeds(term), seeds(trunc)
            rew = jax.vmap(reward)(rstate, d)
            if effort_cfg is not None:
                rew = rew - seeds(effort_cost(sig.activation, effort_cfg))
            done = term | trunc
            ret = ep_ret + rew
            action, flat_exc, extras = act(state, seeds(obs), key, sensed)
            record = {
                "next_obs": seeds(next_obs), "delta": d, "reward": rew,
                "terminated": term.astype(jnp.float32), "truncated": trunc.astype(jnp.float32),
                "metrics": m, "ended_return": jnp.where(done, ret, 0.0),
                "ended_length": jnp.where(done, length, 0).astype(jnp.float32),
            }  # fmt: skip
            ret = jnp.where(done, 0.0, ret)
            return record, seeds(obs), action, flat_exc, extras, index, steps, ret, done.reshape(-1), sensed

        return jax.jit(step), jax.jit(act)

    @property
    def n_iterations(self) -> int:
        """Training iterations (collect + update) per seed: ``ceil(total_steps / (n_envs x
        steps per iteration))``."""
        return max(1, int(np.ceil(self.config.total_steps / (self.config.n_envs * self.n_steps))))

    def make_env(self, n_seeds: int) -> TrackingEnv:
        """The learner's environments (``n_seeds x n_envs``): the run's env settings, with the
        training termination distance and extrapolated-root limit when set
        (``EnvConfig.train_termination_distance_m``, ``train_termination_xcom_m``; rollouts
        build theirs from ``config.env`` and end at ``termination_distance_m``). The
        training loop also pushes them when ``EnvConfig.push_speed_mps`` is set (rollouts never)."""
        env_cfg = self.config.env
        if env_cfg.train_termination_distance_m is not None:
            env_cfg = dataclasses.replace(
                env_cfg, termination_distance_m=env_cfg.train_termination_distance_m
            )
        if env_cfg.train_termination_xcom_m is not None:
            env_cfg = dataclasses.replace(env_cfg, termination_xcom_m=env_cfg.train_termination_xcom_m)
        return TrackingEnv.create(
            self.model, self.motion, env_cfg, backend=self.config.backend, n_envs=n_seeds * self.config.n_envs
        )

    def _per_env_draws(self, draw, k_reset, stream: int, S: int, E: int) -> np.ndarray:
        """``draw(key) -> [T, E, 2]`` for each seed from its own key (``k_reset`` folded with
        ``stream``, a stream apart from its reset frames' and the other draws'), laid out as the
        loop's environments ``[T, S*E, 2]``."""
        keys = jax.vmap(lambda kk: jax.random.fold_in(kk, stream))(k_reset)
        draws = np.asarray(jax.vmap(draw)(keys))  # [S, T, E, 2]
        return draws.transpose(1, 0, 2, 3).reshape(self.n_steps, S * E, 2)

    def _pushes(self, env: TrackingEnv, k_reset, S: int, E: int) -> np.ndarray | None:
        """This iteration's pushes ``[T, S*E, 2]`` (``EnvConfig.push_speed_mps``; None when off)."""
        if env.config.push_speed_mps <= 0:
            return None
        return self._per_env_draws(lambda kk: env.push_kicks(kk, (self.n_steps, E)), k_reset, 1, S, E)

    def _start_kicks(self, env: TrackingEnv, k_reset, S: int, E: int) -> np.ndarray | None:
        """This iteration's shoves ``[T, S*E, 2]`` for the environments whose episode starts at
        each step (``EnvConfig.reset_kick_mps``; None when off): uniform within the disc."""
        radius = env.config.reset_kick_mps
        if radius <= 0:
            return None

        def draw(key):
            k_len, k_dir = jax.random.split(key)
            size = radius * jnp.sqrt(jax.random.uniform(k_len, (self.n_steps, E)))  # uniform in area
            angle = jax.random.uniform(k_dir, (self.n_steps, E), maxval=2 * jnp.pi)
            return size[..., None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)

        return self._per_env_draws(draw, k_reset, 2, S, E)

    def mean_action(self, agent, obs):
        """Deterministic excitations ``[S, E, act]`` for observations ``[S, E, obs]``."""
        return self._mean_action(agent, obs)

    def init_state(self, keys: jax.Array) -> TrainResult:
        """The untrained learner and reward states for ``keys [S, 2]`` (what :meth:`train`
        starts from; also the template :func:`load_checkpoint` fills), with empty curves."""
        k = self._split(jnp.asarray(keys))
        agent, rstate = self._init(k[:, 1], k[:, 2])  # (k[:, 0] drives the loop, k[:, 3] starts)
        return TrainResult(agent, rstate, {})

    # -- the loop ----------------------------------------------------------------------
    def train(
        self,
        keys: jax.Array,
        progress_fn: Callable[[dict], None] | None = None,
        checkpoint: Callable[[int, TrainResult], None] | None = None,
        checkpoint_every: int = 0,
        resume: tuple[int, TrainResult] | None = None,
        start: TrainStart | None = None,
    ) -> TrainResult:
        """Train ``S = len(keys)`` independent seeds.

        Args:
            keys: ``[S, 2]`` PRNG keys (see :func:`seed_keys`).
            progress_fn: called after each iteration with ``{"iteration", "iterations",
                "env_steps", "wall_time_s", "steps_per_s", "curves", "agent", "start_probs",
                "assist"}`` (curves so far, the current learner state, with
                ``EnvConfig.start_focus`` the next iteration's start-frame probabilities ``[S,
                T]``, else None, and the root assist's strength this iteration).
            checkpoint: called every ``checkpoint_every`` iterations with (iteration, state).
            resume: (iteration, state) from a checkpoint to continue from.
            start: learner states trained elsewhere to begin from instead of fresh ones (a
                policy set continued in a new run); ignored when ``resume`` is given, whose
                state already carries on from it.
        """
        c = self.config
        keys = jnp.asarray(keys)
        S, E = keys.shape[0], c.n_envs
        if S not in self._programs:  # one env and one compiled step per block size, reused
            env = self.make_env(S)
            self._programs[S] = (env, *self._collect_step_fn(env, S, E))
        env, collect, first_act = self._programs[S]
        n_steps = self.n_steps
        per_iter = E * n_steps
        n_iters = self.n_iterations
        k = self._split(keys)  # [S, 4, 2]
        loop_keys, k_start = k[:, 0], k[:, 3]
        if resume is not None:
            start_iter, prev = resume
            agent, rstate = prev.agent, prev.reward_state
            curves = {n: list(v.T) for n, v in prev.curves.items()}
            loop_keys = jax.vmap(lambda kk: jax.random.fold_in(kk, start_iter))(loop_keys)
        else:
            start_iter = 0
            agent, rstate, _ = self.init_state(keys)
            curves = {n: [] for n in CURVE_NAMES}
            if start is not None:
                agent = start.agent
                # a different stream from the first run's, which began at these same keys
                loop_keys = jax.vmap(lambda kk: jax.random.fold_in(kk, start.env_steps))(loop_keys)
        # the replay buffer (Qflex) is not checkpointed: after a resume it refills
        memory = self._memory_init(jnp.zeros(S))
        starts = np.asarray(self._starts(k_start)).reshape(S * E)
        env_state, obs = env.reset(None, index=starts)
        phys, index, steps, sensed = env_state.physics, env_state.index, env_state.steps, env_state.sensed
        obs = jnp.asarray(obs).reshape(S, E, -1)
        ep_ret = jnp.zeros((S, E))
        focus = _StartFocus(c.env.start_focus, S, E, self.reference_frames, self._start_allowed, starts)
        walked_keys = jax.vmap(lambda kk: jax.random.fold_in(kk, 0x5A1C))(loop_keys)  # their own stream
        after = round(c.env.reset_walked_after_s / env.control_dt)
        walked = WalkedStarts(c.env.reset_walked, after, S, E, walked_keys)
        t0 = time.perf_counter()
        # env steps and wall time count on from what the policies had before (a checkpoint's
        # curves, or the start's totals)
        if curves["env_steps"]:
            done_before = int(np.max(curves["env_steps"][-1]))
            wall_before = float(np.max(curves["wall_time_s"][-1]))
        elif start is not None:
            done_before, wall_before = int(start.env_steps), float(start.wall_time_s)
        else:
            done_before, wall_before = 0, 0.0
        steps_done = done_before
        for it in range(start_iter, n_iters):
            ks = self._split(loop_keys)
            loop_keys, k_act, k_upd, k_reset = ks[:, 0], ks[:, 1], ks[:, 2], ks[:, 3]
            act_keys = np.asarray(self._split_steps(k_act))  # [S, T, 2]
            if focus.probs is None:
                reset_index = np.asarray(jax.vmap(self._starts)(self._split_steps(k_reset)))  # [S, T, E]
            else:
                reset_index = np.asarray(self._focused_starts(self._split_steps(k_reset), focus.probs))
            reset_index = reset_index.reshape(S, n_steps, E).transpose(1, 0, 2).reshape(n_steps, S * E)
            action, flat_exc, extras = first_act(agent, obs, act_keys[:, 0], sensed)
            kicks = self._pushes(env, k_reset, S, E)  # [T, S*E, 2] or None
            start_kicks = self._start_kicks(env, k_reset, S, E)
            assist = assist_strength(env.config, it, n_iters)
            records, inputs = [], []
            for t in range(n_steps):
                if kicks is not None:
                    phys = env.push(phys, kicks[t])
                if start_kicks is not None:  # the episodes that (re)started at the last step
                    phys = env.push(phys, start_kicks[t] * (np.asarray(steps) == 0)[:, None])
                if assist > 0:
                    phys = env.push(phys, env.assist_kick(phys, index, assist))
                phys, sig = env.advance(phys, flat_exc)
                inputs.append(dict(extras, obs=obs, action=action))
                rec, obs, action, flat_exc, extras, index, steps, ep_ret, done, sensed = collect(
                    agent,
                    rstate,
                    sig,
                    index,
                    steps,
                    action,
                    reset_index[t],
                    ep_ret,
                    act_keys[:, (t + 1) % n_steps],
                    walked.offer(),
                )
                records.append(rec)
                done = np.asarray(done)
                focus.record(done, rec, reset_index[t])
                phys = env.restart(phys, done, reset_index[t])
                phys, _ = walked.after_step(phys, done, obs, index, sensed)
            focus.update()
            batch = _stack_steps(inputs, records)  # [S, T, E, ...]
            agent, memory, rstate, info = self._update(agent, memory, rstate, batch, obs, k_upd)
            steps_done += per_iter
            wall = time.perf_counter() - t0
            for n, v in _curve_row(batch, steps_done, wall_before + wall, env.control_dt).items():
                curves[n].append(v)
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
                        "start_probs": focus.probs,
                        "assist": assist,
                    }
                )
            if due:
                checkpoint(it + 1, result)
        return TrainResult(agent, rstate, {n: np.stack(v, axis=1) for n, v in curves.items()})


def assist_strength(env: EnvConfig, iteration: int, n_iterations: int) -> float:
    """The root assist's strength in iteration ``iteration`` (0-based) of a run of
    ``n_iterations`` (``EnvConfig.root_assist_hz``): 1 at the start, falling linearly to 0 at
    ``root_assist_anneal`` of the run; 0 without an assist."""
    if env.root_assist_hz <= 0:
        return 0.0
    return max(0.0, 1.0 - iteration / (env.root_assist_anneal * n_iterations))


class _StartFocus:
    """The training loop's start-frame curriculum (``EnvConfig.start_focus``): which frame each
    environment's episode started at, the decayed sums of ended episodes' control steps and
    terminations per seed and start frame, and the start-frame probabilities ``probs [S, T]``
    they give (None while the curriculum is off or before its first iteration ends: uniform
    starts, the default's random stream)."""

    def __init__(self, focus: float, S: int, E: int, T: int, allowed: np.ndarray, starts: np.ndarray):
        self.focus, self.allowed, self.T = focus, allowed, T
        self.probs = None
        if focus > 0:
            self.seed_of = np.repeat(np.arange(S), E)
            self.episode_start = np.asarray(starts, dtype=int) % T
            self.steps = np.zeros((S, T))
            self.failures = np.zeros((S, T))

    def record(self, done: np.ndarray, record: dict, reset_index: np.ndarray) -> None:
        """Count the episodes that ended this step (``done [S*E]``; the step's ``record`` holds
        their lengths in control steps and which terminated, ``[S, E]``) against the frames
        they started at; their successors start at ``reset_index [S*E]``."""
        if self.focus <= 0 or not done.any():
            return
        where = (self.seed_of[done], self.episode_start[done])
        np.add.at(self.steps, where, np.asarray(record["ended_length"]).reshape(-1)[done])
        np.add.at(self.failures, where, np.asarray(record["terminated"]).reshape(-1)[done])
        self.episode_start[done] = np.asarray(reset_index)[done] % self.T

    def update(self) -> None:
        """End of an iteration: the next iteration's probabilities, then decay the sums."""
        if self.focus <= 0:
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(self.steps > 0, self.failures / self.steps, np.nan)
        self.probs = focused_start_probs(rate, self.focus, self.allowed).astype(np.float32)
        self.steps *= START_FOCUS_DECAY
        self.failures *= START_FOCUS_DECAY


@jax.jit
def _stack_steps(inputs: list[dict], records: list[dict]) -> dict:
    """Per-step dicts ``[S, E, ...]`` -> one batch ``[S, T, E, ...]``."""
    out = {n: jnp.stack([x[n] for x in inputs], axis=1) for n in inputs[0]}
    out |= {n: jnp.stack([x[n] for x in records], axis=1) for n in records[0]}
    return out


def _curve_row(batch: dict, steps_done: int, wall: float, control_dt: float) -> dict:
    """One iteration's learning-curve values per seed (names in :data:`CURVE_NAMES`)."""
    m = np.asarray(batch["metrics"]).mean(axis=(1, 2))  # [S, 4]
    term = np.asarray(batch["terminated"]).sum(axis=(1, 2))
    ends = term + np.asarray(batch["truncated"]).sum(axis=(1, 2))
    ended = np.asarray(batch["ended_return"]).sum(axis=(1, 2))
    lengths = np.asarray(batch["ended_length"]).sum(axis=(1, 2)) * control_dt
    S = m.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "env_steps": np.full(S, steps_done, dtype=float),
            "wall_time_s": np.full(S, wall),
            "reward": np.asarray(batch["reward"]).mean(axis=(1, 2)),
            "episode_return": np.where(ends > 0, ended / ends, np.nan),
            "joint_angle_error_deg": m[:, 0],
            "root_rotation_error_deg": m[:, 1],
            "body_position_error_cm": m[:, 2],
            "root_translation_error_cm": m[:, 3],
            "termination_rate": np.where(ends > 0, term / np.maximum(ends, 1), np.nan),
            "episode_length_s": np.where(ends > 0, lengths / np.maximum(ends, 1), np.nan),
        }


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


def _same_training(stored_json, config: TrainConfig) -> bool:
    if stored_json == config.to_json():
        return True
    try:
        stored = json.loads(stored_json)
    except (TypeError, ValueError):
        return False
    return isinstance(stored, dict) and TrainConfig.with_new_defaults(stored) == json.loads(config.to_json())


def load_checkpoint(
    path: str | Path, template: TrainResult, config: TrainConfig
) -> tuple[int, TrainResult] | None:
    """Read a checkpoint written by :func:`save_checkpoint` for the same config (else None). A
    checkpoint written before a training option existed counts as the same config when that
    option is at its default (which reproduces what the older code did), so a run interrupted
    across a code update resumes instead of starting its block again."""
    path = Path(path)
    if not path.is_file():
        return None
    payload = serialization.msgpack_restore(path.read_bytes())
    if not _same_training(payload.get("config"), config):
        return None
    agent = serialization.from_state_dict(template.agent, payload["agent"])
    rstate = (
        serialization.from_state_dict(template.reward_state, payload["reward_state"])
        if template.reward_state is not None
        else None
    )
    curves = {k: np.asarray(v) for k, v in payload["curves"].items()}
    return int(payload["iteration"]), TrainResult(agent, rstate, curves)
