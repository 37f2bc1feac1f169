"""The tracking environment: Δ, the four metrics, resets, termination."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emulator.motion.reference import MotionError, ReferenceMotion, elbow_flexion_cycle, standing_motion
from emulator.simulation.config import SERVO_RATES
from emulator.simulation.env import METRIC_NAMES, EnvConfig, TrackingEnv, delta_names
from emulator.simulation.physics import make_physics


@pytest.fixture(scope="module")
def legs_env(myolegs):
    return TrackingEnv(myolegs, standing_motion(myolegs), make_physics(myolegs, "cpu", n_envs=4))


@pytest.fixture(scope="module")
def elbow_env(elbow):
    return TrackingEnv(elbow, elbow_flexion_cycle(elbow), make_physics(elbow, "cpu", n_envs=4))


def _at_reference(env, index):
    state = env.reference_state(np.asarray(index))
    return env.physics.forward(state), jnp.asarray(index)


@pytest.mark.parametrize("which", ["legs_env", "elbow_env"])
def test_delta_is_zero_at_the_reference_and_grows_with_perturbation(request, which):
    env = request.getfixturevalue(which)
    index = np.array([0, 7, 33, 60])
    sig, idx = _at_reference(env, index)
    d0 = np.asarray(env.tracking_error(sig, idx))
    assert d0.shape == (4, env.delta_dim)
    assert np.all(d0 >= 0)
    assert np.abs(d0).max() < 1e-5
    # perturb one tracked joint by growing amounts: its component, and the body errors, grow
    j = env.model.tracked_joints[-1]
    prev = None
    for eps in (0.05, 0.1, 0.2):
        state = env.reference_state(index)
        state[:, 1 + j.qpos_index] += eps
        sig = env.physics.forward(state)
        d = np.asarray(env.tracking_error(sig, idx))
        k = env.delta_names.index(f"joint_angle/{j.name}")
        np.testing.assert_allclose(d[:, k], eps, rtol=1e-4)
        total = d.sum(axis=1)
        if prev is not None:
            assert np.all(total > prev)
        prev = total


def test_metrics_units_on_a_hand_built_case(legs_env, myolegs):
    """10 deg on one of 14 joints, the root 5 cm and 30 deg off, one body 2 cm off."""
    env = legs_env
    idx = np.array([10, 10, 10, 10])
    sig, index = _at_reference(env, idx)
    nj = len(myolegs.tracked_joints)
    nb = len(myolegs.tracked_bodies)
    j = myolegs.tracked_joints[3]
    qpos = np.array(sig.qpos)
    qpos[:, j.qpos_index] += np.radians(10.0)
    body_pos = np.array(sig.body_pos)
    body_pos += np.array([0.05, 0.0, 0.0])  # whole body shifted: root translation only
    other = myolegs.tracked_bodies.index("tibia_l")
    body_pos[:, other, 2] += 0.02  # one body 2 cm up, relative to the root
    body_quat = np.array(sig.body_quat)
    root = myolegs.tracked_bodies.index(myolegs.root_body)
    half = np.radians(30.0) / 2
    rot = np.array([np.cos(half), 0.0, 0.0, np.sin(half)])  # 30 deg about z
    w0, v0 = body_quat[:, root, :1], body_quat[:, root, 1:]
    w1, v1 = rot[0], rot[1:]
    body_quat[:, root, 0] = (w1 * w0[:, 0]) - v0 @ v1
    body_quat[:, root, 1:] = w1 * v0 + w0 * v1 + np.cross(np.broadcast_to(v1, v0.shape), v0)
    hand = sig._replace(qpos=qpos, body_pos=body_pos, body_quat=body_quat)
    m = np.asarray(env.metrics(env.tracking_error(hand, index)))
    assert METRIC_NAMES == (
        "joint_angle_error",
        "root_rotation_error",
        "body_position_error",
        "root_translation_error",
    )
    np.testing.assert_allclose(m[:, 0], 10.0 / nj, rtol=1e-3)  # deg, mean over tracked joints
    np.testing.assert_allclose(m[:, 1], 30.0, rtol=1e-3)  # deg
    np.testing.assert_allclose(m[:, 2], 2.0 / nb, rtol=1e-3)  # cm, mean over tracked bodies
    np.testing.assert_allclose(m[:, 3], 5.0, rtol=1e-3)  # cm


def test_delta_names_match_layout(myolegs):
    names = delta_names(myolegs)
    nj, nb = len(myolegs.tracked_joints), len(myolegs.tracked_bodies)
    assert len(names) == 2 * nj + nb + 5
    assert names[0] == "joint_angle/hip_flexion_r" and names[-5:] == (
        "root_rotation",
        "root_translation",
        "root_linear_velocity",
        "root_angular_velocity",
        "root_xcom",
    )


def test_root_xcom_is_position_plus_velocity_over_the_pendulum_frequency(legs_env, myolegs, elbow_env):
    """3 cm sideways and drifting out at 0.1 m/s: 0.03 + 0.1 sqrt(h/g) m; the same 3 cm coming
    back at 0.03 w0 m/s: a body on its way back to the path, no extrapolated error."""
    env = legs_env
    idx = np.array([10, 10, 10, 10])
    sig, index = _at_reference(env, idx)
    k = env.delta_names.index("root_xcom")
    height = env.ref.qpos[:, myolegs.free_root_qpos + 2].mean()
    inv_omega = np.sqrt(height / 9.81)
    body_pos = np.array(sig.body_pos) + np.array([0.03, 0.0, 0.0])
    vx = myolegs.mj_model.jnt_dofadr[myolegs.mj_model.joint(myolegs.root_joints[0]).id]
    for speed, expected in ((0.1, 0.03 + 0.1 * inv_omega), (-0.03 / inv_omega, 0.0)):
        qvel = np.array(sig.qvel)
        qvel[:, vx] += speed
        d = np.asarray(env.tracking_error(sig._replace(body_pos=body_pos, qvel=qvel), index))
        np.testing.assert_allclose(d[:, k], expected, atol=1e-5)
    sig, index = _at_reference(elbow_env, idx)  # a welded base has no root to extrapolate
    assert np.all(np.asarray(elbow_env.tracking_error(sig, index))[:, -1] == 0.0)


def test_reset_is_reference_state_initialisation(legs_env):
    state, obs = legs_env.reset(jax.random.PRNGKey(3))
    assert obs.shape == (4, legs_env.obs_dim) and bool(jnp.all(jnp.isfinite(obs)))
    np.testing.assert_array_equal(np.asarray(state.steps), 0)
    sig = legs_env.physics.forward(state.physics)
    assert float(jnp.max(legs_env.tracking_error(sig, state.index))) < 1e-5


def test_reset_index_is_random_and_reproducible(elbow_env):
    s1, _ = elbow_env.reset(jax.random.PRNGKey(0))
    s2, _ = elbow_env.reset(jax.random.PRNGKey(0))
    s3, _ = elbow_env.reset(jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(s1.index), np.asarray(s2.index))
    assert not np.array_equal(np.asarray(s1.index), np.asarray(s3.index))


def test_focused_start_probs_on_hand_worked_rates():
    """``EnvConfig.start_focus``'s probabilities: ``1 - focus`` uniform over the allowed frames,
    ``focus`` in proportion to each frame's failure rate; unmeasured frames count as the least
    failing measured one; no failures (or nothing measured) leave the share uniform."""
    from emulator.simulation.env import focused_start_probs

    # rates [0.4, 0.2, NaN -> 0.1, 0.1] / 0.8 = [0.5, 0.25, 0.125, 0.125]; half of it on 1/4 each
    np.testing.assert_allclose(
        focused_start_probs([0.4, 0.2, np.nan, 0.1], 0.5), [0.375, 0.25, 0.1875, 0.1875]
    )
    np.testing.assert_allclose(focused_start_probs([0.4, 0.2, np.nan, 0.1], 1.0), [0.5, 0.25, 0.125, 0.125])
    np.testing.assert_allclose(focused_start_probs([0.4, 0.2, 0.3, 0.1], 0.0), 0.25)
    # per seed rows; the last frame not allowed (a motion that ends); seed 0 never failed,
    # seed 1 measured nothing: both uniform over the three allowed frames
    allowed = [True, True, True, False]
    rows = focused_start_probs([[0.0, 0.0, 0.0, 9.0], [np.nan] * 4], 0.7, allowed)
    np.testing.assert_allclose(rows, [[1 / 3, 1 / 3, 1 / 3, 0.0]] * 2)
    # a failing last frame gets nothing either: frames 0-2 share 0.7 as 0.1 / 0.2 / 0.4 (of 0.7)
    np.testing.assert_allclose(focused_start_probs([0.1, 0.2, 0.4, 5.0], 0.7, allowed), [0.2, 0.3, 0.5, 0.0])
    with pytest.raises(ValueError, match="start_focus must be within"):
        EnvConfig(start_focus=1.5)


def test_start_frames_follow_the_given_probabilities(elbow_env):
    probs = np.zeros(elbow_env.reference_frames)
    probs[[0, 3]] = [0.25, 0.75]
    frames = np.asarray(elbow_env.start_frames(jax.random.PRNGKey(0), 4000, probs))
    assert set(np.unique(frames)) == {0, 3}
    assert np.mean(frames == 3) == pytest.approx(0.75, abs=0.03)
    uniform = np.asarray(elbow_env.start_frames(jax.random.PRNGKey(0), 4000))
    assert len(np.unique(uniform)) > 10 and uniform.max() < elbow_env.reference_frames


def test_falling_body_terminates_and_reset_where_revives_only_those(legs_env, myolegs):
    state, _ = legs_env.reset(None, index=np.zeros(4, dtype=int))
    terminated = np.zeros(4, dtype=bool)
    for _ in range(100):  # 1 s with no muscle activity: the legs fold and the body drops
        r = legs_env.step(state, np.zeros((4, myolegs.n_muscles)))
        state = r.state
        terminated |= np.asarray(r.terminated)
    assert terminated.all()
    mask = np.array([True, False, True, False])
    new, obs = legs_env.reset_where(state, mask, jax.random.PRNGKey(5))
    np.testing.assert_array_equal(np.asarray(new.steps), np.where(mask, 0, np.asarray(state.steps)))
    np.testing.assert_array_equal(np.asarray(new.physics)[~mask], np.asarray(state.physics)[~mask])
    sig = legs_env.physics.forward(np.asarray(new.physics))
    d = np.asarray(legs_env.tracking_error(sig, new.index))
    assert d[mask].max() < 1e-5 and d[~mask].max() > 0.1


def test_step_follows_the_reference_clock(elbow_env, elbow):
    state, _ = elbow_env.reset(None, index=np.array([0, 50, 199, 120]))
    r = elbow_env.step(state, np.full((4, elbow.n_muscles), 0.1))
    np.testing.assert_array_equal(np.asarray(r.state.index), [1, 51, 200, 121])
    assert elbow_env.n_substeps == 5 and elbow_env.control_dt == pytest.approx(0.01)
    assert r.metrics.shape == (4, 4) and r.delta.shape == (4, elbow_env.delta_dim)
    # a cycle wraps: frame 200 is frame 0 again
    np.testing.assert_allclose(
        elbow_env.reference_state(np.array([200]))[0, 1:3], elbow_env.reference_state(np.array([0]))[0, 1:3]
    )


def test_motion_for_another_model_is_refused(elbow, myolegs):
    with pytest.raises(MotionError, match="qpos columns"):
        TrackingEnv(myolegs, elbow_flexion_cycle(elbow), make_physics(myolegs, "cpu", n_envs=1))


def test_motion_validation_names_the_problem(elbow):
    q = np.zeros((5, 2))
    q[3, 1] = np.nan
    with pytest.raises(MotionError, match="frame 3"):
        ReferenceMotion("x", "elbow", ("a", "b"), q, 100.0, source="bad.npz")
    with pytest.raises(MotionError, match="time >= 2"):
        ReferenceMotion("x", "elbow", ("a", "b"), np.zeros((1, 2)), 100.0)


def test_elbow_cycle_is_smooth_and_within_range(elbow):
    mot = elbow_flexion_cycle(elbow)
    angle = np.degrees(mot.qpos[:, elbow.joint("r_elbow_flex").qpos_index])
    assert angle.min() == pytest.approx(30.0, abs=0.01) and angle.max() == pytest.approx(100.0, abs=0.1)
    assert mot.loop and mot.duration_s == pytest.approx(2.0)
    assert np.abs(np.diff(angle)).max() < 1.5  # deg per 10 ms frame: smooth
    assert "not measured" in mot.source


def test_config_changes_control_rate(elbow):
    env = TrackingEnv(
        elbow, elbow_flexion_cycle(elbow), make_physics(elbow, "cpu", n_envs=1), EnvConfig(control_dt=0.02)
    )
    assert env.n_substeps == 10 and env.reference_frames == 100


def test_physics_dt_sets_the_physics_step_and_the_substeps(elbow):
    """A longer physics step means fewer substeps per action at the same control rate; the
    simulated clock still advances by one control step; a backend built at another step is
    refused with both numbers named."""
    motion = elbow_flexion_cycle(elbow)
    cfg = EnvConfig(control_dt=0.02, physics_dt=0.005)
    env = TrackingEnv(elbow, motion, make_physics(elbow, "cpu", n_envs=2, timestep=0.005), cfg)
    assert env.n_substeps == 4 and env.control_dt == pytest.approx(0.02)
    assert env.physics.timestep == 0.005 and env.physics.mj_model.opt.timestep == 0.005
    state, _ = env.reset(None, index=np.array([0, 10]))
    t0 = np.asarray(env.layout.time(state.physics))
    out = env.step(state, np.full((2, env.action_dim), 0.3))
    assert np.asarray(env.layout.time(out.state.physics)) - t0 == pytest.approx([0.02, 0.02])
    fine = TrackingEnv(elbow, motion, make_physics(elbow, "cpu", n_envs=2), EnvConfig(control_dt=0.02))
    assert fine.n_substeps == 10
    with pytest.raises(ValueError, match=r"0\.002 s but the env config asks for 0\.005 s"):
        TrackingEnv(elbow, motion, make_physics(elbow, "cpu", n_envs=1), cfg)
    with pytest.raises(ValueError, match="physics_dt must be > 0 s and at most control_dt"):
        EnvConfig(control_dt=0.02, physics_dt=0.05)
    with pytest.raises(ValueError, match="timestep must be > 0"):
        make_physics(elbow, "cpu", n_envs=1, timestep=0.0)


# ---------------------------------------------------------------------------------------------
# walking-recipe options (issue 14): each changes what the env does, measurably


def _walk_env(model, n=4, **cfg):
    from emulator.motion.sources import load_demo

    return TrackingEnv(
        model, load_demo("walk", model), make_physics(model, "cpu", n_envs=n), EnvConfig(**cfg)
    )


def test_termination_by_mean_or_any_body(myolegs):
    """One foot 0.4 m off: 'max' ends the episode, 'mean' (over 10+ bodies) does not; all
    bodies 0.2 m off ends both."""
    any_body, mean = _walk_env(myolegs, termination_body="max"), _walk_env(myolegs, termination_body="mean")
    idx = np.array([5, 5, 5, 5])
    sig, index = _at_reference(any_body, idx)
    foot = myolegs.tracked_bodies.index("calcn_r")
    moved = np.asarray(sig.body_pos).copy()
    moved[0, foot, 2] += 0.4
    moved[1] += 0.2
    sig = sig._replace(body_pos=moved)
    for env, expect in ((any_body, [True, True, False, False]), (mean, [False, True, False, False])):
        _, _, m, term, _ = env._post_step(sig, index, jnp.zeros(4, jnp.int32))
        np.testing.assert_array_equal(np.asarray(term), expect)


def test_a_training_termination_distance_ends_only_the_learners_episodes(myolegs):
    """``train_termination_distance_m`` (a curriculum): the learner's environments
    (``Trainer.make_env``) end an episode at it, while an env built from the same config, as
    rollouts build theirs, keeps ``termination_distance_m``. Every body 0.2 m off ends the
    rollout's 0.15 m test, not a 0.3 m training test; 0.35 m off ends both."""
    from emulator.learning.train import TrainConfig, Trainer
    from emulator.motion.sources import load_demo

    cfg = EnvConfig(termination_body="mean", termination_distance_m=0.15, train_termination_distance_m=0.3)
    train = TrainConfig(model="myolegs", motion="walk", env=cfg, n_envs=2, total_steps=64)
    trainer = Trainer(train, model=myolegs, motion=load_demo("walk", myolegs))
    learner = trainer.make_env(1)
    judge = TrackingEnv(myolegs, trainer.motion, make_physics(myolegs, "cpu", n_envs=2), cfg)
    sig, index = _at_reference(judge, np.array([5, 5]))
    moved = np.asarray(sig.body_pos).copy()
    moved[0, :, 0] += 0.2
    moved[1, :, 0] += 0.35
    sig = sig._replace(body_pos=moved)
    for env, expect in ((judge, [True, True]), (learner, [False, True])):
        term = env._post_step(sig, index, jnp.zeros(2, jnp.int32))[3]
        np.testing.assert_array_equal(np.asarray(term), expect)
    with pytest.raises(ValueError, match="train_termination_distance_m"):
        EnvConfig(train_termination_distance_m=0.0)


