import json
import subprocess
import sys

import numpy as np
import pytest

from emulator.models import ModelError, describe, load_model


@pytest.mark.parametrize(
    "name, n_muscles, root_kind, has_feet",
    [("elbow", 6, "fixed", False), ("myolegs", 80, "free", True), ("myofullbody", 416, "free", True)],
)
def test_builtin_models_report_named_parts(name, n_muscles, root_kind, has_feet):
    m = load_model(name)
    d = describe(m)
    assert d["n_muscles"] == n_muscles == len(d["muscles"]) == len(set(d["muscles"]))
    assert m.root_kind == root_kind
    assert m.has_feet == has_feet
    assert d["n_dof"] == m.mj_model.nv
    assert len(d["joints"]) == d["n_joints"] == m.mj_model.njnt
    if has_feet:
        assert set(d["feet"]) == {"left", "right"}
    # every tracked joint is a named hinge/slide joint with an ordered range
    for j in m.tracked_joints:
        assert j.kind in ("hinge", "slide") and j.range[0] <= j.range[1]
    assert m.body_weight_n == pytest.approx(m.mass_kg * 9.81, rel=1e-3)
    # the free root's place in qpos: its position is the standing pose's pelvis height, z up
    if root_kind == "free":
        a = m.free_root_qpos
        assert 0.8 < m.standing_qpos[a + 2] < 1.2
        np.testing.assert_allclose(np.linalg.norm(m.standing_qpos[a + 3 : a + 7]), 1.0, atol=1e-6)
    else:
        assert m.free_root_qpos is None


def test_myolegs_details(myolegs):
    names = [j.name for j in myolegs.tracked_joints]
    # knee translations/rotations are driven by joint equalities: not tracked separately
    assert "knee_angle_r" in names and "knee_angle_translation1_r" not in names
    assert len(names) == 14
    assert myolegs.feet == {"left": ("calcn_l",), "right": ("calcn_r",)}
    assert 60 < myolegs.mass_kg < 90


def test_elbow_has_no_feet_and_says_so(elbow):
    with pytest.raises(ModelError, match="no feet"):
        elbow.require_feet()


def test_model_by_path_loads_and_reports_muscles():
    import myo_sim

    path = myo_sim.get_xml_path("myoelbow_2dof")
    m = load_model(path)
    assert m.muscles == ("TRIlong", "TRIlat", "TRImed", "BIClong", "BICshort", "BRA")
    assert m.source == str(path)


@pytest.mark.parametrize(
    "text, match",
    [
        (
            "<mujoco><worldbody><body><joint/><geom size='.1'/></body></worldbody></mujoco>",
            "no muscle actuators",
        ),
        ("this is not xml", "not a readable MJCF model"),
    ],
)
def test_bad_model_files_raise_errors_naming_the_file(tmp_path, text, match):
    p = tmp_path / "bad_model.xml"
    p.write_text(text)
    with pytest.raises(ModelError, match=match) as info:
        load_model(p)
    assert "bad_model.xml" in str(info.value)


def test_unknown_name_lists_builtins():
    with pytest.raises(ModelError, match="elbow, myolegs, myofullbody"):
        load_model("no_such_model")


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "diversity.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_models_json_lists_builtins():
    r = _cli("models", "--json")
    assert r.returncode == 0, r.stderr
    records = {d["name"]: d for d in json.loads(r.stdout)}
    assert {k: v["n_muscles"] for k, v in records.items()} == {"elbow": 6, "myolegs": 80, "myofullbody": 416}
    for rec in records.values():
        for key in ("name", "n_muscles", "n_joints", "n_dof", "mass_kg", "muscles", "joints", "feet"):
            assert key in rec


def test_cli_bad_model_file_is_one_line_exit_2(tmp_path):
    p = tmp_path / "nomuscle.xml"
    p.write_text("<mujoco><worldbody><geom type='plane' size='1 1 1'/></worldbody></mujoco>")
    r = _cli("models", str(p), "--json")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "nomuscle.xml" in lines[0] and "no muscle actuators" in lines[0]
    r = _cli("--debug", "models", str(p))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_cli_describes_model_file(tmp_path):
    import myo_sim

    r = _cli("models", str(myo_sim.get_xml_path("myoelbow_2dof")), "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["n_muscles"] == 6 and rec["joints"] == ["r_shoulder_elev", "r_elbow_flex"]
    assert np.isclose(rec["mass_kg"], load_model("elbow").mass_kg, atol=1e-3)


def test_any_myo_sim_model_by_prefix():
    m = load_model("myo-sim:myoelbow_2dof")
    assert m.n_muscles == 6 and m.source == "myo-sim:myoelbow_2dof"
    with pytest.raises(ModelError, match="not a myo-sim model"):
        load_model("myo-sim:nope")


def test_content_hash_does_not_depend_on_install_location():
    from emulator.models import _portable_xml

    a = '<compiler meshdir="/home/a/.venv/lib/site-packages/myo_sim/meshes"/><mesh file="/x/y/bone.stl"/>'
    b = '<compiler meshdir="/opt/env/lib/site-packages/myo_sim/meshes"/><mesh file="/z/bone.stl"/>'
    assert _portable_xml(a) == _portable_xml(b)
    assert _portable_xml(a) != _portable_xml(a.replace("bone.stl", "skull.stl"))


def test_every_python_package_is_listed_for_the_wheel():
    """pyproject lists packages explicitly (datasets/ is mapped into emulator._datasets): a new
    sub-package missing from that list would be absent from installed wheels."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(root).parts)
        for top in ("emulator", "diversity")
        for p in (root / top).rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
