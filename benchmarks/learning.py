"""Learning benchmark (the paper's Fig. 4b,c on this machine): Qflex vs PPO, exp vs add.

For every (model, algo, reward) it trains ``--seeds`` seeds in one program and, every
``--eval-every`` iterations, rolls each seed's deterministic policy out over one motion cycle.
The best mean joint-angle error so far is recorded against env steps and against training wall
time (evaluation time excluded). Writes ``benchmarks/results/learning.csv`` (one row per
evaluation and seed) and ``learning.png``, and prints a summary table.

    python benchmarks/learning.py                       # elbow, 3 seeds: PPO/add, PPO/exp, Qflex/add
    python benchmarks/learning.py --models myolegs --steps-ppo 2000000 --steps-qflex 300000
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from emulator.learning.rollout import rollout
from emulator.learning.train import TrainConfig, Trainer, seed_keys
from emulator.motion.sources import DEFAULT_MOTIONS


def run_one(
    model: str, motion: str, algo: str, reward: str, seeds: int, steps: int, evals: int
) -> list[dict]:
    cfg = TrainConfig(model=model, motion=motion, algo=algo, reward=reward, total_steps=steps)
    trainer = Trainer(cfg)
    rows: list[dict] = []
    best = np.full(seeds, np.inf)
    eval_time = [0.0]

    def evaluate(agent, env_steps: int, wall: float):
        t = time.perf_counter()
        err = rollout(trainer, agent, 1.0).data["metrics"][..., 0].mean(axis=1)
        eval_time[0] += time.perf_counter() - t
        np.minimum(best, err, out=best)
        for s in range(seeds):
            rows.append(
                dict(
                    model=model,
                    motion=motion,
                    algo=algo,
                    reward=reward,
                    seed=s,
                    env_steps=env_steps,
                    wall_time_s=round(wall - eval_time[0], 2),
                    joint_angle_error_deg=float(err[s]),
                    best_joint_angle_error_deg=float(best[s]),
                )  # fmt: skip
            )

    def progress(info):
        every = max(1, info["iterations"] // evals)
        if info["iteration"] % every == 0 or info["iteration"] == info["iterations"]:
            evaluate(info["agent"], info["env_steps"], info["wall_time_s"])
            print(
                f"{model:8s} {algo:5s} {reward:3s} steps {info['env_steps']:>9,d}  "
                f"best error (deg, per seed) {np.round(best, 2)}",
                flush=True,
            )

    trainer.train(seed_keys(range(seeds)), progress_fn=progress)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["elbow"])
    p.add_argument("--algos", nargs="+", default=["ppo", "qflex"])
    p.add_argument("--rewards", nargs="+", default=["add", "exp"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps-ppo", type=int, default=300_000, help="control steps per seed for PPO")
    p.add_argument("--steps-qflex", type=int, default=40_000, help="control steps per seed for Qflex")
    p.add_argument("--evals", type=int, default=15, help="evaluations per run")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "learning.csv"))
    a = p.parse_args(argv)
    rows = []
    for model in a.models:
        for algo in a.algos:
            for reward in a.rewards:
                if algo == "qflex" and reward == "exp" and len(a.rewards) > 1 and "ppo" in a.algos:
                    continue  # exp vs add is compared on PPO; Qflex runs with add (the paper's pairing)
                steps = a.steps_ppo if algo == "ppo" else a.steps_qflex
                rows += run_one(
                    model, DEFAULT_MOTIONS.get(model, "walk"), algo, reward, a.seeds, steps, a.evals
                )
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"\nwrote {out}")
    print(f"{'model':8s} {'algo':5s} {'reward':6s} {'final best error (deg) median [min, max]':>40s}")
    for key in sorted({(r["model"], r["algo"], r["reward"]) for r in rows}):
        last = {}
        for r in rows:
            if (r["model"], r["algo"], r["reward"]) == key:
                last[r["seed"]] = r["best_joint_angle_error_deg"]
        v = np.array(list(last.values()))
        print(f"{key[0]:8s} {key[1]:5s} {key[2]:6s} {np.median(v):10.2f} [{v.min():.2f}, {v.max():.2f}]")
    _plot(rows, out.with_suffix(".png"))


def _plot(rows, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for key in sorted({(r["model"], r["algo"], r["reward"]) for r in rows}):
        sel = [r for r in rows if (r["model"], r["algo"], r["reward"]) == key]
        steps = sorted({r["env_steps"] for r in sel})
        med = [
            np.median([r["best_joint_angle_error_deg"] for r in sel if r["env_steps"] == s]) for s in steps
        ]
        wall = [np.median([r["wall_time_s"] for r in sel if r["env_steps"] == s]) for s in steps]
        label = "/".join(key)
        axes[0].plot(steps, med, label=label)
        axes[1].plot(wall, med, label=label)
    axes[0].set_xlabel("env steps per seed")
    axes[1].set_xlabel("training wall time (s)")
    axes[0].set_ylabel("best mean joint-angle error (deg), median over seeds")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
