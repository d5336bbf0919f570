"""`swarm logs`: the output or prompt of a task's attempt. What only this command needs is imported inside it, so
every other command starts fast."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.errors import UsageError


@app.command()
def logs(
    task: Annotated[str, typer.Argument(help="Task id (a unique prefix is enough)")],
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default: the latest)")] = None,
    prompt: Annotated[bool, typer.Option(help="Show the attempt's prompt instead of its output")] = False,
    raw: Annotated[bool, typer.Option(help="Print the agent's raw output (its JSON event lines) as written")] = False,
) -> None:
    """The output (or prompt) of a task's attempt, as a readable transcript (``--raw`` for the CLI's own lines)."""
    from monitor.agent_run import LOG
    from monitor.transcript import readable
    from orchestrator import tasks as task_ops
    from orchestrator.wiring import load_world

    _settings, world = load_world()
    found = task_ops.get_task(world, task)
    if not found.attempts:
        raise UsageError(f"task {found.id} has not started yet")
    number = attempt or found.attempts[-1].number
    run_dir = world.layout.run_dir(found.id, number)
    path = run_dir / ("prompt.md" if prompt else LOG)
    if not path.exists():
        raise UsageError(f"no {'prompt' if prompt else 'output'} for attempt {number} of {found.id} ({path})")
    text = path.read_text(encoding="utf-8", errors="replace")
    # plain writes, never rich: agent output is data, "[red]" in it stays text
    sys.stdout.write(text if prompt or raw else readable(text, max_lines=1_000_000) + "\n")