def test_a_drift_ends_a_training_episode_at_the_extrapolated_root_limit(myolegs):
    """``train_termination_xcom_m`` 0.06 m: a root 2 cm to the side drifting out at 0.2 m/s
    (0.02 + 0.2 sqrt(h/g) ~ 0.08 m) ends the learner's episode, not the rollouts' (no limit);
    the same root drifting back (0.02 - 0.2 x 0.31 < 0) ends neither; nor does a root
    3 cm out at rest."""
    from emulator.learning.train import TrainConfig, Trainer
    from emulator.motion.sources import load_demo

    cfg = EnvConfig(termination_body="mean", termination_distance_m=0.15, train_termination_xcom_m=0.06)
    trainer = Trainer(
        TrainConfig(model="myolegs", motion="walk", env=cfg, n_envs=3, total_steps=64),
        model=myolegs,
        motion=load_demo("walk", myolegs),
    )
    learner = trainer.make_env(1)
    judge = TrackingEnv(myolegs, trainer.motion, make_physics(myolegs, "cpu", n_envs=3), cfg)
    sig, index = _at_reference(judge, np.array([5, 5, 5]))
    body_pos = np.asarray(sig.body_pos).copy()
    body_pos[:, :, 0] += np.array([0.02, 0.02, 0.03])[:, None]
    qvel = np.asarray(sig.qvel).copy()
    qvel[:, judge._root_lin[0]] += np.array([0.2, -0.2, 0.0])
    sig = sig._replace(body_pos=body_pos, qvel=qvel)
    for env, expect in ((judge, [False, False, False]), (learner, [True, False, False])):
        term = env._post_step(sig, index, jnp.zeros(3, jnp.int32))[3]
        np.testing.assert_array_equal(np.asarray(term), expect)
    with pytest.raises(ValueError, match="termination distances must be > 0"):
        EnvConfig(train_termination_xcom_m=-0.1)


