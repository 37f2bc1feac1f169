"""``diversity`` command line: a thin layer over library functions notebooks call too.

Errors a user can cause (bad model file, unknown name) print one line to stderr and exit with
code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train many seeded muscle-driven policies per motion and analyse their diversity.",
)

_state = {"debug": False}


class UserError(Exception):
    """An error in what the user asked for; reported as one line, exit code 2."""


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    _state["debug"] = debug


def _fail(exc: BaseException) -> None:
    if _state["debug"]:
        raise exc
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


@app.command()
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
        _fail(e)
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
