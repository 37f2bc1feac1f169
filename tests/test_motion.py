"""ReferenceMotion: the project's .npz format, validation, velocities, slicing, cycles, mirroring."""

import mujoco
import numpy as np
import pytest

from emulator.motion.reference import MotionError, ReferenceMotion, elbow_flexion_cycle, from_joint_values
from emulator.motion.sources import load_demo


@pytest.fixture(scope="module")
def walk(myolegs):
    return load_demo("walk", myolegs)


def test_npz_round_trip_and_by_name_layout(tmp_path, elbow):
    mot = elbow_flexion_cycle(elbow)
    path = mot.save(tmp_path / "cycle.npz")
    back = ReferenceMotion.load(path, elbow)
    np.testing.assert_array_equal(back.qpos, mot.qpos)
    assert back.content_hash == mot.content_hash and back.loop and back.fps == 100.0
    assert back.meta["period_s"] == 2.0

    # by-name layout: fps plus one array per joint; other joints take the standing pose
    angle = np.radians(np.linspace(20, 90, 50))
    np.savez(tmp_path / "by_name.npz", fps=50.0, r_elbow_flex=angle)
    m = ReferenceMotion.load(tmp_path / "by_name.npz", elbow)
    np.testing.assert_allclose(m.qpos[:, elbow.joint("r_elbow_flex").qpos_index], angle)
    assert m.fps == 50.0 and m.n_frames == 50

    np.savez(tmp_path / "unknown.npz", fps=50.0, r_wrist_flex=angle)
    with pytest.raises(MotionError, match=r"unknown\.npz: joints not in model 'elbow': \['r_wrist_flex'\]"):
        ReferenceMotion.load(tmp_path / "unknown.npz", elbow)
    np.savez(tmp_path / "nofps.npz", r_elbow_flex=angle)
    with pytest.raises(MotionError, match=r"nofps\.npz: motion \.npz lacks 'fps'"):
        ReferenceMotion.load(tmp_path / "nofps.npz", elbow)
    bad = angle.copy()
    bad[7] = np.nan
    np.savez(tmp_path / "nan.npz", fps=50.0, r_elbow_flex=bad)
    with pytest.raises(MotionError, match="NaN/inf in joint 'r_elbow_flex' at frame 7"):
        ReferenceMotion.load(tmp_path / "nan.npz", elbow)
    np.savez(tmp_path / "one.npz", fps=50.0, r_elbow_flex=angle[:1])
    with pytest.raises(MotionError, match="time >= 2 frames"):
        ReferenceMotion.load(tmp_path / "one.npz", elbow)


def test_joint_ranges_fail_or_clip(elbow):
    q = np.tile(elbow.standing_qpos, (10, 1))
    j = elbow.joint("r_elbow_flex")
    q[4, j.qpos_index] = np.radians(150)  # range 0-130 deg
    names = tuple(elbow.mj_model.joint(i).name for i in range(elbow.mj_model.njnt))
    mot = ReferenceMotion("x", "elbow", names, q, 100.0, source="over.npz")
    with pytest.raises(
        MotionError, match=r"over\.npz: .*r_elbow_flex = 150\.0 deg at frame 4 .*\[0\.0, 130\.0\]"
    ):
        mot.check_ranges(elbow)
    with pytest.warns(UserWarning, match="clipped"):
        clipped = mot.check_ranges(elbow, on_violation="clip")
    assert np.degrees(clipped.qpos[4, j.qpos_index]) == pytest.approx(130.0)
    assert mot.qpos[4, j.qpos_index] == pytest.approx(np.radians(150))  # the original is untouched


def test_velocities_slicing_resampling(elbow):
    mot = elbow_flexion_cycle(elbow, period_s=2.0, low_deg=30, high_deg=100)
    j = elbow.joint("r_elbow_flex").qpos_index
    v = mot.velocities(elbow)[:, j]
    # minimum jerk: peak speed 1.875 * amplitude / half-period at mid-flexion
    peak = 1.875 * np.radians(70) / 1.0
    assert np.max(v) == pytest.approx(peak, rel=2e-3) and np.min(v) == pytest.approx(-peak, rel=2e-3)
    part = mot.between(0.5, 1.0)
    assert part.n_frames == 51 and not part.loop
    np.testing.assert_array_equal(part.qpos, mot.qpos[50:101])
    with pytest.raises(MotionError, match="leaves 1 frames"):
        mot.slice(5, 6)
    fast = mot.resample(elbow, 200.0)
    assert fast.n_frames == 400
    np.testing.assert_allclose(fast.qpos[::2, j], mot.qpos[:, j], atol=1e-12)


