"""How long a walking policy set stays up from different start phases of the reference cycle.

Every rollout of `diversity rollout` starts at frame 0 (the right heel strike). This rolls each
seed's deterministic policy out from several start frames and records when the termination test
first fires: if the falls come at one gait phase whatever the start, the phase is the problem;
if they come a similar time after any start, the drift from the reset state is.

    python benchmarks/walking_phases.py myolegs-walk-contact2 --starts 0 4 8 12 16 20 24 28 --cycles 4

Writes ``benchmarks/results/walking_start_phases.csv`` (one row per set, start frame and seed:
``up_s`` until the first termination, ``fall_phase`` the cycle phase in [0, 1) where it fired)
and prints a table and each set's mean time up over every start and seed (the "up over 8
starts" of docs/walking.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def start_phase_scores(name: str, starts, cycles: float) -> list[dict]:
    """Rows ``{set, start_frame, start_phase, seed, up_s, fall_phase}`` for each start and seed
    (``up_s`` as every walking score counts it: :func:`walking.evaluate`)."""
    from walking import evaluate  # benchmarks/walking.py, beside this script

    from emulator.learning.policies import find_policy_set, load_policy_set

    pset, trainer = load_policy_set(find_policy_set(name))
    frames, dt = trainer.reference_frames, trainer.control_dt
    rows = []
    for start in starts:
        ev = evaluate(trainer, pset.agent, cycles, start_frame=int(start))
        for seed, up in zip(pset.seeds, ev["survival_s"], strict=True):
            steps = int(round(up / dt))
            rows.append({
                "set": Path(name).name, "start_frame": int(start), "start_phase": round(start / frames, 3),
                "seed": int(seed), "up_s": round(float(up), 3),
                "fall_phase": round(((start + steps) % frames) / frames, 3) if up < ev["cycle_s"] else float("nan"),
            })  # fmt: skip
    return rows


def main():
    from walking import write_rows  # benchmarks/walking.py, beside this script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="policy sets: shipped names, stores or directories")
    parser.add_argument("--starts", type=int, nargs="+", default=[0, 4, 8, 12, 16, 20, 24, 28])
    parser.add_argument("--cycles", type=float, default=4.0)
    parser.add_argument("--out", default=str(RESULTS / "walking_start_phases.csv"))
    args = parser.parse_args()
    rows = [r for name in args.sets for r in start_phase_scores(name, args.starts, args.cycles)]
    write_rows(args.out, rows)
    print(f"{'set':24s} {'start':>5s} {'phase':>5s}  up for (s): min / median / max   fall phases")
    for key in sorted({(r["set"], r["start_frame"]) for r in rows}):
        sel = [r for r in rows if (r["set"], r["start_frame"]) == key]
        up = np.array([r["up_s"] for r in sel])
        phases = " ".join(f"{r['fall_phase']:.2f}" for r in sel)
        print(f"{key[0]:24s} {key[1]:5d} {sel[0]['start_phase']:5.2f}  "
              f"{up.min():.2f} / {np.median(up):.2f} / {up.max():.2f}   {phases}")  # fmt: skip
    for name in sorted({r["set"] for r in rows}):
        up = np.array([r["up_s"] for r in rows if r["set"] == name])
        print(
            f"{name}: up {up.mean():.2f} s on average over {len(args.starts)} starts x seeds ({up.size} rollouts)"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
