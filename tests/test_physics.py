"""The two physics backends, field by field, and the ground reaction force."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from emulator.schema import FOOT_ORDER
from emulator.simulation.physics import CpuPhysics, make_physics

from .conftest import stiffened

STEPS = 100


def _run(physics, state, controls, n_substeps=1):
    import jax.numpy as jnp

    xp = jnp if physics.name == "mjx" else np
    s = xp.asarray(state)
    for c in controls:
        s, sig = physics.step(s, xp.asarray(c), n_substeps)
    return np.asarray(s), {k: np.asarray(v) for k, v in sig._asdict().items()}


@pytest.fixture(scope="module")
def elbow_pair(elbow):
    return make_physics(elbow, "cpu", n_envs=4), make_physics(elbow, "mjx", n_envs=4)


@pytest.mark.mjx
def test_cpu_and_mjx_agree_on_elbow(elbow, elbow_pair):
    cpu, mjx = elbow_pair
    rng = np.random.default_rng(1)
    q0 = np.radians([[0.0, 40.0], [10.0, 60.0], [-20.0, 90.0], [5.0, 20.0]])
    state = cpu.layout.pack(q0)
    controls = rng.uniform(0, 1, (STEPS, 4, elbow.n_muscles))
    s_cpu, sig_cpu = _run(cpu, state, controls)
    s_mjx, sig_mjx = _run(mjx, state, controls)
    # MJX runs in float32 by default; native MuJoCo in float64.
    tol = {
        "qpos": 1e-4,  # rad
        "qvel": 1e-3,  # rad/s
        "activation": 1e-5,
        "excitation": 1e-6,
        "muscle_length": 1e-5,  # m
        "muscle_velocity": 1e-4,  # m/s
        "muscle_force": 0.05,  # N, forces up to ~600 N
        "body_pos": 1e-5,  # m
        "body_quat": 1e-5,
    }
    for field, atol in tol.items():
        np.testing.assert_allclose(sig_mjx[field], sig_cpu[field], atol=atol, err_msg=field)
    # and the motion was not trivial
    assert np.ptp(sig_cpu["qpos"][:, 1]) > 0.05 or np.abs(sig_cpu["qpos"] - q0).max() > 0.05


class _StatueRuns(dict):
    """The statue run per backend, made on first use (an MJX compile of myolegs costs ~2 min
    on 2 cores, so the MJX run is made only when an MJX statue test asks for it)."""

    def __init__(self):
        super().__init__()
        self.statue = stiffened("myolegs")

    def __missing__(self, backend):
        self[backend] = _statue_run(self.statue, backend)
        return self[backend]


def _statue_run(statue, backend):
    """The model is myolegs with stiff joint springs holding the standing pose, so it can stand
    still; muscles, tendons, feet and floor are unchanged. Env 0 hangs 2 m above the floor
    under random excitations (no contact within 0.3 s of free fall); env 1 stands on the floor.
    MJX runs in float64: the comparison is about the physics, not float32 round-off (which
    grows to ~0.03 rad over 100 steps of these stiff muscle dynamics)."""
    import jax.numpy as jnp

    physics = (
        make_physics(statue, "cpu", n_envs=2)
        if backend == "cpu"
        else make_physics(statue, "mjx", n_envs=2, x64=True)
    )
    rng = np.random.default_rng(2)
    q = np.tile(statue.standing_qpos, (2, 1))
    q[0, 2] += 2.0
    state = physics.layout.pack(q)
    controls = np.zeros((150, 2, statue.n_muscles))
    controls[:, 0] = rng.uniform(0, 1, (150, statue.n_muscles))
    xp = jnp if backend == "mjx" else np
    s, fz = xp.asarray(state), []
    for k, c in enumerate(controls):
        s, sig = physics.step(s, xp.asarray(c))
        fz.append(np.asarray(sig.grf)[1, :, 2])
        if k == STEPS - 1:
            at100 = {f: np.asarray(v) for f, v in sig._asdict().items()}
    return at100, np.array(fz), np.asarray(sig.grf)


@pytest.fixture(scope="module")
def statue_run():
    """``(statue, {backend: (signals at step 100, vertical GRF per step, last GRF)})``."""
    runs = _StatueRuns()
    return runs.statue, runs


@pytest.mark.mjx
@pytest.mark.slow  # ~2 min MJX compile of myolegs; tests/test_physics.py's elbow test keeps MJX in the default run
def test_cpu_and_mjx_agree_on_myolegs_in_the_air(statue_run):
    """Without contact the backends agree closely: same muscles, tendons, joints."""
    statue, out = statue_run
    sig_cpu, sig_mjx = out["cpu"][0], out["mjx"][0]
    air = 0
    assert np.abs(sig_cpu["qpos"][air, 7:] - statue.standing_qpos[7:]).max() > 0.01  # it moved
    tol = {
        "qpos": 1e-4,
        "qvel": 1e-3,
        "activation": 1e-8,
        "muscle_length": 1e-6,
        "muscle_force": 0.5,
        "body_pos": 1e-4,
    }
    for field, atol in tol.items():
        np.testing.assert_allclose(sig_mjx[field][air], sig_cpu[field][air], atol=atol, err_msg=field)
    assert np.all(sig_cpu["grf"][air] == 0) and np.allclose(sig_mjx["grf"][air], 0)


@pytest.mark.mjx
@pytest.mark.slow
def test_cpu_and_mjx_agree_on_myolegs_standing(statue_run):
    """With floor contact, collision and solver details differ: looser, documented tolerances."""
    statue, out = statue_run
    sig_cpu, sig_mjx = out["cpu"][0], out["mjx"][0]
    np.testing.assert_allclose(sig_mjx["qpos"][1], sig_cpu["qpos"][1], atol=5e-3)
    np.testing.assert_allclose(sig_mjx["activation"][1], sig_cpu["activation"][1], atol=1e-8)
    bw = statue.body_weight_n
    np.testing.assert_allclose(out["mjx"][1][-50:].sum(-1), out["cpu"][1][-50:].sum(-1), atol=0.05 * bw)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("mjx", marks=[pytest.mark.mjx, pytest.mark.slow])])
def test_standing_still_grf_is_one_body_weight(statue_run, backend):
    statue, out = statue_run
    _, fz, grf = out[backend]
    total = fz[-50:].sum(axis=1).mean()
    assert total == pytest.approx(statue.body_weight_n, rel=0.10)
    # both feet carry load, horizontal forces are small, and the force points up (on the foot)
    assert np.all(fz[-50:].mean(axis=0) > 0.2 * statue.body_weight_n)
    assert np.abs(grf[1, :, :2]).max() < 0.1 * statue.body_weight_n
    # each foot's centre of pressure lies on the floor, under that foot; none in the air
    sig = out[backend][0]
    floor_z = statue.mj_model.geom_pos[0, 2]
    for side, body in (("left", "calcn_l"), ("right", "calcn_r")):
        cop = sig["cop"][1, FOOT_ORDER.index(side)]
        heel = sig["body_pos"][1, statue.tracked_bodies.index(body)]
        assert abs(cop[2] - floor_z) < 0.02, (side, cop)
        assert np.linalg.norm(cop[:2] - heel[:2]) < 0.15, (side, cop, heel)
    assert np.isnan(sig["cop"][0]).all()


def test_cpu_step_is_a_pure_function_of_state_and_control(myolegs):
    physics = CpuPhysics(myolegs, n_envs=3, nthread=2)
    state = physics.layout.pack(np.tile(myolegs.standing_qpos, (3, 1)))
    ctrl = np.random.default_rng(0).uniform(0, 1, (3, myolegs.n_muscles))
    a, sa = physics.step(state, ctrl, 5)
    b, sb = physics.step(state, ctrl, 5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa.grf, sb.grf)
    # substeps returned one by one end at the same place
    c, per = physics.step(state, ctrl, 5, all_substeps=True)
    np.testing.assert_array_equal(a, c)
    assert per.qpos.shape == (3, 5, myolegs.mj_model.nq)
    np.testing.assert_array_equal(per.qpos[:, -1], sa.qpos)


def test_forward_matches_model_kinematics(myolegs):
    import mujoco

    physics = make_physics(myolegs, "cpu", n_envs=1)
    q = myolegs.standing_qpos.copy()
    q[7] += 0.3
    sig = physics.forward(physics.layout.pack(q[None]))
    d = mujoco.MjData(myolegs.mj_model)
    d.qpos[:] = q
    mujoco.mj_forward(myolegs.mj_model, d)
    ids = [myolegs.mj_model.body(b).id for b in myolegs.tracked_bodies]
    np.testing.assert_allclose(sig.body_pos[0], d.xpos[ids], atol=1e-12)
    np.testing.assert_allclose(sig.muscle_length[0], d.actuator_length, atol=1e-12)


def test_bad_controls_shape_is_rejected(elbow):
    physics = make_physics(elbow, "cpu", n_envs=2)
    with pytest.raises(ValueError, match="ctrl must have shape"):
        physics.step(physics.layout.pack(np.zeros((2, 2))), np.zeros((2, 5)))


def test_unknown_backend(elbow):
    with pytest.raises(ValueError, match="unknown physics backend 'gpu'"):
        make_physics(elbow, "gpu", n_envs=1)


@pytest.mark.mjx
@pytest.mark.slow  # ~85 s; run it (`pytest -m slow -k hang`) whenever the jax pin changes
def test_mjx_myolegs_batch_does_not_hang():
    """jax 0.10.2 deadlocked on exactly this (vmapped MJX step of myolegs, B=64) on CPU."""
    script = textwrap.dedent(
        """
        import jax.numpy as jnp, numpy as np
        from emulator.models import load_model
        from emulator.simulation.physics import make_physics
        m = load_model("myolegs")
        p = make_physics(m, "mjx", n_envs=64)
        s = jnp.asarray(p.layout.pack(np.tile(m.standing_qpos, (64, 1))))
        for _ in range(3):
            s, sig = p.step(s, jnp.full((64, m.n_muscles), 0.1), 2)
        s.block_until_ready()
        assert np.isfinite(np.asarray(s)).all()
        print("OK", s.shape)
        """
    )
    try:
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("vmapped MJX step of myolegs at B=64 did not finish in 600 s (deadlock?)")
    assert r.returncode == 0 and "OK (64," in r.stdout, r.stderr[-2000:]


@pytest.mark.mjx
def test_model_mjx_cannot_take_names_the_feature():
    """myo-sim's myolegs26 has plane-mesh contacts with a margin, which MJX does not implement."""
    from emulator.models import ModelError, load_model

    legs26 = load_model("myo-sim:myolegs26")
    assert legs26.n_muscles == 26
    with pytest.raises(ModelError, match=r"myolegs26.*margin/gap not implemented"):
        make_physics(legs26, "mjx", n_envs=1)
    make_physics(legs26, "cpu", n_envs=1)  # native MuJoCo takes it


