"""`swarm retry`: a new attempt now, with your note. What only this command needs is imported inside it, so every
other command starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console
from orchestrator.errors import OperationalError


@app.command()
def retry(
    task: Annotated[str, typer.Argument(help="Task id")],
    note: Annotated[str, typer.Option(help="What the agent should do differently (goes into the prompt)")] = "",
) -> None:
    """Start a new attempt now, with your note in its prompt."""
    from monitor.runner import LaunchError
    from monitor.wake import wake
    from monitor.world.git import GitError
    from orchestrator import tasks as task_ops
    from orchestrator.wiring import load_world

    _settings, world = load_world()
    try:
        found = task_ops.retry(world, task, note)
    except (GitError, LaunchError) as exc:  # a full disk, a broken worktree: nothing was recorded
        raise OperationalError(f"could not retry {task}: {' '.join(str(exc).split())}") from None
    wake(world.layout.state_dir, [found.id])  # a running `swarm serve` looks at it now
    console().print(f"{found.id}: {found.status.value} (attempt {len(found.attempts)})")
