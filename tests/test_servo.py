"""The servo's balance reflex (``EnvConfig.balance_reflex``): the reference lengths it asks for are
those of a pose whose swing foot stands where the extrapolated error says, only the swing leg's
muscles move, and the env's PD targets carry the shift."""

import mujoco
import numpy as np
import pytest

from emulator.motion.reference import elbow_flexion_cycle
from emulator.motion.sources import load_demo
from emulator.simulation.env import EnvConfig, TrackingEnv
from emulator.simulation.physics import make_physics
from emulator.simulation.servo import REFLEX_MAX_ERROR_M, balance_reflex_table, swing_weights
from emulator.simulation.tracking_reference import build_reference


@pytest.fixture(scope="module")
def walk_reference(myolegs):
    return build_reference(myolegs, load_demo("walk", myolegs), 30.0)


def _foot_and_lengths(model, qpos):
    m, d = model.mj_model, mujoco.MjData(model.mj_model)
    d.qpos[:] = qpos
    mujoco.mj_fwdPosition(m, d)
    return d.xpos[m.body("calcn_l").id, :2].copy(), d.actuator_length.copy()


def test_swing_weights_follow_the_feet_of_the_measured_walk(myolegs, walk_reference):
    """The walk starts at the right heel strike: the left foot swings in the first half of the
    cycle, the right in the second, never both, and each stands (weight 0) a good part of it."""
    w = swing_weights(myolegs, walk_reference.qpos)
    n = len(w)
    assert w.shape == (n, 2) and w.min() == 0.0 and w.max() == 1.0
    assert not np.any((w[:, 0] > 0) & (w[:, 1] > 0))
    left, right = np.flatnonzero(w[:, 0] == 1), np.flatnonzero(w[:, 1] == 1)
    assert left.max() < n // 2 < right.min()
    assert 0.25 * n < len(left) < 0.5 * n and 0.25 * n < len(right) < 0.5 * n


def test_the_reflex_lengths_are_those_of_a_pose_stepping_towards_the_error(myolegs, walk_reference):
    """At a left-swing frame, ask for the swing foot 3 cm further to the walker's left (+x: the
    walk heads along -y): the length change the table gives is, muscle by muscle, the one of
    the reference pose with its left hip abducted until the foot has moved 3 cm that way."""
    qpos = walk_reference.qpos
    table = balance_reflex_table(myolegs, qpos, ("hip_adduction",))
    f = int(np.argmax(swing_weights(myolegs, qpos)[:, 0]))
    error = np.array([0.03, 0.0])
    asked = table[f] @ error
    m = myolegs.mj_model
    a = int(m.jnt_qposadr[m.joint("hip_adduction_l").id])
    foot0, length0 = _foot_and_lengths(myolegs, qpos[f])

    def moved_x(dq):  # how far the foot moves along +x when the left hip adducts by dq (rad)
        q = qpos[f].copy()
        q[a] += dq
        return _foot_and_lengths(myolegs, q)[0][0] - foot0[0]

    lo, hi = (-0.2, 0.0) if moved_x(-0.01) > 0 else (0.0, 0.2)  # bisection for 3 cm along +x
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if (moved_x(mid) < error[0]) == (lo >= 0) else (lo, mid)
    q = qpos[f].copy()
    q[a] += lo
    moved = _foot_and_lengths(myolegs, q)[1] - length0
    hip = np.abs(moved) > 1e-3  # the muscles the hip's adduction stretches or slackens
    assert hip.sum() >= 8 and lo < 0  # abduction: the left hip's adduction angle falls
    np.testing.assert_allclose(asked[hip], moved[hip], rtol=0.1, atol=2e-4)
    right = np.array([n.endswith("_r") for n in myolegs.muscles])
    assert np.abs(asked[right]).max() < 1e-9  # the stance leg is left alone
    both_stand = np.flatnonzero(swing_weights(myolegs, qpos).sum(axis=1) == 0)
    assert len(both_stand) and np.abs(table[both_stand]).max() == 0.0


def test_the_env_shifts_the_servo_targets_by_the_reflex(myolegs):
    """Two envs, with and without the reflex, sense the same state: the reference-length part
    differs by gain x table x the (capped) extrapolated error, and not at all on the path."""
    motion = load_demo("walk", myolegs)
    base = {"action_space": "muscle_length_residual", "servo_rate": "physics", "control_dt": 1 / 30}
    plain = TrackingEnv(myolegs, motion, make_physics(myolegs, "cpu", n_envs=2), EnvConfig(**base))
    reflex = TrackingEnv(
        myolegs, motion, make_physics(myolegs, "cpu", n_envs=2), EnvConfig(**base, balance_reflex=2.0)
    )
    f = int(np.argmax(swing_weights(myolegs, reflex.ref.qpos)[:, 0]))
    index = np.array([f, f]) - reflex.config.length_lead  # the targets read frame f
    state = reflex.reference_state(index)
    root = myolegs.free_root_qpos
    state[1, 1 + root] += 0.5  # the second env's root 0.5 m to the side: the error is capped
    sig = reflex.physics.forward(state)
    nu = myolegs.n_muscles
    got = np.asarray(reflex._sense(sig, index)) - np.asarray(plain._sense(sig, index))
    assert got.shape == (2, 4 * nu)
    np.testing.assert_allclose(got[:, : 2 * nu], 0.0, atol=1e-7)  # the senses themselves are the same
    np.testing.assert_allclose(got[0], 0.0, atol=1e-6)  # on the reference: no shift
    table = balance_reflex_table(myolegs, reflex.ref.qpos, ("hip_adduction",))
    want = 2.0 * table[f] @ np.array([REFLEX_MAX_ERROR_M, 0.0])
    np.testing.assert_allclose(got[1, 2 * nu : 3 * nu], want, atol=2e-5)
    np.testing.assert_allclose(got[1, 3 * nu :], want, atol=2e-5)  # the substeps' end target too


def test_reflex_settings_are_checked(myolegs, elbow):
    with pytest.raises(ValueError, match="balance_reflex shifts the servo's reference lengths"):
        EnvConfig(balance_reflex=1.0)
    with pytest.raises(ValueError, match="balance_reflex must be >= 0"):
        EnvConfig(balance_reflex=-1.0, action_space="muscle_length_residual")
    cfg = EnvConfig(balance_reflex=1.0, action_space="muscle_length_residual")
    assert EnvConfig(balance_reflex_joints="hip_flexion").balance_reflex_joints == ("hip_flexion",)
    with pytest.raises(ValueError, match="balance_reflex needs a model with a free root; elbow"):
        TrackingEnv(elbow, elbow_flexion_cycle(elbow), make_physics(elbow, "cpu", n_envs=1), cfg)
    with pytest.raises(ValueError, match=r"has no joint\(s\) \['hip_swing_l', 'hip_swing_r'\]"):
        balance_reflex_table(myolegs, np.zeros((1, myolegs.mj_model.nq)), ("hip_swing",))
