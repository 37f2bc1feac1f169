"""What a ``diversity run`` does: one frozen, documented configuration, from code, TOML or the CLI.

The CLI, the Python API and the notebooks all build a :class:`RunConfig`; its
:meth:`~RunConfig.identity` (everything that determines the numbers in the store) is written
into the store, so a re-run can tell "same run, resume" from "different run, refuse".
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# each built-in model's natural motion, used when a run names no motion (the emulator's table)
from emulator.motion.sources import DEFAULT_MOTIONS

__all__ = ["ConfigError", "RunConfig", "as_seeds", "load_config", "parse_seed_list"]

# TOML tables passed through to the emulator's training config
TRAIN_TABLES = ("env", "ppo", "qflex", "add", "exp")
SCHEDULERS = "in-process (default), 'local' (a Dask LocalCluster) or 'tcp://HOST:PORT'"


# Defaults per model, used where the run does not set them (TOML tables and flags win, key by
# key). myolegs: the walking recipe chosen by measurement (docs/walking.md: benchmarks/walking.py's
# ablation, then the long runs): a 30 Hz policy setting muscle-length targets around the
# reference's own lengths for a stiff PD law run at every physics step (an untrained policy
# already servos to the walk; the policy corrects at 30 Hz), termination on the mean body
# distance, muscle tone at resets, previous action and 5 future frames observed, low initial
# action noise bounded at log std -2 ("quiet"), root-rotation and root-translation kernels
# sharpened; 128 envs, 5 epochs x 4 minibatches (benchmarks/recipes/myolegs_walk_servo30_quiet.toml
# states the same, and every recipe there states what it uses, so a change here changes none of
# them: tests/test_walking_benchmark.py). myofullbody: wider networks, fewer envs per
# seed (each step costs more physics), the same update passes. Budgets stay the learner's
# defaults: enough to see learning; walking takes millions of steps (docs/walking.md).
_WALK_ENV = {
    "control_dt": 1 / 30,
    "termination_body": "mean",
    "termination_distance_m": 0.15,
    "reset_activation": 0.05,
    "observe_previous_action": True,
    "future_frames": (1, 2, 5, 10, 20),
    "action_space": "muscle_length_residual",
    "length_kp": 20.0,
    "length_kd": 0.5,
    "length_lead": 1,
    "length_residual": 0.2,
    "servo_rate": "physics",
}
MODEL_DEFAULTS = {
    "myolegs": {
        "n_envs": 128,
        "env": _WALK_ENV,
        "ppo": {
            "hidden": (256, 256),
            "epochs": 5,
            "minibatches": 4,
            "init_excitation": 0.5,
            "init_log_std": -1.0,
            "log_std_max": -2.0,
        },
        "exp": {
            "weights": {
                "joint_angle": 0.35,
                "joint_velocity": 0.1,
                "body_position": 0.15,
                "root_rotation": 0.15,
                "root_translation": 0.15,
                "root_velocity": 0.1,
            },
            "sigmas": {"root_rotation": 0.15, "root_translation": 0.1},
        },
        "qflex": {"hidden": (256, 256)},
    },
    "myofullbody": {
        "n_envs": 8,
        "ppo": {"hidden": (512, 256), "epochs": 5, "minibatches": 4},
        "qflex": {"hidden": (512, 256)},
    },
}


def _learner_defaults() -> dict:
    """The learner config's field defaults (the one place they are stated)."""
    from emulator.learning.train import TrainConfig

    return {
        f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING
    }


class ConfigError(ValueError):
    """A bad run option; the message names the option (and the file) and what was expected."""


