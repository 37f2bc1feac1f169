"""Which part of a reset's state makes a walking policy set fall: the reference state at a start
frame against the state the same policies reach at that frame walking from the heel strike.

Each seed walks from frame 0 to ``--frame``; that walked state and the reference state at the
frame are mixed (root linear velocity, root angular velocity, joint velocities, positions,
activations taken from the walked state, the rest from the reference), and every mix is rolled
out for ``--seconds`` from the frame. If the walked state stays up and the reference falls, the
reset is off the policies' own walk; the mixes say by which part.

    python benchmarks/walking_reset_state.py myolegs-walk --frame 4

Writes ``benchmarks/results/walking_reset_state.csv`` (set, frame, start state, seed, ``up_s`` as
every walking score counts it, :func:`walking.evaluate`) and
prints each start state's mean time up and the walked minus reference root velocity.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def reset_state_scores(name: str, frame: int, seconds: float) -> tuple[list[dict], np.ndarray]:
    """Rows ``{set, frame, start_state, seed, up_s}`` and the walked minus reference root
    linear velocity ``[3]`` (m/s, world; mean over seeds) at ``frame``."""
    import jax.numpy as jnp
    from walking import evaluate  # benchmarks/walking.py, beside this script

    from emulator.learning.policies import find_policy_set, load_policy_set
    from emulator.simulation.env import TrackingEnv

    pset, trainer = load_policy_set(find_policy_set(name))
    agent, n = pset.agent, len(pset.seeds)
    env_cfg = dataclasses.replace(trainer.config.env, max_episode_s=None)
    env = TrackingEnv.create(trainer.model, trainer.motion, env_cfg, backend="cpu", n_envs=n)
    state, obs = env.reset(None, index=np.zeros(n, int))
    for _ in range(frame):  # the walk from the heel strike to the frame
        action = np.asarray(trainer.mean_action(agent, jnp.asarray(obs).reshape(n, 1, -1))).reshape(n, -1)
        res = env.step(state, action)
        state, obs = res.state, res.obs
    walked = np.asarray(state.physics, dtype=float)
    reference = env.reference_state(np.full(n, frame))
    nq, nv = env.layout.nq, env.layout.nv
    q = np.arange(1, 1 + nq)
    v = 1 + nq + np.arange(nv)
    act = np.arange(1 + nq + nv, walked.shape[1])
    lin, ang = 1 + nq + env._root_lin, 1 + nq + env._root_ang
    parts = {
        "reference (a reset)": [],
        "walked from frame 0": list(range(walked.shape[1])),
        "reference + walked root linear velocity": list(lin),
        "reference + walked root angular velocity": list(ang),
        "reference + walked joint velocities": [c for c in v if c not in set(lin) | set(ang)],
        "reference + walked positions": list(q),
        "reference + walked activations": list(act),
    }
    rows = []
    cycles = seconds / (env.reference_frames * env.control_dt)
    for label, columns in parts.items():
        start = reference.copy()
        start[:, columns] = walked[:, columns]
        up_s = evaluate(trainer, agent, cycles, start_frame=frame, physics=start)["survival_s"]
        for seed, up in zip(pset.seeds, up_s, strict=True):
            rows.append({"set": Path(name).name, "frame": frame, "start_state": label, "seed": int(seed),
                         "up_s": round(float(up), 3)})  # fmt: skip
    return rows, (walked[:, lin] - reference[:, lin]).mean(axis=0)


def main():
    from walking import write_rows  # benchmarks/walking.py, beside this script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="policy sets: shipped names, stores or directories")
    parser.add_argument(
        "--frame", type=int, default=4, help="the start frame (control steps from the heel strike)"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="each rollout's length at most")
    parser.add_argument("--out", default=str(RESULTS / "walking_reset_state.csv"))
    args = parser.parse_args()
    rows = []
    for name in args.sets:
        got, gap = reset_state_scores(name, args.frame, args.seconds)
        rows += got
        print(f"{name}, frame {args.frame}: walked - reference root velocity {np.round(gap, 3)} m/s")
        for label in dict.fromkeys(r["start_state"] for r in got):
            up = [r["up_s"] for r in got if r["start_state"] == label]
            print(f"    {label:42s} up {np.mean(up):.2f} s (of {args.seconds:g})")
    write_rows(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