def test_pushes_shove_the_whole_body_and_only_where_they_are_drawn(myolegs):
    """``push_speed_mps`` (a training curriculum): a push is a change of ``push_speed_mps`` in
    the horizontal velocity, drawn at ``control_dt / push_interval_s`` of the steps in every
    direction; a pushed body's root travels about ``kick x control_dt`` farther in one step (the
    feet's friction and the joints shift it a little), an unpushed one as without pushes."""
    env = _walk_env(myolegs, push_speed_mps=0.5, push_interval_s=0.1)
    kicks = np.asarray(env.push_kicks(jax.random.PRNGKey(0), (4000, 4)))
    speed = np.linalg.norm(kicks, axis=-1)
    hit = speed > 0
    assert abs(hit.mean() - env.control_dt / 0.1) < 0.01
    np.testing.assert_allclose(speed[hit], 0.5, rtol=1e-5)
    assert np.linalg.norm(kicks[hit].mean(axis=0)) < 0.03  # no preferred direction
    state, _ = env.reset(None, index=np.array([10, 10, 10, 10]))
    kick = np.array([[0.5, 0.0], [0.0, -0.5], [0.0, 0.0], [-0.3, 0.4]])
    action = np.full((4, myolegs.n_muscles), 0.05)
    root = env.layout.qpos
    plain = np.asarray(env.advance(state.physics, action)[0])
    pushed = np.asarray(env.advance(env.push(state.physics, kick), action)[0])
    a = myolegs.free_root_qpos
    moved = root(pushed)[:, a : a + 2] - root(plain)[:, a : a + 2]
    np.testing.assert_allclose(moved[2], 0.0, atol=1e-9)
    for i in (0, 1, 3):
        speed = np.linalg.norm(kick[i])
        along = moved[i] @ kick[i] / speed
        assert 0.6 < along / (speed * env.control_dt) < 1.2
    # a reset may start shoved (rollout(kick=...), benchmarks/walking_basin.py): the same push,
    # seen by the first observation (its root velocities)
    shoved, obs = env.reset(None, index=np.array([10, 10, 10, 10]), kick=kick)
    np.testing.assert_allclose(np.asarray(shoved.physics), env.push(state.physics, kick), atol=1e-12)
    assert not np.allclose(np.asarray(obs)[0], np.asarray(obs)[2])
    # or from given states (benchmarks/walking_reset_state.py): the same shove, given as a state
    given, obs2 = env.reset(None, index=np.array([10, 10, 10, 10]), physics=env.push(state.physics, kick))
    np.testing.assert_allclose(np.asarray(given.physics), np.asarray(shoved.physics), atol=1e-12)
    np.testing.assert_allclose(np.asarray(obs2), np.asarray(obs), atol=1e-6)
    with pytest.raises(ValueError, match="push_speed_mps"):
        EnvConfig(push_speed_mps=-0.1)
    with pytest.raises(ValueError, match="reset_kick_mps must be >= 0 m/s, got -0.1"):
        EnvConfig(reset_kick_mps=-0.1)


