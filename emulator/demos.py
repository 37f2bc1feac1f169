"""Shipped demo motions and the data they are derived from.

Demo motions live in ``datasets/motions/<model>/<name>.npz`` (the project's motion format),
built by :func:`build_demo_motions` from data shipped in ``datasets/`` (never fetched):

=============  ===========================  =====================================================
model          motion                       derived from
=============  ===========================  =====================================================
elbow          ``elbow_flexion``            analytic minimum-jerk cycle (generated, not measured)
myolegs        ``walk``, ``run``            Falisse et al. 2019 gait-cycle averaged OpenSim IK
myofullbody    ``walk``, ``run``            (walking: full cycle; running: half cycle + mirror)
=============  ===========================  =====================================================

``python -m emulator.demos`` rebuilds them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .formats.base import CoordinateTable
from .formats.opensim import is_translation
from .models import MuscleModel, load_model
from .motion import MotionError, ReferenceMotion, _free_root_adr, elbow_flexion_cycle
from .retarget import coordinates_to_motion

__all__ = [
    "DemoMotion",
    "build_demo_motions",
    "datasets_dir",
    "find_demo",
    "list_demos",
    "load_demo",
    "resolve_motion",
]

FALISSE_DIR = "walking-falisse2019"
DEMO_FPS = 100.0


def datasets_dir() -> Path:
    """The shipped ``datasets/`` directory: ``$MS_DIVERSITY_DATASETS``, the installed package data
    (``emulator/_datasets``), or the source checkout's ``datasets/``."""
    env = os.environ.get("MS_DIVERSITY_DATASETS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for cand in (here / "_datasets", here.parent / "datasets"):
        if (cand / "motions").is_dir():
            return cand
    raise FileNotFoundError(
        "shipped datasets not found (looked in emulator/_datasets and the source checkout's datasets/); "
        "set MS_DIVERSITY_DATASETS to the datasets directory"
    )


def _average_ik_table(path: Path) -> CoordinateTable:
    """An ``IK_average_*.mat`` table of Falisse et al. (``Qsall.data``, degrees) as coordinates."""
    import scipy.io as sio

    q = sio.loadmat(path, squeeze_me=True, struct_as_record=False)["Qsall"]
    names = [str(c) for c in q.colheaders]
    data = np.asarray(q.data, dtype=float)
    if names[0] != "time":
        raise MotionError(f"{path}: first column should be 'time', got {names[0]!r}")
    cols = tuple(names[1:])
    vals = data[:, 1:].copy()
    rot = np.array([not is_translation(n) for n in cols])
    vals[:, rot] = np.radians(vals[:, rot])
    time = data[:, 0]
    # the table's time column is rounded to 3 decimals; rebuild it from the stated range
    time = np.linspace(time[0], time[-1], len(time))
    return CoordinateTable(cols, vals, time, str(path), {"format": "falisse-average-ik", "in_degrees": True})


def _quiet(fn, *a, **k):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*a, **k)


def walking_cycle(model: MuscleModel, data_dir: Path | None = None) -> ReferenceMotion:
    """One measured walking cycle (right heel strike to the next) on ``model``, looped."""
    d = (data_dir or datasets_dir()) / FALISSE_DIR
    table = _average_ik_table(d / "IK_average_walking_FGC.mat")
    mot = _quiet(coordinates_to_motion, table, model, name="walk", floor="always")
    cyc = mot.as_cycle(model, drop_last=True).resample(model, DEMO_FPS)
    return cyc._replace(
        source="Falisse et al. 2019 (MIT), IK_average_walking_FGC.mat: gait-cycle average of OpenSim IK, measured",
        meta=dict(cyc.meta, derived="coordinates_to_motion + as_cycle(drop_last) + resample 100 Hz"),
    )


def running_cycle(model: MuscleModel, data_dir: Path | None = None) -> ReferenceMotion:
    """One measured running cycle on ``model``: the averaged half cycle, then its mirror image."""
    d = (data_dir or datasets_dir()) / FALISSE_DIR
    table = _average_ik_table(d / "IK_average_running_HGC.mat")
    half = _quiet(coordinates_to_motion, table, model, name="run", floor="lowest")
    first = half.slice(0, half.n_frames - 1)  # the last row is the mirrored first row, one half later
    second = first.mirror(model)
    a = _free_root_adr(model)
    q2 = second.qpos.copy()
    q2[:, a : a + 3] += half.qpos[-1, a : a + 3] - q2[0, a : a + 3]
    q = np.vstack([first.qpos, q2])
    full = ReferenceMotion(
        "run", model.name, half.joint_names, q, half.fps, False, half.source, dict(half.meta)
    )
    cyc = full.as_cycle(model).resample(model, DEMO_FPS)
    return cyc._replace(
        source="Falisse et al. 2019 (MIT), IK_average_running_HGC.mat: half-cycle average of OpenSim IK, measured",
        meta=dict(
            cyc.meta,
            derived="coordinates_to_motion + mirror for the second half + as_cycle + resample 100 Hz",
        ),
    )


_DEMOS = {
    "elbow": {"elbow_flexion": lambda model, d: elbow_flexion_cycle(model)},
    "myolegs": {"walk": walking_cycle, "run": running_cycle},
    "myofullbody": {"walk": walking_cycle, "run": running_cycle},
}


def build_demo_motions(out_dir: Path | None = None, models: list[str] | None = None) -> list[Path]:
    """(Re)build the shipped demo motions; returns the files written."""
    base = datasets_dir()
    out_dir = out_dir or base / "motions"
    written = []
    for model_name, demos in _DEMOS.items():
        if models and model_name not in models:
            continue
        model = load_model(model_name)
        for name, fn in demos.items():
            mot = fn(model, base)
            mot = mot._replace(name=name, meta=dict(mot.meta, model_hash=model.content_hash))
            written.append(mot.save(out_dir / model_name / f"{name}.npz"))
    return written


