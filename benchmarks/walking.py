"""Walking recipe ablation on myolegs and the shipped measured walk (issue 14).

Each *variant* is a set of changes to the training configuration (control rate, batch, update
passes, termination, reset activations, observation extras, discount, exploration noise,
reward). Variants train ``--seeds`` seeds for ``--steps`` control steps each; every iteration's
training curve (env steps, wall time, joint error, body error, episode length, termination rate)
goes to ``walking_curves.csv``; at the end each seed's deterministic policy is rolled out for one
cycle from the first frame and scored by its mean joint-angle error (over the steps before it
falls) and its survival time (until the termination test first fires or the root sinks 15 cm
below the reference). ``walking_ablation.csv`` and a printed table summarise the variants;
``walking_curves.png`` draws the curves.

    python benchmarks/walking.py --steps 300000 --seeds 1               # every variant
    python benchmarks/walking.py --variants today fast --steps 200000
    python benchmarks/walking.py --list                                 # what each variant changes
    python benchmarks/walking.py --model myofullbody --variants res_30hz_servo --steps 50000
    python benchmarks/walking.py --checkpoint RUN.zarr.checkpoints/block_0-1.msgpack
                                          # score a long run's checkpoint while it trains
    python benchmarks/walking.py --score-sets myolegs-walk-stage1 RUN.zarr
                                          # 1- and 5-cycle scores of policy sets (stages)
    python benchmarks/walking.py --set-curves RUN.zarr ... --tag T  # the learning curves they carry
    python benchmarks/walking.py --steps-to 8 6 5 --from walking_curves.csv walking_stage1_servo30.csv
                                          # env steps each curve needed to get under each error
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from emulator.learning.rollout import rollout
from emulator.learning.train import TrainConfig, Trainer, seed_keys

OUT = Path(__file__).resolve().parent / "results"

# Levers: each variant is (the variant it builds on, the changes it adds); the comment names
# the lever. Most add one change to the one before them, so the table reads as a sequence.
VARIANTS: dict[str, tuple[str | None, dict]] = {
    # the setup every earlier walking run used (myolegs defaults of `diversity run`)
    "today": (None, {"n_envs": 16, "ppo": {"hidden": (256, 256)}}),
    # + bigger batch per update, fewer passes (2,048 samples, 5 epochs x 4 minibatches): the speed lever
    "fast": ("today", {"n_envs": 32, "ppo": {"epochs": 5, "minibatches": 4}}),
    # + terminate on the mean body distance (0.15 m, KINESIS) instead of any body > 0.3 m
    "term": ("fast", {"env": {"termination_body": "mean", "termination_distance_m": 0.15}}),
    # + muscles start at 5 % activation instead of 0 (the body is loaded at a reset)
    "tone": ("term", {"env": {"reset_activation": 0.05}}),
    # + previous excitations and more future frames in the observation
    "obs": ("tone", {"env": {"observe_previous_action": True, "future_frames": (1, 2, 5, 10, 20)}}),
    # + longer horizon: gamma 0.99, 64-step rollouts (0.64 s, most of a 1.04 s cycle)
    "horizon": ("obs", {"ppo": {"gamma": 0.99, "rollout_steps": 64}}),
    # + wider initial exploration (log std 0 instead of -0.5)
    "noise": ("horizon", {"ppo": {"init_log_std": 0.0}}),
    # muscle-length targets through a PD law instead of excitations (KINESIS), on "obs"; the
    # policy starts asking for mid-range lengths (init_excitation 0.5)
    "pd": ("obs", {"env": {"action_space": "muscle_length"}, "ppo": {"init_excitation": 0.5}}),
    # the same on the longer horizon
    "pd_horizon": ("horizon", {"env": {"action_space": "muscle_length"}, "ppo": {"init_excitation": 0.5}}),
    # muscle-length targets around the reference's own lengths 3 steps ahead (stiff PD, kp 20):
    # an untrained policy servos to the walk and learns corrections; low initial noise
    "residual": (
        "obs",
        {
            "env": {
                "action_space": "muscle_length_residual",
                "length_kp": 20.0,
                "length_kd": 0.5,
                "length_lead": 3,
                "length_residual": 0.2,
            },
            "ppo": {"init_excitation": 0.5, "init_log_std": -1.0},
        },
    ),  # fmt: skip
    # + longer horizon: a fall ~1 s ahead matters (gamma 0.99, 64-step rollouts)
    "res_horizon": ("residual", {"ppo": {"gamma": 0.99, "rollout_steps": 64}}),
    # + narrower reward kernels: joint angles 0.1 rad, root rotation 0.15 rad (precision pays)
    "res_sigma": (
        "residual",
        {
            "exp": {
                "sigmas": {
                    "joint_angle": 0.1,
                    "joint_velocity": 3.0,
                    "body_position": 0.1,
                    "root_rotation": 0.15,
                    "root_translation": 0.2,
                    "root_velocity": 1.5,
                }
            }
        },
    ),  # fmt: skip
    # slower control on the residual recipe (KINESIS / MASS act at 30 Hz, Exciting Action at
    # 50 Hz): each action covers more of the gait, an episode is fewer decisions, and the PD
    # lead keeps ~30-40 ms of look-ahead
    "res_50hz": ("residual", {"env": {"control_dt": 0.02, "length_lead": 2}}),
    "res_30hz": ("residual", {"env": {"control_dt": 1 / 30, "length_lead": 1}}),
    # the same slow policies over a servo run at every physics step (EnvConfig.servo_rate): the
    # policy decides at 30 / 50 Hz, the PD law corrects at 500 Hz
    "res_30hz_servo": ("res_30hz", {"env": {"servo_rate": "physics"}}),
    "res_50hz_servo": ("res_50hz", {"env": {"servo_rate": "physics"}}),
    # levers for lateral balance on the servo30 recipe (its policies walk one cycle and fall
    # sideways in the next): a horizon that sees the fall (gamma 0.99 at 30 Hz: ~3.3 s; rollouts
    # of 64 steps = 2 s), bigger batches (128 envs: 4,096 samples per update), and a reward
    # that pays for keeping the root on the reference (narrower, heavier root kernels)
    "s30_horizon": ("res_30hz_servo", {"ppo": {"gamma": 0.99, "rollout_steps": 64}}),
    "s30_batch": ("res_30hz_servo", {"n_envs": 128}),
    "s30_root": (
        "res_30hz_servo",
        {
            "exp": {
                "weights": {
                    "joint_angle": 0.35,
                    "joint_velocity": 0.1,
                    "body_position": 0.15,
                    "root_rotation": 0.15,
                    "root_translation": 0.15,
                    "root_velocity": 0.1,
                },
                "sigmas": {
                    "joint_angle": 0.3,
                    "joint_velocity": 3.0,
                    "body_position": 0.1,
                    "root_rotation": 0.15,
                    "root_translation": 0.1,
                    "root_velocity": 1.5,
                },
            }
        },
    ),  # fmt: skip
}
ORDER = tuple(VARIANTS)


def _lineage(name: str) -> list[str]:
    chain = []
    while name is not None:
        chain.append(name)
        name = VARIANTS[name][0]
    return chain[::-1]


def variant_config(name: str, steps: int, model: str = "myolegs", motion: str = "walk") -> TrainConfig:
    """The training config of variant ``name``: the changes of its lineage, oldest first."""
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(ORDER)}")
    merged: dict = {}
    for v in _lineage(name):
        for k, val in VARIANTS[v][1].items():
            if isinstance(val, dict):
                merged[k] = {**merged.get(k, {}), **val}
            else:
                merged[k] = val
    base = TrainConfig(model=model, motion=motion, algo="ppo", reward="exp")
    kw = {
        k: (dataclasses.replace(getattr(base, k), **v) if isinstance(v, dict) else v)
        for k, v in merged.items()
    }
    return dataclasses.replace(base, total_steps=steps, **kw)


def evaluate(
    trainer: Trainer, agent, cycles: float = 1.0, start_frame: int = 0, kick=None, physics=None
) -> dict:
    """Deterministic rollout over ``cycles`` cycles from ``start_frame`` (shoved by ``kick``, m/s
    x and y, at the start; from the states ``physics`` instead of the reference's): mean joint
    error before the fall, survival time (until the termination test first fires or the root
    sinks 15 cm below the reference)."""
    ro = rollout(trainer, agent, cycles, start_frame=start_frame, kick=kick, physics=physics)
    err = ro.data["metrics"][..., 0]  # [seed, time]
    fell = ro.data["terminated"].astype(bool)
    if "root_position" in ro.data:
        sink = ro.data["reference_root_position"][None, :, 2] - ro.data["root_position"][..., 2]
        fell |= sink > 0.15
    n = err.shape[1]
    first = np.where(fell.any(axis=1), fell.argmax(axis=1), n)
    upto = [err[s, : max(first[s], 1)].mean() for s in range(err.shape[0])]
    return {
        "eval_joint_error_deg": np.asarray(upto),
        "eval_joint_error_all_deg": err.mean(axis=1),
        # sample k is the end of control step k: a seed whose test fires there was up for k + 1
        # steps (the store analysis' upright_s); rows written before 2026-12-01 counted k
        "survival_s": np.minimum(first + 1, n) * ro.control_dt,
        "cycle_s": n * ro.control_dt,
    }


def run_variant(
    name: str,
    steps: int,
    seeds: int,
    curve_rows: list[dict],
    model: str = "myolegs",
    eval_cycles: float = 1.0,
) -> dict:
    cfg = variant_config(name, steps, model=model)
    trainer = Trainer(cfg)
    t0 = time.perf_counter()

    def progress(info):
        c = info["curves"]
        for s in range(seeds):
            curve_rows.append(
                {
                    "variant": name,
                    "seed": s,
                    **{k: float(c[k][s, -1]) for k in c},
                }
            )
        if info["iteration"] % 10 == 0 or info["iteration"] == info["iterations"]:
            print(
                f"{name:8s} {info['env_steps']:>9,d} steps  {info['steps_per_s']:7,.0f} steps/s  "
                f"joint {np.nanmean(c['joint_angle_error_deg'][:, -1]):5.1f} deg  "
                f"episode {np.nanmean(c['episode_length_s'][:, -1]):5.2f} s",
                flush=True,
            )

    result = trainer.train(seed_keys(range(seeds)), progress_fn=progress)
    wall = time.perf_counter() - t0
    ev = evaluate(trainer, result.agent, eval_cycles)
    c = result.curves
    tail = max(1, c["env_steps"].shape[1] // 10)  # last 10 % of the iterations
    return {
        "variant": name,
        "model": model,
        "seeds": seeds,
        "steps_per_seed": int(c["env_steps"][0, -1]),
        "wall_s": round(wall, 1),
        "env_steps_per_s": round(seeds * c["env_steps"][0, -1] / wall, 1),
        "train_joint_error_deg": round(float(np.nanmean(c["joint_angle_error_deg"][:, -tail:])), 2),
        "train_body_error_cm": round(float(np.nanmean(c["body_position_error_cm"][:, -tail:])), 2),
        "train_episode_s": round(float(np.nanmean(c["episode_length_s"][:, -tail:])), 3),
        "eval_joint_error_deg": round(float(np.median(ev["eval_joint_error_deg"])), 2),
        "eval_survival_s": round(float(np.median(ev["survival_s"])), 2),
        "eval_cycle_s": round(float(ev["cycle_s"]), 2),
        "builds_on": VARIANTS[name][0] or "",
        "changes": json.dumps(VARIANTS[name][1], default=list),
    }


def score_checkpoint(path: Path, curves_csv: Path | None = None, cycles: float = 1.0) -> dict:
    """Deterministic one-cycle rollout of every seed in a training checkpoint; with
    ``curves_csv``, also write its learning curves (one row per seed and iteration) and append
    the score to ``<curves_csv stem>_scores.csv``."""
    from flax import serialization

    from emulator.learning.train import load_checkpoint

    payload = serialization.msgpack_restore(path.read_bytes())
    cfg = TrainConfig.from_dict(json.loads(payload["config"]))
    n_seeds = len(np.asarray(payload["curves"]["env_steps"]))
    trainer = Trainer(cfg)
    it, state = load_checkpoint(path, trainer.init_state(seed_keys(range(n_seeds))), cfg)
    ev = evaluate(trainer, state.agent, cycles)
    steps = state.curves["env_steps"][:, -1]
    print(
        f"{path.name}: iteration {it}, {int(steps[0]):,} steps per seed; joint error before a fall "
        f"{np.round(ev['eval_joint_error_deg'], 2)} deg, survival {np.round(ev['survival_s'], 2)} s "
        f"of {ev['cycle_s']:.2f} s ({cycles:g} cycles)"
    )
    if curves_csv is not None:
        c = state.curves
        write_rows(curves_csv, _curve_rows(c, range(n_seeds)))
        scores = curves_csv.with_name(curves_csv.stem + "_scores.csv")
        old = list(csv.DictReader(open(scores))) if scores.is_file() else []
        new = [
            {
                "seed": s,
                "env_steps": int(steps[s]),
                "wall_time_s": round(float(c["wall_time_s"][s, -1]), 1),
                "eval_joint_error_deg": round(float(ev["eval_joint_error_deg"][s]), 3),
                "eval_survival_s": round(float(ev["survival_s"][s]), 3),
                "eval_cycle_s": round(float(ev["cycle_s"]), 3),
            }
            for s in range(n_seeds)
        ]
        write_rows(scores, old + new)
    return ev


def score_sets(sets: list[str], out_csv: Path, cycles: tuple[float, ...] = (1.0, 5.0)) -> list[dict]:
    """Deterministic rollouts of every seed of each policy set (a store, a policy directory or a
    shipped name) over each of ``cycles``; one row per set, seed and rollout length, appended to
    ``out_csv``: the policy's env steps and training time, how long it stayed up and its joint
    error before it fell. Scoring the stages of one lineage gives its steps-to-error curve."""
    from emulator.learning.policies import find_policy_set, load_policy_set

    old = list(csv.DictReader(open(out_csv))) if out_csv.is_file() else []
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in sets:
        pset, trainer = load_policy_set(find_policy_set(name))
        for n in cycles:
            ev = evaluate(trainer, pset.agent, n)
            for i, seed in enumerate(pset.seeds):
                meta = pset.meta[i] if i < len(pset.meta) else {}
                wall = pset.curves.get("wall_time_s")
                rows.append(
                    {
                        "set": pset.name,
                        "seed": seed,
                        "env_steps": int(meta.get("env_steps") or 0),
                        "training_wall_time_s": round(float(np.nanmax(wall[i])), 1)
                        if wall is not None
                        else "",
                        "cycles": n,
                        "rollout_s": round(float(ev["cycle_s"]), 3),
                        "upright_s": round(float(ev["survival_s"][i]), 3),
                        "joint_error_upright_deg": round(float(ev["eval_joint_error_deg"][i]), 3),
                        "joint_error_all_deg": round(float(ev["eval_joint_error_all_deg"][i]), 3),
                    }
                )
            up = ev["survival_s"] >= ev["cycle_s"] - 1e-9
            print(
                f"{pset.name}: {n:g} cycles ({ev['cycle_s']:.2f} s): {int(up.sum())} of {len(up)} seeds stay up; "
                f"joint error before a fall {np.round(ev['eval_joint_error_deg'], 2)} deg, "
                f"up for {np.round(ev['survival_s'], 2)} s",
                flush=True,
            )
    write_rows(out_csv, old + rows)
    return rows


def _curve_rows(curves: dict, seeds, **extra) -> list[dict]:
    """One CSV row per seed and iteration of ``curves`` (``{name: [seed, iteration]}``), ``extra``
    columns first; iterations a seed has not run (NaN env steps) are left out."""
    steps = curves["env_steps"]
    return [
        {**extra, "seed": seed, **{n: float(v[i, k]) for n, v in sorted(curves.items())}}
        for i, seed in enumerate(seeds)
        for k in range(steps.shape[1])
        if np.isfinite(steps[i, k])
    ]


def set_curves(sets: list[str], out_csv: Path) -> list[dict]:
    """The learning curves each policy set carries (its whole lineage: a continued set's start
    from the set it continued), one row per set, seed and iteration, written to ``out_csv``."""
    from emulator.learning.policies import find_policy_set, load_policy_set

    rows = []
    for name in sets:
        pset, _ = load_policy_set(find_policy_set(name))
        rows += _curve_rows(pset.curves, pset.seeds, set=pset.name)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    write_rows(out_csv, rows)
    print(f"{out_csv}: {len(rows)} rows from {len(sets)} sets")
    return rows


def steps_to(thresholds: list[float], curve_csvs: list[Path], out_csv: Path, window: int = 10) -> list[dict]:
    """For each learning curve (CSV file x variant or set x seed): the env steps and wall time at
    which its training joint-angle error, averaged over ``window`` iterations (the training
    error of a noisy policy jumps between iterations), first fell under each threshold (deg);
    blank when it never did. One row per curve, written to ``out_csv``."""
    import pandas as pd

    rows = []
    for path in curve_csvs:
        df = pd.read_csv(path)
        group = next((c for c in ("variant", "set") if c in df), None)
        for key, curve in df.groupby([group, "seed"] if group else ["seed"], sort=False):
            curve = curve.sort_values("env_steps")
            smooth = curve["joint_angle_error_deg"].rolling(window, min_periods=1).mean().to_numpy()
            row = {
                "curves": path.name,
                "name": key[0] if group else path.stem,
                "seed": key[-1],
                "env_steps": int(curve["env_steps"].max()),
                "best_joint_error_deg": round(float(smooth.min()), 2),
            }
            for deg in thresholds:
                under = np.flatnonzero(smooth < deg)
                first = curve.iloc[under[0]] if len(under) else None
                row[f"steps_to_{deg:g}_deg"] = int(first["env_steps"]) if first is not None else ""
                row[f"wall_s_to_{deg:g}_deg"] = (
                    round(float(first["wall_time_s"]), 1) if first is not None else ""
                )
            rows.append(row)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    write_rows(out_csv, rows)
    cols = [f"steps_to_{d:g}_deg" for d in thresholds]
    print(
        f"{'curves':38s} {'name':22s} seed {'steps':>9s} {'best':>6s} " + " ".join(f"{c:>14s}" for c in cols)
    )
    for r in rows:
        print(
            f"{r['curves'][:38]:38s} {str(r['name'])[:22]:22s} {r['seed']:4} {r['env_steps']:9,d} "
            f"{r['best_joint_error_deg']:6.2f} " + " ".join(f"{str(r[c]):>14s}" for c in cols)
        )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="+", default=list(ORDER))
    p.add_argument("--steps", type=int, default=300_000, help="control steps per seed")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--model", default="myolegs", help="myolegs | myofullbody (on its measured walk)")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--tag", default="", help="suffix of the output file names")
    p.add_argument("--list", action="store_true", help="print each variant's changes and exit")
    p.add_argument("--checkpoint", help="score the policies of a `diversity run` checkpoint and exit")
    p.add_argument("--curves", help="with --checkpoint: write its learning curves here (CSV)")
    p.add_argument(
        "--cycles",
        type=float,
        default=1.0,
        help="rollout length in cycles of the evaluation (and of --checkpoint)",
    )
    p.add_argument(
        "--score-sets",
        nargs="+",
        metavar="SET",
        help="roll out each policy set (store, directory or shipped name) over 1 and 5 cycles, append "
        "per-seed scores to walking_stages<tag>.csv and exit",
    )
    p.add_argument(
        "--set-curves",
        nargs="+",
        metavar="SET",
        help="write the learning curves the policy sets carry to walking_curves<tag>.csv and exit",
    )
    p.add_argument(
        "--steps-to",
        nargs="+",
        type=float,
        metavar="DEG",
        help="with --from: env steps each learning curve took to get under each joint error (deg), "
        "written to walking_steps_to<tag>.csv, and exit",
    )
    p.add_argument(
        "--from",
        dest="from_csvs",
        nargs="+",
        metavar="CSV",
        help="curve CSVs for --steps-to (names relative to --out)",
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    tag = f"_{args.tag}" if args.tag else ""  # suffix of every output file name
    if args.steps_to:
        csvs = [out / c if not Path(c).is_file() else Path(c) for c in args.from_csvs or []]
        if not csvs:
            p.error("--steps-to needs --from CSV...")
        return steps_to(args.steps_to, csvs, out / f"walking_steps_to{tag}.csv")
    if args.set_curves:
        return set_curves(args.set_curves, out / f"walking_curves{tag}.csv")
    if args.score_sets:
        return score_sets(args.score_sets, out / f"walking_stages{tag}.csv")
    if args.checkpoint:
        return score_checkpoint(
            Path(args.checkpoint), Path(args.curves) if args.curves else None, args.cycles
        )
    if args.list:
        for v in ORDER:
            print(f"{v:10s} on {VARIANTS[v][0] or '-':8s} {VARIANTS[v][1]}")
        return
    out.mkdir(parents=True, exist_ok=True)
    curves: list[dict] = []
    table = []
    for name in args.variants:
        table.append(run_variant(name, args.steps, args.seeds, curves, args.model, args.cycles))
        write_rows(out / f"walking_curves{tag}.csv", curves)
        write_rows(out / f"walking_ablation{tag}.csv", table)
    print(
        f"\n{'variant':8s} {'steps/s':>8s} {'train joint':>11s} {'episode s':>9s} {'eval joint':>10s} {'survival s':>10s}"
    )
    for r in table:
        print(
            f"{r['variant']:8s} {r['env_steps_per_s']:8.0f} {r['train_joint_error_deg']:11.2f} "
            f"{r['train_episode_s']:9.3f} {r['eval_joint_error_deg']:10.2f} {r['eval_survival_s']:10.2f}"
        )
    _plot(curves, out / f"walking_curves{tag}.png")


def write_rows(path, rows: list[dict]) -> None:
    """``rows`` as a CSV file at ``path``, their keys the header (the benchmarks' one writer)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name and r["seed"] == 0]
        x = [r["env_steps"] for r in mine]
        for ax, key in zip(
            axes, ("joint_angle_error_deg", "body_position_error_cm", "episode_length_s"), strict=True
        ):
            ax.plot(x, [r[key] for r in mine], label=name)
            ax.set_xlabel("control steps per seed")
            ax.set_ylabel(key)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
