"""The bad-file sweep through the commands a user types: every motion format through
`diversity motions` and `diversity retarget`, every EMG and GRF format through `diversity
analyze`, and files that are not stores through `diversity info`. Each case exits 2 with one
message naming the file, no traceback, within 60 s; nothing is written and no store changes.
(Damaged stores through every command: tests/test_store.py.)"""

import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from diversity.cli import app

from .test_bad_files import MEASURED, SUFFIXES, _biomdp_c3d, _emg_sto, _grf_mot, _sources
from .test_store import _tree_bytes

KINDS = ("cut", "noise", "empty", "folder", "missing")


def _bad(folder, name: str, data: bytes, kind: str):
    """A bad version of ``data`` named ``<kind>_<name>``: cut in the middle, real start then
    random bytes, empty, a directory, or a path that does not exist."""
    p = folder / f"{kind}_{name}"
    if kind == "cut":
        p.write_bytes(data[: len(data) // 2])
    elif kind == "noise":
        p.write_bytes(data[:64] + np.random.default_rng(len(data)).bytes(512))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "folder":
        p.mkdir()
    return p


def _check(args, bad, out=None):
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, [str(a) for a in args])
    took = time.perf_counter() - t0
    msg = res.output.strip()
    assert res.exit_code == 2, (args, res.exit_code, msg, res.exception)
    assert "Traceback" not in msg and len(msg.splitlines()) == 1, (args, msg)
    assert bad.name in msg, (args, msg)
    assert took < 60.0, (args, took)
    if out is not None:
        assert not out.exists(), (args, "wrote output")


@pytest.fixture(scope="module")
def motion_sources(tmp_path_factory):
    return _sources(tmp_path_factory.mktemp("motion_src"))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_bad_motion_files_through_motions_retarget_and_info(motion_sources, tmp_path, suffix):
    out = tmp_path / "out.npz"
    for kind in KINDS:
        bad = _bad(tmp_path, f"walk{suffix}", motion_sources[suffix], kind)
        _check(["motions", bad], bad)
        _check(["retarget", bad, "--model", "myolegs", "--out", out], bad, out)
        _check(["info", bad], bad)  # a file (or nothing) where a store should be


@pytest.fixture(scope="module")
def measured_sources(tmp_path_factory):
    from .conftest import DATASETS

    d = tmp_path_factory.mktemp("measured_src")
    walking = DATASETS / "measured" / "walking"
    return {
        "emg.csv": (walking / "emg.csv").read_bytes(),
        "grf.csv": (walking / "grf.csv").read_bytes(),
        "emg.sto": _emg_sto(d / "emg.sto").read_bytes(),
        "grf.mot": _grf_mot(d / "grf.mot").read_bytes(),
        "emg.c3d": _biomdp_c3d().read_bytes(),
    }


@pytest.mark.parametrize("kind", MEASURED)
def test_bad_emg_and_grf_files_through_analyze(legs_store, measured_sources, tmp_path, kind):
    before = _tree_bytes(legs_store)
    out = tmp_path / "analysis"
    flag = "--emg" if kind.startswith("emg") else "--grf"
    for bad_kind in KINDS:
        bad = _bad(tmp_path, kind, measured_sources[kind], bad_kind)
        _check(["analyze", legs_store, "--out", out, flag, bad], bad, out)
    assert _tree_bytes(legs_store) == before


def test_a_damaged_c3d_through_the_installed_command_exits_2_not_a_signal(tmp_path):
    """The real entry point in its own process: a damaged C3D ends in exit 2, not a signal."""
    data = _biomdp_c3d().read_bytes()
    bad = tmp_path / "cut.c3d"
    bad.write_bytes(data[:700] + np.random.default_rng(1).bytes(4096))
    res = subprocess.run(
        [sys.executable, "-m", "diversity.cli", "motions", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "cut.c3d" in res.stderr and "Traceback" not in res.stderr


def test_a_pickled_object_in_an_npz_is_never_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return ((tmp_path / "pickle-was-loaded").mkdir, ())

    bad = tmp_path / "evil.npz"
    np.savez(bad, qpos=np.array([Boom()], dtype=object), fps=np.array(100.0))
    out = tmp_path / "out.npz"
    _check(["motions", bad], bad)
    _check(["retarget", bad, "--model", "myolegs", "--out", out], bad, out)
    assert not (tmp_path / "pickle-was-loaded").exists()
