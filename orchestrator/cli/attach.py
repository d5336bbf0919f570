"""`swarm attach`: the agent's tmux session, or a shell in its container, in your terminal. What only this command
needs is imported inside it, so every other command starts fast."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.errors import OperationalError


@app.command()
def attach(task: Annotated[str, typer.Argument(help="Task id")]) -> None:
    """Attach your terminal to the agent's tmux session (detach with Ctrl-b d), or open a shell in its container."""
    from orchestrator import tasks as task_ops
    from orchestrator.wiring import load_world

    _settings, world = load_world()
    found = task_ops.get_task(world, task)
    argv = world.runner.attach_argv(found) if found.attempt else None  # tmux attach, or a shell in the container
    if argv is None:
        raise OperationalError(f"task {found.id} has no live session; `swarm logs {found.id}` shows its output")
    os.execvp(argv[0], argv)  # noqa: S606 - argv list, replaces this process with tmux attach or docker exec
