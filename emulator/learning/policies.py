"""Trained policies as small files: one seed's learner state plus everything needed to run it.

A policy file (``.msgpack``, format ``ms-diversity-policy/1``) holds the seed id, the full
training configuration (model, motion, environment, learner; JSON), the learner state, the
seed's learning curves and free-form ``meta`` (env steps, wall time, errors, versions). The
reward state is not kept: a rollout needs only the policy. Nothing is pickled.

A *policy set* is a directory of such files (``seed_0000.msgpack``, ...) with an optional
``manifest.json``; ``diversity run`` writes one into every store (``STORE/policies/``), and
shipped sets live in ``datasets/policies/<name>/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from emulator.paths import policies_dir

__all__ = [
    "POLICY_FORMAT",
    "PolicyError",
    "PolicySet",
    "find_policy_set",
    "list_policy_sets",
    "load_policy_set",
    "policy_set_config",
    "policy_path",
    "policy_seeds",
    "save_policy",
    "shipped_policies_dir",
]

POLICY_FORMAT = "ms-diversity-policy/1"
POLICY_DIR = "policies"


class PolicyError(Exception):
    """A policy file or set that cannot be used; the message names the file and the problem."""


def policy_path(directory: str | Path, seed: int) -> Path:
    return Path(directory) / f"seed_{int(seed):04d}.msgpack"


def policy_seeds(directory: str | Path) -> list[int]:
    """The seed ids of the policy files in ``directory`` (the inverse of :func:`policy_path`)."""
    stems = (f.stem.removeprefix("seed_") for f in Path(directory).glob("seed_*.msgpack"))
    return sorted(int(s) for s in stems if s.isdigit())


# learner-state fields a rollout never reads (optimiser moments, target networks): a lean policy
# file leaves them out, which makes it about a third of the size; loading fills them from a
# freshly initialised learner (training continued from a lean file restarts its optimiser)
_NOT_FOR_ROLLOUTS = ("opt_state", "opt_actor", "opt_critic", "opt_velocity", "opt_alpha", "target_critic")


def save_policy(
    directory: str | Path, seed: int, agent, config, curves: dict | None = None, meta=None, lean: bool = False
) -> Path:
    """Write one seed's learner state ``agent`` (no seed axis) trained with ``config`` (a
    :class:`~emulator.learning.train.TrainConfig`) atomically to ``directory/seed_NNNN.msgpack``;
    ``lean`` leaves out what a rollout does not need (shipped sets)."""
    path = policy_path(directory, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = serialization.to_state_dict(jax.tree_util.tree_map(np.asarray, agent))
    if lean:
        state = {k: v for k, v in state.items() if k not in _NOT_FOR_ROLLOUTS}
    payload = {
        "format": POLICY_FORMAT,
        "seed": int(seed),
        "config": config.to_json(),
        "lean": bool(lean),
        "agent": state,
        "curves": {k: np.asarray(v) for k, v in (curves or {}).items()},
        "meta": json.dumps(meta or {}, default=float),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(serialization.msgpack_serialize(payload))
    tmp.replace(path)
    return path


def _read(path: Path) -> dict:
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except OSError as e:
        raise PolicyError(f"{path}: cannot read ({e.strerror or e})") from None
    except Exception as e:
        raise PolicyError(f"{path}: not a policy file ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != POLICY_FORMAT:
        raise PolicyError(f"{path}: not a policy file (expected format {POLICY_FORMAT!r})")
    for key in ("seed", "config", "agent"):
        if key not in payload:
            raise PolicyError(f"{path}: policy file without {key!r}")
    return payload


@dataclass
class PolicySet:
    """Policies of one configuration, stacked along a leading seed axis.

    Attributes:
        name: the set's name (directory name).
        seeds: seed ids, in file order.
        config: the training configuration they share.
        agent: learner states with a leading seed axis (what :func:`emulator.learning.rollout.rollout`
            takes).
        curves: ``{name: [seed, iteration]}`` learning curves (empty when not kept).
        meta: per-seed ``meta`` dicts.
        manifest: the set's ``manifest.json`` (empty when absent).
    """

    name: str
    seeds: list[int]
    config: object
    agent: object
    curves: dict = field(default_factory=dict)
    meta: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def policy_set_config(directory: str | Path):
    """The :class:`~emulator.learning.train.TrainConfig` a policy set was trained with (read
    from its first file; :func:`load_policy_set` checks that every file agrees)."""
    from emulator.learning.train import TrainConfig

    directory = Path(directory)
    files = sorted(directory.glob("seed_*.msgpack"))
    if not files:
        raise PolicyError(f"{directory}: no policy files (seed_*.msgpack) in it")
    try:
        return TrainConfig.from_dict(json.loads(_read(files[0])["config"]))
    except (ValueError, TypeError) as e:
        raise PolicyError(f"{files[0]}: unusable training configuration: {e}") from None


def load_policy_set(directory: str | Path, trainer=None) -> tuple[PolicySet, object]:
    """Read every ``seed_*.msgpack`` in ``directory``; returns the set and the
    :class:`~emulator.learning.train.Trainer` of their configuration (built unless given)."""
    from emulator.learning.train import TrainConfig, Trainer, option_differences, seed_keys

    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError(f"{directory}: no such policy set (a directory of seed_*.msgpack files)")
    files = sorted(directory.glob("seed_*.msgpack"))
    if not files:
        raise PolicyError(f"{directory}: no policy files (seed_*.msgpack) in it")
    payloads = [(f, _read(f)) for f in files]
    configs = []
    for f, p in payloads:
        try:  # a seed written before an option existed has it at its default: the same training
            configs.append(TrainConfig.from_dict(json.loads(p["config"])))
        except (ValueError, TypeError) as e:
            raise PolicyError(f"{f}: unusable training configuration: {e}") from None
    config = configs[0]
    for (f, _), other in zip(payloads[1:], configs[1:], strict=True):
        if other != config:
            where = next(iter(option_differences(config.to_dict(), other.to_dict())), ("?",))[0]
            raise PolicyError(
                f"{directory}: the policies were trained with different configurations "
                f"({files[0].name} and {f.name} differ in {where})"
            )
    trainer = trainer or Trainer(config)
    template = jax.tree_util.tree_map(lambda x: x[0], trainer.init_state(seed_keys([0])).agent)
    full = serialization.to_state_dict(template)
    agents = []
    for f, p in payloads:
        state = p["agent"]
        if p.get("lean") and isinstance(state, dict):  # the fields left out come from the template
            state = {**{k: v for k, v in full.items() if k in _NOT_FOR_ROLLOUTS}, **state}
        try:
            agents.append(serialization.from_state_dict(template, state))
        except (ValueError, KeyError, TypeError) as e:
            raise PolicyError(f"{f}: learner state does not fit its configuration ({e})") from None
        for a, b in zip(
            jax.tree_util.tree_leaves(template), jax.tree_util.tree_leaves(agents[-1]), strict=True
        ):
            if np.shape(a) != np.shape(b):
                raise PolicyError(f"{f}: learner state does not fit its configuration (shape {np.shape(b)})")
    agent = jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *agents)
    curves = {}
    names = set.intersection(*(set(p.get("curves", {})) for _, p in payloads))
    for n in sorted(names):
        arrays = [np.asarray(p["curves"][n]) for _, p in payloads]
        if len({a.shape for a in arrays}) == 1:
            curves[n] = np.stack(arrays)
    manifest_file = directory / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    return (
        PolicySet(
            name=directory.name if directory.name != POLICY_DIR else directory.parent.stem,
            seeds=[int(p["seed"]) for _, p in payloads],
            config=config,
            agent=agent,
            curves=curves,
            meta=[json.loads(p.get("meta", "{}")) for _, p in payloads],
            manifest=manifest,
        ),
        trainer,
    )


def shipped_policies_dir() -> Path:
    return policies_dir()


def list_policy_sets() -> list[dict]:
    """The shipped policy sets: name, model, motion, seeds and what their manifest says."""
    root = shipped_policies_dir()
    out = []
    for d in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        manifest_file = d / "manifest.json"
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
        out.append(
            {
                "name": d.name,
                "path": str(d),
                "n_seeds": len(list(d.glob("seed_*.msgpack"))),
                "model": manifest.get("model", ""),
                "motion": manifest.get("motion", ""),
                "summary": manifest.get("summary", ""),
            }
        )
    return out


def find_policy_set(name_or_path: str | Path) -> Path:
    """A policy directory: a run's store (its ``policies/``), a directory of policy files, or
    the name of a shipped set."""
    p = Path(name_or_path)
    if (p / POLICY_DIR).is_dir():
        return p / POLICY_DIR
    if p.is_dir():
        return p
    shipped = shipped_policies_dir() / str(name_or_path)
    if shipped.is_dir():
        return shipped
    names = [s["name"] for s in list_policy_sets()]
    if p.exists():
        raise PolicyError(f"{p}: not a policy set or a store with policies")
    raise PolicyError(
        f"{name_or_path}: no such store, policy directory or shipped policy set (shipped: {names or 'none'})"
    )
