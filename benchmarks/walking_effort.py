"""How hard walking policies work: muscle activation and force over a store's rollout, per seed.

Tracking alone asks for no economy, and the walking policies co-contract (docs/walking.md,
session 18). This prints and writes, for every seed of each store, the mean and median muscle
activation, how many muscles average above half activation, the summed muscle force (N, and in
body weights), beside the rollout's mean joint-angle error and whether the seed stayed up; and
the effort weight the store's policies were trained with (``[exp] effort``).

    python benchmarks/walking_effort.py S.zarr [S2.zarr ...] --seeds 0 1 --out effort.csv

A store is a ``diversity run`` or ``diversity rollout`` store (its rollout is what is measured).
Writes ``benchmarks/results/walking_effort.csv`` by default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
GRAVITY = 9.81  # m/s^2


def effort_rows(path: str, seeds=None) -> list[dict]:
    """One row per seed of the store at ``path`` (only ``seeds`` if given)."""
    import xarray as xr

    from emulator.models import load_model

    ds = xr.open_zarr(path)
    if seeds:
        ds = ds.sel(seed=list(seeds))
    ds = ds[["activation", "muscle_force", "joint_angle_error", "terminated"]].load()
    config = json.loads(ds.attrs.get("config", "{}"))
    effort = config.get("train_resolved", {}).get("exp", {}).get("effort", 0.0)
    weight_n = float(load_model(ds.attrs["model"]).mj_model.body_subtreemass[0]) * GRAVITY
    rows = []
    for seed in ds["seed"].values:
        one = ds.sel(seed=seed)
        act = one["activation"].values  # [time, muscle]
        force = np.abs(one["muscle_force"].values).sum(axis=-1).mean()
        rows.append(
            {
                "store": Path(path).stem,
                "effort": effort,
                "seed": int(seed),
                "mean_activation": round(float(act.mean()), 4),
                "median_activation": round(float(np.median(act)), 4),
                "muscles_over_half": int((act.mean(axis=0) > 0.5).sum()),
                "muscle_force_sum_n": round(float(force), 1),
                "muscle_force_sum_bw": round(float(force) / weight_n, 2),
                "joint_angle_error_deg": round(float(one["joint_angle_error"].mean()), 3),
                "stayed_up": not bool(one["terminated"].values.any()),
            }
        )
    return rows


def main():
    from walking import write_rows  # benchmarks/walking.py, beside this script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", help="run or rollout stores")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="only these seeds")
    parser.add_argument("--out", default=str(RESULTS / "walking_effort.csv"))
    args = parser.parse_args()
    rows = [r for path in args.stores for r in effort_rows(path, args.seeds)]
    write_rows(args.out, rows)
    print(
        f"{'store':24s} {'effort':>6s} {'mean act':>8s} {'median':>7s} {'>0.5':>5s} {'force BW':>8s} {'joint deg':>9s} up"
    )
    for store in dict.fromkeys(r["store"] for r in rows):
        sel = [r for r in rows if r["store"] == store]
        print(
            f"{store:24s} {sel[0]['effort']:6.2f} {np.mean([r['mean_activation'] for r in sel]):8.3f} "
            f"{np.mean([r['median_activation'] for r in sel]):7.3f} {np.mean([r['muscles_over_half'] for r in sel]):5.1f} "
            f"{np.mean([r['muscle_force_sum_bw'] for r in sel]):8.1f} "
            f"{np.mean([r['joint_angle_error_deg'] for r in sel]):9.2f} {sum(r['stayed_up'] for r in sel)}/{len(sel)}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