def test_the_root_assist_pulls_the_root_towards_the_reference_as_a_damped_spring(myolegs):
    """``root_assist_hz`` (a training curriculum): the nudge is ``-control_dt (w^2 e_pos + 2 w
    e_vel)`` on the root's horizontal errors (here 1 Hz, a 34 ms control step of 17 physics
    steps, the root 10 cm to +x and 0.2 m/s too fast along -y: -(39.48 x 0.1) x 0.034 = -0.1342
    m/s in x, -(12.57 x -0.2) x 0.034 = +0.0855 in y), nothing at the reference, and half of it
    at strength 0.5."""
    env = _walk_env(myolegs, n=2, root_assist_hz=1.0, control_dt=1 / 30)
    state = env.reference_state(np.array([7, 7]))
    a, v = myolegs.free_root_qpos, 1 + env.layout.nq + env._root_lin[:2]
    moved = state.copy()
    moved[1, 1 + a] += 0.1
    moved[1, v[1]] -= 0.2
    kick = env.assist_kick(moved, np.array([7, 7]))
    np.testing.assert_allclose(kick[0], 0.0, atol=1e-9)
    assert env.control_dt == pytest.approx(0.034)
    np.testing.assert_allclose(kick[1], [-0.1342, 0.0855], atol=1e-4)
    np.testing.assert_allclose(env.assist_kick(moved, np.array([7, 7]), 0.5), kick / 2, atol=1e-12)
    # the next frame's reference has moved on: a root left behind at frame 7 is pulled along -y
    assert env.assist_kick(state, np.array([8, 8]))[0, 1] < -0.01
    with pytest.raises(ValueError, match="root_assist_anneal"):
        EnvConfig(root_assist_hz=1.0, root_assist_anneal=0.0)
    with pytest.raises(ValueError, match=r"at most 1 / \(4 pi control_dt\) = 2.39 Hz"):
        EnvConfig(root_assist_hz=3.0, control_dt=1 / 30)


