"""`swarm merge TASK`: the human approves a ready task for the merge train ([merge] mode = "queue")."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console


@app.command()
def merge(
    task: Annotated[str, typer.Argument(help="Task id (or a unique prefix)")],
    by: Annotated[str, typer.Option(help="Who approves (default: your login name)")] = "",
) -> None:
    """Approve a ready task for the merge train: swarm merges it in turn, after CI passes on its updated head."""
    import getpass

    from orchestrator.merging import request_merge
    from orchestrator.view import find_repo

    who = by.strip() or getpass.getuser()
    console().print(request_merge(find_repo(), task, who), markup=False, highlight=False)
