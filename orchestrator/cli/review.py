"""`swarm review` and the hidden `swarm review-run` (one lens as a check job): AI review. What only this command
needs is imported inside it, so every other command starts fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console, err
from orchestrator.errors import OperationalError, UsageError


@app.command("review-run", hidden=True)
def review_run(
    task: Annotated[str, typer.Argument()],
    lens: Annotated[str, typer.Option()],
    head: Annotated[str, typer.Option()],
    repo: Annotated[Path, typer.Option()],
) -> None:
    """One AI review lens as a check job (started by the monitor): exit 0 approves, 1 requests changes,
    75 could not judge (the model API failed; the monitor runs it again next tick)."""
    from monitor.world.jobs import TEMPFAIL, job_name
    from orchestrator import tasks as task_ops
    from orchestrator.brain import review as reviewing
    from orchestrator.brain.llm import LlmError, llm_from
    from orchestrator.wiring import load_world

    settings, world = load_world(repo)
    found = task_ops.get_task(world, task)
    llm = llm_from(settings)
    if llm is None:
        err().print(f"swarm review: no API key in ${settings.llm.api_key_env}", markup=False)
        raise typer.Exit(TEMPFAIL)
    from orchestrator.budget import check_llm

    try:  # over the day's budget: not judged now (the monitor asks again at a later tick)
        check_llm(settings, world.layout.state_dir, world.registry, world.clock(), "review")
    except OperationalError as exc:
        err().print(f"swarm review: {exc}", markup=False)
        raise typer.Exit(TEMPFAIL) from None
    try:
        result = reviewing.review_lens(llm, settings, world.git, found, lens, head,
                                       world.forge.base_ref(found.base_branch))
    except LlmError as exc:
        err().print(f"swarm review: {exc}", markup=False)
        raise typer.Exit(TEMPFAIL) from None
    reviewing.save(world.layout.job_dir(found.id, head, job_name(f"swarm:{lens}")), result)
    reviewing.record_usage(world.registry, found.id, result.usage)
    print(result.text())
    raise typer.Exit(0 if result.approved else 1)


@app.command()
def review(
    task: Annotated[str, typer.Argument(help="Task id (a unique prefix is enough)")],
    lens: Annotated[list[str] | None, typer.Option(help="Lens to run (repeatable; default: the swarm: "
                                                       "reviewers of done.reviewers, else logic)")] = None,
) -> None:
    """Run AI reviewers on the task's current head now; their verdicts count like the monitor's own run."""
    from orchestrator import tasks as task_ops
    from orchestrator.brain.llm import LlmError, llm_from
    from orchestrator.brain.review import review_now
    from orchestrator.wiring import load_world

    settings, world = load_world()
    found = task_ops.get_task(world, task)
    llm = llm_from(settings)
    if llm is None:
        raise UsageError(f"no API key in ${settings.llm.api_key_env}: AI review needs one")
    from orchestrator.budget import check_llm

    check_llm(settings, world.layout.state_dir, world.registry, world.clock(), "review")
    lenses = lens or [r.removeprefix("swarm:") for r in settings.done.reviewers if r.startswith("swarm:")] or ["logic"]
    try:
        for line in review_now(world, settings, llm, found, lenses):
            console().print(line, markup=False, highlight=False)
    except LlmError as exc:
        raise OperationalError(str(exc)) from None
