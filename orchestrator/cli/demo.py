"""`swarm demo`: the whole lifecycle, offline. What only this command needs is imported inside it, so every other
command starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the temporary repository for a look afterwards")] = False,
) -> None:
    """The whole lifecycle, offline, in a temporary repository (under a minute)."""
    from orchestrator.demo import run_demo

    raise typer.Exit(run_demo(console(), keep=keep))
