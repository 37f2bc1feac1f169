"""``diversity run`` as a library function: train seed blocks, roll out, write the store; resume.

A run's seeds are cut into blocks of ``block_size`` (in seed order). A block is trained in one
compiled program (the emulator's ``Trainer``), checkpointed every ``checkpoint_every``
iterations to ``<store>.checkpoints/``, rolled out, and each of its seeds then writes its own
region of the store. Re-running on an existing store of the same run trains only blocks with
unfinished seeds (from their last checkpoint) and never rewrites a completed seed.

Blocks run in-process (default), or as tasks on a Dask distributed cluster
(``scheduler="local"`` starts a ``LocalCluster``, ``"tcp://host:port"`` joins one): each task
writes its own seeds' regions, so the store path must be on a filesystem the workers share.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import SCHEDULERS, ConfigError, RunConfig, as_seeds
from .progress import Progress
from .store import (
    StoreError,
    completed_seeds,
    create_store,
    finalise_store,
    open_store,
    provenance,
    store_variables,
    validate_store,
    write_seed,
)

__all__ = [
    "RunInterrupted",
    "RunReport",
    "check_out",
    "default_out",
    "replace_store",
    "run",
    "run_provenance",
    "write_seeds",
]


class RunInterrupted(Exception):
    """The run was stopped (Ctrl-C / SIGTERM) after flushing finished seeds and a checkpoint."""


@dataclass
class RunReport:
    """What :func:`run` did.

    Attributes:
        store: the store path.
        seeds: all seed ids of the store.
        completed: seed ids completed now (including earlier runs).
        trained: seed ids written by this call.
        skipped: seed ids already completed before this call (kept as they were).
        wall_time_s: wall time of this call.
        train_time_s / rollout_time_s: summed over blocks (in-process only).
    """

    store: Path
    seeds: list[int]
    completed: list[int]
    trained: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    wall_time_s: float = 0.0
    train_time_s: float = 0.0
    rollout_time_s: float = 0.0

    def add(self, block: dict) -> None:
        """Count one finished block (what :func:`_run_block` returns)."""
        self.trained += block["seeds"]
        self.train_time_s += block["train_s"]
        self.rollout_time_s += block["rollout_s"]


def default_out(config: RunConfig) -> Path:
    """``<model>-<motion>-<algo>-<reward>.zarr`` in the working directory."""
    return Path(f"{Path(config.model).stem}-{Path(config.motion).stem}-{config.algo}-{config.reward}.zarr")


# ---------------------------------------------------------------------------------------------
# preparing: the emulator objects for a config (cached per process: Dask workers reuse them)


@functools.lru_cache(maxsize=4)
def _trainer(train_json: str):
    """The emulator's Trainer for one training config: runs that differ only in seeds, rollout
    length or where they start share it, and with it its compiled programs."""
    from emulator.learning.train import TrainConfig, Trainer
    from emulator.models import load_model
    from emulator.motion.sources import load_motion

    train = TrainConfig.from_dict(json.loads(train_json))
    model = load_model(train.model)
    motion, _ = load_motion(train.motion, model)
    return Trainer(train, model=model, motion=motion)


@functools.lru_cache(maxsize=4)
def _prepared(config_json: str):
    from emulator.learning.rollout import rollout_schema

    config = RunConfig(**json.loads(config_json))
    trainer = _trainer(config.train_config().to_json())
    schema = rollout_schema(trainer, n_cycles=config.cycles)
    return config, trainer, schema


# learner settings a continued policy may change: how many envs and which physics backend
# collect its samples, how many steps are added, the learner's schedule (discount, step size,
# passes, rollout length) and the exp reward's kernels: none of them shapes the networks or
# the optimiser's state (a curriculum step; the store records the settings it ran with)
_CONTINUE_MAY_DIFFER = ("total_steps", "n_envs", "backend", "exp")
# env settings likewise: the learner's curricula, its episodes' termination, pushes, start
# frames and root assist (rollouts keep their own termination test, start where asked and walk
# unpushed and unaided), and the servo's balance reflex (a policy learns to walk with it)
_CONTINUE_ENV = (
    "train_termination_distance_m", "train_termination_xcom_m", "push_speed_mps", "push_interval_s", "reset_kick_mps",
    "reset_walked", "reset_walked_after_s",
    "start_focus", "root_assist_hz", "root_assist_anneal", "balance_reflex", "balance_reflex_joints",
)  # fmt: skip
_CONTINUE_SCHEDULE = {
    "ppo": (
        "learning_rate", "gamma", "gae_lambda", "clip", "value_clip", "entropy_coef", "value_coef",
        "epochs", "minibatches", "max_grad_norm", "rollout_steps", "n_envs", "total_steps", "log_std_max",
    ),
    "qflex": ("learning_rate", "gamma", "tau", "steps_per_update", "updates_per_iteration", "n_envs", "total_steps"),
}  # fmt: skip


def _check_start_set(config: RunConfig) -> Path:
    """The policy directory ``init_from`` names, checked against the run without building
    anything: it must share the training settings and hold every seed (else ConfigError
    naming what differs)."""
    from emulator.learning.policies import PolicyError, find_policy_set, policy_seeds, policy_set_config

    try:
        source = find_policy_set(config.init_from)
        theirs = policy_set_config(source).to_dict()
    except PolicyError as e:
        raise ConfigError(f"init_from: {e}") from None
    ours = config.train_config().to_dict()
    for key in _CONTINUE_MAY_DIFFER:
        theirs.pop(key, None), ours.pop(key, None)
    for algo, keys in (*_CONTINUE_SCHEDULE.items(), ("env", _CONTINUE_ENV)):
        for key in keys:
            theirs.get(algo, {}).pop(key, None), ours.get(algo, {}).pop(key, None)
    diff = _differences(theirs, ours)
    if diff:
        shown = "; ".join(d.replace("in the store", "in the set") for d in diff[:4])
        raise ConfigError(
            f"init_from: {source} was trained with other settings ({shown}"
            f"{'; ...' if len(diff) > 4 else ''}); a run continues a set only with the same ones"
        )
    have = policy_seeds(source)
    missing = sorted(set(config.seeds) - set(have))
    if missing:
        raise ConfigError(f"init_from: {source} has no policies for seeds {missing} (it has {have})")
    return source


@functools.lru_cache(maxsize=2)
def _start_set(config_json: str):
    """(directory, :class:`PolicySet`) of the run's ``init_from``, read with the run's trainer."""
    from emulator.learning.policies import PolicyError, load_policy_set

    config, trainer, _ = _prepared(config_json)
    source = _check_start_set(config)
    try:
        pset, _ = load_policy_set(source, trainer)
    except PolicyError as e:
        raise ConfigError(f"init_from: {e}") from None
    return source, pset


def _start_for(config_json: str, block: list[int]):
    """The :class:`TrainStart` of ``block`` from the run's ``init_from`` set (None without one)."""
    from emulator.learning.train import TrainStart

    config, _, _ = _prepared(config_json)
    if config.init_from is None:
        return None
    _, pset = _start_set(config_json)
    rows = [pset.seeds.index(s) for s in block]
    agent = jax_index(pset.agent, rows)
    steps = wall = 0.0
    for r in rows:
        meta = pset.meta[r] if r < len(pset.meta) else {}
        curves = {k: np.asarray(v[r]) for k, v in pset.curves.items()}
        if "env_steps" in curves and curves["env_steps"].size:
            steps = max(steps, float(np.nanmax(curves["env_steps"])))
        else:
            steps = max(steps, float(meta.get("env_steps") or 0))
        if "wall_time_s" in curves and curves["wall_time_s"].size:
            wall = max(wall, float(np.nanmax(curves["wall_time_s"])))
    return TrainStart(agent, int(steps), wall)