def test_a_cycle_resampled_to_a_rate_it_does_not_divide_has_no_jump_at_the_wrap(elbow):
    """A 2 s cycle at 1/0.034 fps is 58.8 frames: 59 frames spread evenly over the cycle, so the
    step from the last frame to the next cycle's first is as long as every other step."""
    mot = elbow_flexion_cycle(elbow, period_s=2.0, low_deg=30, high_deg=100)
    j = elbow.joint("r_elbow_flex").qpos_index
    slow = mot.resample(elbow, 1 / 0.034, whole_cycle=True)
    assert slow.loop and slow.n_frames == 59
    assert mot.resample(elbow, 1 / 0.034).n_frames == 58  # exact spacing (the build tools'): short last step
    src_t = np.arange(mot.n_frames + 1) / mot.fps  # the cycle, closed at its first frame
    src = np.r_[mot.qpos[:, j], mot.qpos[0, j]]
    step = 2.0 / 59
    np.testing.assert_allclose(slow.qpos[:, j], np.interp(np.arange(59) * step, src_t, src), atol=1e-12)
    wrap = np.r_[slow.qpos[:, j], slow.qpos[0, j]]
    gaps = np.abs(np.diff(wrap))
    assert gaps[-1] <= 1.05 * np.max(gaps[:-1])  # the wrap moves no further than a normal step


def test_as_cycle_closes_the_seam(elbow):
    base = elbow_flexion_cycle(elbow)
    j = elbow.joint("r_elbow_flex").qpos_index
    q = base.qpos.copy()
    q[:, j] += np.linspace(0, np.radians(6), q.shape[0])  # drifts 6 deg over the cycle
    open_motion = base._replace(qpos=q, loop=False)
    cyc = open_motion.as_cycle(elbow)
    extrap = 2 * cyc.qpos[-1, j] - cyc.qpos[-2, j]  # where frame n would be
    assert abs(extrap - cyc.qpos[0, j]) < 1e-9
    assert cyc.loop and np.degrees(cyc.meta["cycle_seam_max_abs"]) == pytest.approx(6.0, rel=0.05)


def test_a_cycle_started_elsewhere_is_the_same_loop(myolegs, walk):
    """starting_at(k) plays frames k.. then 0..k-1 one stride further on: the joints are the
    rolled cycle, the root starts where it did and never jumps at the old seam."""
    k = 40
    later = walk.starting_at(myolegs, k)
    assert later.loop and later.n_frames == walk.n_frames and later.meta["cycle_started_at_frame"] == k
    knee = myolegs.joint("knee_angle_r").qpos_index
    np.testing.assert_allclose(later.qpos[:, knee], np.roll(walk.qpos[:, knee], -k), atol=1e-12)
    root = later.root_trajectory(myolegs)[0]
    np.testing.assert_allclose(root[0, :2], walk.root_trajectory(myolegs)[0][0, :2], atol=1e-12)
    steps = np.linalg.norm(np.diff(root[:, :2], axis=0), axis=1)
    seam = walk.n_frames - k - 1  # the step from the old last frame to the old first
    assert steps[seam] == pytest.approx(np.median(steps), rel=0.3)
    with pytest.raises(MotionError, match="outside 0..103"):
        walk.starting_at(myolegs, walk.n_frames)


def test_mirror_swaps_sides_in_the_sagittal_plane(myolegs, walk):
    m = myolegs.mj_model
    mir = walk.mirror(myolegs)
    d = mujoco.MjData(m)

    def body_pos(q, name):
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        return d.xpos[m.body(name).id].copy()

    # the model faces -y with its right side at -x: the sagittal plane is x = const
    x0 = walk.qpos[0, 0]
    for i in (0, 30, 60):
        for a, b in (("talus_r", "talus_l"), ("tibia_l", "tibia_r"), ("toes_r", "toes_l")):
            p = body_pos(walk.qpos[i], a)
            expected = np.array([2 * x0 - p[0], p[1], p[2]])
            np.testing.assert_allclose(body_pos(mir.qpos[i], b), expected, atol=2e-3)
    back = mir.mirror(myolegs)
    np.testing.assert_allclose(back.qpos, walk.qpos, atol=1e-9)


def test_mirror_needs_sides(elbow):
    with pytest.raises(MotionError, match="no left/right joint pairs"):
        elbow_flexion_cycle(elbow).mirror(elbow)


def test_from_joint_values_applies_couplings(myolegs):
    knee = np.radians(np.linspace(0, 90, 20))
    mot = from_joint_values(myolegs, {"knee_angle_r": knee}, 100.0, name="bend")
    m = myolegs.mj_model
    coupled = [
        m.joint(int(m.eq_obj1id[e])).name
        for e in range(m.neq)
        if m.eq_obj2id[e] == m.joint("knee_angle_r").id
    ]
    assert coupled, "myolegs drives knee translations from knee_angle_r"
    for name in coupled:
        col = mot.qpos[:, myolegs.joint(name).qpos_index]
        assert np.ptp(col) > 0  # follows the knee, not frozen at the standing value
