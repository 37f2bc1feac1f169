"""The physics step as a lever (``EnvConfig.physics_dt``): what each step costs and what it does
to the walk, all steps measured in the same run.

For each physics step (default 1/1000, 1/500 = myo-sim's own, 1/300, 1/150 s as KINESIS):

``servo``   the walking recipe's untrained policy (every action 0.5: the physics-rate PD servo
            on the reference muscle lengths, no correction) from 16 start frames across the
            gait cycle: mean time until the termination test fires, mean joint-angle error over
            the first 5 and 10 control steps, mean excitation over them. A coarser step that
            changes these changes the body the policies must learn to drive.
``train``   PPO training of that recipe (2 seeds x ``--n-envs``), timed at two budgets so that
            compilation and set-up cancel: env steps per second, and its ratio to the model's
            own step.

Prints a table and writes ``benchmarks/results/physics_step.csv``.

    python benchmarks/physics_step.py                         # ~10 min on 2 cores
    python benchmarks/physics_step.py --dts 0.002,0.0033333333333333335 --n-envs 64
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
RECIPE = Path(__file__).resolve().parent / "recipes" / "myolegs_walk_servo30_quiet.toml"


def servo_scores(train_config, dt: float, n_starts: int = 16, n_steps: int = 60) -> dict:
    """The untrained servo's walk at physics step ``dt`` (see the module docstring)."""
    from emulator.models import load_model
    from emulator.motion.sources import load_motion
    from emulator.simulation.env import TrackingEnv

    cfg = dataclasses.replace(train_config.env, physics_dt=dt, max_episode_s=None)
    model = load_model(train_config.model)
    motion = load_motion(train_config.motion, model)[0]
    env = TrackingEnv.create(model, motion, cfg, n_envs=n_starts)
    starts = np.linspace(0, env.reference_frames, n_starts, endpoint=False).astype(int)
    state, _ = env.reset(None, index=starts)
    alive = np.ones(n_starts, bool)
    up = np.zeros(n_starts)
    errors, excitations = [], []
    for _ in range(n_steps):
        out = env.step(state, np.full((n_starts, env.action_dim), 0.5))
        state = out.state
        errors.append(np.where(alive, np.asarray(out.metrics)[:, 0], np.nan))
        excitations.append(np.asarray(out.signals.excitation).mean(axis=1))
        up += alive
        alive &= ~np.asarray(out.terminated, dtype=bool)
    errors = np.asarray(errors)
    return {
        "substeps": env.n_substeps,
        "servo_up_s": float(up.mean() * env.control_dt),
        "servo_joint_error_5_deg": float(np.nanmean(errors[:5])),
        "servo_joint_error_10_deg": float(np.nanmean(errors[:10])),
        "servo_excitation_5": float(np.mean(excitations[:5])),
    }


def training_rate(train_config, dt: float, n_envs: int, iterations: tuple[int, int] = (2, 8)) -> float:
    """PPO env steps per second of 2 seeds x ``n_envs`` at physics step ``dt`` (the difference
    of two budgets, so compilation and set-up cancel)."""
    from emulator.learning.train import Trainer, seed_keys

    env = dataclasses.replace(train_config.env, physics_dt=dt)
    per_iter = n_envs * train_config.ppo.rollout_steps
    times = []
    for n in iterations:
        cfg = dataclasses.replace(train_config, env=env, n_envs=n_envs, total_steps=n * per_iter)
        trainer = Trainer(cfg)
        t0 = time.perf_counter()
        trainer.train(seed_keys([0, 1]))
        times.append(time.perf_counter() - t0)
    return 2 * per_iter * (iterations[1] - iterations[0]) / (times[1] - times[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dts", default=f"{1 / 1000},{1 / 500},{1 / 300},{1 / 150}", help="physics steps, s")
    ap.add_argument("--recipe", default=str(RECIPE), help="the walking recipe (TOML)")
    ap.add_argument("--n-envs", type=int, default=64, help="environments per seed when timing training")
    ap.add_argument("--out", default=str(RESULTS / "physics_step.csv"))
    args = ap.parse_args(argv)

    from diversity.config import load_config

    run, _ = load_config(args.recipe)
    base = run.train_config()
    dts = [float(x) for x in args.dts.split(",")]
    rows = []
    for dt in dts:
        row = {"physics_dt_s": dt, "physics_hz": round(1 / dt, 1), **servo_scores(base, dt)}
        row["train_env_steps_per_s"] = training_rate(base, dt, args.n_envs)
        rows.append(row)
        print(f"{row['physics_hz']:7.1f} Hz: {row}", flush=True)
    own = base.env.physics_dt or 0.002
    ref = next((r for r in rows if abs(r["physics_dt_s"] - own) < 1e-12), rows[0])
    for r in rows:
        r["speed_vs_own_step"] = r["train_env_steps_per_s"] / ref["train_env_steps_per_s"]
    print(f"\n{'physics':>9} {'substeps':>8} {'servo up':>9} {'err 5 steps':>12} {'err 10':>8} "
          f"{'excitation':>10} {'env steps/s':>12} {'speed':>6}")  # fmt: skip
    for r in rows:
        print(f"{r['physics_hz']:6.0f} Hz {r['substeps']:8d} {r['servo_up_s']:8.2f}s "
              f"{r['servo_joint_error_5_deg']:10.2f}deg {r['servo_joint_error_10_deg']:6.2f}deg "
              f"{r['servo_excitation_5']:10.3f} {r['train_env_steps_per_s']:12.0f} {r['speed_vs_own_step']:5.2f}x")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
