"""``diversity`` command line: a thin layer over library functions notebooks call too.

Errors a user can cause (bad model file, unknown name) print one line to stderr and exit with
code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import typer

from diversity.cli_common import fail, motion_errors, state
from diversity.cli_motion import models, motions, retarget

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train many seeded muscle-driven policies per motion and analyse their diversity.",
)
for _command in (models, motions, retarget):  # the model/motion commands live in cli_motion
    app.command()(_command)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    state["debug"] = debug


@app.command()
def run(
    model: str | None = typer.Option(None, help="Built-in model name or MJCF path [default: elbow]."),
    motion: str | None = typer.Option(
        None,
        help="Shipped demo name for the model, or a motion file [default: the model's own: "
        "elbow_flexion for elbow, the measured walk for myolegs and myofullbody].",
    ),
    seeds: int | None = typer.Option(None, "--seeds", help="Train seeds 0..N-1 [default: 50]."),
    seed_list: str | None = typer.Option(None, "--seed-list", help="Seed ids instead: '0,3,7' or '0-9,20'."),
    algo: str | None = typer.Option(None, help="ppo | qflex [default: ppo]."),
    reward: str | None = typer.Option(None, help="exp | add [default: exp]."),
    steps: int | None = typer.Option(None, help="Control steps per seed [default: the learner's, PPO 150k]."),
    backend: str | None = typer.Option(None, help="Physics backend: cpu | mjx [default: cpu]."),
    n_envs: int | None = typer.Option(
        None, "--n-envs", help="Environments per seed [default: the learner's]."
    ),
    cycles: float | None = typer.Option(None, help="Motion cycles per rollout [default: 2]."),
    block_size: int | None = typer.Option(
        None, "--block-size", help="Seeds per compiled block [default: 10]."
    ),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Iterations between checkpoints, 0 = off [default: 10]."
    ),
    init_from: str | None = typer.Option(
        None,
        "--init-from",
        help="Continue these policies (a shipped set, a store or a policy directory; same seed "
        "ids and settings) instead of starting fresh; --steps are the steps added.",
    ),
    out: str | None = typer.Option(
        None, "--out", help="Store path [default: MODEL-MOTION-ALGO-REWARD.zarr]."
    ),
    config: str | None = typer.Option(None, "--config", help="TOML file with any of these options."),
    scheduler: str | None = typer.Option(
        None, help="'local' (Dask LocalCluster) or tcp://HOST:PORT; default: in-process."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a store made by another run (or a damaged one)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON."),
):
    """Train many seeded policies on one motion, roll each out, write one Zarr store.

    Re-running the same command resumes: completed seeds are kept as they are, unfinished
    blocks continue from their last checkpoint.
    """
    from diversity.config import ConfigError, RunConfig, as_seeds, load_config
    from diversity.pipeline import RunInterrupted
    from diversity.pipeline import run as run_pipeline
    from diversity.progress import RichProgress
    from diversity.store import StoreError

    try:
        base, options = load_config(config) if config else (RunConfig(), {})
        given = {
            "model": model,
            "motion": motion,
            "algo": algo,
            "reward": reward,
            "steps": steps,
            "backend": backend,
            "n_envs": n_envs,
            "cycles": cycles,
            "block_size": block_size,
            "checkpoint_every": checkpoint_every,
            "init_from": init_from,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        if seeds is not None and seed_list is not None:
            raise ConfigError("give --seeds N or --seed-list, not both")
        if seeds is not None:
            changes["seeds"] = as_seeds(seeds, "--seeds")
        if seed_list is not None:
            changes["seeds"] = as_seeds(seed_list, "--seed-list")
        cfg = base.replace(**changes) if changes else base
        store = out or options.get("out")
        report = run_pipeline(
            cfg,
            store,
            scheduler=scheduler or options.get("scheduler"),
            force=force or bool(options.get("force", False)),
            progress=RichProgress(),
        )
    except (ConfigError, StoreError, *motion_errors()) as e:
        fail(e)
        return
    except RunInterrupted as e:
        typer.echo(f"interrupted: {e}. Re-run the same command to resume.", err=True)
        raise typer.Exit(code=130) from None
    run = {
        "trained": report.trained,
        "skipped": report.skipped,
        "wall_time_s": round(report.wall_time_s, 1),
        "train_time_s": round(report.train_time_s, 1),
        "rollout_time_s": round(report.rollout_time_s, 1),
    }
    _report(report.store, as_json, run=run)


@app.command("rollout")
def rollout_cmd(
    policies: str = typer.Argument(
        ..., help="A run's store (its kept policies), a policy directory, or a shipped set's name."
    ),
    out: str = typer.Option(..., "--out", help="The new store."),
    cycles: float = typer.Option(2.0, help="Motion cycles per rollout."),
    force: bool = typer.Option(False, "--force", help="Replace an existing store at --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON."),
):
    """Roll every seed of a policy set out into a new store (same schema as `run`), no training."""
    from diversity.config import ConfigError
    from diversity.progress import RichProgress
    from diversity.rollouts import rollout_policies
    from diversity.store import StoreError
    from emulator.learning.policies import PolicyError

    try:
        report = rollout_policies(policies, out, cycles=cycles, force=force, progress=RichProgress())
    except (ConfigError, StoreError, PolicyError, *motion_errors()) as e:
        fail(e)
        return
    _report(report.store, as_json)


@app.command()
def export(
    store: str = typer.Argument(..., help="A store written by `diversity run` or `diversity rollout`."),
    out: str = typer.Option(..., "--out", help="Output directory."),
    fmt: str = typer.Option("opensim", "--format", help="opensim (.sto/.mot + ExternalLoads) | csv (tidy)."),
    seed_list: str | None = typer.Option(None, "--seed-list", help="Only these seeds: '0,3' or '0-9'."),
):
    """Write each completed seed as OpenSim tables (activation/excitation/force .sto, coordinates
    .mot, GRF .mot + ExternalLoads .xml) or as one tidy CSV."""
    from diversity.config import ConfigError, parse_seed_list
    from diversity.export import export_store
    from diversity.store import StoreError

    try:
        seeds = parse_seed_list(seed_list) if seed_list else None
        files = export_store(store, out, fmt, seeds)
    except (StoreError, ConfigError) as e:
        fail(e)
        return
    folders = sorted({f.parent for f in files})
    typer.echo(
        f"wrote {len(files)} files for {len(folders) if fmt == 'opensim' else len(files)} seeds under {out}"
    )


@app.command("synergies")
def synergies_cmd(
    store: str = typer.Argument(..., help="A store written by `diversity run` or `diversity rollout`."),
    k: int = typer.Option(..., "--k", help="Number of synergies."),
    out: str = typer.Option(..., "--out", help="TOML file of [[env.action_basis]] tables to write."),
):
    """A muscle-synergy action basis from a run's activations (NMF over every completed seed,
    each up to its first termination):
    append the file to a recipe and the policy acts on K synergies (`EnvConfig.action_basis`)."""
    from diversity.analysis.balance import upright
    from diversity.analysis.solution_space import action_basis, basis_toml
    from diversity.store import StoreError, completed_seeds, open_store

    try:
        ds = open_store(store)
        seeds = completed_seeds(ds)
        if not seeds:
            raise StoreError(f"{store}: no completed seeds to take activations from")
        # a fallen body's activations are not a strategy: only samples before each seed's fall
        act = upright(ds.sel(seed=seeds))["activation"].transpose("seed", "time", "muscle")
        result = action_basis(act.values, act["muscle"].values.tolist(), k)
    except (StoreError, ValueError) as e:
        fail(e)
        return
    Path(out).write_text(basis_toml(result, f"{store} ({len(seeds)} seeds)"))
    typer.echo(f"wrote {out}: {k} synergies of {len(seeds)} seeds' activations, VAF {result['vaf']:.3f}")


@app.command()
def ship(
    store: str = typer.Argument(..., help="A finished run's store (its policies/ are shipped)."),
    name: str = typer.Option(..., "--name", help="The policy set's name (what `diversity rollout` takes)."),
    out: str | None = typer.Option(None, "--out", help="Parent directory [default: datasets/policies/]."),
):
    """Ship a run's trained policies as a small policy set with a manifest (lean files)."""
    from diversity.shipping import ship_policy_set
    from diversity.store import StoreError
    from emulator.learning.policies import PolicyError

    try:
        dest = ship_policy_set(store, name, out)
    except (StoreError, PolicyError) as e:
        fail(e)
        return
    size = sum(f.stat().st_size for f in dest.iterdir()) / 1e6
    summary = json.loads((dest / "manifest.json").read_text())["summary"]
    typer.echo(f"wrote {dest} ({size:.1f} MB): {summary}")