def run_provenance(config: RunConfig, trainer, schema) -> dict:
    """The store attributes saying how a run (or a rollout of a policy set) was made: model,
    motion, config, package versions and machine (what ``diversity rollout`` writes too)."""
    from emulator.runtime import runtime_record

    model, motion = trainer.model, trainer.motion
    record = runtime_record(backend=config.backend)
    attrs = provenance(
        model={
            "name": model.name,
            "source": model.source,
            "hash": model.content_hash,
            "mass_kg": float(model.mass_kg),
            "has_feet": model.has_feet,
            "feet": {side: list(bodies) for side, bodies in model.feet.items()},
            "root_kind": model.root_kind,
            "control_dt": schema.control_dt,
        },
        motion={
            "name": motion.name,
            "source": motion.source or "",
            "hash": motion.content_hash,
            "fps": float(motion.fps),
            "loop": bool(motion.loop),
            "duration_s": float(motion.duration_s),
            # one pass of the reference as the policy plays it (whole control steps per cycle)
            "cycle_s": float(trainer.reference_frames * schema.control_dt),
        },
        config=config.to_dict() | {"train_resolved": config.train_config().to_dict()},
        identity=_identity(config, trainer),
        versions=record["versions"],
        reproducibility=record,
    )
    if config.init_from is not None:  # the continued set's lineage travels with the store
        attrs["init_from"] = json.dumps(_start_record(config))
    return attrs