@pytest.mark.mjx
@pytest.mark.slow  # a second MJX compile of the elbow (~20 s); run with `pytest -m slow -k servo`
def test_cpu_and_mjx_agree_on_the_physics_rate_servo(elbow, elbow_pair):
    """The muscle-length PD law run inside the physics step (EnvConfig.servo_rate="physics"):
    both backends apply the same per-substep excitations and reach the same state."""
    from emulator.simulation.signals import Servo

    cpu, mjx = elbow_pair
    lo, hi = elbow.mj_model.actuator_lengthrange.T
    servo = Servo(20.0, 0.5, hi - lo)
    state = cpu.layout.pack(np.radians([[0.0, 40.0], [10.0, 60.0], [-20.0, 90.0], [5.0, 20.0]]))
    sig = cpu.forward(state)
    rng = np.random.default_rng(2)
    goals = [lo + rng.uniform(0.3, 0.7, (4, elbow.n_muscles)) * (hi - lo) for _ in range(8)]
    results = {}
    for name, phys in (("cpu", cpu), ("mjx", mjx)):
        s, length, velocity = state, np.asarray(sig.muscle_length), np.asarray(sig.muscle_velocity)
        excitations = []
        for goal in goals:
            s, out = phys.step_servo(s, np.concatenate([length, velocity, goal, goal], axis=1), 5, servo)
            length, velocity = np.asarray(out.muscle_length), np.asarray(out.muscle_velocity)
            excitations.append(np.asarray(out.excitation))
        results[name] = (np.asarray(s), np.stack(excitations))
    np.testing.assert_allclose(results["mjx"][1], results["cpu"][1], atol=2e-3)
    np.testing.assert_allclose(results["mjx"][0][:, 1:3], results["cpu"][0][:, 1:3], atol=1e-3)  # qpos
    assert np.ptp(results["cpu"][1]) > 0.1  # the servo drove the muscles