@pytest.mark.parametrize(
    "option", ["push_speed_mps", "reset_kick_mps", "root_assist_hz", "termination_xcom_m"]
)
def test_root_curricula_are_refused_on_a_welded_root(elbow, option):
    with pytest.raises(ValueError, match=f"{option} needs a model with a free root; elbow"):
        TrackingEnv(
            elbow,
            elbow_flexion_cycle(elbow),
            make_physics(elbow, "cpu", n_envs=1),
            EnvConfig(**{option: 1.0}),
        )


def test_reset_activation_and_previous_action_in_the_observation(myolegs):
    plain = _walk_env(myolegs)
    env = _walk_env(myolegs, reset_activation=0.05, observe_previous_action=True)
    nu = myolegs.n_muscles
    assert env.obs_dim == plain.obs_dim + nu
    state, obs = env.reset(None, index=np.array([0, 10, 20, 30]))
    np.testing.assert_allclose(env.layout.act(np.asarray(state.physics)), 0.05)
    np.testing.assert_allclose(np.asarray(obs)[:, -nu:], 0.05)
    # loaded muscles pull: more tension at the reset than passive-only muscles
    sig0 = plain.physics.forward(plain.reference_state(np.array([0, 10, 20, 30])))
    sig1 = env.physics.forward(np.asarray(state.physics))
    assert np.asarray(sig1.muscle_force).sum() > np.asarray(sig0.muscle_force).sum() + 100.0
    action = np.random.default_rng(0).uniform(0, 1, (4, nu))
    r = env.step(state, action)
    np.testing.assert_allclose(np.asarray(r.obs)[:, -nu:], action, atol=1e-6)


