"""`swarm spawn`: start one agent on a task. What only this command needs is imported inside it, so every other
command starts fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import err
from orchestrator.errors import UsageError


@app.command()
def spawn(
    title: Annotated[str, typer.Option(help="Short title of the task")],
    prompt: Annotated[str, typer.Option(help="The task's prompt")] = "",
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from this file")] = None,
    agent: Annotated[str, typer.Option(help="Agent profile (default: routing for the kind)")] = "",
    kind: Annotated[str, typer.Option(help="Task kind, used for routing")] = "default",
    after: Annotated[list[str] | None, typer.Option(help="Start only after this task is merged")] = None,
    accept: Annotated[list[str] | None, typer.Option(help="An acceptance criterion (repeatable): in the "
                                                           "prompt and the PR body")] = None,
    link: Annotated[list[str] | None, typer.Option(help="Where the task comes from (repeatable): in the "
                                                         "PR body")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the task as JSON")] = False,
) -> None:
    """Start one agent on a task (queued while dependencies or max_parallel hold it)."""
    from monitor.wake import wake
    from orchestrator import status as status_view
    from orchestrator import tasks as task_ops
    from orchestrator.wiring import load_world

    title = task_ops.check_title(title)
    if bool(prompt) == bool(prompt_file):
        raise UsageError("give exactly one of --prompt TEXT or --prompt-file FILE")
    if prompt_file is not None:
        try:
            prompt = prompt_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--prompt-file {prompt_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"--prompt-file {prompt_file}: not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                             "(e.g. iconv -t UTF-8)") from None
    settings, world = load_world()
    chosen = agent or settings.routing.get(kind, settings.routing["default"])
    task = task_ops.spawn(world, title=title, prompt=prompt, agent=chosen, kind=kind, after=after or [],
                          base_branch=settings.project.base_branch, acceptance=accept or [], links=link or [])
    wake(world.layout.state_dir, [task.id])  # a running `swarm serve` looks at it now
    if as_json:
        print(json.dumps(status_view.task_json(task), indent=1))
    else:
        print(task.id)
        err().print(f"{task.status.value}: {task.reason} (branch {task.branch}, worktree {task.worktree})",
                  markup=False, highlight=False)
