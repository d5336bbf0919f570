"""`swarm attach`: the agent's tmux session in your terminal. What only this command needs is imported inside it, so
every other command starts fast."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.errors import OperationalError


@app.command()
def attach(task: Annotated[str, typer.Argument(help="Task id")]) -> None:
    """Attach your terminal to the agent's tmux session (detach with Ctrl-b d)."""
    from orchestrator import tasks as task_ops
    from orchestrator.wiring import load_world

    _settings, world = load_world()
    found = task_ops.get_task(world, task)
    session = found.attempt.session if found.attempt else ""
    if not session or not world.tmux.has_session(session):
        raise OperationalError(f"task {found.id} has no live session; `swarm logs {found.id}` shows its output")
    argv = world.tmux.attach_argv(session)
    os.execvp(argv[0], argv)  # noqa: S606 - argv list, replaces this process with tmux attach
