"""Where one training iteration's time goes (issue 13): physics, the fused per-step JAX call
(transition + reward + next action), resets, the update, and the Python loop around them.

Trains once to compile, then times a second run of the same program with each piece wrapped
(``jax.block_until_ready`` after every call, so asynchronous dispatch cannot hide time).
Prints a table and writes ``benchmarks/results/profile_training.csv`` / ``.json``.

    python benchmarks/profile_training.py                          # myolegs and myofullbody
    python benchmarks/profile_training.py --models myolegs --n-envs 16 --epochs 10 --minibatches 8
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import jax
import numpy as np

import emulator.learning.train as train_mod
from emulator.learning.agents.ppo import PPOConfig
from emulator.learning.train import TrainConfig, Trainer, seed_keys

OUT = Path(__file__).resolve().parent / "results"
HIDDEN = {"elbow": (128, 128), "myolegs": (256, 256), "myofullbody": (512, 256)}


def _timed(fn, label: str, totals: dict):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        jax.block_until_ready(out)
        totals[label] = totals.get(label, 0.0) + time.perf_counter() - t
        return out

    return wrapper


def profile(
    model: str, seeds: int, n_envs: int, epochs: int, minibatches: int, iterations: int
) -> list[dict]:
    motion = "elbow_flexion" if model == "elbow" else "walk"
    ppo = PPOConfig(hidden=HIDDEN[model], epochs=epochs, minibatches=minibatches)
    cfg = TrainConfig(model=model, motion=motion, algo="ppo", reward="exp", n_envs=n_envs,
                      total_steps=iterations * n_envs * ppo.rollout_steps, ppo=ppo)  # fmt: skip
    trainer = Trainer(cfg)
    trainer.train(seed_keys(range(seeds)))  # compile
    totals: dict[str, float] = {}
    env, collect, first_act = trainer._programs[seeds]
    env.physics.step = _timed(env.physics.step, "physics (mujoco.rollout)", totals)
    # (a physics-rate servo, EnvConfig.servo_rate, steps through step_servo)
    env.physics.step_servo = _timed(env.physics.step_servo, "physics (mujoco.rollout)", totals)
    env.restart = _timed(env.restart, "resets (reference-state table)", totals)
    trainer._programs[seeds] = (
        env,
        _timed(collect, "per-step JAX (transition, reward, policy)", totals),
        first_act,
    )
    trainer._update = _timed(trainer._update, "update (PPO epochs)", totals)
    stack = train_mod._stack_steps
    train_mod._stack_steps = _timed(stack, "batch assembly", totals)
    try:
        t = time.perf_counter()
        trainer.train(seed_keys(range(seeds)))
        total = time.perf_counter() - t
    finally:
        train_mod._stack_steps = stack
    totals["Python loop and copies"] = total - sum(totals.values())
    env_steps = iterations * n_envs * ppo.rollout_steps * seeds
    rows = []
    for part, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
        rows.append(
            {
                "model": model,
                "seeds": seeds,
                "n_envs": n_envs,
                "epochs": epochs,
                "minibatches": minibatches,
                "part": part,
                "seconds": round(sec, 3),
                "share": round(sec / total, 3),
                "env_steps_per_s": round(env_steps / total, 1),
                "physics_steps_per_s": round(env_steps * env.n_substeps / total, 1),
            }
        )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["myolegs", "myofullbody"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--n-envs", type=int, default=None, help="default: 32 (myolegs), 8 (myofullbody)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--minibatches", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    rows = []
    for m in args.models:
        n_envs = args.n_envs or {"myofullbody": 8}.get(m, 32)
        mine = profile(m, args.seeds, n_envs, args.epochs, args.minibatches, args.iterations)
        rows += mine
        r0 = mine[0]
        print(f"\n{m}: {args.seeds} seeds x {n_envs} envs, {args.epochs} epochs x {args.minibatches} minibatches: "
              f"{r0['env_steps_per_s']:,.0f} env steps/s, {r0['physics_steps_per_s']:,.0f} physics steps/s")  # fmt: skip
        for r in mine:
            print(f"  {r['part']:45s} {r['seconds']:8.2f} s {100 * r['share']:5.1f} %")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"_{args.tag}" if args.tag else ""
    with open(out / f"profile_training{tag}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / f"profile_training{tag}.json").write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
