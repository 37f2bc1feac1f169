"""``diversity analyze``: every analysis of a store, as tables (CSV) and one ``summary.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import balance, gait, pca, solution_space, tracking
from . import emg as emg_lib
from . import grf as grf_lib
from . import opensim_trial as ost
from .measured import MEASURED_FOR_MOTION, MeasuredError, emg_map, measured_set, read_curve_csv, read_emg_map

__all__ = ["Analysis", "analyze", "cycle_means"]


@dataclass(frozen=True)
class Analysis(Mapping):
    """What :func:`analyze` found, typed: ``summary`` (what ``summary.json`` holds: model,
    motion, n_seeds, tracking, pca, cycles, emg, grf, solution_space), ``tables`` (the CSV
    tables as DataFrames: tracking, pca_<family>, emg_correlation, grf_comparison,
    diversity_index, ...) and ``arrays`` (what the figures draw: activation_cycles
    ``[seed, percent, muscle]``, emg_simulated/measured, grf_simulated/measured,
    cluster_linkage). Read as a mapping it is the summary plus ``tables`` and ``arrays``
    (``result["pca"]``, ``result["tables"]["tracking"]``), as earlier releases returned it."""

    summary: dict
    tables: dict
    arrays: dict

    @property
    def cycles(self) -> str:
        """How the cycles were cut: ``"gait cycles (right heel strike)"`` or ``"motion cycles"``."""
        return self.summary["cycles"]

    @property
    def gait_cycles(self) -> bool:
        return self.cycles.startswith("gait")

    @property
    def pca(self) -> dict:
        return self.summary["pca"]

    def table(self, name: str) -> pd.DataFrame | None:
        """One of the tables (None when this store has no such analysis, e.g. no GRF)."""
        return self.tables.get(name)

    def __getitem__(self, key):
        if key == "tables":
            return self.tables
        if key == "arrays":
            return self.arrays
        return self.summary[key]

    def __iter__(self):
        return iter([*self.summary, "tables", "arrays"])

    def __len__(self) -> int:
        return len(self.summary) + 2


def cycle_means(ds: xr.Dataset, variable: str, foot: str = "right") -> tuple[xr.DataArray, str]:
    """Per-seed mean cycle ``[seed, percent, ...]`` of ``variable`` (completed seeds), cut at
    ``foot``'s heel strikes when the store has GRF and every seed has a full cycle, else at the
    reference motion's period. Returns (cycles, how)."""
    ds = tracking.completed(ds)
    if "grf" in ds:
        cyc = gait.gait_cycles(ds, variable, foot=foot)
        if cyc.sizes["cycle"] > 0 and not cyc.isnull().all(("cycle", *cyc.dims[2:])).any():
            return cyc.mean("cycle", skipna=True), f"gait cycles ({foot} heel strike)"
    return gait.motion_cycles(ds, variable).mean("cycle", skipna=True), "motion cycles"


