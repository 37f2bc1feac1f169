"""Measured data as OpenSim users have it: a raw EMG .sto at 2000 Hz and a force-plate .mot
(newtons, y up) written here in that layout, as another lab would hand them over."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from diversity.analysis.measured import MeasuredError
from diversity.analysis.opensim_trial import default_emg_map, read_emg_opensim, read_grf_opensim
from diversity.cli import app

runner = CliRunner()

# 10 channels with this lab's names, each active around its own percent of the cycle, + a sync line
CHANNELS = {"R_Soleus": 35, "R_GasMed": 40, "R_TibAnt": 5, "R_VastusLat": 12, "R_VastusMed": 14,
            "R_RectFem": 60, "R_BicFem": 90, "R_SemiTend": 92, "R_GluteusMax": 3, "R_GluteusMed": 20}  # fmt: skip
STRIKES = np.array([0.20, 1.30, 2.40, 3.50])  # right heel strikes (s): three 1.1 s cycles
BODY_MASS = 70.0


def _write(path, name, columns, time, values, degrees="no"):
    with open(path, "w") as f:
        f.write(
            f"{name}\nversion=1\nnRows={len(time)}\nnColumns={len(columns) + 1}\ninDegrees={degrees}\nendheader\n"
        )
        f.write("\t".join(["time", *columns]) + "\n")
        for t, row in zip(time, values, strict=True):
            f.write("\t".join([f"{t:.5f}", *(f"{v:.6g}" for v in row)]) + "\n")


def _phase(t):
    """Percent of the gait cycle at times ``t`` (1.1 s cycles from the first strike on)."""
    return 100 * ((t - STRIKES[0]) % 1.1) / 1.1


def _bump(percent, centre, width=8.0):
    d = (percent - centre + 50) % 100 - 50  # cyclic distance
    return np.exp(-0.5 * (d / width) ** 2)


def _vertical(percent):
    """One foot's vertical force (N) over the cycle: stance 0-60 %, two humps."""
    s = np.clip(percent / 60.0, 0, 1)
    stance = (percent >= 0) & (percent < 60)
    return np.where(
        stance, BODY_MASS * 9.81 * (np.sin(np.pi * s) * (1.0 + 0.25 * np.cos(2 * np.pi * s)) + 0.05), 0.0
    )


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    d = tmp_path_factory.mktemp("trial")
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 3.7, 1 / 2000)
    p = _phase(t)
    env = np.stack([_bump(p, c) for c in CHANNELS.values()], axis=1)
    raw = (0.05 + env) * rng.standard_normal(env.shape) * 1e-4  # volts, zero-mean carrier
    sync = (np.sin(2 * np.pi * t) > 0).astype(float)[:, None]
    _write(d / "emg.sto", "emg", [*CHANNELS, "Sync"], t, np.hstack([raw, sync - 0.5]))
    tg = np.arange(0.0, 3.7, 1 / 1000)
    pr = _phase(tg)
    pl = (pr + 50) % 100
    fy_r, fy_l = _vertical(pr), _vertical(pl)
    zeros = np.zeros_like(tg)
    cols, vals = [], []
    for s, fy in (("r", fy_r), ("l", fy_l)):
        cols += [f"ground_force_{s}_v{a}" for a in "xyz"] + [f"ground_force_{s}_p{a}" for a in "xyz"]
        cols += [f"ground_torque_{s}_{a}" for a in "xyz"]
        vals += [
            0.1 * fy * np.sin(2 * np.pi * pr / 60),
            fy,
            zeros,
            zeros,
            zeros,
            zeros,
            zeros,
            zeros,
            zeros,
        ]
    _write(d / "grf.mot", "grf", cols, tg, np.stack(vals, axis=1))
    env_only = np.hstack([env, np.zeros((len(t), 1))])  # already-processed envelopes (non-negative)
    _write(d / "envelopes.sto", "emg", [*CHANNELS, "Sync"], t, env_only)
    return d


def test_raw_emg_becomes_the_envelope_over_heel_strike_cycles(trial):
    grf = read_grf_opensim(trial / "grf.mot")
    mean_total = grf["body_weight_n"]
    assert 300 < mean_total < 1500  # the trial's own body-weight estimate
    emg = read_emg_opensim(trial / "emg.sto", grf)
    assert emg.attrs["processing"]["kind"] == "raw" and emg.attrs["n_cycles"] == 3
    assert emg.attrs["rate_hz"] == pytest.approx(2000, rel=1e-3)
    pct = emg["percent"].values
    for ch, centre in CHANNELS.items():
        r = np.corrcoef(emg["mean"].sel(channel=ch).values, _bump(pct, centre))[0, 1]
        assert r > 0.9, (ch, r)
    as_given = read_emg_opensim(trial / "envelopes.sto", grf)
    assert as_given.attrs["processing"]["kind"].startswith("envelope")
    np.testing.assert_allclose(as_given["mean"].sel(channel="R_Soleus").values, _bump(pct, 35), atol=0.02)