def _start_record(config: RunConfig) -> dict:
    """What the continued set was: its name (a shipped set's, or its store's), path on the
    machine that ran it, seeds, env steps and manifest summary."""
    source, pset = _start_set(config.to_json())
    steps = [m.get("env_steps") for m in pset.meta]
    return {
        "name": pset.name,
        "source": str(source),
        "seeds": list(pset.seeds),
        "env_steps": steps,
        "manifest_summary": pset.manifest.get("summary", ""),
    }


def _identity(config: RunConfig, trainer) -> dict:
    ident = config.identity() | {
        "model_hash": trainer.model.content_hash,
        "motion_hash": trainer.motion.content_hash,
    }
    return json.loads(json.dumps(ident))  # tuples -> lists, as stored


def _differences(old: dict, new: dict) -> list[str]:
    from emulator.learning.train import option_differences

    out = []
    for key, a, b in option_differences(old, new):
        sa, sb = json.dumps(a), json.dumps(b)
        if len(sa) > 40:
            sa = sa[:37] + "..."
        if len(sb) > 40:
            sb = sb[:37] + "..."
        out.append(f"{key}: {sa} in the store, {sb} now")
    return out


# ---------------------------------------------------------------------------------------------
# the store: check what is there before touching anything


def check_out(out: Path, force: bool) -> None:
    """Fail before any work if ``out`` cannot be written, or is something we must not replace."""
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: exists and is not a directory (a store is a directory)")
    if out.is_dir() and not (out / "zarr.json").is_file() and any(out.iterdir()):
        raise StoreError(
            f"{out}: exists and is not a Zarr store; refusing to write into or delete it"
            + (" (even with --force)" if force else "")
        )
    parent = out.absolute().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError(f"{out}: cannot write here ({probe} is not a writable directory)")
    if out.exists() and not os.access(out, os.W_OK | os.X_OK):
        raise StoreError(f"{out}: the store is not writable")


def _with_new_defaults(stored: dict) -> dict:
    """A stored identity with the training options added since it was written at their
    defaults (which reproduce what the older code did), so that a new option does not make
    every earlier store look like another run's."""
    from emulator.learning.train import TrainConfig

    train = stored.get("train")
    filled = TrainConfig.with_new_defaults(train) if isinstance(train, dict) else None
    return stored if filled is None else {**stored, "train": filled}  # unreadable: as it is


