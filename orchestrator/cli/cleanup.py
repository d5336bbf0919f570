"""`swarm cleanup`: remove finished worktrees and sessions, archive old tasks. What only this command needs is
imported inside it, so every other command starts fast."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console


@app.command()
def cleanup(
    dry_run: Annotated[bool, typer.Option(help="Only say what would be removed")] = False,
    yes: Annotated[bool, typer.Option(help="Also remove orphans without asking")] = False,
) -> None:
    """Remove worktrees and sessions of finished tasks, archive old finished tasks; report orphans and
    remove them with --yes (or after you confirm, on a terminal)."""
    from orchestrator.maintenance import clean_and_archive
    from orchestrator.wiring import load_world

    settings, world = load_world()
    lines = clean_and_archive(world, settings, world.clock(), dry_run=dry_run, remove_orphans=yes)
    for line in lines:
        console().print(line, markup=False, highlight=False)
    orphans = [line for line in lines if "`swarm cleanup --yes`" in line]
    ask = orphans and not dry_run and not yes and sys.stdin.isatty()
    if ask and typer.confirm(f"remove these {len(orphans)} orphan(s)?", default=False):
        for line in clean_and_archive(world, settings, world.clock(), remove_orphans=True):
            if line.startswith(("removed orphan", "killed orphan")):
                console().print(line, markup=False, highlight=False)
