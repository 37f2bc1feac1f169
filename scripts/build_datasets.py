"""Rebuild the files shipped in ``datasets/`` from the source data shipped beside them.

    python scripts/build_datasets.py motions [MODEL ...]      # elbow_flexion, walk, walk_trial, run
    python scripts/build_datasets.py repertoire [MODEL ...]   # the DeepMimic clips, retargeted
    python scripts/build_datasets.py measured                 # measured/walking/emg.csv, grf.csv

Nothing here runs at run time: the toolkit reads the built files (``emulator.motion.sources``,
``diversity.analysis.measured``); the tests check that a rebuild reproduces them.
"""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path

import numpy as np

from diversity.analysis.measured import GRF_COMPONENTS
from emulator.models import MuscleModel, load_model
from emulator.motion.formats.base import CoordinateTable
from emulator.motion.formats.opensim import is_translation
from emulator.motion.reference import MotionError, ReferenceMotion, _free_root_adr, elbow_flexion_cycle
from emulator.motion.retarget.contact import ground_on_contacts, kinematic_events
from emulator.motion.retarget.coordinates import coordinates_to_motion
from emulator.motion.sources import load_motion
from emulator.paths import deepmimic_dir, falisse_dir, measured_dir_root, motions_dir

DEMO_FPS = 100.0


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*a, **k)


def _on_contacts(model: MuscleModel, cyc: ReferenceMotion) -> ReferenceMotion:
    """The finished cycle with its feet on the floor at its own gait events (contact IK).

    Grounded last: closing the seam (as_cycle) and resampling would smear per-frame changes.
    The events are the cycle's own (each foot's toes slowing below 0.3x / leaving above 0.5x
    the walking speed): on the averaged walk the foot is still swinging forward at 0.9x the
    walking speed at the GRF's heel strike (frame 0) and rests from ~5 % on, so holding it on
    the floor from 0 % would drag it. Its toe-off (62 %) is a little before the plates' force
    falls below 5 % body weight (65 %)."""
    events = kinematic_events(model, cyc)
    grounded, report = ground_on_contacts(model, cyc, events)
    return grounded._replace(meta=dict(grounded.meta, contact_fit=report))


def walking_cycle(model: MuscleModel, data_dir: Path | None = None) -> ReferenceMotion:
    """One measured walking cycle (right heel strike to the next) on ``model``, looped, its feet
    on the floor at its gait events (:func:`_on_contacts`)."""
    d = data_dir or falisse_dir()
    table = _average_ik_table(d / "IK_average_walking_FGC.mat")
    mot = _quiet(coordinates_to_motion, table, model, name="walk", floor="always")
    cyc = _on_contacts(model, mot.as_cycle(model, drop_last=True).resample(model, DEMO_FPS))
    return cyc._replace(
        source="Falisse et al. 2019 (MIT), IK_average_walking_FGC.mat: gait-cycle average of OpenSim IK, measured",
        meta=dict(
            cyc.meta, derived="coordinates_to_motion + as_cycle(drop_last) + resample 100 Hz + contact IK"
        ),
    )


def _first_strikes(grf_path: Path) -> dict[str, float]:
    """Each foot's first heel strike (s) on the force plates of an OpenSim GRF file."""
    from diversity.analysis.gait import gait_events
    from diversity.analysis.opensim_trial import read_grf_opensim

    grf = read_grf_opensim(grf_path, body_mass_kg=62.0)  # the subject's mass sets the contact threshold
    time = np.asarray(grf["time"])
    out = {}
    for side, force in grf["force"].items():
        fz = np.asarray(force)[:, 1]
        strikes = gait_events(fz, float(np.median(np.diff(time))), grf["body_weight_n"], t0=float(time[0]))[
            "heel_strike"
        ]
        if strikes.size:
            out[side] = float(strikes[0])
    return out


