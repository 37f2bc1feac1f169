"""Contact IK of the measured walks: the feet are on the floor when the gait events say, do not
slide there, clear it in swing, and the measured joint angles move by a few degrees only."""

import mujoco
import numpy as np
import pytest

from emulator.motion.reference import _apply_offset, _cycle_offset
from emulator.motion.retarget import RetargetError
from emulator.motion.retarget.contact import ContactEvents, ContactFit, ground_on_contacts, kinematic_events
from emulator.motion.retarget.ground import _foot_sides
from emulator.motion.sources import load_demo
from tests.conftest import DATASETS


def _feet(model, motion):
    """Per foot ``[frame]`` lowest collision-geom height and hindfoot height over the floor (m),
    and ``[frame + 1, 2]`` the toe body's horizontal position (the wrap frame one stride on)."""
    m = model.mj_model
    d = mujoco.MjData(m)
    fromto = np.zeros(6)
    q, n = motion.qpos, motion.n_frames
    off = _cycle_offset(model, q)
    out = {}
    for foot, (hind, toes, joint) in zip(model.feet, _foot_sides(m, model), strict=True):
        low, heel, xy = [], [], []
        for i in range(n + 1):
            d.qpos[:] = q[i] if i < n else _apply_offset(model, q[0], off)
            mujoco.mj_kinematics(m, d)
            h = [mujoco.mj_geomDistance(m, d, g, 0, 1.0, fromto) for g in hind + toes]
            low.append(min(h))
            heel.append(min(h[: len(hind)]))
            xy.append(d.xpos[m.jnt_bodyid[joint], :2].copy())
        out[foot] = (np.array(low[:n]), np.array(heel[:n]), np.array(xy))
    return out


@pytest.mark.parametrize("name", ["walk", "walk_trial"])
def test_shipped_walks_have_their_feet_on_the_floor_at_their_gait_events(myolegs, name):
    mot = load_demo(name, myolegs)
    g = mot.meta["ground"]
    assert g["mode"] == "contact_ik"
    events = ContactEvents(g["strike"], g["toe_off"])
    fit = ContactFit()
    n = mot.n_frames
    feet = _feet(myolegs, mot)
    for foot, (low, heel, xy) in feet.items():
        s = np.array([events.since_strike(foot, i / n) for i in range(n)])
        stance = events.stance(foot)
        assert 0.5 < stance < 0.7, (foot, stance)  # walking: 55-65 % of the cycle on the floor
        held = (s >= 0) & (s <= stance - fit.ramp_frames / n)
        assert np.abs(low[held]).max() < 1e-3, (foot, "off the floor in stance")
        strike = int(round(events.strike[foot] * n)) % n
        assert abs(heel[strike]) < 1e-3, (foot, "heel up at its strike", heel[strike])
        u = (s % 1.0 - stance) / (1 - stance)
        mid_swing = (u > 0.25) & (u < 0.75)
        assert low[mid_swing].min() > 0.95 * fit.swing_clearance_m, (foot, low[mid_swing].min())
        assert low.min() > -1e-3  # never through the floor
        flat = (s > 0.05) & (s < stance - 0.05)
        slide = np.linalg.norm(np.diff(xy, axis=0), axis=1)[flat] * mot.fps
        assert slide.mean() < 0.01, (foot, "toes slide", slide.mean())
    changes = mot.meta["contact_fit"]["joint_change_max_deg"]
    assert max(v for k, v in changes.items() if not k.startswith("mtp")) < 10.0, changes
    assert max(mot.meta["contact_fit"]["root_rotation_change_max_deg"]) < 2.0


