"""Analyses on synthetic stores with known answers, and the figures drawn from them."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr
from typer.testing import CliRunner

from diversity.analysis import emg as emg_lib
from diversity.analysis import gait, pca, solution_space, tracking
from diversity.analysis.measured import MeasuredError, measured_set, read_emg_csv, read_emg_map
from diversity.analysis.report import cycle_means

MASS, G = 75.0, 9.81
DT, PERIOD = 0.01, 1.0


def _stance_grf(t, strikes, stance_s=0.62):
    """Vertical GRF (N): a 1.1 BW half-sine during each stance (strike .. strike + stance_s)."""
    f = np.zeros_like(t)
    for s in strikes:
        m = (t >= s) & (t <= s + stance_s)
        f[m] = 1.1 * MASS * G * np.sin(np.pi * (t[m] - s) / stance_s)
    return f


def synthetic_store(n_seeds=6, n_cycles=3, muscle_spread=0.3, kin_spread=0.01, seed=0):
    """A walking store: 2 joints, 4 muscles; each policy's muscles = shared pattern + its own
    pattern scaled by ``muscle_spread``; joint angles = reference + ``kin_spread`` noise."""
    rng = np.random.default_rng(seed)
    n = int(n_cycles * PERIOD / DT)
    t = (np.arange(n) + 1) * DT
    phase = 2 * np.pi * t / PERIOD
    ref = np.stack([0.5 * np.sin(phase), 0.3 * np.cos(phase)], axis=1)
    base = np.stack([0.5 + 0.4 * np.sin(phase + k) for k in range(4)], axis=1)
    act = np.clip(
        base[None]
        + muscle_spread
        * np.stack(
            [
                np.sin(phase[:, None] * (1 + rng.integers(1, 3, 4)) + rng.uniform(0, 6, 4))
                for _ in range(n_seeds)
            ]
        ),
        0,
        1,
    )
    joint = ref[None] + kin_spread * rng.standard_normal((n_seeds, 1, 2)) * np.sin(phase)[None, :, None]
    right = 0.1 + np.arange(n_cycles + 1) * PERIOD
    grf = np.zeros((n_seeds, n, 2, 3))
    grf[..., 1, 2] = _stance_grf(t, right)  # right foot
    grf[..., 0, 2] = _stance_grf(t, right - 0.5)  # left foot, half a cycle earlier
    metrics = np.abs(rng.normal(2.0, 0.3, (n_seeds, 1))) * np.ones((1, n))
    ds = xr.Dataset(
        {
            "activation": (("seed", "time", "muscle"), act),
            "joint_angle": (("seed", "time", "joint"), joint),
            "reference_joint_angle": (("time", "joint"), ref),
            "grf": (("seed", "time", "foot", "axis"), grf),
            "joint_angle_error": (("seed", "time"), metrics),
            "body_position_error": (("seed", "time"), metrics / 2),
            "completed": (("seed",), np.ones(n_seeds, np.int8)),
        },
        coords={
            "seed": np.arange(n_seeds),
            "time": t,
            "muscle": ["m0", "m1", "m2", "m3"],
            "joint": ["hip_flexion_r", "knee_angle_r"],
            "joint_units": ("joint", ["rad", "rad"]),
            "foot": ["left", "right"],
            "axis": ["x", "y", "z"],
        },
        attrs={
            "model": "synthetic",
            "motion": "synthetic_walk",
            "model_mass_kg": MASS,
            "motion_duration_s": PERIOD,
            "motion_loop": 1,
        },
    )
    return ds, right


def test_gait_events_within_one_percent_of_the_cycle():
    t = np.arange(1, 501) * DT
    strikes = np.array([0.123, 1.137, 2.151, 3.149, 4.16])
    for stance in (0.62, 0.35):  # walking (double support with the other foot) and running (flight)
        ev = gait.gait_events(_stance_grf(t, strikes, stance), DT, MASS * G, t0=t[0])
        found = ev["heel_strike"]
        assert len(found) == len(strikes)
        assert np.max(np.abs(found - strikes)) < 0.01 * PERIOD
        assert np.max(np.abs(ev["toe_off"] - (strikes + stance))[: len(ev["toe_off"])]) < 0.01 * PERIOD
    # chatter around the threshold during swing is not a step
    f = _stance_grf(t, strikes)
    f[(t > 0.9) & (t < 0.92)] = 0.06 * MASS * G
    assert len(gait.gait_events(f, DT, MASS * G, t0=t[0])["heel_strike"]) == len(strikes)


def test_gait_cycles_are_time_normalised_between_strikes():
    ds, right = synthetic_store(kin_spread=0.0)
    cyc = gait.gait_cycles(ds, "joint_angle")
    assert cyc.dims == ("seed", "cycle", "percent", "joint") and cyc.sizes["percent"] == 101
    assert cyc.sizes["cycle"] == len(right) - 2  # the last strike's cycle runs past the data
    # each cycle runs from a detected strike to the next: the reference sine sampled from there
    t = ds["time"].values
    strikes = gait.gait_events(ds["grf"].values[0, :, 1, 2], DT, MASS * G, t0=t[0])["heel_strike"]
    assert np.all(np.abs(strikes - right[: len(strikes)]) < 0.01 * PERIOD)  # threshold crossing: < 1 %
    for k in range(cyc.sizes["cycle"]):
        span = np.linspace(strikes[k], strikes[k + 1], 101)
        expected = 0.5 * np.sin(2 * np.pi * span / PERIOD)
        np.testing.assert_allclose(cyc.isel(cycle=k, seed=0).sel(joint="hip_flexion_r"), expected, atol=2e-3)


def test_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA

    ds, _ = synthetic_store(n_seeds=8)
    m = pca.family_matrix(ds, "activity")
    assert m.shape == (8, ds.sizes["time"] * 4)
    res = pca.pca_explained(m)
    np.testing.assert_allclose(
        res["explained_variance_ratio"], PCA().fit(m).explained_variance_ratio_, rtol=1e-10
    )
    assert res["cumulative"][-1] == pytest.approx(1.0)
    assert 1 <= res["n_components_90"] <= res["n_components_95"] <= 8


def test_emg_r_equals_scipy_pearson_on_cycle_means(tmp_path):
    ds, _ = synthetic_store()
    act, how = cycle_means(ds, "activation")
    assert how.startswith("gait cycles") and act.dims == ("seed", "percent", "muscle")
    mapping = {"A": ["m0", "m1"], "B": ["m2"]}
    sim = emg_lib.simulated_channels(act.expand_dims(cycle=[0], axis=1), mapping)
    pct = np.linspace(0, 100, 101)
    measured_a = 1 + np.sin(2 * np.pi * pct / 100)
    measured_b = np.cos(2 * np.pi * pct / 100) ** 2
    csv = tmp_path / "emg.csv"
    pd.DataFrame({"percent": pct[::2], "A": measured_a[::2], "B": measured_b[::2]}).to_csv(csv, index=False)
    measured = read_emg_csv(csv)["mean"]
    table = emg_lib.emg_correlation(sim, measured, n_boot=200)
    for ch in ("A", "B"):
        sim_mean = sim.sel(channel=ch).mean("seed").values
        r_ref = scipy.stats.pearsonr(sim_mean, measured.sel(channel=ch).values).statistic
        row = table.set_index("channel").loc[ch]
        assert row["r"] == pytest.approx(r_ref, abs=1e-10)
        assert row["ci_low"] <= row["r"] + 1e-9 and row["r"] - 1e-9 <= row["ci_high"]
    # a bounded lag finds a planted shift
    shifted = np.roll(measured.sel(channel="A").values, 7)
    r, lag = __import__("diversity.analysis.stats", fromlist=["x"]).best_lag_r(
        np.roll(shifted, 7), shifted, 10
    )
    assert lag == 7 and r == pytest.approx(1.0)


def test_dispersion_ratio_tells_muscle_diversity_from_kinematic_diversity():
    ds, _ = synthetic_store(n_seeds=10, muscle_spread=0.3, kin_spread=0.005)
    res = solution_space.dispersion_ratio(ds["activation"].values, ds["joint_angle"].values)
    assert res["ratio"] > 3 and res["p_value"] < 0.01
    # both families perturbed alike (same relative spread): ratio ~ 1, not significant
    rng = np.random.default_rng(1)
    pattern = np.sin(np.linspace(0, 6 * np.pi, 300))[None, :, None] * np.ones((10, 1, 3))
    noise = 0.2 * rng.standard_normal((10, 300, 3))
    alike = solution_space.dispersion_ratio(
        pattern + noise, 5 * (pattern + 0.2 * rng.standard_normal((10, 300, 3)))
    )
    assert 0.85 < alike["ratio"] < 1.15 and alike["p_value"] > 0.01


def test_nmf_recovers_planted_synergies():
    rng = np.random.default_rng(0)
    w = np.abs(rng.standard_normal((3, 12))) * (rng.uniform(size=(3, 12)) > 0.4)
    t = np.linspace(0, 1, 200)
    h = np.stack([np.maximum(0, np.sin(2 * np.pi * (t + k / 3))) for k in range(3)], axis=1)
    a = h @ w + 0.01 * rng.uniform(size=(200, 12))
    syn = solution_space.synergies(a, vaf_target=0.95)
    assert syn["k"] == 3 and syn["vaf"] >= 0.95
    assert solution_space.synergy_similarity(syn["weights"], w) > 0.9


def test_an_action_basis_recovers_planted_synergies_across_seeds():
    """``action_basis``: one NMF over every seed's samples (a fallen seed's NaN tail left
    out), each synergy scaled to a largest weight of 1, muscles by name."""
    rng = np.random.default_rng(1)
    muscles = [f"m{i}" for i in range(12)]
    w = np.abs(rng.standard_normal((3, 12))) * (rng.uniform(size=(3, 12)) > 0.4)
    t = np.linspace(0, 2, 300)
    act = []
    for seed in range(2):
        h = np.stack([np.maximum(0, np.sin(2 * np.pi * (t + k / 3 + seed / 7))) for k in range(3)], axis=1)
        act.append(h @ w + 0.01 * rng.uniform(size=(300, 12)))
    act = np.stack(act)
    act[1, 250:] = np.nan  # seed 1 fell
    res = solution_space.action_basis(act, muscles, 3)
    assert res["k"] == 3 and res["vaf"] > 0.98 and len(res["basis"]) == 3
    got = np.array([[syn.get(m, 0.0) for m in muscles] for syn in res["basis"]])
    assert np.allclose(got.max(axis=1), 1.0) and (got >= 0).all()
    assert solution_space.synergy_similarity(got, w) > 0.95
    with pytest.raises(ValueError, match="k must be within 1..12"):
        solution_space.action_basis(act, muscles, 0)
    with pytest.raises(ValueError, match="12 muscles"):
        solution_space.action_basis(act[..., :5], muscles, 2)


def test_synergies_cli_writes_a_basis_a_recipe_takes(legs_store, tmp_path):
    from diversity.cli import app
    from diversity.config import load_config
    from emulator.learning.train import Trainer

    out = tmp_path / "basis.toml"
    res = CliRunner().invoke(app, ["synergies", str(legs_store), "--k", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "3 synergies of 2 seeds" in res.output
    recipe = tmp_path / "run.toml"
    recipe.write_text('model = "myolegs"\nn_envs = 2\n[env]\naction_space = "excitation"\n' + out.read_text())
    cfg, _ = load_config(recipe)
    basis = cfg.train_config().env.action_basis
    assert len(basis) == 3 and all(max(w for _, w in syn) == 1.0 for syn in basis)
    assert Trainer(cfg.train_config()).act_dim == 3
    bad = CliRunner().invoke(app, ["synergies", str(legs_store), "--k", "0", "--out", str(out)])
    assert bad.exit_code == 2 and "k must be within" in bad.output


def test_clustering_and_diversity_index_find_the_planted_structure():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.normal(0, 0.05, (5, 40)), rng.normal(1, 0.05, (5, 40))])
    cl = solution_space.cluster_policies(a)
    assert cl["n_clusters"] == 2 and len(set(cl["labels"][:5])) == 1 and cl["labels"][0] != cl["labels"][-1]
    x = np.zeros((8, 101, 3))
    x[:, :, 0] = np.sin(np.linspace(0, 2 * np.pi, 101))  # identical across seeds
    x[:, :, 1] = np.sin(np.linspace(0, 2 * np.pi, 101)) + rng.normal(0, 0.5, (8, 1))  # seeds differ
    x[:, :, 2] = 0.5 * np.sin(np.linspace(0, 2 * np.pi, 101))
    div = solution_space.diversity_index(x, ["same", "varies", "half"])
    assert div["muscle"].iloc[0] == "varies" and div.set_index("muscle").loc["same", "diversity_index"] < 1e-9


def test_analyze_cli_writes_summary_and_tables(tmp_path):
    from diversity.cli import app

    ds, _ = synthetic_store()
    ds.attrs["schema_version"] = "1"
    store = tmp_path / "syn.zarr"
    for name in ("muscle", "joint", "joint_units", "foot", "axis"):  # variable-length strings, as the store
        ds[name] = ds[name].astype(object)
    ds.to_zarr(store, zarr_format=3, consolidated=False)
    res = CliRunner().invoke(app, ["analyze", str(store), "--out", str(tmp_path / "an"), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "an" / "summary.json").read_text())
    for family in ("activity", "joint_angle", "grf"):
        assert summary["pca"][family]["cumulative"][-1] == pytest.approx(1.0)
    assert len(summary["tracking"]["per_seed"]) == 6
    t = pd.read_csv(tmp_path / "an" / "tracking.csv")
    np.testing.assert_allclose(t["joint_angle_error"], ds["joint_angle_error"].mean("time"), rtol=1e-6)
    assert "emg" not in summary  # no measured set for this motion and no --emg
    res = CliRunner().invoke(app, ["figures", str(store), "--out", str(tmp_path / "fig"), "--format", "svg"])
    assert res.exit_code == 0, res.output
    svgs = sorted(p.name for p in (tmp_path / "fig").glob("*.svg"))
    assert {"tracking_boxplot.svg", "joint_angles.svg", "pca_explained_variance.svg"} <= set(svgs)
    svg = (tmp_path / "fig" / "joint_angles.svg").read_text()
    assert "angle (deg)" in svg and "time (s)" in svg  # vector output keeps text as text
    res = CliRunner().invoke(app, ["figures", str(store), "--out", str(tmp_path / "fig"), "--format", "gif"])
    assert res.exit_code == 2 and "pdf, svg or png" in res.output


def test_analyze_returns_a_typed_result_that_reads_like_the_summary():
    from diversity.analysis.report import Analysis, analyze

    ds, _ = synthetic_store()
    res = analyze(ds, n_boot=20)
    assert isinstance(res, Analysis)
    # the typed fields and the mapping view (what notebooks written for earlier releases read)
    assert res["tables"] is res.tables and res["arrays"] is res.arrays and res["pca"] is res.pca
    assert set(res) == {*res.summary, "tables", "arrays"}
    assert res.cycles == res.summary["cycles"] and res.gait_cycles == res.cycles.startswith("gait")
    track = res.table("tracking")
    np.testing.assert_allclose(track["joint_angle_error"], ds["joint_angle_error"].mean("time"), rtol=1e-6)
    assert res.table("emg_correlation") is None  # no measured EMG for this motion
    act = res.arrays["activation_cycles"]
    assert act.dims == ("seed", "percent", "muscle") and act.sizes["seed"] == ds.sizes["seed"]


def test_plots_draw_the_data_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diversity import figures

    ds, _ = synthetic_store()
    bands = tracking.joint_angle_bands(ds)
    axes = figures.joint_angle_bands(bands)
    line = axes[0].get_lines()[0]
    np.testing.assert_allclose(
        line.get_ydata(), np.degrees(ds["joint_angle"].sel(joint="hip_flexion_r").mean("seed"))
    )
    assert axes[0].get_ylabel() == "angle (deg)" and axes[0].get_xlabel() == "time (s)"
    table = tracking.tracking_table(ds)
    ax = figures.tracking_boxplot(table)
    assert "(deg)" in ax.get_xticklabels()[0].get_text()
    res = pca.pca_explained(pca.family_matrix(ds, "activity"))
    ax = figures.pca_explained({"activity": res})
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), np.asarray(res["cumulative"]) * 100)
    # EMG panels print each channel's r
    act, _ = cycle_means(ds, "activation")
    sim = emg_lib.simulated_channels(act.expand_dims(cycle=[0], axis=1), {"A": ["m0"]})
    meas = xr.DataArray(
        np.sin(np.linspace(0, 6, 101))[:, None], dims=("percent", "channel"), coords={"channel": ["A"]}
    )
    r_table = emg_lib.emg_correlation(sim, meas, n_boot=10)
    axes = figures.emg_panels(sim, meas, r_table)
    assert axes[0].texts[0].get_text() == f"r = {r_table['r'].iloc[0]:.2f}"
    # every seed's activation cycle overlaid per muscle, the seed mean last (black)
    axes = figures.activation_per_seed(act, muscles=["m0", "m1"])
    lines = axes[1].get_lines()
    assert len(lines) == act.sizes["seed"] + 1 and axes[1].get_title() == "m1"
    for k in range(act.sizes["seed"]):
        np.testing.assert_allclose(lines[k].get_ydata(), act.isel(seed=k).sel(muscle="m1").values)
    np.testing.assert_allclose(lines[-1].get_ydata(), act.sel(muscle="m1").mean("seed").values)
    spread = act.std("seed").mean("percent")
    top = str(spread["muscle"].values[int(np.argmax(spread.values))])
    assert figures.activation_per_seed(act)[0].get_title() == top  # most diverse muscle first
    # the x axis says which cycle it is (the elbow has motion cycles, not gait cycles)
    axes = figures.activation_per_seed(act, muscles=["m0"], cycle_label="motion cycle (%)")
    assert axes[0].get_xlabel() == "motion cycle (%)"
    plt.close("all")


def test_shipped_measured_walking_and_maps(myolegs, tmp_path):
    m = measured_set("walking")
    assert m["emg"].sizes["channel"] == 14 and m["emg"].sizes["percent"] == 101
    vert = m["grf"]["mean"].sel(direction="vertical").values
    assert 0.95 < vert.max() < 1.2  # body weights: the two stance peaks near 1 BW
    for model in ("myolegs", "myofullbody"):
        mapping = read_emg_map(m["dir"] / f"emg_map_{model}.toml", list(myolegs.muscles))
        assert set(mapping) == set(m["emg"]["channel"].values)
    bad = tmp_path / "map.toml"
    bad.write_text('[channels]\n"Soleus" = ["soleus_r", "nosuch_r"]\n')
    with pytest.raises(MeasuredError, match="map.toml.*'Soleus'.*nosuch_r"):
        read_emg_map(bad, list(myolegs.muscles))
    csv = tmp_path / "bad.csv"
    csv.write_text("time,A\n0,1\n1,2\n2,3\n")
    with pytest.raises(MeasuredError, match="bad.csv: first column must be 'percent'"):
        read_emg_csv(csv)


def test_emg_envelope_follows_the_modulation():
    rate = 1000.0
    t = np.arange(0, 2, 1 / rate)
    modulation = 0.5 + 0.5 * np.sin(2 * np.pi * t)
    raw = modulation * np.random.default_rng(0).standard_normal(len(t))
    env = emg_lib.emg_envelope(raw[:, None], rate)[:, 0]
    assert env.max() == pytest.approx(1.0)
    assert scipy.stats.pearsonr(env[200:-200], modulation[200:-200]).statistic > 0.9


def test_emg_from_a_real_c3d_file(tmp_path):
    biomdp = pytest.importorskip("biomdp")
    from pathlib import Path

    src = Path(biomdp.__file__).parent / "tests" / "datasets" / "vicon_CMJ_kinem_kinet_emg.c3d"
    emg = emg_lib.read_emg(src, cycle_s=(1.0, 6.0))
    assert emg.sizes["channel"] == 16 and emg.sizes["percent"] == 101  # the 16 EMG analog channels
    env = emg["mean"].values
    assert (
        np.all(env.max(0) <= 1.0 + 1e-9) and np.all(env.max(0) > 0.9) and env.min() > -0.05
    )  # peak-normalised
    with pytest.raises(MeasuredError, match="outside the recording"):
        emg_lib.read_emg(src, cycle_s=(1.0, 60.0))


def test_rollouts_shorter_than_a_cycle_skip_the_solution_space_with_a_reason(store):
    """The session's tiny run rolls out half a cycle: no cycle to compare policies on, so the
    solution-space analyses say why they are missing instead of failing inside scipy."""
    from diversity.analysis.report import analyze
    from diversity.store import open_store

    res = analyze(open_store(store), n_boot=10)
    assert "no seed has a whole cycle" in res.summary["solution_space"]["skipped"]
    assert len(res.tables["tracking"]) == 4  # the tracking analysis still covers every seed


def _walking_root(ds, speed=1.2):
    """Add a free root to ``ds``: the reference walks along -y at ``speed`` m/s at 0.95 m, every
    seed on it exactly; nobody terminates."""
    t = ds["time"].values
    ref = np.stack([np.zeros_like(t), -speed * t, np.full_like(t, 0.95)], axis=1)
    n_seeds = ds.sizes["seed"]
    return ds.assign(
        reference_root_position=(("time", "axis"), ref),
        root_position=(("seed", "time", "axis"), np.repeat(ref[None], n_seeds, axis=0)),
        root_rotation_error=(("seed", "time"), np.zeros((n_seeds, len(t)))),
        terminated=(("seed", "time"), np.zeros((n_seeds, len(t)), np.int8)),
    )


def test_balance_says_how_long_each_seed_stayed_up_and_which_way_it_fell():
    """Seed 1 drifts to its left (walking along -y with z up: towards +x) from 1.5 s, its termination test
    fires at 2.3 s and its root sinks past 15 cm at 2.6 s; the others never leave the reference."""
    from diversity.analysis.balance import balance_table, upright, upright_summary

    ds, _ = synthetic_store(n_seeds=3)
    ds = _walking_root(ds)
    t = ds["time"].values
    root = ds["root_position"].values.copy()
    drift = np.clip(t - 1.5, 0, None)
    root[1, :, 0] += 0.25 * drift  # left of a walker heading -y is +x
    root[1, :, 1] -= 0.05 * drift  # a little ahead
    root[1, :, 2] -= np.where(t >= 2.6 - 1e-9, 0.3, 0.0)
    term = ds["terminated"].values.copy()
    i = int(np.argmin(np.abs(t - 2.3)))
    term[1, i:] = 1
    ds = ds.assign(root_position=(ds["root_position"].dims, root), terminated=(("seed", "time"), term))
    table = balance_table(ds).set_index("seed")
    assert table.loc[0, "upright_s"] == pytest.approx(t[-1])  # the whole rollout
    assert not table.loc[0, "fell"] and np.isnan(table.loc[0, "fall_s"])
    assert table.loc[1, "upright_s"] == pytest.approx(2.3, abs=1e-9)
    assert table.loc[1, "fell"] and table.loc[1, "terminated"]
    assert table.loc[1, "fall_s"] == pytest.approx(2.6)
    assert table.loc[1, "root_left_cm"] == pytest.approx(100 * 0.25 * 0.8, rel=1e-6)
    assert table.loc[1, "root_forward_cm"] == pytest.approx(100 * 0.05 * 0.8, rel=1e-6)
    assert table.loc[1, "root_sink_cm"] == pytest.approx(0.0, abs=1e-9)  # it sank later
    assert table.loc[1, "joint_angle_error_upright"] == pytest.approx(
        float(ds["joint_angle_error"].values[1, :i].mean())
    )
    masked = upright(ds)
    assert masked["activation"].sel(seed=1).isel(time=slice(i, None)).isnull().all()
    assert not masked["activation"].sel(seed=1).isel(time=slice(0, i)).isnull().any()
    assert not masked["activation"].sel(seed=0).isnull().any()
    assert (masked["terminated"] == ds["terminated"]).all()  # flags are not data to mask
    # the walking bar in one line: up the whole rollout, and under the tolerance while up
    errors = table["joint_angle_error_upright"]
    summary = upright_summary(ds, tolerance_deg=float(errors.loc[0]) + 1e-6)  # seed 0 only just under
    assert summary["n_seeds"] == 3 and summary["n_up_whole_rollout"] == 2
    assert summary["n_up_and_under_tolerance"] == 1 + int(errors.loc[2] < errors.loc[0] + 1e-6)
    assert summary["upright_s"][1] == pytest.approx(2.3, abs=1e-3)
    assert summary["joint_angle_error_upright"][1] == pytest.approx(errors.loc[1], abs=1e-3)
    assert upright_summary(ds.drop_vars("root_position")) is None  # no free root: not a walker


def test_analyze_compares_gait_cycles_only_before_the_fall():
    """After seed 1's termination its activations saturate and its feet hammer the ground; the
    cycle means and the GRF comparison are those of the cycles walked before it. Seed 2 falls
    before its first whole cycle: the cycle analyses leave it out and say so."""
    from diversity.analysis.report import analyze

    ds, right = synthetic_store(n_seeds=3, n_cycles=4)
    ds = _walking_root(ds)
    t = ds["time"].values
    i = int(np.argmin(np.abs(t - 2.3)))  # after two whole right cycles (0.1-1.1-2.1)
    term = ds["terminated"].values.copy()
    term[1, i:] = 1
    term[2, int(np.argmin(np.abs(t - 0.5))) :] = 1
    act = ds["activation"].values.copy()
    act[1, i:] = 1.0
    grf = ds["grf"].values.copy()
    grf[1, i:, :, 2] = np.where(np.arange(len(t) - i) % 40 < 20, 3 * MASS * G, 0.0)[:, None]  # 0.4 s bounces
    fallen = ds.assign(
        terminated=(("seed", "time"), term),
        activation=(ds["activation"].dims, act),
        grf=(ds["grf"].dims, grf),
    )
    res = analyze(fallen, n_boot=20)
    cut = ds.isel(time=slice(0, i))  # what seed 1 walked
    expected = gait.gait_cycles(cut, "activation").sel(seed=1).mean("cycle")
    np.testing.assert_allclose(res.arrays["activation_cycles"].sel(seed=1), expected, atol=1e-9)
    assert res.summary["balance"]["n_fell"] == 2 and res.summary["balance"]["cycle_seeds"] == [0, 1]
    assert list(res.arrays["activation_cycles"]["seed"].values) == [0, 1]
    assert set(res.summary["solution_space"]["clusters"]["labels"]) == {"0", "1"}
    assert res.table("balance").set_index("seed").loc[1, "upright_s"] == pytest.approx(2.3, abs=1e-9)
    with_falls = analyze(fallen, n_boot=20, include_falls=True)  # the same store, falls included
    assert list(with_falls.arrays["activation_cycles"]["seed"].values) == [0, 1, 2]
    assert not np.allclose(with_falls.arrays["activation_cycles"].sel(seed=1), expected, atol=1e-3)
