"""`swarm learn`: outcome statistics and rules for the next prompts. What only this command needs is imported inside
it, so every other command starts fast."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console


@app.command()
def learn(
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics and rules as JSON")] = False,
) -> None:
    """Outcome statistics per task kind, agent and prompt feature; rules for the next prompts (context.learnings)."""
    from rich.console import Console

    from orchestrator.brain import learn as learning
    from orchestrator.wiring import load_world

    settings, world = load_world()
    learnings = world.layout.repo / settings.context.learnings if settings.context.learnings else None
    report = learning.learn(world.registry.read().tasks, world.events.read(), world.layout.state_dir, learnings)
    if as_json:
        print(json.dumps(report.as_dict(), indent=1))
        return
    if report.groups:
        wide = console() if console().is_terminal else Console(soft_wrap=True, width=200)
        wide.print(learning.table(report))
    for line in learning.lines(report):
        console().print(line, markup=False, highlight=False)
