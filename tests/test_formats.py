"""Readers: real files where they exist offline, files written by independent libraries or by
hand otherwise, and specific errors for malformed input."""

import importlib.util
import shutil

import numpy as np
import pytest

from emulator.motion.formats import (
    FormatError,
    MarkerSet,
    read,
    read_amass,
    read_bvh,
    read_c3d,
    read_c3d_analogs,
    read_coordinates,
    read_trc,
)
from tests.conftest import FALISSE

TRC = FALISSE / "gait_14.trc"
MOT = FALISSE / "IK_gait_14_mtp.mot"


@pytest.fixture(scope="module")
def trc():
    return read_trc(TRC)


def test_trc_real_trial(trc):
    assert len(trc.names) == 59 and trc.n_frames == 642 and trc.fps == 100.0
    assert {"LASI", "RASI", "RKNE_med", "Foot_r7"} <= set(trc.names)
    # y-up lab frame rotated to z up: the pelvis markers sit ~1 m above the floor
    asis = np.nanmean(trc.point("RASI"), axis=0)
    assert 0.8 < asis[2] < 1.1
    # walking direction is +x in the lab; gaps (0,0,0 in the file) are NaN
    lasi = trc.point("LASI")
    ok = np.isfinite(lasi[:, 0])
    assert np.polyfit(np.where(ok)[0] / 100, lasi[ok, 0], 1)[0] > 0.8  # ~1 m/s forward
    assert 0 < np.isnan(lasi[:, 0]).sum() < trc.n_frames


def test_mot_real_trial_in_radians():
    t = read_coordinates(MOT)
    assert len(t.names) == 37 and t.n_frames == 146
    assert t.fps == pytest.approx(100.0)
    knee = t.column("knee_angle_r")
    assert -1.3 < knee.min() < -1.0  # ~ -66 deg: gait2392 writes flexion negative
    assert 0.85 < t.column("pelvis_ty").mean() < 0.95  # translations stay in metres


def _mot(tmp_path, header, rows, name="bad.mot"):
    p = tmp_path / name
    p.write_text(header + "\n".join("\t".join(str(v) for v in r) for r in rows) + "\n")
    return p


def test_mot_bad_headers_and_time(tmp_path):
    cols = "time\thip_flexion_r\n"
    rows = [[0.0, 1.0], [0.01, 2.0], [0.02, 3.0]]
    p = _mot(tmp_path, "Coordinates\nversion=1\ninDegrees=yes\n" + cols, rows)
    with pytest.raises(FormatError, match=r"bad\.mot.*endheader"):
        read_coordinates(p)
    p = _mot(tmp_path, "Coordinates\nversion=1\nendheader\n" + cols, rows)
    with pytest.raises(FormatError, match="inDegrees"):
        read_coordinates(p)
    p = _mot(tmp_path, "Coordinates\ninDegrees=maybe\nendheader\n" + cols, rows)
    with pytest.raises(FormatError, match="'yes' or 'no'"):
        read_coordinates(p)
    p = _mot(tmp_path, "Coordinates\ninDegrees=yes\nendheader\n" + cols, [[0.0, 1], [0.02, 2], [0.01, 3]])
    with pytest.raises(FormatError, match="not increasing at row 2"):
        read_coordinates(p)
    p = _mot(tmp_path, "Coordinates\ninDegrees=yes\nendheader\n" + cols, [[0.0, 1], [0.01]])
    with pytest.raises(FormatError, match="line 6 has 1 values"):
        read_coordinates(p)
    p = _mot(tmp_path, "Coordinates\nnRows=10\ninDegrees=yes\nendheader\n" + cols, rows)
    with pytest.raises(FormatError, match="nRows=10.*truncated"):
        read_coordinates(p)