# The paper's repertoire from DeepMimic's clips (datasets/deepmimic/, zlib): clip -> loops?
# walk and run already name the measured cycles, so their DeepMimic versions carry a suffix.
REPERTOIRE = {
    "walk": True,
    "run": True,
    "dance_a": True,
    "dance_b": True,
    "jump": False,
    "cartwheel": False,
    "spinkick": False,
    "backflip": False,
}
LOWER_BODY_CLIPS = ("walk", "run", "jump")
DEEPMIMIC_DIR = "deepmimic"


def repertoire_name(clip: str) -> str:
    return f"{clip}_deepmimic" if clip in ("walk", "run") else clip


def deepmimic_clip(
    model: MuscleModel, clip: str, data_dir: Path | None = None
) -> tuple[ReferenceMotion, dict]:
    """A DeepMimic clip retargeted onto ``model`` by keypoint IK (map ``deepmimic``), scaled to
    the model, one vertical shift to the floor (flight phases kept), looped clips closed into a
    cycle, resampled to 100 Hz. Returns (motion, retargeting report)."""
    from .retarget import load_motion

    path = (data_dir or datasets_dir()) / DEEPMIMIC_DIR / f"humanoid3d_{clip}.txt"
    loop = REPERTOIRE.get(clip, False)
    mot, report = _quiet(
        load_motion, path, model, point_map="deepmimic", name=repertoire_name(clip), floor="shift"
    )
    if loop:
        mot = mot.as_cycle(model)
    # the seam ramp and resampling can overshoot a limit by a little: clip (couplings follow)
    mot = mot.resample(model, DEMO_FPS).check_ranges(model, on_violation="clip")
    mot = mot._replace(
        source=f"DeepMimic humanoid3d_{clip}.txt (pybullet_data, zlib): motion capture, keypoint IK",
        meta=dict(
            mot.meta,
            derived="retarget (map deepmimic, floor shift)"
            + (" + as_cycle" if loop else "")
            + " + resample 100 Hz",
            keypoint_residual_cm=report["keypoint_residual_cm"],
        ),
    )
    return mot, report


def build_repertoire(out_dir: Path | None = None, models: list[str] | None = None, clips=None) -> list[Path]:
    """(Re)build the DeepMimic repertoire: every clip on ``myofullbody``, the lower-body ones on
    ``myolegs``; prints each clip's keypoint residual."""
    base = datasets_dir()
    out_dir = out_dir or base / "motions"
    written = []
    for model_name, names in (("myofullbody", tuple(REPERTOIRE)), ("myolegs", LOWER_BODY_CLIPS)):
        if models and model_name not in models:
            continue
        model = load_model(model_name)
        for clip in names:
            if clips and clip not in clips:
                continue
            mot, report = deepmimic_clip(model, clip, base)
            mot = mot._replace(meta=dict(mot.meta, model_hash=model.content_hash))
            written.append(mot.save(out_dir / model_name / f"{repertoire_name(clip)}.npz"))
            r = report["keypoint_residual_cm"]
            print(
                f"{model_name:12s} {clip:10s} keypoint residual mean {r['mean']:.2f} cm, max {r['max']:.2f} cm"
            )
    return written


class DemoMotion(dict):
    """One row of :func:`list_demos`: name, model, file, n_frames, fps, duration_s, loop, source."""


# Each built-in model's natural motion: what a run or an env uses when it names no motion.
DEFAULT_MOTIONS = {"elbow": "elbow_flexion", "myolegs": "walk", "myofullbody": "walk"}


def list_demos() -> list[DemoMotion]:
    """The shipped demo motions (read from their files, not from a table)."""
    out = []
    root = datasets_dir() / "motions"
    for f in sorted(root.glob("*/*.npz")):
        mot = ReferenceMotion.load(f)
        out.append(
            DemoMotion(
                name=mot.name,
                model=f.parent.name,
                file=str(f),
                n_frames=mot.n_frames,
                fps=mot.fps,
                duration_s=round(mot.duration_s, 4),
                loop=mot.loop,
                source=mot.source,
            )
        )
    return out


def find_demo(name: str, model: str) -> Path:
    """The file of demo ``name`` for ``model``; a clear error listing what exists."""
    f = datasets_dir() / "motions" / model / f"{name}.npz"
    if not f.is_file():
        have = [f"{d['model']}/{d['name']}" for d in list_demos()]
        raise MotionError(f"no demo motion {name!r} for model {model!r}; shipped: {have}")
    return f


def resolve_motion(spec: str | Path, model: MuscleModel, **options) -> tuple[ReferenceMotion, dict]:
    """A motion for ``model`` from a file path (any supported format) or a shipped demo name."""
    from .retarget import load_motion

    p = Path(spec)
    if p.suffix and p.exists():
        return load_motion(p, model, **options)
    if p.suffix:
        raise MotionError(f"{spec}: no such motion file")
    return load_demo(str(spec), model), {"route": "shipped demo"}


def load_demo(name: str, model: MuscleModel) -> ReferenceMotion:
    """A shipped demo motion on ``model`` (validated against the model)."""
    return ReferenceMotion.load(find_demo(name, model.name), model)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["repertoire"]:
        for p in build_repertoire(models=args[1:] or None):
            print(p)
    else:
        for p in build_demo_motions(models=args or None):
            print(p)
