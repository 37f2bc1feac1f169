"""Bad input never crashes: files cut at any byte, random bytes, lying headers, empty files,
directories and missing paths, through every motion reader. Each case either reads (a cut that
only removed trailing whitespace) or ends in one MotionError/FormatError that names the file;
never another exception, a signal or a hang. Property-based (hypothesis), on real files."""

import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.motion.formats import read
from emulator.motion.reference import MotionError

from .conftest import DATASETS, FALISSE
from .test_opensim_trial import _write as _write_sto

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


class _Blobs(dict):
    """The source files' bytes (short repr: hypothesis prints its arguments on a failure)."""

    def __repr__(self):
        return f"<{len(self)} source files>"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return _Blobs(_sources(tmp_path_factory.mktemp("src")))


SUFFIXES = (".trc", ".mot", ".c3d", ".npz", ".txt", ".bvh")
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _outcome(path: pathlib.Path, reader=read, error=MotionError) -> str:
    """'ok' or 'refused' (one ``error`` naming the file, on one line); anything else fails the
    test (the exception propagates)."""
    try:
        reader(path)
        return "ok"
    except error as e:
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


@pytest.fixture(scope="module")
def amass(tmp_path_factory):
    """An AMASS-layout pose file (poses, trans, betas, mocap_framerate; 40 frames) and the small
    SMPL-style body model it is read through (tests/test_formats.py's 4-joint chain)."""
    from .test_formats import _tiny_body_model

    d = tmp_path_factory.mktemp("amass")
    bm = d / "model.npz"
    _tiny_body_model(bm)
    rng = np.random.default_rng(0)
    motion = d / "clip_poses.npz"
    np.savez(motion, poses=rng.normal(0, 0.3, (40, 12)), trans=rng.normal(0, 0.1, (40, 3)),
             betas=np.array([1.0, 0.0]), gender="neutral", mocap_framerate=120.0)  # fmt: skip
    return motion.read_bytes(), bm


@SETTINGS
@given(fraction=st.floats(0.0, 1.0, exclude_max=True), blob=st.binary(max_size=512), noise=st.booleans())
def test_amass_files_cut_or_noisy_are_read_or_refused_by_name(amass, tmp_path, fraction, blob, noise):
    data, bm = amass
    cut = int(fraction * len(data))
    p = tmp_path / "clip_poses.npz"
    p.write_bytes(data[:cut] + (blob if noise else b""))
    outcome = _outcome(p, lambda f: read(f, body_model=bm))
    if not noise:
        assert outcome == "refused", f"AMASS file cut at byte {cut}/{len(data)} was accepted"
    empty = tmp_path / "empty_poses.npz"
    empty.write_bytes(b"")
    assert _outcome(empty, lambda f: read(f, body_model=bm)) == "refused"


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


# ---------------------------------------------------------------- measured EMG and GRF readers
def _grf_mot(dest: pathlib.Path) -> pathlib.Path:
    """The real force-plate .mot (Falisse 2019), rows 2800-4299: both feet in stance at times."""
    lines = (FALISSE / "GRF_gait_14.mot").read_text().splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if line.strip().lower() == "endheader")
    rows = lines[end + 2 + 2800 : end + 2 + 4300]
    head = [f"nRows={len(rows)}\n" if line.lower().startswith("nrows") else line for line in lines[: end + 2]]
    dest.write_text("".join(head + rows))
    return dest


def _emg_sto(dest: pathlib.Path) -> pathlib.Path:
    """The real Vicon C3D's EMG channels (2000 Hz, first 0.6 s) as an OpenSim .sto."""
    from emulator.motion.formats.c3d import read_c3d_analogs

    a = read_c3d_analogs(_biomdp_c3d())
    names = [n for n in a.names if n.startswith("EMG")][:6]
    x = np.stack([a.channel(n) for n in names], axis=1)[:1200]
    _write_sto(dest, "emg", names, np.arange(len(x)) / a.fps, x)
    return dest


def _measured_readers():
    from diversity.analysis.emg import read_emg_c3d
    from diversity.analysis.measured import read_curve_csv, read_emg_csv
    from diversity.analysis.opensim_trial import read_emg_opensim, read_grf_opensim

    return {
        "emg.csv": read_emg_csv,
        "grf.csv": lambda p: read_curve_csv(p, "direction"),
        "emg.sto": read_emg_opensim,
        "grf.mot": read_grf_opensim,
        "emg.c3d": read_emg_c3d,
    }


MEASURED = ("emg.csv", "grf.csv", "emg.sto", "grf.mot", "emg.c3d")


