"""How big a shove a walking policy set recovers from: time up after a horizontal velocity change
at the start, by start phase, direction and size.

Every rollout starts in the reference state at a start frame; here each seed's deterministic
policy is also shoved (the whole body's horizontal velocity changed, as
``EnvConfig.push_speed_mps`` does in training) sideways (towards the walker's left, +) or along
the walk (forward, +) and rolled out for a few cycles. A set whose time up collapses for a few
cm/s has a narrow basin: the drift that ends its long walks is any small error of the same kind.

    python benchmarks/walking_basin.py myolegs-walk --starts 0 4 20 --kicks 0 0.05 0.1 0.15

Writes ``benchmarks/results/walking_basin.csv`` (one row per set, start frame, direction, kick
and seed: ``up_s`` until the first termination, as every walking score counts it) and prints
each (start, direction)'s mean time up against the kick.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def walk_directions(trainer) -> dict[str, np.ndarray]:
    """Unit horizontal vectors ``{"lateral": left, "forward": along the walk}`` (world x, y)
    from the reference's displacement over one cycle."""
    from emulator.simulation.tracking_reference import build_reference

    ref = build_reference(trainer.model, trainer.motion, 1.0 / trainer.control_dt)
    forward = np.asarray(ref.offset[:2], float)
    if np.linalg.norm(forward) < 1e-3:
        raise ValueError(f"{trainer.config.motion}: the reference does not travel; no walking direction")
    forward /= np.linalg.norm(forward)
    return {"lateral": np.array([-forward[1], forward[0]]), "forward": forward}


def basin_scores(name: str, starts, kicks, cycles: float) -> list[dict]:
    """Rows ``{set, start_frame, start_phase, direction, kick_mps, seed, up_s}``."""
    from walking import evaluate  # benchmarks/walking.py, beside this script

    from emulator.learning.policies import find_policy_set, load_policy_set

    pset, trainer = load_policy_set(find_policy_set(name))
    directions = walk_directions(trainer)
    rows = []
    for start in starts:
        for direction, unit in directions.items():
            for size in sorted({0.0} | {float(k) for k in kicks} | {-float(k) for k in kicks}):
                if size == 0 and direction != "lateral":
                    continue  # the unshoved rollout once per start
                ev = evaluate(trainer, pset.agent, cycles, start_frame=int(start), kick=size * unit)
                for seed, up in zip(pset.seeds, ev["survival_s"], strict=True):
                    rows.append({
                        "set": Path(name).name, "start_frame": int(start),
                        "start_phase": round(start / trainer.reference_frames, 3),
                        "direction": "none" if size == 0 else direction, "kick_mps": size,
                        "seed": int(seed), "up_s": round(float(up), 3),
                    })  # fmt: skip
    return rows


def main():
    from walking import write_rows  # benchmarks/walking.py, beside this script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="policy sets: shipped names, stores or directories")
    parser.add_argument("--starts", type=int, nargs="+", default=[0, 4, 20])
    parser.add_argument(
        "--kicks", type=float, nargs="+", default=[0.05, 0.1, 0.15], help="m/s, each both ways"
    )
    parser.add_argument("--cycles", type=float, default=4.0)
    parser.add_argument("--out", default=str(RESULTS / "walking_basin.csv"))
    args = parser.parse_args()
    rows = [r for name in args.sets for r in basin_scores(name, args.starts, args.kicks, args.cycles)]
    write_rows(args.out, rows)
    for name in sorted({r["set"] for r in rows}):
        for start in args.starts:
            sel = [r for r in rows if r["set"] == name and r["start_frame"] == start]
            base = np.mean([r["up_s"] for r in sel if r["direction"] == "none"])
            print(
                f"{name}  start frame {start} (phase {sel[0]['start_phase']:.2f}): up {base:.2f} s unshoved"
            )
            for direction in ("lateral", "forward"):
                by_kick = {}
                for r in sel:
                    if r["direction"] == direction:
                        by_kick.setdefault(r["kick_mps"], []).append(r["up_s"])
                cells = "  ".join(f"{k:+.2f}: {np.mean(v):.2f}" for k, v in sorted(by_kick.items()))
                print(f"    {direction:8s} kick m/s: up s   {cells}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