def _stride_period(table: CoordinateTable, t0: float, lo: float = 0.9, hi: float = 1.3) -> float:
    """The stride that starts at ``t0``: the lag in [lo, hi] s after which the leg and trunk
    coordinates best repeat their values and velocities (forward progress excluded)."""
    keep = [
        i
        for i, n in enumerate(table.names)
        if n != "pelvis_tx" and not n.startswith(("arm", "elbow", "pro_sup", "wrist"))
    ]
    v = table.values[:, keep]
    dt = float(np.median(np.diff(table.time)))
    vel = np.gradient(v, dt, axis=0)
    i0 = int(np.argmin(np.abs(table.time - t0)))
    lags = [k for k in range(int(round(lo / dt)), int(round(hi / dt)) + 1) if i0 + k < len(table.time)]
    if not lags:
        raise MotionError(f"{table.source}: no whole stride after t={t0:.3f} s")
    cost = [
        np.sqrt(np.mean((v[i0 + k] - v[i0]) ** 2)) + 0.05 * np.sqrt(np.mean((vel[i0 + k] - vel[i0]) ** 2))
        for k in lags
    ]
    return lags[int(np.argmin(cost))] * dt


def walking_trial_cycle(model: MuscleModel, data_dir: Path | None = None) -> ReferenceMotion:
    """One stride of the lab's single walking trial on ``model``, looped, from the right heel strike.

    On ``myolegs`` the averaged cycle (``walk``) sways the centre of mass +/-0.76 cm sideways
    over heels 7.1 cm apart; this trial, same lab and about the same speed, +/-1.1 cm over
    8.4 cm: averaging flattens the sway people balance with. The trial holds one whole stride from the left heel strike on the plates (the right
    foot's next strike is off them), so it is cut there, closed into a cycle and started again at
    the right heel strike, the convention of the measured EMG and GRF."""
    from emulator.motion.formats.opensim import read_coordinates

    d = data_dir or falisse_dir()
    strikes = _first_strikes(d / "GRF_gait_14.mot")
    table = read_coordinates(d / "IK_gait_14_mtp.mot")
    period = _stride_period(table, strikes["left"])
    dt = float(np.median(np.diff(table.time)))
    i0 = int(np.argmin(np.abs(table.time - strikes["left"])))
    rows = slice(i0, i0 + int(round(period / dt)) + 1)  # the last row repeats the first, a stride on
    stride = CoordinateTable(
        table.names, table.values[rows], table.time[rows], table.source, dict(table.meta)
    )
    mot = _quiet(coordinates_to_motion, stride, model, name="walk_trial", floor="always")
    cyc = mot.as_cycle(model, drop_last=True)
    cyc = cyc.starting_at(model, int(round((strikes["right"] - table.time[i0]) / dt)))
    # closing the seam leans the toes 0.6 deg past their range for 4 frames: back into range
    cyc = _quiet(cyc.resample(model, DEMO_FPS).check_ranges, model, on_violation="clip")
    cyc = _on_contacts(model, cyc)
    return cyc._replace(
        source="Falisse et al. 2019 (MIT), IK_gait_14_mtp.mot: one stride of a single trial (OpenSim IK), measured",
        meta=dict(
            cyc.meta,
            stride_s=period,
            left_heel_strike_s=strikes["left"],
            right_heel_strike_s=strikes["right"],
            derived="stride from the left heel strike + coordinates_to_motion + as_cycle(drop_last) + "
            "starting_at(right heel strike) + resample 100 Hz + contact IK",
        ),
    )


def running_cycle(model: MuscleModel, data_dir: Path | None = None) -> ReferenceMotion:
    """One measured running cycle on ``model``: the averaged half cycle, then its mirror image."""
    d = data_dir or falisse_dir()
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
    "myolegs": {"walk": walking_cycle, "walk_trial": walking_trial_cycle, "run": running_cycle},
    "myofullbody": {"walk": walking_cycle, "walk_trial": walking_trial_cycle, "run": running_cycle},
}


def build_demo_motions(out_dir: Path | None = None, models: list[str] | None = None) -> list[Path]:
    """(Re)build the shipped demo motions; returns the files written."""
    out_dir = out_dir or motions_dir()
    written = []
    for model_name, demos in _DEMOS.items():
        if models and model_name not in models:
            continue
        model = load_model(model_name)
        for name, fn in demos.items():
            mot = fn(model, None)
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


def repertoire_name(clip: str) -> str:
    return f"{clip}_deepmimic" if clip in ("walk", "run") else clip