def _open_for_resume(out: Path, identity: dict, force: bool, schema) -> bool:
    """True if ``out`` holds this run's store (resume); False if it must be (re)created.

    Raises StoreError for a damaged store, one from another run, or one whose named axes
    (``schema``'s coordinates: components, muscles, joints...) differ from what this code
    writes (a store from an older version), unless ``force``."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return False
    problems = validate_store(out)
    if problems:
        if force:
            return False
        shown = "; ".join(p.removeprefix(f"{out}:").strip() for p in problems[:3])
        more = f" (+{len(problems) - 3} more, see `diversity info {out}`)" if len(problems) > 3 else ""
        raise StoreError(
            f"{out}: existing store is damaged or incomplete: {shown}{more}. Move it away, or pass --force to replace it"
        )
    ds = open_store(out)
    try:
        stored = json.loads(ds.attrs["identity"])
    except (KeyError, ValueError):
        stored = {}
    diff = _differences(_with_new_defaults(stored), identity)
    if diff:
        if force:
            return False
        raise StoreError(
            f"{out}: store was made by a different run ({'; '.join(diff[:3])}"
            f"{'; ...' if len(diff) > 3 else ''}). Use another --out, or --force to replace it"
        )
    changed = _axis_differences(ds, schema)
    if changed:
        if force:
            return False
        raise StoreError(
            f"{out}: store was written with other axes than this version writes ({'; '.join(changed[:3])}): "
            f"its remaining seeds cannot be added to it. Use another --out, or --force to replace it"
        )
    return True


def _axis_differences(ds, schema) -> list[str]:
    """The named axes (string coordinates such as ``component`` or ``muscle``) where the store
    and the rollout schema differ, each as 'axis: N in the store, M now (first difference)'."""
    out = []
    for dim, values in schema.coords.items():
        if dim not in ds.dims or dim == "time":
            continue
        mine, theirs = [str(v) for v in values], [str(v) for v in ds[dim].values]
        if mine != theirs:
            first = next((f"{a!r} / {b!r}" for a, b in zip(theirs, mine, strict=False) if a != b), "")
            out.append(
                f"{dim}: {len(theirs)} in the store, {len(mine)} now" + (f", {first}" if first else "")
            )
    return out


def replace_store(out: Path) -> None:
    """Remove an existing store (only ever a Zarr store or an empty directory)."""
    if out.is_dir():
        if (out / "zarr.json").is_file() or not any(out.iterdir()):
            shutil.rmtree(out)
        else:  # check_out already refused this; keep the guard next to the delete
            raise StoreError(f"{out}: not a Zarr store; refusing to delete it")
    shutil.rmtree(_checkpoint_dir(out), ignore_errors=True)


def _checkpoint_dir(out: Path) -> Path:
    return out.with_name(out.name + ".checkpoints")


def _checkpoint_path(ckpt_dir: Path, block: list[int]) -> Path:
    tag = hashlib.sha256(json.dumps(block).encode()).hexdigest()[:10]
    return ckpt_dir / f"seeds-{block[0]}-{block[-1]}-{tag}.msgpack"


def _label(block: list[int]) -> str:
    return f"seed {block[0]}" if len(block) == 1 else f"seeds {block[0]}-{block[-1]}"


def _blocks(seeds: list[int], size: int) -> list[list[int]]:
    return [list(seeds[i : i + size]) for i in range(0, len(seeds), size)]


# ---------------------------------------------------------------------------------------------
# one block: train (resuming from its checkpoint), roll out, write its pending seeds


class _Stop:
    """Set by a signal handler; checked after each training iteration."""

    def __init__(self):
        self.requested = False


def _run_block(
    config_json: str,
    out: str,
    block: list[int],
    pending: list[int],
    progress: Progress | None = None,
    stop: _Stop | None = None,
) -> dict:
    """Train ``block``, roll it out, write the seeds in ``pending``; returns per-seed rollout
    mean joint-angle error (deg) and timings. Runs in-process or on a Dask worker."""
    from emulator.learning.rollout import rollout
    from emulator.learning.train import TrainResult, load_checkpoint, save_checkpoint, seed_keys

    config, trainer, _ = _prepared(config_json)
    out = Path(out)
    ckpt = _checkpoint_path(_checkpoint_dir(out), block)
    keys = seed_keys(block)
    resume = load_checkpoint(ckpt, trainer.init_state(keys), trainer.config)
    start = _start_for(config_json, block)  # a continued set's policies (None: from scratch)
    before = start.env_steps if start is not None else 0  # steps the policies had before this run
    if resume is not None and progress is not None:
        progress.message(f"{_label(block)}: resuming from checkpoint at iteration {resume[0]}")
        progress.resumed((int(resume[1].curves["env_steps"][0, -1]) - before) * len(block))
    last = {"steps": resume[1].curves["env_steps"][0, -1] if resume is not None else before}

    def on_iteration(info):
        if progress is not None:
            done = int(info["env_steps"])
            curves = info["curves"]
            err = float(np.nanmean(curves["joint_angle_error_deg"][:, -1]))
            episode = curves["episode_length_s"][:, -1]
            progress.update(
                steps=(done - int(last["steps"])) * len(block),
                steps_per_s=float(info["steps_per_s"]),
                joint_angle_error_deg=err,
                episode_length_s=float(np.nanmean(episode)) if np.isfinite(episode).any() else float("nan"),
            )
            last["steps"] = done
        if stop is not None and stop.requested:
            state = TrainResult(info["agent"], info["reward_state"], info["curves"])
            save_checkpoint(ckpt, info["iteration"], state, trainer.config)
            raise RunInterrupted(f"{_label(block)}: checkpoint saved at iteration {info['iteration']}")

    def on_checkpoint(iteration, state):
        save_checkpoint(ckpt, iteration, state, trainer.config)

    t0 = time.perf_counter()
    result = trainer.train(
        keys,
        progress_fn=on_iteration,
        checkpoint=on_checkpoint if config.checkpoint_every else None,
        checkpoint_every=config.checkpoint_every,
        resume=resume,
        start=start if resume is None else None,
    )
    # a finished block keeps a final checkpoint until its seeds are written: a crash while
    # rolling out or writing does not retrain
    if config.checkpoint_every:
        save_checkpoint(ckpt, trainer.n_iterations, result, trainer.config)
    t1 = time.perf_counter()
    ro = rollout(trainer, result.agent, n_cycles=config.cycles)
    t2 = time.perf_counter()
    meta = {"train_wall_time_s": round(t1 - t0, 1), "block": block}
    errors = write_seeds(out, block, pending, ro, result.curves, trainer, result.agent, meta)
    ckpt.unlink(missing_ok=True)
    written = [s for s in block if s in pending]
    if progress is not None:
        progress.seeds_done(written, [errors[s] for s in written])
    return {"seeds": written, "errors": errors, "train_s": t1 - t0, "rollout_s": t2 - t1}


def write_seeds(out: Path, seeds, pending, ro, curves: dict, trainer, agent, meta: dict | list) -> dict:
    """Each pending seed's policy (``STORE/policies/``, with ``meta``: one dict for all seeds
    or one per seed), then its rollout and curves, then its completed flag; returns every
    seed's rollout mean joint-angle error (deg)."""
    from emulator.learning.policies import POLICY_DIR, save_policy

    variables = store_variables(ro.dims, ro.data)
    errors = {}
    for i, seed in enumerate(seeds):
        errors[seed] = float(np.mean(variables["joint_angle_error"][1][i]))
        if seed not in pending:
            continue
        seed_curves = {c: v[i] for c, v in curves.items()}
        seed_meta = {
            "env_steps": float(seed_curves["env_steps"][-1]) if "env_steps" in seed_curves else None,
            **(meta[i] if isinstance(meta, list) else meta),
            "rollout_joint_angle_error_deg": errors[seed],
            "rollout_cycles": float(ro.data["metrics"].shape[1] / max(trainer.reference_frames, 1)),
            # which motion (by content) it tracks: diversity.rollouts warns when it has changed
            "motion_hash": trainer.motion.content_hash,
        }
        save_policy(out / POLICY_DIR, seed, jax_index(agent, i), trainer.config, seed_curves, seed_meta)
        data = {n: arr[i] for n, (dims, arr) in variables.items() if dims[0] == "seed"}
        write_seed(out, seed, data, seed_curves)
    return errors


