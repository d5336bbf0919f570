"""`swarm cancel`: stop a task's agent. What only this command needs is imported inside it, so every other command
starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console


@app.command()
def cancel(task: Annotated[str, typer.Argument(help="Task id")]) -> None:
    """Stop a task's agent and mark it cancelled (the worktree stays until `swarm cleanup`)."""
    from monitor.wake import wake
    from orchestrator import tasks as task_ops
    from orchestrator.wiring import load_world

    _settings, world = load_world()
    found = task_ops.cancel(world, task)
    wake(world.layout.state_dir, [found.id])  # a running `swarm serve` stops its agent's supervision now
    console().print(f"{found.id}: {found.status.value}")