def test_foot_contact_in_the_observation(myolegs, elbow):
    """``observe_foot_contact`` appends each foot's ground reaction force (left, right; x, y,
    z) in body weights, at resets and after steps: in the walk's right single stance (frame 30)
    the right foot is loaded and the swinging left foot reads zero. (At a reset the muscles'
    tone does not hold the body yet: it sinks and the stance foot reads ~0.3 body weights.)"""
    plain, env = _walk_env(myolegs), _walk_env(myolegs, observe_foot_contact=True)
    assert env.obs_dim == plain.obs_dim + 6
    m = myolegs.mj_model
    weight = m.body_subtreemass[0] * 9.81
    state, obs = env.reset(None, index=np.array([0, 10, 20, 30]))
    sig = env.physics.forward(np.asarray(state.physics))
    np.testing.assert_allclose(
        np.asarray(obs)[:, -6:], np.asarray(sig.grf).reshape(4, 6) / weight, rtol=1e-4, atol=1e-6
    )
    left, right = np.asarray(obs)[3, -6:].reshape(2, 3)
    np.testing.assert_allclose(left, 0.0, atol=1e-6)
    assert 0.1 < right[2] < 2.0 and abs(right[:2]).max() < right[2]
    r = env.step(state, np.full((4, myolegs.n_muscles), 0.05))
    np.testing.assert_allclose(
        np.asarray(r.obs)[:, -6:], np.asarray(r.signals.grf).reshape(4, 6) / weight, rtol=1e-4, atol=1e-6
    )
    with pytest.raises(ValueError, match="observe_foot_contact: .*no feet"):
        TrackingEnv(
            elbow,
            elbow_flexion_cycle(elbow),
            make_physics(elbow, "cpu", n_envs=2),
            EnvConfig(observe_foot_contact=True),
        )


def test_muscle_length_actions_drive_excitation_by_the_pd_law(myolegs):
    env = _walk_env(myolegs, action_space="muscle_length", length_kp=5.0, length_kd=0.0)
    state, _ = env.reset(None, index=np.array([0, 10, 20, 30]))
    lo, hi = myolegs.mj_model.actuator_lengthrange.T
    length = np.asarray(state.sensed)[:, : myolegs.n_muscles]
    # asking for the current length: no drive (a muscle past its length range, as psoas_l by
    # < 1 % of it in the walk's late left stance, gets the law's drive for the nearest length it
    # can ask for); for the shortest length: full drive (or the PD law's value, when the muscle
    # is already near its shortest); for the longest: none (but past the range)
    at_now = (length - lo) / (hi - lo)
    reachable = np.clip(at_now, 0.0, 1.0)
    assert (at_now == reachable).mean() > 0.9
    np.testing.assert_allclose(
        np.asarray(env.excitation(state, reachable)), np.clip(5.0 * (at_now - reachable), 0, 1), atol=1e-4
    )
    shortest = np.asarray(env.excitation(state, np.zeros_like(at_now)))
    np.testing.assert_allclose(shortest, np.clip(5.0 * at_now, 0, 1), atol=1e-4)
    longest = np.asarray(env.excitation(state, np.ones_like(at_now)))
    np.testing.assert_allclose(longest, np.clip(5.0 * (at_now - 1.0), 0, 1), atol=1e-6)
    r = env.step(state, np.zeros_like(at_now))
    np.testing.assert_allclose(np.asarray(r.signals.excitation), shortest, atol=1e-5)  # what was applied
    with pytest.raises(ValueError, match="action_space"):
        EnvConfig(action_space="torque")