@app.command()
def policies(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the shipped trained policy sets (`diversity rollout NAME --out S.zarr` runs one)."""
    from emulator.learning.policies import list_policy_sets

    rows = list_policy_sets()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="shipped policy sets")
    for col in ("name", "model", "motion", "seeds", "summary"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["model"], r["motion"], str(r["n_seeds"]), r["summary"])
    Console().print(table)
    if not rows:
        typer.echo("no shipped policy sets; keep your own with `diversity run` (STORE/policies/)")


def _report(store, as_json: bool, **extra) -> None:
    """The store's summary (with how many seeds stayed up, for a free root) as JSON or tables."""
    from diversity.analysis.balance import upright_summary
    from diversity.store import open_store, summarise

    ds = open_store(store)
    summary = summarise(ds) | {"upright": upright_summary(ds), **extra}
    if as_json:
        typer.echo(
            json.dumps({k: v for k, v in summary.items() if k not in ("variables", "config")}, indent=2)
        )
    else:
        _print_summary(summary, str(store))


def _print_summary(summary: dict, store: str) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    n_done, n = len(summary["completed_seeds"]), summary["n_seeds"]
    table = Table(title=f"{store}: {summary['model']} / {summary['motion']}, {n_done}/{n} seeds completed")
    for col in ("metric", "units", "median", "IQR", "min", "max"):
        table.add_column(col, justify="left" if col in ("metric", "units") else "right")
    for name, m in summary["metrics"].items():
        table.add_row(
            name, m["units"], f"{m['median']:.2f}", f"{m['iqr']:.2f}", f"{m['min']:.2f}", f"{m['max']:.2f}"
        )
    con.print(table)
    lines = []
    ja = summary["metrics"].get("joint_angle_error")
    if ja:
        lines.append(
            f"seeds under 5 deg mean joint-angle error: {sum(v < 5.0 for v in ja['per_seed'].values())}/{ja['n']}"
        )
    if up := summary.get("upright"):
        times = sorted(up["upright_s"].values())
        lines.append(
            f"seeds up for the whole {up['rollout_s']:.2f} s rollout: {up['n_up_whole_rollout']}/{up['n_seeds']}, "
            f"{up['n_up_and_under_tolerance']} of them under {up['tolerance_deg']:g} deg while up "
            f"(up for {times[0]:.2f}-{times[-1]:.2f} s)"
        )
        if up["n_up_whole_rollout"] < up["n_seeds"]:  # the table's errors then include falls
            err = sorted(up["joint_angle_error_upright"].values())
            lines.append(
                f"joint_angle_error while up (before each seed's first termination): median "
                f"{statistics.median(err):.2f} deg, {err[0]:.2f}-{err[-1]:.2f}"
            )
    if r := summary.get("run"):
        lines.append(
            f"this run: {len(r['trained'])} seeds trained, {len(r['skipped'])} kept from before; "
            f"wall {r['wall_time_s']:.0f} s (train {r['train_time_s']:.0f} s, rollout {r['rollout_time_s']:.0f} s)"
        )
    if summary.get("pending_seeds"):
        lines.append(f"pending seeds: {summary['pending_seeds']}")
    for line in lines:
        con.print(line, highlight=False, markup=False)


@app.command()
def info(
    store: str = typer.Argument(..., help="A store written by `diversity run`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """Dimensions, variables, completed seeds, provenance and the tracking-metrics summary of a store.

    Exit code 1 when the store has problems (listed), 2 when it cannot be opened.
    """
    from diversity.store import StoreError
    from diversity.store import info as store_info

    try:
        summary = store_info(store)
    except StoreError as e:
        fail(e)
        return
    problems = summary["problems"]
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        from rich.console import Console
        from rich.table import Table

        con = Console()
        if "dims" in summary:
            con.print(
                "dims: " + ", ".join(f"{k}={v}" for k, v in summary["dims"].items()),
                highlight=False,
                markup=False,
            )
            vt = Table(title="variables")
            for col in ("name", "dims", "units", "long name"):
                vt.add_column(col)
            for k, v in summary["variables"].items():
                vt.add_row(k, ", ".join(v["dims"]), str(v["units"]), str(v["long_name"]))
            con.print(vt)
            con.print(
                "provenance: " + ", ".join(f"{k}={v}" for k, v in summary["provenance"].items() if v),
                highlight=False,
                markup=False,
            )
            _print_summary(summary, store)
        for p in problems:
            typer.echo(f"problem: {p}")
    if problems:
        raise typer.Exit(code=1)


@app.command()
def analyze(
    store: str = typer.Argument(..., help="A store written by `diversity run`."),
    out: str = typer.Option(..., "--out", help="Directory for summary.json and the CSV tables."),
    emg: str | None = typer.Option(
        None,
        "--emg",
        help="Measured EMG: CSV (percent + one column per channel), C3D (EMG analog channels) or "
        "an OpenSim .sto/.mot (named channels, any rate, raw or envelopes).",
    ),
    emg_cycle: str | None = typer.Option(
        None,
        "--emg-cycle",
        help="For a C3D or .sto --emg without a --grf .mot: the cycle window 'T0,T1' in seconds "
        "[default: whole trial].",
    ),
    emg_map: str | None = typer.Option(None, "--emg-map", help="TOML channel -> muscles map."),
    grf: str | None = typer.Option(
        None,
        "--grf",
        help="Measured GRF: CSV (percent + components, body weights) or an OpenSim .mot "
        "(newtons, y up; its right heel strikes cut the EMG cycles).",
    ),
    body_mass: float | None = typer.Option(
        None, "--body-mass", help="Subject mass (kg) for a --grf .mot [default: mean total vertical force]."
    ),
    emg_processed: bool | None = typer.Option(
        None,
        "--emg-processed/--emg-raw",
        help="A .sto --emg holds envelopes / raw EMG [default: raw when it has negative values].",
    ),
    max_lag: int = typer.Option(0, "--max-lag", help="Allowed EMG lag, +/- percent of the cycle."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for confidence intervals."),
    include_falls: bool = typer.Option(
        False,
        "--include-falls",
        help="Cut gait cycles from whole rollouts, falls included [default: only before each seed's "
        "first termination].",
    ),
):
    """Tracking, PCA, EMG/GRF comparison and solution-space analysis: summary.json + CSV tables.

    A walking store on myolegs/myofullbody is compared with the shipped measured walking data
    unless --emg/--grf are given.
    """
    from diversity.analysis.measured import MeasuredError
    from diversity.analysis.report import analyze as run_analysis
    from diversity.store import StoreError, open_checked

    try:
        window = None
        if emg_cycle is not None:
            try:
                t0, t1 = (float(x) for x in emg_cycle.split(","))
            except ValueError:
                raise ValueError(f"--emg-cycle must be 'T0,T1' in seconds, got {emg_cycle!r}") from None
            window = (t0, t1)
        summary = run_analysis(
            open_checked(store),
            out,
            emg=emg,
            emg_map_file=emg_map,
            grf=grf,
            max_lag_pct=max_lag,
            n_boot=n_boot,
            emg_cycle_s=window,
            body_mass_kg=body_mass,
            emg_processed=emg_processed,
            include_falls=include_falls,
        )
    except (StoreError, MeasuredError, ValueError) as e:
        fail(e)
        return
    from rich.console import Console

    con = Console()
    con.print(f"wrote {out}/summary.json and {len(summary['tables'])} tables", highlight=False, markup=False)
    up = summary["balance"]
    upright = [r["upright_s"] for r in up["per_seed"]]
    for line in (
        f"upright: {up['n_fell']} of {len(upright)} seeds fell over {up['rollout_s']:.2f} s "
        f"(up for {min(upright):.2f}-{max(upright):.2f} s)",
        f"cycles: {summary['cycles']}, {up['gait_cycles']}, seeds {up['cycle_seeds']}",
    ):
        con.print(line, highlight=False, markup=False, soft_wrap=True)
    for family, res in summary["pca"].items():
        con.print(
            f"PCA {family}: {res['n_components_90']} components for 90 %, {res['n_components_95']} for 95 % "
            f"({res['n_policies']} policies)",
            highlight=False,
            markup=False,
        )
    for row in summary.get("emg", {}).get("channels", []):
        con.print(
            f"EMG {row['channel']}: r = {row['r']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]",
            highlight=False,
            markup=False,
        )
    for row in summary.get("grf", {}).get("components", []):
        con.print(
            f"GRF {row['direction']}: r = {row['r']:.2f}, RMSE {row['rmse_bw']:.3f} BW",
            highlight=False,
            markup=False,
        )
    for part in ("emg", "grf", "solution_space"):
        if "skipped" in summary.get(part, {}):
            con.print(f"{part}: skipped: {summary[part]['skipped']}", highlight=False, markup=False)
    d = summary["solution_space"].get("dispersion")
    if d:
        con.print(
            f"dispersion muscle / kinematics = {d['ratio']:.2f} (p = {d['p_value']:.3g}, {d['n_pairs']} pairs)",
            highlight=False,
            markup=False,
        )


@app.command()
def figures(
    store: str = typer.Argument(..., help="A store written by `diversity run`."),
    out: str = typer.Option(..., "--out", help="Directory for the figures."),
    fmt: str = typer.Option("pdf", "--format", help="pdf | svg | png."),
):
    """Every figure for a store (tracking box plots, joint angles, PCA, EMG/GRF vs measured,
    policy clusters, diversity index)."""
    from diversity.analysis.measured import MeasuredError
    from diversity.figures import write_figures
    from diversity.store import StoreError, open_checked

    try:
        if fmt not in ("pdf", "svg", "png"):
            raise ValueError(f"--format must be pdf, svg or png, got {fmt!r}")
        paths = write_figures(open_checked(store), out, fmt)
    except (StoreError, MeasuredError, ValueError) as e:
        fail(e)
        return
    for p in paths:
        typer.echo(str(p))


@app.command()
def render(
    store: str = typer.Argument(..., help="A store written by `diversity run`."),
    seed: int = typer.Option(..., "--seed", help="Which policy (seed id) to draw."),
    out: str = typer.Option(..., "--out", help="Directory for the filmstrip (PNG, PDF) and the MP4."),
    frames: int = typer.Option(6, "--frames", help="Frames in the filmstrip."),
    width: int = typer.Option(320, help="Pixels per frame."),
    height: int = typer.Option(320, help="Pixels per frame."),
    video: bool = typer.Option(True, "--video/--no-video", help="Also write an MP4 of the whole rollout."),
):
    """Filmstrip and video of one stored policy: muscles coloured by activation beside the
    reference pose. Offscreen rendering needs OSMesa (apt-get install libosmesa6) or EGL."""
    from diversity.render import render_store
    from diversity.store import StoreError
    from emulator.simulation.render import RenderError

    try:
        if frames < 1:
            raise ValueError(f"--frames must be >= 1, got {frames}")
        paths = render_store(store, seed, out, n_frames=frames, width=width, height=height, video=video)
    except (StoreError, RenderError, ValueError, *motion_errors()) as e:
        fail(e)
        return
    for p in paths.values():
        typer.echo(str(p))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