def test_the_averaged_walks_events_match_the_measured_grf(myolegs):
    """The events the build grounded the averaged walk on (its own kinematics) against the
    measured force plates' (right foot): toe-off within 4 % of the cycle; the foot comes to rest
    a few % after the plates' heel strike (it is still swinging forward then); the left foot half
    a cycle later. Timed again on the grounded walk, the events stay within 3 %."""
    walk = load_demo("walk", myolegs)
    built = ContactEvents(walk.meta["ground"]["strike"], walk.meta["ground"]["toe_off"])
    grf = np.genfromtxt(
        DATASETS / "measured" / "walking" / "grf.csv", delimiter=",", names=True, skip_header=1
    )
    late = grf["percent"] > 30
    grf_toe_off = grf["percent"][late][np.argmax(grf["vertical"][late] < 0.05)] / 100  # 5 % body weight
    assert grf_toe_off == pytest.approx(0.646, abs=0.01)
    # the toes speed up a little before the force is gone
    assert built.toe_off["right"] == pytest.approx(grf_toe_off, abs=0.04)
    assert 0.0 <= built.strike["right"] < 0.08
    assert (built.strike["left"] - built.strike["right"]) % 1.0 == pytest.approx(0.5, abs=0.03)
    assert (built.toe_off["left"] - built.toe_off["right"]) % 1.0 == pytest.approx(0.5, abs=0.03)
    again = kinematic_events(myolegs, walk)
    for foot in built.strike:
        for a, b in ((again.strike, built.strike), (again.toe_off, built.toe_off)):
            assert abs((a[foot] - b[foot] + 0.5) % 1.0 - 0.5) < 0.03, (foot, again, built)


def test_contact_ik_errors_name_the_problem(myolegs):
    walk = load_demo("walk", myolegs)
    ev = kinematic_events(myolegs, walk)
    with pytest.raises(RetargetError, match="needs a cycle"):
        ground_on_contacts(myolegs, walk._replace(loop=False), ev)
    with pytest.raises(RetargetError, match=r"name feet \['l', 'r'\].*has \['left', 'right'\]"):
        ground_on_contacts(myolegs, walk, ContactEvents({"r": 0.0, "l": 0.5}, {"r": 0.6, "l": 0.1}))
    standing = walk._replace(qpos=np.repeat(walk.qpos[:1], walk.n_frames, axis=0))
    with pytest.raises(RetargetError, match="gait events need walking"):
        kinematic_events(myolegs, standing)
    with pytest.raises(RetargetError, match="need a cycle"):
        kinematic_events(myolegs, walk._replace(loop=False))


def test_cli_retarget_floor_contact_grounds_a_measured_stride(tmp_path, myolegs):
    """`diversity retarget ... --loop --floor contact`: a user's walking stride (here the lab
    trial from its left heel strike, 1.05 s) gets the shipped walks' treatment."""
    import json

    from typer.testing import CliRunner

    from diversity.cli import app
    from emulator.motion.reference import ReferenceMotion
    from tests.conftest import FALISSE

    runner = CliRunner()
    out = tmp_path / "stride.npz"
    args = ["retarget", str(FALISSE / "IK_gait_14_mtp.mot"), "--model", "myolegs", "--out", str(out)]
    res = runner.invoke(app, [*args, "--floor", "contact"])
    assert res.exit_code == 2 and "--floor contact grounds a walking cycle: give --loop" in res.output
    assert not out.exists()
    res = runner.invoke(
        app, [*args, "--start", "0.15", "--stop", "1.20", "--loop", "--floor", "contact", "--json"]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert (
        rep["gait_events"]["mode"] == "contact_ik" and rep["contact_fit"]["stance_height_error_max_mm"] < 1.0
    )
    assert rep["gait_events"]["strike"]["left"] < 0.08  # the cut starts at the left heel strike
    mot = ReferenceMotion.load(out, myolegs)
    events = ContactEvents(mot.meta["ground"]["strike"], mot.meta["ground"]["toe_off"])
    n = mot.n_frames
    for foot, (low, heel, _) in _feet(myolegs, mot).items():
        s = np.array([events.since_strike(foot, i / n) for i in range(n)])
        held = (s >= 0) & (s <= events.stance(foot) - ContactFit().ramp_frames / n)
        assert np.abs(low[held]).max() < 1e-3 and abs(heel[int(round(events.strike[foot] * n)) % n]) < 1e-3
