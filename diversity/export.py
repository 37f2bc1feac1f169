"""Export a store's completed seeds to the files gait labs use: OpenSim tables, or tidy CSV.

``opensim`` (per seed, in ``DIR/seed_NNNN/``):

``activation.sto``, ``excitation.sto``, ``muscle_force.sto``
    time plus one column per muscle (the model's muscle names); 0-1, 0-1, newtons.
``coordinates.mot``
    ``inDegrees=yes``: every tracked joint by its model name (hinges in degrees, slide joints in
    metres), and for a free root ``root_tx/ty/tz`` (metres) and ``root_tilt/list/rotation``
    (degrees: the root orientation in OpenSim's y-up ground as body-fixed Z-X-Y angles, the
    order of gait2392's pelvis).
``grf.mot`` + ``external_loads.xml`` (models with feet)
    OpenSim's layout: ``ground_force_{r,l}_v{x,y,z}`` (N), ``ground_force_{r,l}_p{x,y,z}`` (the
    centre of pressure, m; 0 while the foot is in the air), ``ground_torque_{r,l}_{x,y,z}`` (0:
    the force is applied at the centre of pressure; the free moment is not simulated), in the
    y-up ground frame; an ExternalLoads file with one ExternalForce per foot naming it.

Values are the store's, converted only in units (rad -> deg) and axes (z up -> y up:
``(x, y, z) -> (x, z, -y)``, the inverse of the import conversion).

``csv``: one tidy table per seed (``seed_NNNN.csv``): ``time, variable, element, value, units``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from emulator.motion.formats.base import Y_UP_TO_Z_UP

from .store import StoreError, completed_seeds, open_checked

__all__ = ["EXPORT_FORMATS", "export_store"]

EXPORT_FORMATS = ("opensim", "csv")
Z_UP_TO_Y_UP = Y_UP_TO_Z_UP.T
MUSCLE_TABLES = ("activation", "excitation", "muscle_force")
SIDES = {"right": "r", "left": "l"}


def export_store(store: str | Path, out: str | Path, fmt: str = "opensim", seeds=None) -> list[Path]:
    """Write the completed seeds of ``store`` (or the given ``seeds``) to ``out``; returns the
    files written. A missing, damaged or empty store is a :class:`StoreError`."""
    if fmt not in EXPORT_FORMATS:
        raise StoreError(f"--format {fmt!r}: expected one of {EXPORT_FORMATS}")
    store, out = Path(store), Path(out)
    try:
        ds = open_checked(store)
    except StoreError as e:
        raise StoreError(f"cannot export a missing or damaged store: {e}") from None
    done = completed_seeds(ds)
    chosen = done if seeds is None else [int(s) for s in seeds]
    missing = sorted(set(chosen) - set(done))
    if missing:
        raise StoreError(f"{store}: seeds {missing} are not completed (completed: {done})")
    if not chosen:
        raise StoreError(f"{store}: no completed seeds to export")
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: exists and is not a directory")
    written: list[Path] = []
    for seed in chosen:
        one = ds.sel(seed=seed).load()
        if fmt == "opensim":
            written += _opensim(one, out / f"seed_{seed:04d}", ds.attrs)
        else:
            written.append(_tidy_csv(one, out / f"seed_{seed:04d}.csv"))
    return written


# ---------------------------------------------------------------------------------------------
# OpenSim


def _write_table(
    path: Path, name: str, columns: list[str], time: np.ndarray, values: np.ndarray, degrees: bool
):
    """An OpenSim .sto/.mot table (header, ``endheader``, tab-separated columns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.column_stack([time, values])
    with open(path, "w", newline="") as f:
        f.write(f"{name}\nversion=1\nnRows={rows.shape[0]}\nnColumns={rows.shape[1]}\n")
        f.write(f"inDegrees={'yes' if degrees else 'no'}\nendheader\n")
        f.write("\t".join(["time", *columns]) + "\n")
        for row in rows:
            f.write("\t".join(f"{v:.8g}" for v in row) + "\n")
    return path


def _euler_zxy_deg(quat_wxyz: np.ndarray) -> np.ndarray:
    """Body-fixed Z-X-Y angles (deg) of orientations ``[time, 4]`` expressed in the y-up ground."""
    from scipy.spatial.transform import Rotation

    q = np.asarray(quat_wxyz, dtype=float)
    rot = Rotation.from_quat(q[:, [1, 2, 3, 0]])  # scipy is x-y-z-w
    in_y_up = Rotation.from_matrix(Z_UP_TO_Y_UP) * rot
    return np.degrees(in_y_up.as_euler("ZXY"))


def _opensim(one, folder: Path, attrs: dict) -> list[Path]:
    time = one["time"].values
    muscles = [str(m) for m in one["muscle"].values]
    files = []
    for var in MUSCLE_TABLES:
        files.append(_write_table(folder / f"{var}.sto", var, muscles, time, one[var].values, degrees=False))
    # coordinates: tracked joints (deg for hinges, m for slides) and the free root
    joints = [str(j) for j in one["joint"].values]
    units = (
        [str(u) for u in one["joint_units"].values] if "joint_units" in one.coords else ["rad"] * len(joints)
    )
    angles = one["joint_angle"].values.copy()
    for k, u in enumerate(units):
        if u == "rad":
            angles[:, k] = np.degrees(angles[:, k])
    columns, values = list(joints), [angles]
    if "root_position" in one:
        columns += ["root_tx", "root_ty", "root_tz", "root_tilt", "root_list", "root_rotation"]
        values += [
            one["root_position"].values @ Z_UP_TO_Y_UP.T,
            _euler_zxy_deg(one["root_orientation"].values),
        ]
    files.append(
        _write_table(
            folder / "coordinates.mot", "coordinates", columns, time, np.hstack(values), degrees=True
        )
    )
    if "grf" in one:
        files += _grf(one, folder, attrs)
    return files


def _grf(one, folder: Path, attrs: dict) -> list[Path]:
    if "cop" not in one:
        raise StoreError(
            "the store has no centre of pressure (written before it was recorded); roll its "
            "policies out again with `diversity rollout STORE --out NEW.zarr`, then export NEW.zarr"
        )
    time = one["time"].values
    feet = [str(f) for f in one["foot"].values]
    columns, blocks = [], []
    for side in ("right", "left"):
        if side not in feet:
            continue
        s = SIDES[side]
        k = feet.index(side)
        force = one["grf"].values[:, k] @ Z_UP_TO_Y_UP.T
        cop = np.nan_to_num(one["cop"].values[:, k]) @ Z_UP_TO_Y_UP.T
        columns += [f"ground_force_{s}_v{a}" for a in "xyz"] + [f"ground_force_{s}_p{a}" for a in "xyz"]
        columns += [f"ground_torque_{s}_{a}" for a in "xyz"]
        blocks += [force, cop, np.zeros_like(force)]
    grf = _write_table(folder / "grf.mot", "grf", columns, time, np.hstack(blocks), degrees=False)
    bodies = _foot_bodies(attrs)
    forces = []
    for side in ("right", "left"):
        if side not in feet:
            continue
        s = SIDES[side]
        forces.append(
            f"""      <ExternalForce name="{side}_foot">
        <applied_to_body>{bodies.get(side, f"calcn_{s}")}</applied_to_body>
        <force_expressed_in_body>ground</force_expressed_in_body>
        <point_expressed_in_body>ground</point_expressed_in_body>
        <force_identifier>ground_force_{s}_v</force_identifier>
        <point_identifier>ground_force_{s}_p</point_identifier>
        <torque_identifier>ground_torque_{s}_</torque_identifier>
        <data_source_name>grf</data_source_name>
      </ExternalForce>"""
        )
    xml = folder / "external_loads.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="UTF-8" ?>\n<OpenSimDocument Version="40000">\n'
        '  <ExternalLoads name="external_loads">\n    <objects>\n'
        + "\n".join(forces)
        + f"\n    </objects>\n    <groups />\n    <datafile>{grf.name}</datafile>\n"
        "  </ExternalLoads>\n</OpenSimDocument>\n"
    )
    return [grf, xml]


def _foot_bodies(attrs: dict) -> dict:
    """The foot body of each side, from the store's model provenance when it says."""
    import json

    try:
        feet = json.loads(attrs.get("model_feet", "{}"))
    except (TypeError, ValueError):
        feet = {}
    return {side: bodies[0] for side, bodies in feet.items() if bodies}


# ---------------------------------------------------------------------------------------------
# tidy CSV


def _tidy_csv(one, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    time = one["time"].values
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "variable", "element", "value", "units"])
        for name, var in one.data_vars.items():
            if "time" not in var.dims or name.startswith("train_"):
                continue
            units = var.attrs.get("units", "")
            other = [d for d in var.dims if d != "time"]
            values = var.transpose("time", *other).values.reshape(len(time), -1)
            if other:
                grids = np.meshgrid(*[[str(x) for x in one[d].values] for d in other], indexing="ij")
                elements = ["/".join(parts) for parts in zip(*[g.ravel() for g in grids], strict=True)]
            else:
                elements = [""]
            for i, t in enumerate(time):
                for e, v in zip(elements, values[i], strict=True):
                    w.writerow([f"{t:.4f}", name, e, f"{v:.6g}", units])
    return path
