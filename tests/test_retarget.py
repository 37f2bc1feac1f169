"""Retargeting: real marker IK against the trial's own OpenSim IK, a known-answer round trip,
named coordinates onto joints, and clear errors."""

import json

import numpy as np
import pytest

from emulator.motion.formats import MarkerSet, read_coordinates, read_trc
from emulator.motion.retarget import (
    PointMap,
    RetargetError,
    coordinates_to_motion,
    load_map,
    points_from_motion,
    retarget_points,
)
from emulator.motion.sources import load_demo
from tests.conftest import FALISSE

SAGITTAL = ("hip_flexion", "knee_angle", "ankle_angle")


@pytest.fixture(scope="module")
def trial_ik():
    return read_coordinates(FALISSE / "IK_gait_14_mtp.mot")


@pytest.fixture(scope="module")
def trc_on_myolegs(myolegs, trial_ik):
    markers = read_trc(FALISSE / "gait_14.trc")
    # the frames the OpenSim IK covers (t = 3.05-4.50 s; the TRC starts at 0.01 s)
    i0 = int(round((trial_ik.time[0] - markers.meta["time0_s"]) * markers.fps))
    return retarget_points(markers.frames(i0, i0 + trial_ik.n_frames), myolegs, "falisse2019")


def test_real_trc_matches_the_trials_own_ik(myolegs, trial_ik, trc_on_myolegs):
    mot, report = trc_on_myolegs
    assert mot.n_frames == trial_ik.n_frames
    table = {}
    for side in "rl":
        for name in SAGITTAL:
            j = f"{name}_{side}"
            ours = np.degrees(mot.qpos[:, myolegs.joint(j).qpos_index])
            theirs = np.degrees(trial_ik.column(j)) * (-1 if name == "knee_angle" else 1)  # gait2392 sign
            r = np.corrcoef(ours, theirs)[0, 1]
            rmse = float(np.sqrt(np.mean((ours - theirs) ** 2)))
            table[j] = (round(r, 3), round(rmse, 1))
            assert r >= 0.9, (j, r)
            assert rmse < 10.0, (j, rmse)  # offsets: model vs subject geometry, skin markers
    s = report.summary()
    print(json.dumps({"r_rmse_deg": table, "marker_residual_cm": s["marker_residual_cm"]}))
    assert s["marker_residual_cm"]["mean"] < 1.5
    assert s["keypoint_residual_cm"]["mean"] < 2.5
    assert 0.9 < report.scale < 1.15 and len(report.used_markers) >= 40


def test_round_trip_scaled_noisy_landmarks(myolegs):
    walk = load_demo("walk", myolegs)
    truth = walk.slice(0, 40)
    pts = points_from_motion(truth, myolegs)
    rng = np.random.default_rng(0)
    scale = 1.1  # a subject 10 % larger than the model
    P = pts.positions * scale + rng.normal(0.0, 0.002, pts.positions.shape)  # 2 mm marker noise
    noisy = MarkerSet(pts.names, P, pts.fps, "round-trip", {})
    back, report = retarget_points(noisy, myolegs, "landmarks", floor=False)
    assert report.scale == pytest.approx(scale, rel=0.01)
    errs = [
        np.degrees(np.abs(back.qpos[:, j.qpos_index] - truth.qpos[:, j.qpos_index])).mean()
        for j in myolegs.tracked_joints
    ]
    assert np.mean(errs) < 2.0, dict(
        zip([j.name for j in myolegs.tracked_joints], np.round(errs, 2), strict=True)
    )
    assert np.nanmean(report.keypoint_residual_cm) < 1.0


def test_coordinates_map_by_name_with_sign_conventions(myolegs, trial_ik):
    with pytest.warns(UserWarning, match="columns with no joint in model 'myolegs'"):
        mot = coordinates_to_motion(trial_ik, myolegs)
    assert "knee_angle_r" in mot.meta["sign_flipped"] and "lumbar_extension" in mot.meta["unmapped"]
    knee = np.degrees(mot.qpos[:, myolegs.joint("knee_angle_r").qpos_index])
    np.testing.assert_allclose(knee, -np.degrees(trial_ik.column("knee_angle_r")), atol=1e-9)
    hip = np.degrees(mot.qpos[:, myolegs.joint("hip_flexion_l").qpos_index])
    np.testing.assert_allclose(hip, np.degrees(trial_ik.column("hip_flexion_l")), atol=1e-9)
    root = mot.root_trajectory(myolegs)[0]
    dist = np.linalg.norm(root[-1, :2] - root[0, :2])
    lab = abs(trial_ik.column("pelvis_tx")[-1] - trial_ik.column("pelvis_tx")[0])
    assert dist == pytest.approx(lab, rel=0.1)  # scaled by model/subject pelvis height only


def test_map_and_model_errors(tmp_path, elbow):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[keypoints]\nkneecap_r = "RKNE"\n')
    with pytest.raises(RetargetError, match=r"bad\.toml: keypoint 'kneecap_r' is not a landmark"):
        PointMap.from_toml(bad)
    with pytest.raises(RetargetError, match="no point map 'nope'"):
        load_map("nope")
    markers = read_trc(FALISSE / "gait_14.trc").frames(300, 310)
    with pytest.raises(
        RetargetError, match=r"landmarks of map 'falisse2019' are in both the input and model 'elbow'"
    ):
        retarget_points(markers, elbow, "falisse2019")


def test_round_trip_fixed_base_elbow(elbow):
    from emulator.motion.reference import elbow_flexion_cycle

    truth = elbow_flexion_cycle(elbow).slice(0, 100)
    pts = points_from_motion(truth, elbow, ["shoulder_r", "elbow_r", "wrist_r"])
    back, report = retarget_points(pts, elbow, "landmarks", scale=1.0)
    j = elbow.joint("r_elbow_flex").qpos_index
    assert np.degrees(np.abs(back.qpos[:, j] - truth.qpos[:, j])).max() < 0.1
    assert np.nanmax(report.keypoint_residual_cm) < 0.01
