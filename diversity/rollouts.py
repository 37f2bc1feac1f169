"""``diversity rollout`` as a library function: roll every seed of a kept policy set out into a
new store of the run schema, no training."""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

from .config import ConfigError, RunConfig
from .pipeline import RunReport, check_out, replace_store, run_provenance, write_seeds
from .progress import Progress
from .store import StoreError, completed_seeds, create_store, finalise_store, open_store

__all__ = ["rollout_policies"]


def _warn_if_motion_changed(source: Path, pset, trainer) -> None:
    """Warn when the policies were trained on other frames than the motion of that name here
    (a shipped motion rebuilt since, say): they roll out on the current one."""
    trained = {m.get("motion_hash") for m in pset.meta if isinstance(m, dict)} - {None}
    current = trainer.motion.content_hash
    if trained and trained != {current}:
        warnings.warn(
            f"{source}: trained on motion {trainer.config.motion!r} with content hash "
            f"{', '.join(sorted(trained))}; the {trainer.config.motion!r} here is {current} (changed since): "
            "rolling out on the current one",
            stacklevel=3,
        )


def rollout_policies(
    policies: str | Path,
    out: str | Path,
    *,
    cycles: float = 2.0,
    force: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Roll every seed of a policy set out into a new store of the run schema, no training.

    Args:
        policies: a run's store (its ``policies/``), a directory of policy files, or the name
            of a shipped set (``diversity policies``).
        out: the new store (an existing store is refused unless ``force``).
        cycles: motion cycles per rollout.
    """
    from emulator.learning.policies import PolicyError, find_policy_set, load_policy_set
    from emulator.learning.rollout import rollout, rollout_schema

    t_start = time.perf_counter()
    progress = progress or Progress()
    if cycles <= 0:
        raise ConfigError(f"cycles: must be > 0, got {cycles}")
    out = Path(out)
    check_out(out, force)
    source = find_policy_set(policies)
    if out.exists() and source.resolve().is_relative_to(out.resolve()):
        raise StoreError(f"{out}: is where the policies come from; write the rollout to another store")
    pset, trainer = load_policy_set(source)
    tc = trainer.config
    tables = {k: dataclasses.asdict(getattr(tc, k)) for k in ("env", "ppo", "qflex", "add", "exp")}
    config = RunConfig(
        model=tc.model, motion=tc.motion, seeds=tuple(pset.seeds), algo=tc.algo, reward=tc.reward,
        steps=tc.total_steps, backend=tc.backend, n_envs=tc.n_envs, cycles=cycles, train=tables,
    )  # fmt: skip
    if config.train_config().to_json() != tc.to_json():
        raise PolicyError(f"{source}: its training configuration does not round-trip through a run config")
    _warn_if_motion_changed(source, pset, trainer)
    schema = rollout_schema(trainer, n_cycles=cycles)
    n_iter = next(iter(pset.curves.values())).shape[1] if pset.curves else trainer.n_iterations
    if out.exists():
        if not force and any(out.iterdir()):
            raise StoreError(f"{out}: exists; pass --force to replace it")
        replace_store(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    attrs = run_provenance(config, trainer, schema)
    attrs["policy_source"] = str(source)
    create_store(out, schema, list(pset.seeds), n_iter, attrs)
    progress.start(n_seeds=len(pset.seeds), n_done=0, total_steps=0, store=str(out))
    report = RunReport(store=out, seeds=list(pset.seeds), completed=[])
    try:
        t0 = time.perf_counter()
        ro = rollout(trainer, pset.agent, n_cycles=cycles)
        report.rollout_time_s = time.perf_counter() - t0
        curves = pset.curves or {}
        # each policy keeps its training record (meta) in the new store
        errors = write_seeds(out, pset.seeds, pset.seeds, ro, curves, trainer, pset.agent, pset.meta)
        report.trained = list(pset.seeds)
        progress.seeds_done(list(pset.seeds), [errors[s] for s in pset.seeds])
    finally:
        report.completed = completed_seeds(open_store(out))
        report.wall_time_s = time.perf_counter() - t_start
        finalise_store(out, f"diversity rollout: {len(report.completed)} seeds from {source}")
        progress.close()
    return report