def jax_index(tree, i):
    """Seed ``i`` of a state with a leading seed axis (a list of indices keeps the axis)."""
    import jax

    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i], tree)


# ---------------------------------------------------------------------------------------------
# the run


def run(
    config: RunConfig | None = None,
    out: str | Path | None = None,
    *,
    scheduler: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    **options,
) -> RunReport:
    """Train ``config.seeds`` policies, roll them out and write (or resume) the store ``out``.

    Args:
        config: the run (default: the embedded demo); keyword ``options`` replace its fields,
            e.g. ``run(seeds=range(4), steps=20_000)``.
        out: store path (default :func:`default_out`).
        scheduler: None (in-process), ``"local"`` (Dask LocalCluster) or ``"tcp://host:port"``.
        force: replace an existing store from another run (or a damaged one).
        progress: a :class:`~diversity.progress.Progress` (default: silent).

    Raises:
        ConfigError / StoreError / emulator ModelError, MotionError: bad input, raised before
        anything is written.
        RunInterrupted: stopped by a signal after flushing finished seeds.
    """
    t_start = time.perf_counter()
    if "seeds" in options:
        options["seeds"] = as_seeds(options["seeds"])
    config = (config or RunConfig()).replace(**options) if options else (config or RunConfig())
    if scheduler not in (None, "", "local") and not str(scheduler).startswith(("tcp://", "tls://")):
        raise ConfigError(f"scheduler: {scheduler!r} is not one of {SCHEDULERS}")
    out = Path(out) if out is not None else default_out(config)
    progress = progress or Progress()
    check_out(out, force)
    config_json = config.to_json()
    if config.init_from is not None:
        _check_start_set(config)  # a missing or mismatched set fails here, before any building
    config, trainer, schema = _prepared(config_json)  # bad model/motion names fail here
    if config.init_from is not None:
        _start_set(config_json)  # (unreadable files too), before any writing
    identity = _identity(config, trainer)
    resuming = _open_for_resume(out, identity, force, schema)
    if not resuming:
        if out.exists():
            replace_store(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        create_store(
            out, schema, list(config.seeds), trainer.n_iterations, run_provenance(config, trainer, schema)
        )
    done_before = completed_seeds(open_store(out))
    pending = [s for s in config.seeds if s not in set(done_before)]
    blocks = [b for b in _blocks(list(config.seeds), config.block_size) if set(b) & set(pending)]
    per_seed = trainer.n_iterations * trainer.config.n_envs * trainer.n_steps
    report = RunReport(store=out, seeds=list(config.seeds), completed=done_before, skipped=done_before)
    progress.start(
        n_seeds=len(config.seeds),
        n_done=len(done_before),
        total_steps=sum(len(b) for b in blocks) * per_seed,
        store=str(out),
    )
    try:
        if not blocks:
            progress.message(f"all {len(config.seeds)} seeds already completed; nothing to do")
        elif scheduler:
            _run_dask(config_json, out, blocks, pending, scheduler, progress, report, per_seed)
        else:
            _run_local(config_json, out, blocks, pending, progress, report)
    finally:
        report.completed = completed_seeds(open_store(out))
        report.wall_time_s = time.perf_counter() - t_start
        n_new = len(report.trained)
        status = "complete" if len(report.completed) == len(config.seeds) else "partial"
        finalise_store(
            out,
            f"diversity run: {n_new} seeds written ({status}: {len(report.completed)}/{len(config.seeds)})",
        )
        if status == "complete":
            shutil.rmtree(_checkpoint_dir(out), ignore_errors=True)
        progress.close()
    return report


def _run_local(config_json, out, blocks, pending, progress, report) -> None:
    stop = _Stop()
    previous = {}

    def handler(signum, frame):
        if stop.requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop.requested = True
        progress.message("stopping after this iteration (checkpoint, then exit); Ctrl-C again to abort")

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        for block in blocks:
            report.add(_run_block(config_json, str(out), block, pending, progress, stop))
            if stop.requested:
                raise RunInterrupted(f"stopped after {_label(block)}")
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def _refuse_thread_workers(client, scheduler: str) -> None:
    """Two blocks training at once in one process crash it (MuJoCo's rollout threads and XLA
    are not shared safely), so workers that are threads of one process are refused."""
    threads_per_pid: dict[int, int] = {}
    info = client.scheduler_info().get("workers", {})
    for address, pid in client.run(os.getpid).items():
        threads_per_pid[pid] = threads_per_pid.get(pid, 0) + int(info.get(address, {}).get("nthreads", 1))
    shared = {pid: n for pid, n in threads_per_pid.items() if n > 1}
    if shared:
        client.close()
        raise ConfigError(
            f"scheduler: {scheduler} runs {max(shared.values())} worker threads in one process; blocks "
            "must train in separate processes (start workers with `dask worker ... --nthreads 1` or "
            "LocalCluster(processes=True, threads_per_worker=1))"
        )


def _run_dask(config_json, out, blocks, pending, scheduler, progress, report, per_seed) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        # one single-threaded worker process per core: each runs its own XLA and MuJoCo threads
        cluster = LocalCluster(
            n_workers=min(len(blocks), os.cpu_count() or 1), threads_per_worker=1, processes=True
        )
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout="20s")
        _refuse_thread_workers(client, scheduler)
    progress.message(f"dask: {len(blocks)} block tasks on {client.dashboard_link or scheduler}")
    try:
        futures = [
            client.submit(
                _run_block, config_json, str(out.absolute()), b, [s for s in b if s in pending], pure=False
            )
            for b in blocks
        ]
        t0 = time.perf_counter()
        steps = 0
        for fut in as_completed(futures):
            res = fut.result()
            report.add(res)
            steps += len(res["errors"]) * per_seed
            err = float(np.mean(list(res["errors"].values())))
            progress.update(
                steps=len(res["errors"]) * per_seed,
                steps_per_s=steps / (time.perf_counter() - t0),
                joint_angle_error_deg=err,
            )
            progress.seeds_done(res["seeds"], [res["errors"][s] for s in res["seeds"]])
    except KeyboardInterrupt:
        client.cancel(futures)
        raise RunInterrupted("stopped; finished blocks are in the store") from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