@pytest.fixture(scope="module")
def measured_sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("measured")
    walking = DATASETS / "measured" / "walking"
    files = {
        "emg.csv": walking / "emg.csv",
        "grf.csv": walking / "grf.csv",
        "emg.sto": _emg_sto(d / "emg.sto"),
        "grf.mot": _grf_mot(d / "grf.mot"),
        "emg.c3d": _biomdp_c3d(),
    }
    return _Blobs({kind: path.read_bytes() for kind, path in files.items()})


def _measured_outcome(kind: str, path: pathlib.Path) -> str:
    """'ok' or 'refused' (one MeasuredError naming the file); anything else fails the test."""
    from diversity.analysis.measured import MeasuredError

    return _outcome(path, _measured_readers()[kind], MeasuredError)


@pytest.mark.parametrize("kind", MEASURED)
def test_measured_sources_read(measured_sources, tmp_path, kind):
    p = tmp_path / kind
    p.write_bytes(measured_sources[kind])
    assert _measured_outcome(kind, p) == "ok"


@pytest.mark.parametrize("kind", MEASURED)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_a_measured_file_cut_at_any_byte_is_read_or_refused_by_name(
    measured_sources, tmp_path, kind, fraction
):
    data = measured_sources[kind]
    cut = int(fraction * len(data))
    p = tmp_path / f"cut_{kind}"
    p.write_bytes(data[:cut])
    outcome = _measured_outcome(kind, p)
    if kind != "emg.c3d" and data[cut:].strip():  # (a C3D's trailing blocks may be padding)
        assert outcome == "refused", f"{kind} cut at byte {cut}/{len(data)} was accepted"


@pytest.mark.parametrize("kind", MEASURED)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(min_size=0, max_size=2048), keep=st.integers(0, 600))
def test_measured_random_bytes_are_refused_by_name(measured_sources, tmp_path, kind, blob, keep):
    p = tmp_path / f"noise_{kind}"
    p.write_bytes(measured_sources[kind][:keep] + blob)
    _measured_outcome(kind, p)


@pytest.mark.parametrize("kind", MEASURED)
def test_measured_empty_files_directories_missing_paths_nan_and_lies(measured_sources, tmp_path, kind):
    empty = tmp_path / f"empty_{kind}"
    empty.write_bytes(b"")
    folder = tmp_path / f"folder_{kind}"
    folder.mkdir()
    for p in (empty, folder, tmp_path / f"missing_{kind}"):
        assert _measured_outcome(kind, p) == "refused", p
    if kind == "emg.c3d":
        return
    text = measured_sources[kind].decode().splitlines(keepends=True)
    first = next(i for i, line in enumerate(text) if line[:1].isdigit() or line[:1] == " ") + 2
    for bad in ("inf",) if kind.endswith(".csv") else ("nan", "inf"):  # (a csv's nan: a missing sample)
        rows = list(text)
        sep = "," if kind.endswith(".csv") else "\t"
        parts = rows[first].rstrip("\n").split(sep)
        parts[2] = bad
        rows[first] = sep.join(parts) + "\n"
        p = tmp_path / f"{bad}_{kind}"
        p.write_text("".join(rows))
        assert _measured_outcome(kind, p) == "refused", (bad, kind)
    rows = list(text)
    rows[first], rows[first + 1] = rows[first + 1], rows[first]  # time/percent goes backwards
    p = tmp_path / f"backwards_{kind}"
    p.write_text("".join(rows))
    assert _measured_outcome(kind, p) == "refused", kind
    if not kind.endswith(".csv"):  # OpenSim headers promise a row count
        lying = [
            line.replace(line.split("=")[1], "99999\n") if line.lower().startswith("nrows") else line
            for line in text
        ]
        p = tmp_path / f"lying_{kind}"
        p.write_text("".join(lying))
        assert _measured_outcome(kind, p) == "refused", kind


def test_a_crashing_c3d_parser_is_an_error_and_the_next_file_still_reads(measured_sources, tmp_path):
    from emulator.motion.formats import c3d

    worker = c3d._worker()
    worker.proc.kill()  # what a segfault inside ezc3d looks like from here
    worker.proc.wait()
    assert worker.parse(str(_biomdp_c3d()), timeout_s=5.0) is None
    assert len(c3d.read_c3d(_biomdp_c3d()).names) > 10  # a new child takes over


def test_c3d_reads_from_a_script_on_stdin(tmp_path):
    """The parsing child never re-imports the caller's __main__ (``python -``, a script without
    a main guard, a notebook)."""
    import subprocess
    import sys

    code = f"from emulator.motion.formats.c3d import read_c3d_analogs\nprint(read_c3d_analogs({str(_biomdp_c3d())!r}).fps)\n"
    out = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "2000.0", out.stderr[-2000:]
