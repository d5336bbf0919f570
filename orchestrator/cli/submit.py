"""`swarm submit`: plan a request into tasks and spawn them. What only this command needs is imported inside it, so
every other command starts fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.errors import OperationalError, UsageError


@app.command("submit")
def submit_request(
    request: Annotated[str, typer.Argument(help="What you want built, in your words")] = "",
    file: Annotated[Path | None, typer.Option("--file", help="Read the request from this file ('-': stdin)")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and every prompt; spawn nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Plan a request into tasks (with a model key) and spawn them all, dependencies first."""
    from monitor.wake import wake
    from orchestrator.brain.llm import LlmError, llm_from
    from orchestrator.brain.planner import PlanError
    from orchestrator.submit import SubmitError
    from orchestrator.submit import submit as submit_tasks
    from orchestrator.wiring import load_world

    if request and file is not None:
        raise UsageError("give the request as an argument or with --file, not both")
    if file is not None:
        try:
            request = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--file {file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not request.strip():
        raise UsageError("the request is empty: say what you want built (swarm submit \"...\" or --file FILE)")
    settings, world = load_world()
    llm = llm_from(settings)
    if llm is not None:  # planning is a model call: not over the day's budget
        from orchestrator.budget import check_llm

        check_llm(settings, world.layout.state_dir, world.registry, world.clock(), "planning")
    try:
        report = submit_tasks(world, settings, request, dry_run=dry_run, llm=llm)
    except (PlanError, LlmError, SubmitError) as exc:
        raise OperationalError(" ".join(str(exc).split())) from None
    spawned = [t.task_id for t in report.tasks if t.task_id]
    if spawned and not dry_run:
        wake(world.layout.state_dir, spawned)  # a running `swarm serve` looks at them now
    if as_json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print("\n".join(report.lines()))  # plain: a prompt is shown exactly as the agent gets it