def test_c3d_written_by_ezc3d_matches_trc(tmp_path, trc):
    import ezc3d

    # ezc3d (an independent library) writes the real TRC markers as a z-up C3D in millimetres
    names = list(trc.names[:20])
    pos = np.stack([trc.point(n) for n in names], axis=1)  # [T, M, 3] m, z up
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [100.0]
    c["parameters"]["POINT"]["LABELS"]["value"] = names
    c["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    pts = np.ones((4, len(names), trc.n_frames))
    pts[:3] = np.transpose(np.nan_to_num(pos) * 1000.0, (2, 1, 0))
    c["data"]["points"] = pts
    path = tmp_path / "gait_14.c3d"
    c.write(str(path))

    got = read_c3d(path)
    assert got.names == tuple(names) and got.fps == 100.0 and got.n_frames == trc.n_frames
    ok = np.isfinite(pos)
    np.testing.assert_allclose(got.positions[ok], pos[ok], atol=1e-5)  # float32 in the file

    # a truncated file gives a clear error naming it
    bad = tmp_path / "truncated.c3d"
    bad.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(FormatError, match=r"truncated\.c3d.*not a readable C3D"):
        read_c3d(bad)


@pytest.mark.skipif(importlib.util.find_spec("biomdp") is None, reason="biomdp (dev extra) not installed")
def test_c3d_real_vicon_file_with_emg(tmp_path):
    from pathlib import Path

    import biomdp

    src = Path(biomdp.__file__).parent / "tests" / "datasets" / "vicon_CMJ_kinem_kinet_emg.c3d"
    got = read(src)
    assert isinstance(got, MarkerSet)
    assert len(got.names) == 42 and got.fps == 200.0 and got.n_frames == 1600
    asis = np.nanmedian(got.point("RASI"), axis=0)
    assert 0.7 < asis[2] < 1.3  # mm -> m, z up
    analogs = read_c3d_analogs(src)
    assert analogs.fps == 2000.0 and analogs.values.shape[0] == 16000
    assert "EMG1.v" in analogs.names and analogs.units[analogs.names.index("EMG1.v")] == "V"
    fz = analogs.channel("Force.Fz1")
    assert np.abs(fz).max() > 500  # a jump: ground reaction in newtons


BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Thigh
  {
    OFFSET 10 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Shin
    {
      OFFSET 0 -40 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 -40 0
      }
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.02
0 90 0 0 0 0 0 0 0 0 0 0
0 90 0 0 0 0 90 0 0 0 0 0
100 90 0 0 0 90 0 0 0 90 0 0
"""


def test_bvh_hand_written_forward_kinematics(tmp_path):
    p = tmp_path / "leg.bvh"
    p.write_text(BVH)
    ms = read_bvh(p)  # cm, y up -> m, z up: (x, y, z) -> (x, -z, y)
    assert ms.names == ("Hips", "Thigh", "Shin", "Shin_end") and ms.fps == pytest.approx(50.0)
    P = ms.positions
    # frame 0: straight leg hanging down from the hip at (0, 90) cm
    np.testing.assert_allclose(P[0, 3], [0.10, 0.0, 0.10], atol=1e-12)
    # frame 1: thigh rotated 90 deg about z: the leg points along +x (y-up frame)
    np.testing.assert_allclose(P[1, 2], [0.10 + 0.40, 0.0, 0.90], atol=1e-12)
    np.testing.assert_allclose(P[1, 3], [0.10 + 0.80, 0.0, 0.90], atol=1e-12)
    # frame 2: root at (100, 90, 0) cm turned Ry(90) (x -> -z); thigh offset (10,0,0) -> (0,0,-10);
    # shin offset (0,-40,0) unchanged by Ry -> shin at (100, 50, -10) cm
    np.testing.assert_allclose(P[2, 2], [1.0, 0.10, 0.50], atol=1e-12)
    # the shin's Rz(90) then Ry(90): (0,-40,0) -> (40,0,0) -> (0,0,-40): end at (100, 50, -50) cm
    np.testing.assert_allclose(P[2, 3], [1.0, 0.50, 0.50], atol=1e-12)


def test_bvh_errors(tmp_path):
    p = tmp_path / "missing_channel.bvh"
    p.write_text(
        BVH.replace(
            "CHANNELS 3 Zrotation Xrotation Yrotation\n    JOINT Shin",
            "CHANNELS 3 Zrotation Xrotation\n    JOINT Shin",
        )
    )
    with pytest.raises(
        FormatError, match=r"missing_channel\.bvh: line \d+: joint 'Thigh' declares 3 channels"
    ):
        read_bvh(p)
    p = tmp_path / "short_frame.bvh"
    p.write_text(BVH.rsplit("\n", 2)[0] + " \n100 90 0 0 0 90 0 0 0 90 0\n")
    with pytest.raises(FormatError, match="3 frames x 12 channels = 36 values, found 35"):
        read_bvh(p)


def _tiny_body_model(path):
    """A 4-joint kinematic chain as an SMPL-style body model (v_template, shapedirs, J_regressor,
    kintree_table): each joint regressed from one vertex; beta 0 lengthens the chain along -y."""
    v = np.array([[0, 1.0, 0], [0.1, 0.9, 0], [0.1, 0.5, 0], [0.1, 0.1, 0]])
    sd = np.zeros((4, 3, 2))
    sd[2, 1, 0] = -0.1
    sd[3, 1, 0] = -0.2
    kin = np.array([[-1, 0, 1, 2], [0, 1, 2, 3]])
    np.savez(path, v_template=v, shapedirs=sd, J_regressor=np.eye(4), kintree_table=kin)


def test_amass_pose_parameters_through_user_body_model(tmp_path):
    bm = tmp_path / "model.npz"
    _tiny_body_model(bm)
    poses = np.zeros((2, 12))
    poses[1, 3:6] = [0, 0, np.pi / 2]  # joint 1 (hip) turns 90 deg about z in frame 1
    trans = np.array([[0, 0, 0], [1.0, 0, 0]])
    motion = tmp_path / "clip_poses.npz"
    np.savez(
        motion, poses=poses, trans=trans, betas=np.array([1.0, 0.0]), gender="neutral", mocap_framerate=120.0
    )

    with pytest.raises(FormatError, match=r"licence-gated.*--body-model"):
        read(motion)
    ms = read(motion, body_model=bm)
    assert ms.fps == 120.0 and ms.names[:2] == ("pelvis", "left_hip")
    P = ms.positions
    # frame 0, beta=1: joints 2 and 3 moved down by 0.1 and 0.2
    np.testing.assert_allclose(P[0], [[0, 1, 0], [0.1, 0.9, 0], [0.1, 0.4, 0], [0.1, -0.1, 0]], atol=1e-12)
    # frame 1: +1 m in x; below the hip the chain swings 90 deg about z: (0,-0.5,0) -> (0.5,0,0)
    np.testing.assert_allclose(P[1, 2], [1.1 + 0.5, 0.9, 0], atol=1e-12)
    np.testing.assert_allclose(P[1, 3], [1.1 + 1.0, 0.9, 0], atol=1e-12)
    with pytest.raises(FormatError, match="lacks 'shapedirs'"):
        np.savez(tmp_path / "broken.npz", v_template=np.zeros((4, 3)))
        read_amass(motion, body_model=tmp_path / "broken.npz")


def test_read_dispatch_errors(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        read(tmp_path / "nope.trc")
    p = tmp_path / "x.fbx"
    p.write_text("?")
    with pytest.raises(FormatError, match=r"unknown motion format '\.fbx'"):
        read(p)
    shutil.copy(TRC, tmp_path / "copy.trc")
    assert isinstance(read(tmp_path / "copy.trc"), MarkerSet)