def test_channel_names_match_model_muscles(trial):
    mapping, unmatched = default_emg_map([*CHANNELS, "Sync", "L_Soleus"], "myolegs")
    assert mapping["R_GasMed"] == ["gasmed_r"] and mapping["L_Soleus"] == ["soleus_l"]
    assert mapping["R_GluteusMed"] == ["glmed1_r", "glmed2_r", "glmed3_r"]
    assert unmatched == ["Sync"] and len(mapping) == 11


def test_analyze_takes_an_opensim_trial(legs_store, trial, tmp_path):
    out = tmp_path / "an"
    # the barely trained seeds fall at once: the file plumbing is tested on whole rollouts
    res = runner.invoke(app, ["analyze", str(legs_store), "--emg", str(trial / "emg.sto"), "--grf",
                              str(trial / "grf.mot"), "--out", str(out), "--n-boot", "200", "--include-falls"])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    emg = summary["emg"]
    assert len(emg["channels"]) >= 8 and emg["unmatched"] == ["Sync"]
    for row in emg["channels"]:
        assert -1 <= row["r"] <= 1 and row["ci_low"] <= row["r"] + 1e-9 <= row["ci_high"] + 2e-9
    assert emg["measured_processing"]["band_pass_hz"] == [20.0, 450.0] and emg["measured_n_cycles"] == 3
    comps = {c["direction"] for c in summary["grf"]["components"]}
    assert "vertical" in comps and summary["grf"]["measured_cycles"].startswith("3 gait cycles")

    # analysed as walked (the default), nothing is compared, and it says why
    res = runner.invoke(app, ["analyze", str(legs_store), "--emg", str(trial / "emg.sto"), "--grf",
                              str(trial / "grf.mot"), "--out", str(tmp_path / "w"), "--n-boot", "20"])  # fmt: skip
    assert res.exit_code == 0, res.output
    walked = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert "no seed has a whole cycle before its first termination" in walked["emg"]["skipped"]
    assert "--include-falls" in walked["grf"]["skipped"] and "emg: skipped" in res.output

    res = runner.invoke(app, ["analyze", str(legs_store), "--emg", str(trial / "emg.sto"), "--grf",
                              str(trial / "grf.mot"), "--body-mass", "-3", "--out", str(tmp_path / "b")])  # fmt: skip
    assert res.exit_code == 2 and "--body-mass must be > 0" in res.output


def test_bad_trials_are_named(tmp_path):
    bad = tmp_path / "short.sto"
    _write(bad, "emg", ["R_Soleus"], np.array([0.0, 0.001]), np.array([[0.1], [0.2]]))
    with pytest.raises(MeasuredError, match="short.sto: 2 rows"):
        read_emg_opensim(bad)
    back = tmp_path / "back.sto"
    _write(back, "emg", ["R_Soleus"], np.array([0.0, 0.001, 0.0005, 0.002, 0.003]), np.zeros((5, 1)))
    with pytest.raises(MeasuredError, match="not increasing at row 2"):
        read_emg_opensim(back)


def test_unsided_force_plates_are_told_apart_by_their_centre_of_pressure(tmp_path):
    """The lab's own trial names its plates ``ground_force_*`` and ``1_ground_force_*``; the
    first carries the left foot (its heel strike at 3.21 s is where IK has the left hip flexed
    27 deg, the right extended). The right foot is the one whose pressure lies to the walker's
    right; its mid-stance medio-lateral force then points medially, as the shipped measured
    cycle's does (both positive: towards the walker's left)."""
    from diversity.analysis.measured import measured_set

    from .conftest import FALISSE

    grf = read_grf_opensim(FALISSE / "GRF_gait_14.mot", body_mass_kg=62.0)
    assert grf["sides"] == {
        "right": "1_ground_force_v*",
        "left": "ground_force_v*",
        "decided_by": "centre of pressure",
    }
    assert grf["forward_x"] == 1.0
    t, right = grf["time"], grf["force"]["right"]
    stance = right[:, 1] > 50.0  # newtons: the foot is on the plate
    assert t[stance][0] == pytest.approx(3.761, abs=0.01)  # the right heel strike (IK: right hip flexed)
    medio_lateral = -grf["forward_x"] * right[stance, 2]  # positive to the walker's left
    shipped = measured_set("walking")["grf"]["mean"].sel(direction="medio_lateral", percent=slice(15, 45))
    assert np.mean(medio_lateral) > 0 and float(shipped.mean()) > 0

    # the same trial walked the other way (x and z negated): the same foot is the right one
    lines = (FALISSE / "GRF_gait_14.mot").read_text().splitlines()
    head = next(i for i, line in enumerate(lines) if line.strip() == "endheader") + 1
    names = lines[head].split()
    flip = [i for i, n in enumerate(names) if n.endswith(("_vx", "_vz", "_px", "_pz"))]
    rows = []
    for line in lines[head + 1 :]:
        v = line.split()
        rows.append("\t".join(f"{-float(x):.6g}" if i in flip else x for i, x in enumerate(v)))
    back = tmp_path / "back.mot"
    back.write_text("\n".join(lines[: head + 1] + rows) + "\n")
    other = read_grf_opensim(back, body_mass_kg=62.0)
    assert other["forward_x"] == -1.0 and other["sides"]["right"] == "1_ground_force_v*"
    np.testing.assert_allclose(other["force"]["right"][:, 1], right[:, 1])
