"""What the ``diversity`` command modules share: the one-line error report (exit code 2, no
traceback unless ``--debug``), the errors a user's motion or model can raise, and rich tables."""

from __future__ import annotations

import typer

state = {"debug": False}


class UserError(Exception):
    """An error in what the user asked for; reported as one line, exit code 2."""


def fail(exc: BaseException) -> None:
    if state["debug"]:
        raise exc
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def motion_errors():
    from emulator.models import ModelError
    from emulator.motion.reference import MotionError

    return (MotionError, ModelError, FileNotFoundError)


def print_table(title: str, cols: list[str], rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*(fmt(r.get(c, "")) for c in cols))
    Console().print(table)


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