def deepmimic_clip(
    model: MuscleModel, clip: str, data_dir: Path | None = None
) -> tuple[ReferenceMotion, dict]:
    """A DeepMimic clip retargeted onto ``model`` by keypoint IK (map ``deepmimic``), scaled to
    the model, one vertical shift to the floor (flight phases kept), looped clips closed into a
    cycle, resampled to 100 Hz. Returns (motion, retargeting report)."""
    path = (data_dir or deepmimic_dir()) / f"humanoid3d_{clip}.txt"
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
    out_dir = out_dir or motions_dir()
    written = []
    for model_name, names in (("myofullbody", tuple(REPERTOIRE)), ("myolegs", LOWER_BODY_CLIPS)):
        if models and model_name not in models:
            continue
        model = load_model(model_name)
        for clip in names:
            if clips and clip not in clips:
                continue
            mot, report = deepmimic_clip(model, clip)
            mot = mot._replace(meta=dict(mot.meta, model_hash=model.content_hash))
            written.append(mot.save(out_dir / model_name / f"{repertoire_name(clip)}.npz"))
            r = report["keypoint_residual_cm"]
            print(
                f"{model_name:12s} {clip:10s} keypoint residual mean {r['mean']:.2f} cm, max {r['max']:.2f} cm"
            )
    return written


def build_walking(out_dir: Path | None = None) -> list[Path]:
    """Write ``emg.csv`` and ``grf.csv`` from ``walking-falisse2019/ExperimentalData.mat``."""
    import scipy.io as sio

    src = falisse_dir() / "ExperimentalData.mat"
    mat = sio.loadmat(src, squeeze_me=True, struct_as_record=False)["ExperimentalData"]
    out_dir = Path(out_dir or measured_dir_root() / "walking")
    out_dir.mkdir(parents=True, exist_ok=True)
    emg, grf = mat.EMG.subject1, mat.GRFs.subject1
    n = emg.mean.shape[0]
    pct = np.linspace(0.0, 100.0, n)
    written = []
    channels = [str(c) for c in emg.colheaders]
    written.append(
        _write_csv(
            out_dir / "emg.csv",
            ["percent", *channels, *(f"{c}_sd" for c in channels)],
            np.column_stack([pct, emg.mean, emg.std]),
            f"# EMG envelopes, right leg, mean and SD over trials (arbitrary units); source: {src.name}",
        )
    )
    # source columns Fore-aft, Vertical, Lateral in % body weight. "Lateral" is positive
    # outwards (to the right of the walker for this right foot: its mid-stance force, which
    # pushes the body towards the midline, is negative, as the same lab's trial GRF_gait_14.mot
    # has it: right-foot plate, mean ground_force_vz -10 N in stance, z to the right). The
    # analyses' medio_lateral is positive to the walker's left (diversity.analysis.grf), so it
    # is -Lateral here.
    order = [list(grf.colheaders).index(c) for c in ("Fore-aft", "Vertical", "Lateral")]
    sign = np.array([1.0, 1.0, -1.0])
    written.append(
        _write_csv(
            out_dir / "grf.csv",
            ["percent", *GRF_COMPONENTS, *(f"{c}_sd" for c in GRF_COMPONENTS)],
            np.column_stack([pct, sign * grf.mean[:, order] / 100.0, grf.std[:, order] / 100.0]),
            f"# GRF, right foot, body weights (medio_lateral positive to the walker's left), mean and SD "
            f"over trials; source: {src.name}",
        )
    )
    return written


def _write_csv(path: Path, header: list[str], table: np.ndarray, comment: str) -> Path:
    with open(path, "w", newline="") as f:
        f.write(comment + "\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in table:
            w.writerow([f"{x:.6g}" for x in row])
    return path


def main(argv: list[str]) -> int:
    what, rest = (argv[0], argv[1:]) if argv else ("motions", [])
    if what == "motions":
        written = build_demo_motions(models=rest or None)
    elif what == "repertoire":
        written = build_repertoire(models=rest or None)
    elif what == "measured":
        written = build_walking()
    else:
        print(__doc__)
        return 2
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
