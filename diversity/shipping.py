"""Shipping a run's trained policies as a small policy set with a manifest.

``ship_policy_set(STORE, "myolegs-walk")`` copies every completed seed's policy from
``STORE/policies/`` into ``datasets/policies/myolegs-walk/`` as lean files (what a rollout
needs: no optimiser state) and writes ``manifest.json``: how the set was made (the run's
config, the command history, versions) and what each seed reached (env steps, training wall
time, the rollout's errors, whether it fell). ``diversity rollout myolegs-walk`` then rolls the
set out with no training.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from emulator.schema import METRICS

from .analysis.balance import FALL_SINK_M, balance_table, max_root_sink, rollout_s
from .pipeline import jax_index
from .store import StoreError, completed_seeds, open_checked

__all__ = ["FALL_SINK_M", "lineage", "ship_policy_set"]


def _per_seed(ds, balance: dict) -> dict:
    """One seed's manifest row: its rollout errors, how long it stayed up (see
    :func:`~diversity.analysis.balance.balance_table`) and its training budget."""
    one = ds.sel(seed=balance["seed"])
    row = {"seed": int(balance["seed"])}
    for name, (units, _) in METRICS.items():
        row[f"{name}_{units}"] = round(float(one[name].mean("time")), 3)
    row.update(
        upright_s=round(balance["upright_s"], 3),
        joint_angle_error_upright_deg=round(float(balance["joint_angle_error_upright"]), 3),
        terminated=bool(balance["terminated"]),
        max_root_sink_m=round(float(max_root_sink(one)), 3),
        fell=bool(balance["fell"]),
        env_steps=int(np.nanmax(one["train_env_steps"].values)),
        training_wall_time_s=round(float(np.nanmax(one["train_wall_time_s"].values)), 1),
    )
    return row


def ship_policy_set(store: str | Path, name: str, out_dir: str | Path | None = None) -> Path:
    """Copy ``store``'s completed seeds' policies into ``out_dir/name`` (default: the shipped
    sets' directory) as lean policy files with a ``manifest.json``; returns the directory."""
    from emulator.learning.policies import load_policy_set, save_policy, shipped_policies_dir

    store = Path(store)
    ds = open_checked(store)
    seeds = completed_seeds(ds)
    if not seeds:
        raise StoreError(f"{store}: no completed seeds to ship")
    pset, _ = load_policy_set(store / "policies")
    missing = sorted(set(seeds) - set(pset.seeds))
    if missing:
        raise StoreError(f"{store}: completed seeds {missing} have no policy file in {store / 'policies'}")
    dest = Path(out_dir or shipped_policies_dir()) / name
    if dest.exists() and any(dest.iterdir()):
        raise StoreError(f"{dest}: exists and is not empty; ship under another name or remove it")
    index = {s: i for i, s in enumerate(pset.seeds)}
    for s in seeds:
        i = index[s]
        agent = jax_index(pset.agent, i)
        curves = {k: v[i] for k, v in pset.curves.items()}
        save_policy(dest, s, agent, pset.config, curves, pset.meta[i], lean=True)
    rows = [_per_seed(ds, b) for b in balance_table(ds).to_dict(orient="records")]
    err = [r["joint_angle_error_deg"] for r in rows]
    manifest = {
        "name": name,
        "model": ds.attrs.get("model"),
        "motion": ds.attrs.get("motion"),
        "summary": (
            f"{len(seeds)} seeds, {ds.attrs.get('model')} / {ds.attrs.get('motion')}: rollout mean joint-angle "
            f"error median {np.median(err):.2f} deg (max {np.max(err):.2f}), "
            f"{sum(r['fell'] for r in rows)} fell over {rollout_s(ds):.2f} s "
            f"(upright median {np.median([r['upright_s'] for r in rows]):.2f} s, "
            f"{np.median([r['joint_angle_error_upright_deg'] for r in rows]):.2f} deg while up)"
        ),
        "seeds": [int(s) for s in seeds],
        "per_seed": rows,
        "run_config": json.loads(ds.attrs.get("config", "{}")),
        "train_config": json.loads(pset.config.to_json()),
        "history": ds.attrs.get("history", ""),
        "package_version": ds.attrs.get("package_version"),
        "reproducibility": json.loads(ds.attrs.get("reproducibility", "{}")),
        "source_store": str(store),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "init_from": json.loads(ds.attrs.get("init_from", "null")),
        "lineage": lineage(store, ds.attrs, max(r["env_steps"] for r in rows)),
        "files": "lean policy files: no optimiser state (rollouts; `diversity run --init-from` continues "
        "training them with a fresh optimiser)",
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, default=float))
    return dest


def lineage(store: str | Path, attrs: dict, env_steps: int) -> list[dict]:
    """The stages that made a run's policies, the first (from scratch) to ``store``'s own: each
    stage's run or set, steps added a seed, env steps a policy at its end, what it continued
    and which training options it changed from the stage before. Followed through the
    ``init_from`` records of run stores and shipped sets still on this machine (a shipped set's
    own lineage ends the walk); a stage found nowhere is listed with what its successor
    recorded of it."""
    from emulator.learning.train import option_differences

    stages = []
    stage, label = _stage(attrs=attrs), Path(store).stem
    while True:
        rec = stage["init_from"]
        row = {"stage": label, "steps_per_seed": stage["steps"], "env_steps": int(env_steps)}
        row["init_from"] = None if rec is None else rec.get("name") or _set_name(rec.get("source", ""))
        stages.append(row)
        if rec is None:
            break
        env_steps = max(rec.get("env_steps") or [0])
        before = _stage(source=rec.get("source", ""))
        if before is None:
            summary = rec.get("manifest_summary", "")
            stages.append({"stage": row["init_from"], "env_steps": int(env_steps), "not_found": summary})
            break
        row["changed"] = [
            f"{k}: {_short(a)} -> {_short(b)}"
            for k, a, b in option_differences(before["train"], stage["train"])
            if k != "total_steps" and a != "<absent>"  # an option newer than the stage: its default
        ]
        if before["lineage"]:  # a shipped set that already knows where it came from
            stages += list(reversed(before["lineage"]))
            break
        stage, label = before, row["init_from"]
    return stages[::-1]


def _stage(attrs: dict | None = None, source: str = "") -> dict | None:
    """One stage's training config, steps a seed, start record and known lineage, from a run
    store's attributes, or from a policy source path (a shipped set's directory or a store's
    ``policies/``); None when the source is not on this machine."""
    if attrs is None:
        path = Path(source)
        if (path / "manifest.json").is_file():
            m = json.loads((path / "manifest.json").read_text())
            steps = m.get("run_config", {}).get("steps")
            return {"train": m.get("train_config", {}), "steps": steps, "init_from": m.get("init_from"),
                    "lineage": m.get("lineage")}  # fmt: skip
        if path.name != "policies" or not (path.parent / "zarr.json").is_file():
            return None
        try:
            attrs = open_checked(path.parent).attrs
        except StoreError:
            return None
    config = json.loads(attrs.get("config", "{}"))
    return {"train": config.get("train_resolved", {}), "steps": config.get("steps"),
            "init_from": json.loads(attrs.get("init_from", "null")), "lineage": None}  # fmt: skip


def _set_name(source: str) -> str:
    """A policy source's name: a shipped set's directory, or the run store holding ``policies/``."""
    path = Path(source)
    return path.parent.stem if path.name == "policies" else path.name


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
