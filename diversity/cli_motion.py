"""The ``diversity`` commands about models and motions (``models``, ``motions``, ``retarget``):
plain functions, registered on the app in :mod:`diversity.cli`."""

from __future__ import annotations

import json

import typer

from diversity.cli_common import UserError, fail, motion_errors, print_table


def models(
    path: str | None = typer.Argument(
        None, help="A built-in model name or an MJCF file path; omit to list the built-ins."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """List the built-in models, or describe one model (built-in name or MJCF path)."""
    from emulator.models import BUILTIN_MODELS, ModelError, describe, load_model

    try:
        if path is None:
            records = [describe(load_model(name)) for name in BUILTIN_MODELS]
        else:
            records = [describe(load_model(path))]
    except ModelError as e:
        fail(e)
        return
    if as_json:
        out = records if path is None else records[0]
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="models" if path is None else records[0]["source"])
    for col in ("name", "muscles", "joints", "dof", "tracked joints", "mass (kg)", "root", "feet"):
        table.add_column(col, justify="left" if col in ("name", "root", "feet") else "right")
    for r in records:
        feet = ", ".join(f"{k}: {'+'.join(v)}" for k, v in r["feet"].items()) or "-"
        table.add_row(
            r["name"],
            str(r["n_muscles"]),
            str(r["n_joints"]),
            str(r["n_dof"]),
            str(r["n_tracked_joints"]),
            f"{r['mass_kg']:.1f}",
            r["root_kind"],
            feet,
        )
    Console().print(table)


def motions(
    path: str | None = typer.Argument(
        None, help="A motion file to describe; omit to list the shipped demos."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model to describe the motion on (default: the file's own, else myolegs)."
    ),
    point_map: str | None = typer.Option(None, "--map", help="Point map for marker/joint-position files."),
    body_model: str | None = typer.Option(
        None, "--body-model", help="SMPL-H/SMPL-X model .npz (AMASS files)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """List the shipped demo motions, or describe any motion file the readers accept."""
    from emulator.motion.sources import list_demos

    try:
        if path is None:
            rows = [dict(d) for d in list_demos()]
            if as_json:
                typer.echo(json.dumps(rows, indent=2))
                return
            for r in rows:  # the table shows where it came from in short; --json has it all
                r["source"] = r["source"].split(":")[0].split(",")[0][:32]
            print_table(
                "shipped demo motions",
                ["name", "model", "duration_s", "fps", "n_frames", "loop", "source"],
                rows,
            )
            return
        desc = _describe_file(path, model, point_map, body_model)
    except motion_errors() as e:
        fail(e)
        return
    if as_json:
        typer.echo(json.dumps(desc, indent=2))
        return
    head = {k: desc[k] for k in ("name", "model", "n_frames", "fps", "duration_s", "loop")}
    typer.echo("  ".join(f"{k}={v}" for k, v in head.items()))
    print_table(desc["source"], ["name", "min_deg", "max_deg"], desc["joints"])


def _describe_file(path: str, model_name: str | None, point_map, body_model) -> dict:
    from emulator.models import load_model
    from emulator.motion.formats import read
    from emulator.motion.reference import ReferenceMotion
    from emulator.motion.sources import describe_motion, load_motion

    data = read(path, body_model=body_model)
    if model_name is None:
        model_name = data.model if isinstance(data, ReferenceMotion) and data.model else "myolegs"
    model = load_model(model_name)
    mot, report = load_motion(path, model, point_map=point_map, body_model=body_model)
    desc = describe_motion(mot, model)
    desc["route"] = report.get("route")
    desc["file"] = str(path)
    return desc


def retarget(
    input: str = typer.Argument(
        ..., help="Motion file: .trc, .c3d, .bvh, AMASS .npz, .mot/.sto, or motion .npz."
    ),
    model: str = typer.Option(..., "--model", "-m", help="Target model: built-in name or MJCF path."),
    out: str = typer.Option(..., "--out", "-o", help="Output motion file (.npz)."),
    point_map: str | None = typer.Option(
        None,
        "--map",
        help="Point map: shipped name (falisse2019, smpl, landmarks) or TOML file; default: best match.",
    ),
    name: str | None = typer.Option(None, "--name", help="Motion name (default: the input file's stem)."),
    start: float | None = typer.Option(None, "--start", help="Start time (s from the first frame)."),
    stop: float | None = typer.Option(None, "--stop", help="Stop time (s from the first frame)."),
    up: str | None = typer.Option(None, "--up", help="Input up axis y|z where the format does not fix it."),
    units: str | None = typer.Option(None, "--units", help="BVH length unit (default cm)."),
    body_model: str | None = typer.Option(
        None, "--body-model", help="SMPL-H/SMPL-X body-model .npz (AMASS)."
    ),
    floor: str = typer.Option(
        "shift",
        "--floor",
        help="Feet on the floor: shift|lowest|always|none, or contact (a walking cycle, with --loop: "
        "contact IK at its own gait events, as the shipped walks).",
    ),
    loop: bool = typer.Option(False, "--loop", help="Close the motion into a cycle (matched seam)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
):
    """Bring a motion file onto a model (inverse kinematics for points) and save it as .npz."""
    from emulator.models import load_model
    from emulator.motion.retarget import GROUND_MODES, ground_on_contacts, kinematic_events
    from emulator.motion.sources import describe_motion, load_motion

    try:
        if floor not in (*GROUND_MODES, "none", "contact"):
            raise UserError(f"--floor must be one of {', '.join(GROUND_MODES)}, none, contact; got {floor!r}")
        if floor == "contact" and not loop:
            raise UserError(
                "--floor contact grounds a walking cycle: give --loop (and --start/--stop around one stride)"
            )
        if not out.endswith(".npz"):
            raise UserError(f"--out must end in .npz, got {out!r}")
        m = load_model(model)
        mot, report = load_motion(
            input,
            m,
            point_map=point_map,
            name=name,
            start_s=start,
            stop_s=stop,
            up=up,
            units=units,
            body_model=body_model,
            floor={"none": False, "contact": "always"}.get(floor, floor),
            loop=loop,
        )
        if floor == "contact":
            mot, fit = ground_on_contacts(m, mot, kinematic_events(m, mot))
            report = {**report, "contact_fit": fit, "gait_events": mot.meta["ground"]}
        path = mot.save(out)
    except (*motion_errors(), UserError) as e:
        fail(e)
        return
    desc = describe_motion(mot, m)
    summary = {
        "out": str(path),
        **report,
        "n_frames": desc["n_frames"],
        "fps": desc["fps"],
        "duration_s": desc["duration_s"],
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"wrote {path}: {desc['n_frames']} frames at {desc['fps']:g} Hz ({desc['duration_s']:.2f} s) on {m.name}"
    )
    if "marker_residual_cm" in report or "keypoint_residual_cm" in report:
        for k in ("keypoint_residual_cm", "marker_residual_cm"):
            if report.get(k):
                typer.echo(
                    f"  {k.replace('_cm', '')}: mean {report[k]['mean']:.2f} cm, max {report[k]['max']:.2f} cm"
                )
        typer.echo(f"  scale {report['scale']}, map {report['map']}")
