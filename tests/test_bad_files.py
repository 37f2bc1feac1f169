"""Bad input never crashes: files cut at any byte, random bytes, lying headers, empty files,
directories and missing paths, through every motion reader. Each case either reads (a cut that
only removed trailing whitespace) or ends in one MotionError/FormatError that names the file;
never another exception, a signal or a hang. Property-based (hypothesis), on real files."""

import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.formats import read
from emulator.motion import MotionError

from .conftest import DATASETS, FALISSE

BVH = (
    (pathlib.Path(__file__).parent / "test_formats.py")
    .read_text()
    .split('BVH = """', 1)[1]
    .split('"""', 1)[0]
)


def _biomdp_c3d():
    import biomdp

    return pathlib.Path(biomdp.__file__).parent / "tests" / "datasets" / "vicon_CMJ_kinem_kinet_emg.c3d"


def _sources(tmp_dir: pathlib.Path) -> dict[str, bytes]:
    bvh = tmp_dir / "src.bvh"
    bvh.write_text(BVH)
    files = {
        ".trc": FALISSE / "gait_14.trc",
        ".mot": FALISSE / "IK_gait_14_mtp.mot",
        ".c3d": _biomdp_c3d(),
        ".npz": DATASETS / "motions" / "myolegs" / "walk.npz",
        ".txt": DATASETS / "deepmimic" / "humanoid3d_walk.txt",
        ".bvh": bvh,
    }
    return {suffix: path.read_bytes() for suffix, path in files.items()}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return _sources(tmp_path_factory.mktemp("src"))


SUFFIXES = (".trc", ".mot", ".c3d", ".npz", ".txt", ".bvh")
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _outcome(path: pathlib.Path) -> str:
    """'ok' or 'refused'; anything else fails the test (the exception propagates)."""
    try:
        read(path)
        return "ok"
    except MotionError as e:
        msg = str(e)
        assert str(path) in msg or path.name in msg, f"message does not name the file: {msg}"
        assert "\n" not in msg.strip(), f"not one line: {msg}"
        return "refused"


@pytest.mark.parametrize("suffix", SUFFIXES)
@SETTINGS
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_a_file_cut_at_any_byte_is_read_or_refused_by_name(sources, tmp_path, suffix, fraction):
    data = sources[suffix]
    cut = int(fraction * len(data))
    p = tmp_path / f"cut{suffix}"
    p.write_bytes(data[:cut])
    outcome = _outcome(p)
    if data[cut:].strip():  # real content was lost: the reader must notice, not read less
        assert outcome == "refused", f"{suffix} cut at byte {cut}/{len(data)} was accepted"


@pytest.mark.parametrize("suffix", SUFFIXES)
@SETTINGS
@given(blob=st.binary(min_size=0, max_size=2048), keep=st.integers(0, 600))
def test_random_bytes_are_refused_by_name(sources, tmp_path, suffix, blob, keep):
    p = tmp_path / f"noise{suffix}"
    p.write_bytes(sources[suffix][:keep] + blob)  # a plausible start, then garbage
    _outcome(p)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_empty_files_directories_and_missing_paths(tmp_path, suffix):
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    assert _outcome(empty) == "refused"
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    assert _outcome(folder) == "refused"
    assert _outcome(tmp_path / f"missing{suffix}") == "refused"


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("NumFrames", "9999", "promises NumFrames=9999"),
        ("DataRate", "0", "DataRate=0 must be a positive"),
        ("DataRate", "-100", "DataRate=-100 must be a positive"),
        ("NumMarkers", "3", "NumMarkers=3"),
    ],
)
def test_trc_header_fields_that_lie(sources, tmp_path, field, value, message):
    lines = sources[".trc"].decode().splitlines(keepends=True)
    keys, vals = lines[1].rstrip("\r\n").split("\t"), lines[2].rstrip("\r\n").split("\t")
    vals[keys.index(field)] = value
    lines[2] = "\t".join(vals) + "\n"
    p = tmp_path / "lying.trc"
    p.write_text("".join(lines))
    with pytest.raises(MotionError, match=message):
        read(p)


def test_nan_inf_and_time_going_backwards_are_named(sources, tmp_path):
    text = sources[".mot"].decode().splitlines(keepends=True)
    end = next(i for i, line in enumerate(text) if line.strip().lower() == "endheader") + 2
    for bad, message in (
        (("inf",), "not finite|non-finite|inf"),
        (("nan",), "not finite|non-finite|nan|NaN"),
    ):
        rows = list(text)
        parts = rows[end + 3].split("\t")
        parts[3] = bad[0]
        rows[end + 3] = "\t".join(parts)
        p = tmp_path / f"bad_{bad[0]}.mot"
        p.write_text("".join(rows))
        with pytest.raises(MotionError, match=message):
            read(p)
    rows = list(text)
    rows[end + 2], rows[end + 3] = rows[end + 3], rows[end + 2]
    p = tmp_path / "backwards.mot"
    p.write_text("".join(rows))
    with pytest.raises(MotionError, match="not increasing"):
        read(p)


def test_npz_with_objects_is_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (pathlib.Path("/nonexistent/pickle-was-loaded").mkdir, ())

    p = tmp_path / "evil.npz"
    np.savez(p, qpos=np.array([Boom()], dtype=object), fps=np.array(100.0))
    with pytest.raises(MotionError, match="evil.npz"):
        read(p)
    assert not pathlib.Path("/nonexistent/pickle-was-loaded").exists()
