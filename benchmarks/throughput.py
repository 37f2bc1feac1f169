"""Environment throughput vs number of parallel environments (the paper's Fig. 4a, on this machine).

Two modes per (model, backend, n_envs):

``raw``     physics alone: open-loop stepping with random excitations, many steps per call
            (cpu: ``mujoco.rollout`` with its thread pool; mjx: a jitted ``scan`` of MJX steps).
``closed``  the tracking environment with a policy in the loop, as training runs it: each
            control step runs the policy network (2x256 MLP, jit-compiled JAX) on the whole batch,
            then the physics for ``n_substeps`` steps (control at 100 Hz), then observation and
            tracking error.

``steps_per_s`` counts physics steps summed over the batch in both modes, so the two compare
directly; ``env_steps_per_s`` counts control steps. The closed/raw ratio is printed per row.

``--train`` measures training instead (the issue-13 check): PPO training of ``S`` seeds x ``E``
environments on each model's walk (the elbow's flexion cycle), timed at two budgets so that
compilation and set-up cancel (rate = extra env steps / extra seconds), against a raw
``mujoco.rollout`` of the same batch (``S x E`` environments, ``n_substeps`` physics steps per
call, random excitations) measured in the same run. Writes ``throughput_train.csv``/``.json``.

    python benchmarks/throughput.py --quick                 # ~5 min on 2 cores
    python benchmarks/throughput.py --json results.json     # full sweep 1..1024 (long)
    python benchmarks/throughput.py --train                 # training vs raw physics, 3 models
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.models import load_model  # noqa: E402
from emulator.motion.reference import elbow_flexion_cycle, standing_motion  # noqa: E402
from emulator.simulation.env import TrackingEnv  # noqa: E402
from emulator.simulation.physics import make_physics  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"


def _policy(obs_dim: int, act_dim: int, hidden: int = 256, seed: int = 0):
    """A 2-layer tanh MLP with sigmoid outputs (excitations in [0, 1]), jit-compiled."""
    import jax
    import jax.numpy as jnp

    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = [
        (jax.random.normal(k[0], (obs_dim, hidden)) / np.sqrt(obs_dim), jnp.zeros(hidden)),
        (jax.random.normal(k[1], (hidden, hidden)) / np.sqrt(hidden), jnp.zeros(hidden)),
        (jax.random.normal(k[2], (hidden, act_dim)) / np.sqrt(hidden), jnp.zeros(act_dim)),
    ]

    @jax.jit
    def act(obs):
        h = obs
        for w, b in params[:-1]:
            h = jnp.tanh(h @ w + b)
        w, b = params[-1]
        return jax.nn.sigmoid(h @ w + b)

    return act


def _motion(model):
    return elbow_flexion_cycle(model) if model.name == "elbow" else standing_motion(model)


def _timeit(fn, min_time: float, min_reps: int = 3) -> float:
    """Median seconds per call over repetitions lasting at least ``min_time`` in total."""
    times = []
    t_start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - t_start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) > 200:
            break
    return float(np.median(times))


def bench_raw(model, backend: str, n_envs: int, nstep: int, min_time: float) -> float:
    physics = make_physics(model, backend, n_envs=n_envs)
    rng = np.random.default_rng(0)
    state = physics.layout.pack(np.tile(model.standing_qpos, (n_envs, 1)))
    ctrl = rng.uniform(0, 1, (n_envs, model.n_muscles))
    if backend == "cpu":
        from mujoco import rollout

        m = physics.mj_model
        control = rng.uniform(0, 1, (n_envs, nstep, model.n_muscles))
        out_s = np.empty((n_envs, nstep, physics.layout.nstate))
        out_d = np.empty((n_envs, nstep, m.nsensordata))
        datas = physics._datas
        with rollout.Rollout(nthread=physics.nthread) as pool:

            def run():
                pool.rollout(
                    [m] * n_envs,
                    datas,
                    state,
                    control,
                    nstep=nstep,
                    state=out_s,
                    sensordata=out_d,
                    skip_checks=True,
                )

            run()
            sec = _timeit(run, min_time)
    else:
        import jax.numpy as jnp

        s, c = jnp.asarray(state), jnp.asarray(ctrl)

        def run():
            out, _ = physics.step(s, c, nstep)
            out.block_until_ready()

        run()  # compile
        sec = _timeit(run, min_time)
    return n_envs * nstep / sec


def bench_closed(model, backend: str, n_envs: int, n_calls: int, min_time: float) -> tuple[float, float, int]:
    import jax
    import jax.numpy as jnp

    physics = make_physics(model, backend, n_envs=n_envs)
    env = TrackingEnv(model, _motion(model), physics)
    policy = _policy(env.obs_dim, env.action_dim)
    state0, obs0 = env.reset(jax.random.PRNGKey(0))

    def run():
        state, obs = state0, obs0
        for _ in range(n_calls):
            action = policy(obs)
            r = env.step(state, action if backend == "mjx" else np.asarray(action))
            state, obs = r.state, r.obs
        jnp.asarray(obs).block_until_ready()

    run()  # compile
    sec = _timeit(run, min_time)
    env_steps = n_envs * n_calls / sec
    return env_steps * env.n_substeps, env_steps, env.n_substeps


# PPO settings per model for --train: the speed-relevant ones (documented in docs/performance.md)
TRAIN_SETTINGS = {
    "elbow": {"seeds": 10, "n_envs": 32, "hidden": (128, 128), "epochs": 10, "minibatches": 8},
    "myolegs": {"seeds": 2, "n_envs": 32, "hidden": (256, 256), "epochs": 5, "minibatches": 4},
    "myofullbody": {"seeds": 2, "n_envs": 8, "hidden": (512, 256), "epochs": 5, "minibatches": 4},
}


def bench_train(name: str, iters: tuple[int, int] = (2, 6)) -> dict:
    """Training env steps/s (two budgets, the difference) vs raw physics on the same batch."""
    from emulator.learning.agents.ppo import PPOConfig
    from emulator.learning.train import TrainConfig, Trainer, seed_keys

    st = TRAIN_SETTINGS[name]
    S, E = st["seeds"], st["n_envs"]
    ppo = PPOConfig(hidden=st["hidden"], epochs=st["epochs"], minibatches=st["minibatches"])
    motion = "elbow_flexion" if name == "elbow" else "walk"
    times = []
    for n in iters:
        cfg = TrainConfig(model=name, motion=motion, algo="ppo", reward="exp", n_envs=E,
                          total_steps=n * E * ppo.rollout_steps, ppo=ppo)  # fmt: skip
        trainer = Trainer(cfg)
        t = time.perf_counter()
        trainer.train(seed_keys(range(S)))
        times.append(time.perf_counter() - t)
    n_sub = trainer.spec_env.n_substeps
    env_steps = (iters[1] - iters[0]) * E * ppo.rollout_steps * S
    train_env_sps = env_steps / (times[1] - times[0])
    raw = bench_raw(trainer.model, "cpu", S * E, n_sub, min_time=5.0)
    row = {
        "model": name,
        "seeds": S,
        "n_envs": E,
        "batch": S * E,
        "n_substeps": n_sub,
        "hidden": list(st["hidden"]),
        "epochs": st["epochs"],
        "minibatches": st["minibatches"],
        "train_env_steps_per_s": round(train_env_sps, 1),
        "train_physics_steps_per_s": round(train_env_sps * n_sub, 1),
        "raw_physics_steps_per_s": round(raw, 1),
        "train_over_raw": round(train_env_sps * n_sub / raw, 3),
    }
    print(
        f"{name:12} batch {S}x{E}  training {row['train_physics_steps_per_s']:10,.0f} physics steps/s "
        f"({row['train_env_steps_per_s']:8,.0f} env steps/s)  raw {raw:10,.0f}  ratio {row['train_over_raw']:.2f}",
        flush=True,
    )
    return row


def main_train(models: list[str], out: Path, json_path: str | None) -> list[dict]:
    rows = [bench_train(m) for m in models]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "throughput_train.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    meta = {"host": platform.node(), "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    Path(json_path or out / "throughput_train.json").write_text(
        json.dumps({"meta": meta, "records": rows}, indent=2)
    )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="training vs raw physics (see above)")
    ap.add_argument("--quick", action="store_true", help="few sizes, short timings (CI-sized)")
    ap.add_argument("--models", default=None, help="comma list (default: elbow,myolegs[,myofullbody])")
    ap.add_argument("--backends", default="cpu,mjx")
    ap.add_argument("--max-envs", type=int, default=1024)
    ap.add_argument("--json", dest="json_path", default=None, help="write records as JSON here")
    ap.add_argument("--out", default=str(OUT), help="directory for CSV and PNG")
    args = ap.parse_args(argv)
    if args.train:
        return main_train(
            (args.models or "elbow,myolegs,myofullbody").split(","), Path(args.out), args.json_path
        )

    models = (args.models or ("elbow,myolegs" if args.quick else "elbow,myolegs,myofullbody")).split(",")
    backends = args.backends.split(",")
    sizes_full = [2**k for k in range(11) if 2**k <= args.max_envs]
    if args.quick:
        cpu_sizes = {"elbow": [1, 16, 256], "myolegs": [1, 16, 256], "myofullbody": [16]}
        # MJX compiles one program per batch size (tens of seconds to minutes on CPU)
        mjx_sizes = {"elbow": [1, 16], "myolegs": [16], "myofullbody": []}
        min_time, n_calls, nstep = 1.0, 20, 50
    else:
        cpu_sizes = {m: sizes_full for m in models}
        mjx_sizes = {
            "elbow": [s for s in sizes_full if s <= 256],
            "myolegs": [s for s in sizes_full if s <= 64],
            "myofullbody": [16],
        }
        min_time, n_calls, nstep = 3.0, 50, 100

    records = []
    print(
        f"{'model':12} {'backend':7} {'n_envs':>6} {'mode':6} {'phys steps/s':>13} {'env steps/s':>12} {'closed/raw':>10}"
    )
    for name in models:
        model = load_model(name)
        for backend in backends:
            sizes = (cpu_sizes if backend == "cpu" else mjx_sizes).get(name, [])
            for n in sizes:
                raw = bench_raw(model, backend, n, nstep, min_time)
                closed, env_sps, nsub = bench_closed(model, backend, n, n_calls, min_time)
                ratio = closed / raw
                for mode, sps, esps in (("raw", raw, None), ("closed", closed, env_sps)):
                    records.append(
                        {
                            "model": name,
                            "backend": backend,
                            "mode": mode,
                            "n_envs": n,
                            "steps_per_s": round(sps, 1),
                            "env_steps_per_s": round(esps, 1) if esps else None,
                            "n_substeps": nsub if mode == "closed" else 1,
                            "closed_over_raw": round(ratio, 3) if mode == "closed" else None,
                        }
                    )
                print(f"{name:12} {backend:7} {n:6d} {'raw':6} {raw:13,.0f} {'':>12} {'':>10}")
                print(
                    f"{name:12} {backend:7} {n:6d} {'closed':6} {closed:13,.0f} {env_sps:12,.0f} {ratio:10.2f}",
                    flush=True,
                )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    with open(out / "throughput.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"meta": meta, "records": records}, indent=2))
    _plot(records, out / "throughput.png")
    print(
        f"wrote {out / 'throughput.csv'} and {out / 'throughput.png'}"
        + (f" and {args.json_path}" if args.json_path else "")
    )
    return records


def _plot(records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    keys = sorted({(r["model"], r["backend"], r["mode"]) for r in records})
    for model, backend, mode in keys:
        rows = sorted(
            (r for r in records if (r["model"], r["backend"], r["mode"]) == (model, backend, mode)),
            key=lambda r: r["n_envs"],
        )
        ax.plot(
            [r["n_envs"] for r in rows],
            [r["steps_per_s"] for r in rows],
            marker="o",
            linestyle="-" if mode == "raw" else "--",
            label=f"{model} {backend} {mode}",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("parallel environments")
    ax.set_ylabel("physics steps / s")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    main()
