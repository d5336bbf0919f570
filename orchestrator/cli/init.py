"""`swarm init`: write swarm.toml and create .swarm/. What only this command needs is imported inside it, so every
other command starts fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console


@app.command()
def init(
    forge: Annotated[str, typer.Option(help="local | github")] = "local",
    repo: Annotated[str, typer.Option(help="OWNER/NAME on GitHub (with --forge github)")] = "",
    force: Annotated[bool, typer.Option(help="Overwrite an existing swarm.toml")] = False,
) -> None:
    """Write swarm.toml and create .swarm/ (git-excluded) in the current repository."""
    from orchestrator.init import init_repo

    for line in init_repo(Path.cwd(), forge, repo, force):
        console().print(line, markup=False, highlight=False)