@dataclass(frozen=True)
class RunConfig:
    """One ``diversity run``. The defaults are the embedded demo (50 elbow policies, ~13 min on 2
    CPU cores).

    Attributes:
        model: built-in model name (``diversity models``) or an MJCF path.
            model, algo, reward, backend: None takes the learner config's default
            (:class:`~emulator.learning.train.TrainConfig`: elbow, ppo, exp, cpu), stated
            there once.
        motion: shipped demo name for the model (``diversity motions``) or a motion file
            (None: the model's own, :data:`DEFAULT_MOTIONS`: the elbow's flexion cycle, the
            measured walk for myolegs and myofullbody).
        seeds: the integer seeds to train, one policy each (``--seeds N`` gives ``0..N-1``).
        algo: ``ppo`` or ``qflex``.
        reward: ``exp`` (weighted exponential kernels; the default because it reaches
            < 5 deg on every elbow seed in 150k steps) or ``add`` (adversarial, the paper's).
        steps: control steps per seed (None: the learner's default, PPO 150k, Qflex 40k).
        backend: physics backend, ``cpu`` (native MuJoCo threads) or ``mjx``.
        n_envs: environments per seed (None: :data:`MODEL_DEFAULTS` for the model, else the
            learner's default).
        cycles: motion cycles each trained policy is rolled out for (a non-cyclic motion runs
            once to its end).
        block_size: seeds trained together in one compiled program; a block is the unit of
            checkpointing, of store writing and of Dask tasks. Larger is a little faster
            (elbow PPO: 10.3k env steps/s at 10 seeds, 10.4k at 50, 7.8k at 5), smaller loses less on a crash.
        checkpoint_every: training iterations between checkpoints of a block (0: never).
        train: extra emulator settings by table (``env``, ``ppo``, ``qflex``, ``add``,
            ``exp``), e.g. ``{"ppo": {"hidden": [64, 64]}}``.
        init_from: a policy set (shipped name, a run's store or a directory of policy files)
            whose policies of the same seed ids this run continues instead of starting fresh:
            ``steps`` are then the steps added, and the curves count env steps and wall time on
            from the set's. The set must have been trained with this run's model, motion,
            environment, reward and learner settings (only ``steps``, ``n_envs`` and
            ``backend`` may differ). Lean (shipped) files keep no optimiser moments: Adam
            restarts from zero, the networks and normaliser carry on. None: from scratch.
    """

    model: str | None = None
    motion: str | None = None
    seeds: tuple[int, ...] = tuple(range(50))
    algo: str | None = None
    reward: str | None = None
    steps: int | None = None
    backend: str | None = None
    n_envs: int | None = None
    cycles: float = 2.0
    block_size: int = 10
    checkpoint_every: int = 10
    train: dict = field(default_factory=dict)
    init_from: str | None = None

    def __post_init__(self):
        learner = _learner_defaults()
        for name in ("model", "algo", "reward", "backend"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, learner[name])
        if self.motion is None:
            if self.model not in DEFAULT_MOTIONS:
                raise ConfigError(
                    f"motion: model {self.model!r} has no default motion; name one (a shipped demo or a motion file)"
                )
            object.__setattr__(self, "motion", DEFAULT_MOTIONS[self.model])
        seeds = tuple(int(s) for s in self.seeds)
        object.__setattr__(self, "seeds", seeds)
        if not seeds:
            raise ConfigError("seeds: at least one seed is needed (got 0)")
        if min(seeds) < 0:
            raise ConfigError(f"seeds: seeds must be >= 0, got {min(seeds)}")
        dup = sorted({s for s in seeds if seeds.count(s) > 1})
        if dup:
            raise ConfigError(f"seeds: repeated seed ids {dup}")
        if self.block_size < 1:
            raise ConfigError(f"block_size: must be >= 1, got {self.block_size}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps: must be >= 1, got {self.steps}")
        if self.n_envs is not None and self.n_envs < 1:
            raise ConfigError(f"n_envs: must be >= 1, got {self.n_envs}")
        if self.cycles <= 0:
            raise ConfigError(f"cycles: must be > 0, got {self.cycles}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every: must be >= 0, got {self.checkpoint_every}")
        bad = sorted(set(self.train) - set(TRAIN_TABLES))
        if bad:
            raise ConfigError(f"train: unknown tables {bad} (known: {list(TRAIN_TABLES)})")
        self.train_config()  # validates algo, reward and the tables' fields

    def train_config(self):
        """The emulator's :class:`~emulator.learning.train.TrainConfig` for this run."""
        from emulator.learning.train import TrainConfig

        size = MODEL_DEFAULTS.get(self.model, {})
        train = {k: dict(v) for k, v in self.train.items()}
        for table in TRAIN_TABLES:
            for key, value in size.get(table, {}).items():
                train.setdefault(table, {}).setdefault(key, value)
        d = {
            "model": self.model,
            "motion": self.motion,
            "algo": self.algo,
            "reward": self.reward,
            "backend": self.backend,
            "n_envs": self.n_envs if self.n_envs is not None else size.get("n_envs"),
            "total_steps": self.steps,
            **train,
        }
        try:
            return TrainConfig.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e)) from None

    def identity(self) -> dict:
        """Everything that determines the store's numbers: the resolved training config, the
        seeds and the rollout length (not where or how the run executes)."""
        ident = {
            "train": self.train_config().to_dict(),
            "seeds": list(self.seeds),
            "cycles": self.cycles,
        }
        if self.init_from is not None:  # (absent otherwise: earlier stores keep their identity)
            ident["init_from"] = self.init_from
        return ident

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes) -> RunConfig:
        """A copy with ``changes``; a new model that names no motion takes its own default
        motion when this config's motion was the old model's default."""
        if "model" in changes and "motion" not in changes and self.motion == DEFAULT_MOTIONS.get(self.model):
            changes["motion"] = None
        return dataclasses.replace(self, **changes)


