"""The paper's repertoire from DeepMimic clips: reader, skeleton, retargeting, shipped motions."""

import json

import numpy as np
import pytest

from emulator.motion.formats import FormatError, read
from emulator.motion.formats.deepmimic import read_deepmimic
from emulator.motion.reference import ReferenceMotion
from emulator.motion.retarget import RetargetError
from emulator.motion.sources import list_demos, load_demo, load_motion
from emulator.paths import datasets_dir
from tests.conftest import build_script

BUILD = build_script()
REPERTOIRE, repertoire_name = BUILD.REPERTOIRE, BUILD.repertoire_name

CLIPS = datasets_dir() / "deepmimic"


def test_clip_reader_gives_a_rigid_skeleton_in_z_up_metres():
    ms = read(CLIPS / "humanoid3d_walk.txt")
    assert ms.positions.shape == (39, 19, 3) and ms.fps == pytest.approx(30.0, rel=1e-3)
    assert ms.meta["loop"] is True
    p = {n: ms.point(n) for n in ms.names}
    # bones keep their length in every frame (URDF offsets x 0.25): thigh 0.4215 m, shank 0.4099 m
    for a, b, length in (("right_hip", "right_knee", 0.4215), ("left_knee", "left_ankle", 0.4099)):
        np.testing.assert_allclose(np.linalg.norm(p[a] - p[b], axis=1), length, atol=1e-3)
    # z up, right side at negative y, walking forward along +x at ~0.98 m/s
    assert 0.8 < p["pelvis"][:, 2].mean() < 0.9 and (p["right_hip"][:, 1] < p["left_hip"][:, 1]).all()
    speed = (p["pelvis"][-1, 0] - p["pelvis"][0, 0]) / (38 / ms.fps)
    assert 0.9 < speed < 1.05
    assert p["right_heel"][:, 2].min() < 0.03  # the feet reach the ground


BLOB = """<mujoco model="blob"><worldbody><body name="blob" pos="0 0 1"><freejoint name="root"/>
<geom type="sphere" size="0.1" mass="1"/><body name="limb" pos="0 0 -0.2">
<joint name="j" type="hinge" axis="0 1 0" range="-1 1" limited="true"/>
<geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.03" mass="0.5"/></body></body></worldbody>
<actuator><muscle name="m" joint="j" lengthrange="0.1 1"/></actuator></mujoco>"""


def test_bad_clips_and_models_fail_clearly(tmp_path):
    from emulator.models import load_model

    frames = json.loads((CLIPS / "humanoid3d_walk.txt").read_text())
    frames["Frames"][3] = frames["Frames"][3][:43]
    bad = tmp_path / "humanoid3d_bad.txt"
    bad.write_text(json.dumps(frames))
    with pytest.raises(FormatError, match="humanoid3d_bad.txt: frame 3 has 43 values, expected 44"):
        read_deepmimic(bad)
    model_file = tmp_path / "blob.xml"  # a muscle model without the skeleton's landmarks
    model_file.write_text(BLOB)
    with pytest.raises(RetargetError, match="only 0 landmarks of map 'deepmimic'.*model 'blob'.*pelvis"):
        load_motion(CLIPS / "humanoid3d_walk.txt", load_model(model_file))


def test_walk_clip_knee_range_on_myofullbody_matches_the_clip(myofullbody):
    clip = np.asarray(json.loads((CLIPS / "humanoid3d_walk.txt").read_text())["Frames"])
    clip_knee = -np.degrees(clip[:, 20])  # right knee, DeepMimic flexion is negative
    mot = load_demo("walk_deepmimic", myofullbody)
    knee = np.degrees(mot.qpos[:, myofullbody.joint("knee_angle_r").qpos_index])
    assert abs(knee.min() - clip_knee.min()) < 10 and abs(knee.max() - clip_knee.max()) < 10, (
        knee.min(), knee.max(), clip_knee.min(), clip_knee.max())  # fmt: skip


def test_the_whole_repertoire_ships_with_residuals():
    have = {(d["model"], d["name"]) for d in list_demos()}
    for clip in REPERTOIRE:
        assert ("myofullbody", repertoire_name(clip)) in have
    for clip in ("walk", "run", "jump"):
        assert ("myolegs", repertoire_name(clip)) in have
    for d in list_demos():
        if "motion capture" in d["source"]:
            meta = ReferenceMotion.load(d["file"]).meta
            assert meta["keypoint_residual_cm"]["mean"] < 7.0, (d["model"], d["name"])
    # the backflip keeps its flight phase: the root rises well above standing height
    # (flight phases preserved by a single vertical shift)
    q = ReferenceMotion.load(datasets_dir() / "motions" / "myofullbody" / "backflip.npz").qpos
    assert q[:, 2].max() - q[:, 2].min() > 0.3


def test_a_shipped_clip_rebuilds(tmp_path):
    written = BUILD.build_repertoire(tmp_path, models=["myolegs"], clips=["walk"])
    shipped = ReferenceMotion.load(datasets_dir() / "motions" / "myolegs" / "walk_deepmimic.npz")
    np.testing.assert_allclose(ReferenceMotion.load(written[0]).qpos, shipped.qpos, atol=1e-9)