def analyze(
    ds: xr.Dataset,
    out_dir: str | Path | None = None,
    *,
    emg: str | Path | None = None,
    emg_map_file: str | Path | None = None,
    grf: str | Path | None = None,
    max_lag_pct: int = 0,
    n_boot: int = 1000,
    emg_cycle_s: tuple[float, float] | None = None,
    body_mass_kg: float | None = None,
    emg_processed: bool | None = None,
    include_falls: bool = False,
) -> Analysis:
    """Run the analyses; with ``out_dir``, write ``summary.json`` and the CSV tables there.

    Measured data default to the set shipped for the store's motion (``walk`` -> the Falisse
    2019 walking EMG and GRF with the model's channel map); ``emg``/``emg_map_file``/``grf``
    override them (``emg`` may be a C3D file: its EMG analog channels over ``emg_cycle_s``; or
    an OpenSim ``.sto``/``.mot``, cut into gait cycles by a ``grf`` ``.mot``'s heel strikes,
    channels matched to muscles by name unless ``emg_map_file``; see :mod:`.opensim_trial`).

    Gait cycles, EMG, GRF and the solution space use each seed's samples before its first
    termination and the seeds with a whole cycle there (``summary["balance"]``); with
    ``include_falls`` the whole rollouts, falls included."""
    ds = tracking.completed(ds)
    if ds.sizes["seed"] == 0:
        raise ValueError("the store has no completed seeds to analyse")
    tables: dict[str, pd.DataFrame] = {}
    arrays: dict = {}  # what the figures draw (not in summary.json)
    summary: dict = {
        "model": ds.attrs.get("model"),
        "motion": ds.attrs.get("motion"),
        "n_seeds": int(ds.sizes["seed"]),
    }

    # measured data (the flags', else the set shipped for this motion) first: a bad file fails
    # before any analysis runs
    measured = None
    name = MEASURED_FOR_MOTION.get(str(ds.attrs.get("motion")))
    if emg is None and grf is None and name is not None:
        measured = measured_set(name)
    trial_grf = ost.read_grf_opensim(grf, body_mass_kg) if grf is not None and _is_opensim(grf) else None
    muscles = list(ds["muscle"].values)
    emg_data, unmatched = None, []
    if emg is not None and _is_opensim(emg):
        emg_data = ost.read_emg_opensim(emg, trial_grf, emg_cycle_s, emg_processed)
        channels = list(emg_data["channel"].values)
        if emg_map_file is None:
            mapping, unmatched = ost.default_emg_map(channels, str(ds.attrs.get("model")), muscles)
            map_path = f"default channel names (emg_names_{ds.attrs.get('model')}.toml)"
        else:
            mapping, map_path = read_emg_map(emg_map_file, muscles), emg_map_file
            unmatched = [c for c in channels if c not in mapping]
    elif emg is not None:
        emg_data = emg_lib.read_emg(emg, emg_cycle_s)
    elif measured:
        emg_data = measured["emg"]
    if emg_data is not None:
        if not (emg is not None and _is_opensim(emg)):
            map_path = emg_map_file or emg_map(str(ds.attrs.get("model")), name or "walking")
            mapping = read_emg_map(map_path, muscles)
        mapping = {c: m for c, m in mapping.items() if c in set(emg_data["channel"].values)}
        if not mapping:
            raise MeasuredError(
                f"{emg}: no EMG channel matches a model muscle (channels: {list(emg_data['channel'].values)})"
            )
    if trial_grf is not None:
        grf_data = ost.grf_cycles_opensim(trial_grf, emg_cycle_s)
    elif grf is not None:
        grf_data = read_curve_csv(grf, "direction")
    else:
        grf_data = measured["grf"] if measured else None

    track = tracking.tracking_table(ds)
    tables["tracking"] = track
    staying_up = balance.balance_table(ds)
    tables["balance"] = staying_up
    summary["balance"] = {
        "n_fell": int(staying_up["fell"].sum()),
        "rollout_s": balance.rollout_s(ds),
        "per_seed": staying_up.to_dict(orient="records"),
        "gait_cycles": "whole rollouts, falls included"
        if include_falls
        else "before each seed's first termination",
    }
    # gait cycles, GRF, EMG and the solution space compare what was walked, not the falls
    walked = ds if include_falls else balance.upright(ds)
    tables["tracking_distribution"] = tracking.distribution(track)
    summary["tracking"] = {
        "per_seed": track.drop(columns=["motion", "model"]).to_dict(orient="records"),
        "distribution": tables["tracking_distribution"].to_dict(orient="records"),
    }

    summary["pca"] = {}
    for family in pca.FAMILIES:
        if pca.FAMILIES[family] not in ds or ds.sizes["seed"] < 2:
            continue
        res = pca.pca_explained(pca.family_matrix(ds, family))
        summary["pca"][family] = res
        tables[f"pca_{family}"] = pd.DataFrame(
            {
                "component": np.arange(1, len(res["explained_variance_ratio"]) + 1),
                "explained_variance_ratio": res["explained_variance_ratio"],
                "cumulative": res["cumulative"],
            }
        )

    act, how = cycle_means(walked, "activation")
    # the cycle analyses take the seeds with a whole cycle (before their first termination)
    whole = np.isfinite(act.values).reshape(act.sizes["seed"], -1).all(axis=1)
    has_cycles = bool(whole.any())
    if has_cycles and not whole.all():
        walked = walked.isel(seed=np.flatnonzero(whole))
        act, how = cycle_means(walked, "activation")
    kin, _ = cycle_means(walked, "joint_angle")
    summary["balance"]["cycle_seeds"] = [int(s) for s in walked["seed"].values] if has_cycles else []
    arrays["activation_cycles"] = act
    summary["cycles"] = how
    no_cycle = (
        "no seed has a whole cycle before its first termination: roll out longer (diversity rollout "
        "--cycles 2), train until the policies stay up, or analyse the falls too (--include-falls)"
    )

    if emg_data is not None and not has_cycles:
        summary["emg"] = {"skipped": no_cycle}
    elif emg_data is not None:
        sim = emg_lib.simulated_channels(act.expand_dims(cycle=[0], axis=1), mapping)
        tables["emg_correlation"] = emg_lib.emg_correlation(sim, emg_data["mean"], max_lag_pct, n_boot)
        arrays["emg_simulated"], arrays["emg_measured"] = sim, emg_data["mean"]
        summary["emg"] = {
            "map": str(map_path),
            "cycles": how,
            "matched": {c: m for c, m in mapping.items()},
            "unmatched": unmatched,
            "channels": tables["emg_correlation"].to_dict("records"),
        }
        for key in ("processing", "rate_hz", "cycles", "n_cycles"):
            if key in emg_data.attrs:
                summary["emg"][f"measured_{key}"] = emg_data.attrs[key]
    if grf_data is not None and "grf" in ds and not has_cycles:
        summary["grf"] = {"skipped": no_cycle}
    elif grf_data is not None and "grf" in ds:
        bw = grf_lib.grf_body_weights(walked).sel(foot="right")
        sim_grf, _ = cycle_means(walked.assign(grf_bw=bw), "grf_bw")
        tables["grf_comparison"] = grf_lib.grf_comparison(sim_grf, grf_data["mean"])
        arrays["grf_simulated"], arrays["grf_measured"] = sim_grf, grf_data["mean"]
        summary["grf"] = {
            "foot": "right",
            "units": "BW",
            **(
                {"body_weight_n": trial_grf["body_weight_n"], "measured_cycles": grf_data.attrs["cycles"]}
                if trial_grf is not None
                else {}
            ),
            "components": tables["grf_comparison"].to_dict("records"),
        }

    # solution space
    space: dict = {}
    if not has_cycles:
        space["skipped"] = no_cycle
    elif act.sizes["seed"] >= 2:
        space["dispersion"] = solution_space.dispersion_ratio(act.values, kin.values)
        clusters = solution_space.cluster_policies(act.values)
        arrays["cluster_linkage"] = clusters["linkage"]
        space["clusters"] = {
            "n_clusters": clusters["n_clusters"],
            "silhouette": clusters["silhouette"],
            "labels": {
                str(s): int(label) for s, label in zip(act["seed"].values, clusters["labels"], strict=True)
            },
        }
        syn = [solution_space.synergies(a) for a in act.values]
        i, j = np.triu_indices(len(syn), k=1)
        sims = [
            solution_space.synergy_similarity(syn[a]["weights"], syn[b]["weights"])
            for a, b in zip(i, j, strict=True)
        ]
        space["synergies"] = {
            "k_per_seed": {str(s): x["k"] for s, x in zip(act["seed"].values, syn, strict=True)},
            "vaf_per_seed": {str(s): x["vaf"] for s, x in zip(act["seed"].values, syn, strict=True)},
            "similarity_mean": float(np.mean(sims)),
            "similarity_min": float(np.min(sims)),
        }
        # policies that track equally well: mean joint-angle error within 1.5x the median
        err = track.set_index("seed").loc[act["seed"].values, "joint_angle_error"].to_numpy()
        good = err <= 1.5 * np.median(err)
        div = solution_space.diversity_index(act.values[good], list(ds["muscle"].values))
        tables["diversity_index"] = div
        space["diversity_index"] = {
            "seeds": [int(s) for s in act["seed"].values[good]],
            "rule": "seeds with mean joint-angle error <= 1.5 x the median",
            "top_muscles": div.head(10).to_dict("records"),
        }
    summary["solution_space"] = space

    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name_, table in tables.items():
            table.to_csv(out / f"{name_}.csv", index=False)
        (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2))
    return Analysis(summary, tables, arrays)


def _is_opensim(path) -> bool:
    return Path(path).suffix.lower() in (".sto", ".mot")


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating | float):
        return None if np.isnan(x) else float(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x
