"""Shipped demo motions: listed, loadable, rebuildable from the shipped raw data, within normal
gait ranges, and playable as kinematic replays on the cpu backend; the motion CLI commands."""

import json

import mujoco
import numpy as np
import pytest
from typer.testing import CliRunner

from diversity.cli import app
from emulator.models import load_model
from emulator.motion.reference import ReferenceMotion
from emulator.motion.sources import list_demos, load_demo
from emulator.simulation.physics import make_physics
from tests.conftest import FALISSE, build_script

runner = CliRunner()

# Normal adult walking, sagittal plane, degrees (datasets/README.md cites the sources):
# hip -20..+35, knee 0..+75 with a swing peak of 50-75, ankle -30..+20.
NORMAL_WALK = {"hip_flexion": (-20, 35), "knee_angle": (0, 75), "ankle_angle": (-30, 20)}


def test_cli_lists_the_shipped_demos():
    res = runner.invoke(app, ["motions", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    have = {(r["model"], r["name"]) for r in rows}
    assert {("elbow", "elbow_flexion"), ("myolegs", "walk"), ("myolegs", "run"), ("myofullbody", "walk"),
            ("myofullbody", "run")} <= have  # fmt: skip
    for r in rows:
        assert r["fps"] > 0 and r["duration_s"] > 0 and r["source"]
        assert (
            r["source"].startswith("generated")
            or r["source"].endswith("measured")
            or "motion capture" in r["source"]
        )


@pytest.mark.parametrize("model_name", ["elbow", "myolegs", "myofullbody"])
def test_demos_load_validate_and_replay_on_cpu(model_name):
    model = load_model(model_name)
    demos = [d for d in list_demos() if d["model"] == model_name]
    assert demos
    for d in demos:
        mot = load_demo(d["name"], model)
        mot.check_model(model)
        assert mot.check_ranges(model, on_violation="fail") is mot  # shipped clean
        assert mot.meta["model_hash"] == model.content_hash
        assert mot.loop or d["name"] in ("jump", "cartwheel", "spinkick", "backflip")  # skills, not cycles
        phys = make_physics(model, "cpu", n_envs=mot.n_frames)
        sig = phys.forward(phys.layout.pack(mot.qpos, mot.velocities(model)))
        assert np.all(np.isfinite(sig.body_pos)) and np.all(np.isfinite(sig.muscle_length))
        np.testing.assert_allclose(sig.qpos, mot.qpos, atol=1e-12)


@pytest.mark.parametrize(("name", "stride_s"), [("walk", 1.04), ("walk_trial", 1.06)])
def test_walking_demos_within_normal_gait_ranges(myolegs, name, stride_s):
    walk = load_demo(name, myolegs)
    assert walk.duration_s == pytest.approx(stride_s, abs=0.02)  # one stride of the measured subject
    hip = np.degrees(walk.qpos[:, myolegs.joint("hip_flexion_r").qpos_index])
    # starts at the right heel strike (hip flexed most), as the EMG/GRF; the contact IK moves the
    # hip by up to 2.5 deg there (a phase error of 5 % moves it by ~5 deg)
    assert hip[0] > hip.max() - 3.0
    for side in "rl":
        for joint, (lo, hi) in NORMAL_WALK.items():
            a = np.degrees(walk.qpos[:, myolegs.joint(f"{joint}_{side}").qpos_index])
            assert lo <= a.min() and a.max() <= hi, (joint, side, a.min(), a.max())
        knee = np.degrees(walk.qpos[:, myolegs.joint(f"knee_angle_{side}").qpos_index])
        assert 50 <= knee.max() <= 75  # swing-phase knee flexion
    root = walk.root_trajectory(myolegs)[0]
    speed = np.linalg.norm(root[-1, :2] - root[0, :2]) / (walk.n_frames - 1) * walk.fps
    assert 1.0 < speed < 1.8  # m/s, normal walking


def _com_sway_and_base_cm(model, motion):
    """(+/- sideways sway of the whole-body centre of mass about its straight line, mean sideways
    distance between the heels), cm."""
    m = model.mj_model
    d = mujoco.MjData(m)
    com, heels = [], []
    for q in motion.qpos:
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        com.append(d.subtree_com[0, 0])  # x is sideways: the model walks along -y
        heels.append(d.xpos[m.body("calcn_r").id, 0] - d.xpos[m.body("calcn_l").id, 0])
    com = np.asarray(com)
    line = com[0] + (com[-1] - com[0]) * np.arange(len(com)) / (len(com) - 1)
    return 100 * np.ptp(com - line) / 2, 100 * np.mean(np.abs(heels))


def test_the_single_trial_sways_more_than_the_averaged_walk(myolegs):
    """Why walk_trial ships: averaging gait cycles flattens the sideways sway people balance with."""
    sway, base = _com_sway_and_base_cm(myolegs, load_demo("walk", myolegs))
    trial_sway, trial_base = _com_sway_and_base_cm(myolegs, load_demo("walk_trial", myolegs))
    assert 0.5 < sway < 1.0 and 6.5 < base < 7.5
    assert trial_sway > 1.3 * sway and trial_base > base


def test_running_demo_second_half_mirrors_the_first(myolegs):
    run = load_demo("run", myolegs)
    n = run.n_frames // 2
    r = np.degrees(run.qpos[:n, myolegs.joint("hip_flexion_r").qpos_index])
    lft = np.degrees(run.qpos[n : 2 * n, myolegs.joint("hip_flexion_l").qpos_index])
    assert np.abs(r - lft).max() < 3.0


def test_shipped_demos_rebuild_from_shipped_data(tmp_path):
    written = build_script().build_demo_motions(tmp_path, models=["elbow", "myolegs"])
    assert len(written) == 4  # elbow_flexion; walk, walk_trial, run
    for p in written:
        shipped = ReferenceMotion.load(FALISSE.parent / "motions" / p.parent.name / p.name)
        rebuilt = ReferenceMotion.load(p)
        np.testing.assert_allclose(rebuilt.qpos, shipped.qpos, atol=1e-9)


def test_cli_describes_a_motion_file(tmp_path):
    res = runner.invoke(app, ["motions", str(FALISSE / "IK_gait_14_mtp.mot"), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["n_frames"] == 146 and d["fps"] == pytest.approx(100.0) and d["model"] == "myolegs"
    assert d["duration_s"] == pytest.approx(1.45)
    knee = next(j for j in d["joints"] if j["name"] == "knee_angle_r")
    assert 60 < knee["max_deg"] < 70 and knee["min_deg"] > 0  # the model's positive-flexion convention


def test_cli_retarget_writes_a_motion_that_reloads(tmp_path, myolegs):
    out = tmp_path / "gait.npz"
    res = runner.invoke(
        app,
        ["retarget", str(FALISSE / "gait_14.trc"), "--model", "myolegs", "--out", str(out), "--start", "3.0",
         "--stop", "3.3", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["route"] == "inverse kinematics" and rep["map"] == "falisse2019"
    assert rep["n_frames"] == 31 and rep["marker_residual_cm"]["mean"] < 1.5
    mot = ReferenceMotion.load(out, myolegs)
    assert mot.n_frames == 31 and mot.meta["retarget"]["map"] == "falisse2019"


def test_cli_motion_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.mot"
    bad.write_text("Coordinates\nversion=1\ntime\tknee_angle_r\n0\t1\n")
    res = runner.invoke(app, ["motions", str(bad)])
    assert res.exit_code == 2 and "bad.mot" in res.output and "endheader" in res.output
    res = runner.invoke(app, ["retarget", str(bad), "--model", "myolegs", "--out", str(tmp_path / "x.txt")])
    assert res.exit_code == 2 and "--out must end in .npz" in res.output


@pytest.mark.parametrize("model_name", ["myolegs", "myofullbody"])
def test_walking_reference_legs_never_interpenetrate(model_name):
    """The measured walk has a narrower base than the models' leg capsules; with the inter-leg
    contact pairs in place 25 of its 104 frames put one leg 1-4.7 cm into the other (and the
    contact kicked the swing foot). Every frame must be free of leg-leg contact."""
    import mujoco

    from emulator.models import _LEG_BODY, _side_of

    model = load_model(model_name)
    m = model.mj_model
    walk = load_demo("walk", model)
    d = mujoco.MjData(m)
    for q in walk.qpos:
        d.qpos[:] = q
        mujoco.mj_forward(m, d)
        pairs = [
            (m.body(m.geom_bodyid[c.geom1]).name, m.body(m.geom_bodyid[c.geom2]).name)
            for c in d.contact[: d.ncon]
        ]
        legs = [
            p
            for p in pairs
            if all(_LEG_BODY.search(b) for b in p) and {_side_of(b) for b in p} == {"left", "right"}
        ]
        assert not legs, legs