def test_a_synergy_basis_drives_the_muscles_it_names(myolegs):
    """With ``action_basis`` the policy acts on k synergies: as excitations each muscle gets
    its weighted sum (clipped), in the residual length space 0.5 is still the reference servo;
    the signals keep every muscle; bad bases are refused by name."""
    from emulator.learning.train import TrainConfig

    m0, m1, m2 = myolegs.muscles[:3]
    basis = [{m0: 1.0, m1: 0.5}, {m2: 1.0, m1: 0.25}]
    env = _walk_env(myolegs, action_space="excitation", action_basis=basis, observe_previous_action=True)
    plain = _walk_env(myolegs, action_space="excitation", observe_previous_action=True)
    assert env.action_dim == 2 and env.obs_dim == plain.obs_dim - myolegs.n_muscles + 2
    state, obs = env.reset(None, index=np.array([0, 10, 20, 30]))
    assert obs.shape == (4, env.obs_dim)
    exc = np.asarray(env.excitation(state, np.array([[1.0, 0.0], [0.4, 1.0], [1.0, 1.0], [0.0, 0.0]])))
    expected = np.zeros((4, myolegs.n_muscles))
    expected[:, :3] = [[1.0, 0.5, 0.0], [0.4, 0.45, 1.0], [1.0, 0.75, 1.0], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(exc, expected, atol=1e-6)
    r = env.step(state, np.array([[1.0, 0.0]] * 4))
    assert r.signals.excitation.shape == (4, myolegs.n_muscles) and r.obs.shape == (4, env.obs_dim)
    np.testing.assert_allclose(np.asarray(r.signals.excitation)[:, :3], [[1.0, 0.5, 0.0]] * 4, atol=1e-6)

    servo = dict(action_space="muscle_length_residual", length_kp=20.0, length_residual=0.2)
    synergies = _walk_env(myolegs, action_basis=basis, **servo)
    per_muscle = _walk_env(myolegs, **servo)
    s_syn, _ = synergies.reset(None, index=np.array([0, 10, 20, 30]))
    s_per, _ = per_muscle.reset(None, index=np.array([0, 10, 20, 30]))
    np.testing.assert_allclose(  # neutral synergies = every muscle at the reference target
        np.asarray(synergies.excitation(s_syn, np.full((4, 2), 0.5))),
        np.asarray(per_muscle.excitation(s_per, np.full((4, myolegs.n_muscles), 0.5))),
        atol=1e-6,
    )
    shift = np.full((4, myolegs.n_muscles), 0.5)
    shift[:, 0], shift[:, 1] = 1.0, 0.75  # synergy 0 at 1: muscle 0 +0.5, muscle 1 +0.25
    np.testing.assert_allclose(
        np.asarray(synergies.excitation(s_syn, np.array([[1.0, 0.5]] * 4))),
        np.asarray(per_muscle.excitation(s_per, shift)),
        atol=1e-6,
    )

    cfg = EnvConfig(action_basis=basis)  # TOML tables and JSON pairs give the same config
    assert TrainConfig.from_dict(TrainConfig(env=cfg).to_dict()).env == cfg
    reordered = [dict(reversed(list(syn.items()))) for syn in basis]  # (a file's order is no setting)
    assert EnvConfig(action_basis=reordered) == cfg
    with pytest.raises(
        ValueError, match=r"action_basis\[1\] names muscles myolegs does not have: \['biceps'\]"
    ):
        _walk_env(myolegs, action_basis=[{m0: 1.0}, {"biceps": 1.0}])
    with pytest.raises(ValueError, match=r"action_basis\[0\]: weights must be finite and >= 0"):
        EnvConfig(action_basis=[{m0: -1.0}])
    with pytest.raises(ValueError, match=r"action_basis\[0\] drives no muscle"):
        EnvConfig(action_basis=[{m0: 0.0}])


def test_residual_length_actions_servo_to_the_reference_lengths(myolegs):
    kp, kd = 20.0, 0.5
    env = _walk_env(
        myolegs,
        action_space="muscle_length_residual",
        length_kp=kp,
        length_kd=kd,
        length_lead=3,
        length_residual=0.2,
    )
    frames = np.array([0, 10, 20, 30])
    state, _ = env.reset(None, index=frames)
    nu = myolegs.n_muscles
    lo, hi = myolegs.mj_model.actuator_lengthrange.T
    span = hi - lo
    sensed = np.asarray(state.sensed)
    length, velocity = sensed[:, :nu], sensed[:, nu : 2 * nu]
    # a reset at frame i is the reference pose: the table's lengths are the lengths sensed there
    np.testing.assert_allclose(env.ref.muscle_length[frames], length, atol=1e-5)
    target = env.ref.muscle_length[frames + 3]  # 3 control steps ahead
    np.testing.assert_allclose(sensed[:, 2 * nu :], target, atol=1e-5)
    # action 0.5 asks for the reference's lengths; 1 for 0.2 of the range longer (less drive)
    expected = np.clip(kp * (length - target) / span + kd * velocity / span, 0, 1)
    np.testing.assert_allclose(np.asarray(env.excitation(state, np.full((4, nu), 0.5))), expected, atol=1e-4)
    longer = np.clip(kp * (length - target - 0.2 * span) / span + kd * velocity / span, 0, 1)
    np.testing.assert_allclose(np.asarray(env.excitation(state, np.ones((4, nu)))), longer, atol=1e-4)
    # the reference target moves with the motion: after a step it is 3 steps ahead of frame i + 1
    r = env.step(state, np.full((4, nu), 0.5))
    np.testing.assert_allclose(
        np.asarray(r.state.sensed)[:, 2 * nu :], env.ref.muscle_length[frames + 4], atol=1e-5
    )
    with pytest.raises(ValueError, match="length_residual"):
        EnvConfig(length_residual=0.0)


def test_physics_rate_servo(elbow, myolegs):
    """EnvConfig.servo_rate="physics": with one substep it is the held servo (same law, same
    numbers); under a 30 Hz policy it keeps tracking the walk where the held servo drifts
    (servo alone, action 0.5: the reference's own lengths), and the store's excitation is the
    mean of what the substeps applied."""
    from emulator.motion.sources import load_demo

    dt = float(elbow.mj_model.opt.timestep)
    runs = {}
    for rate in SERVO_RATES:
        cfg = EnvConfig(control_dt=dt, action_space="muscle_length_residual", servo_rate=rate)
        env = TrackingEnv(elbow, load_demo("elbow_flexion", elbow), make_physics(elbow, "cpu", n_envs=3), cfg)
        state, _ = env.reset(None, index=np.array([0, 10, 20]))
        action = np.random.default_rng(0).uniform(0, 1, (3, elbow.n_muscles))
        for _ in range(20):
            r = env.step(state, action)
            state = r.state
        runs[rate] = r.signals
    np.testing.assert_allclose(runs["physics"].qpos, runs["control"].qpos, atol=1e-6)
    np.testing.assert_allclose(runs["physics"].excitation, runs["control"].excitation, atol=1e-5)

    errors = {}
    for rate in SERVO_RATES:
        env = _walk_env(myolegs, n=4, control_dt=1 / 30, action_space="muscle_length_residual", length_kp=20.0,
                        length_kd=0.5, length_lead=1, length_residual=0.2, reset_activation=0.05,
                        servo_rate=rate)  # fmt: skip
        state, _ = env.reset(None, index=np.array([0, 26, 52, 78]) * env._T // 104)
        half = np.full((4, myolegs.n_muscles), 0.5)
        joint = []
        for _ in range(9):  # 0.3 s, before the unbalanced servo falls
            before = state
            r = env.step(state, half)
            state = r.state
            joint.append(np.asarray(r.metrics)[:, 0])
        errors[rate] = float(np.mean(joint))
        applied, first = np.asarray(r.signals.excitation), np.asarray(env.excitation(before, half))
        assert applied.min() >= 0 and applied.max() <= 1
        if rate == "control":  # held: what the first substep got is what was applied
            np.testing.assert_allclose(applied, first, atol=1e-5)
        else:  # a mean over 17 substeps that each corrected the last
            assert np.abs(applied - first).max() > 0.05
    assert errors["physics"] < 0.7 * errors["control"], errors
    with pytest.raises(ValueError, match="servo_rate"):
        EnvConfig(servo_rate="fast")


def test_step_autoreset_restarts_ended_environments_from_the_table(myolegs):
    env = _walk_env(myolegs, termination_body="mean", termination_distance_m=0.05)
    state, _ = env.reset(None, index=np.array([0, 10, 20, 30]))
    restart_at = np.array([3, 4, 5, 6])
    ended = np.zeros(4, dtype=bool)
    for _ in range(60):  # no muscle activity: the body sinks, every env ends at some point
        tr = env.step_autoreset(state, np.zeros((4, myolegs.n_muscles)), restart_at)
        done = np.asarray(tr.terminated | tr.truncated)
        if done.any():
            fresh, fresh_obs = env.reset(None, index=restart_at)
            np.testing.assert_array_equal(np.asarray(tr.state.physics)[done], np.asarray(fresh.physics)[done])
            np.testing.assert_allclose(np.asarray(tr.obs)[done], np.asarray(fresh_obs)[done], atol=1e-5)
            np.testing.assert_array_equal(np.asarray(tr.state.steps)[done], 0)
            np.testing.assert_array_equal(np.asarray(tr.state.index)[done], restart_at[done])
            # the observation right after the step is not the restarted one
            assert np.abs(np.asarray(tr.next_obs)[done] - np.asarray(tr.obs)[done]).max() > 1e-3
        ended |= done
        state = tr.state
    assert ended.all()