def parse_seed_list(text: str) -> tuple[int, ...]:
    """``"0,3,7"`` or ``"0-9,20"`` -> seed ids."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError(f"seed list: {part!r} is not a seed id or a range like 0-9") from None
    return tuple(out)


def as_seeds(value, where: str = "seeds") -> tuple[int, ...]:
    """Seed ids from a count ``N`` (0..N-1), a list/range of ids, or a string like ``"0-9,20"``;
    errors start with ``where`` (the option or file key)."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: seeds must be a count or a list of ids, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{where} must be >= 1, got {value}")
        return tuple(range(value))
    if isinstance(value, str):
        return parse_seed_list(value)
    if isinstance(value, list | tuple | range) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in value
    ):
        return tuple(value)
    raise ConfigError(f"{where}: seeds must be a count or a list of integer ids, got {value!r}")


# options that live in the file but are about where/how to run, not what
RUN_OPTIONS = ("out", "scheduler", "force")


def _read_recipe(path: Path, chain: tuple[Path, ...]) -> dict:
    """The TOML table of ``path`` with the recipes it ``extends`` merged underneath (``chain``:
    the files that extend it, to refuse a loop)."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file" + (f" (extended by {chain[-1]})" if chain else ""))
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must be a file name, got {parent!r}")
    parent_path = (path.parent / parent).resolve()
    if parent_path in chain or parent_path == path.resolve():
        raise ConfigError(
            f"{path}: extends {parent} makes a loop ({' -> '.join(str(p.name) for p in chain)})"
        )
    return _deep_merge(_read_recipe(parent_path, (*chain, path.resolve())), raw)


def _deep_merge(under: dict, over: dict) -> dict:
    """``over`` on top of ``under``: tables merged key by key at every depth, other values replaced."""
    out = dict(under)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path, base: RunConfig | None = None) -> tuple[RunConfig, dict]:
    """Read a TOML run file: top-level keys are :class:`RunConfig` fields (``seeds`` a count or a
    list) plus ``out`` / ``scheduler`` / ``force``; tables ``[env]``, ``[ppo]``, ``[qflex]``,
    ``[add]``, ``[exp]`` go to the emulator. ``extends = "other.toml"`` (a path relative to this
    file) reads that recipe first and changes only what this one sets: tables merge key by key
    at every depth (``[exp.weights] root_translation = 0.4`` keeps the other weights), any other
    value (a list such as ``action_basis`` included) replaces. Returns (config, run options)."""
    raw = _read_recipe(Path(path), ())
    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"train"}
    known = fields | set(TRAIN_TABLES) | set(RUN_OPTIONS) | {"seed_list"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown} (known: {sorted(known)})")
    kw: dict = {}
    train = dict((base or RunConfig()).train)
    for k, v in raw.items():
        if k in TRAIN_TABLES:
            if not isinstance(v, dict):
                raise ConfigError(f"{path}: [{k}] must be a table")
            train[k] = {**train.get(k, {}), **v}
        elif k in ("seeds", "seed_list"):
            kw["seeds"] = as_seeds(v, f"{path}: {k}")
        elif k not in RUN_OPTIONS:
            kw[k] = v
    options = {k: raw[k] for k in RUN_OPTIONS if k in raw}
    try:
        cfg = (base or RunConfig()).replace(train=train, **kw)
    except (ConfigError, TypeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    return cfg, options
