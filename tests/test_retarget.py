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
    stance_translation_scale,
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


def _planted_foot_velocity(model, qpos, fps, band_m=0.006):
    """Mean horizontal velocity ``[2]`` (m/s) of the feet while flat on the floor: frames where
    a hindfoot's lowest heel and forefoot geoms are level and at the floor (its material points
    then all move alike). An independent check of what the stance scale aims at."""
    import mujoco

    from emulator.motion.retarget.ground import _foot_geoms, _lowest_point

    m = model.mj_model
    d = mujoco.MjData(m)
    out = []
    for side in model.feet.values():
        foot = m.body(side[0]).id
        geoms = [g for g in _foot_geoms(m, model) if m.geom_bodyid[g] == foot]
        pos, low = [], []
        for q in qpos:
            d.qpos[:] = q
            mujoco.mj_kinematics(m, d)
            pos.append(d.xpos[foot, :2].copy())
            low.append([_lowest_point(m, d, g)[2] for g in geoms])
        pos, low = np.array(pos), np.array(low)
        flat = (np.ptp(low, axis=1) < band_m) & (low.min(axis=1) < low.min() + band_m)
        out.append((np.gradient(pos, axis=0) * fps)[flat])
    return np.concatenate(out).mean(axis=0)


def test_walking_root_does_not_outrun_its_stance_feet(myolegs):
    """The measured walk scaled by pelvis height (1.06 on myolegs) carries the root ~7 cm/s
    faster than its own planted feet; the stance scale (the default for ``floor="always"``)
    keeps them within a few cm/s, and the shipped walk is built with it."""
    from tests.conftest import build_script

    table = build_script()._average_ik_table(FALISSE / "IK_average_walking_FGC.mat")
    with pytest.warns(UserWarning):
        auto = coordinates_to_motion(table, myolegs, floor="always", translation_scale="auto")
    with pytest.warns(UserWarning):
        stance = coordinates_to_motion(table, myolegs, floor="always")
    assert auto.meta["translation_scale"] > 1.04 and 0.98 < stance.meta["translation_scale"] < 1.04
    walk_speed = (
        np.linalg.norm(stance.qpos[-1, :2] - stance.qpos[0, :2]) * stance.fps / (len(stance.qpos) - 1)
    )
    slide_auto = np.linalg.norm(_planted_foot_velocity(myolegs, auto.qpos, auto.fps))
    slide_stance = np.linalg.norm(_planted_foot_velocity(myolegs, stance.qpos, stance.fps))
    assert slide_auto > 0.05 and slide_stance < 0.035 and slide_stance < slide_auto / 2
    assert walk_speed > 1.2  # still the subject's walk, not a shuffle
    shipped = load_demo("walk", myolegs)
    assert shipped.meta["translation_scale"] == stance.meta["translation_scale"]


def test_stance_scale_is_relative_to_the_translation_given(myolegs):
    """Scaling the walk's root translation by c makes the stance scale of the result 1/c of the
    original's (the closed form is linear in the translation), and a motion that does not
    translate keeps 1."""
    walk = load_demo("walk", myolegs)
    q = walk.qpos
    root = walk.root_trajectory(myolegs)[0]  # [frame, 3]
    np.testing.assert_array_equal(q[:, :3], root)  # the free root leads qpos
    k0 = stance_translation_scale(myolegs, q, root, walk.fps)
    c = 1.05
    scaled = q.copy()
    scaled[:, :2] += (c - 1.0) * root[:, :2]
    k1 = stance_translation_scale(myolegs, scaled, c * root, walk.fps)
    # the shipped walk was built with it, then contact IK pinned its stance toes (this estimator
    # also samples the heel rolling in and out of stance)
    assert k0 == pytest.approx(1.0, abs=0.04)
    assert k1 == pytest.approx(k0 / c, rel=5e-3)  # up to which samples count as stance
    assert stance_translation_scale(myolegs, q, np.zeros_like(root), walk.fps) == 1.0
    with pytest.raises(RetargetError, match="translation_scale"):
        coordinates_to_motion(
            read_coordinates(FALISSE / "IK_gait_14_mtp.mot"), myolegs, translation_scale="big"
        )


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
