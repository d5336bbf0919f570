"""`swarm discover sentry|github`: outside reports become tasks. What only this command needs is imported inside it, so
every other command starts fast."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestrator.cli.apps import discover_app
from orchestrator.cli.output import console
from orchestrator.errors import OperationalError


@discover_app.command("sentry")
def discover_sentry(
    dry_run: Annotated[bool, typer.Option(help="Say what would be created; create and write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Turn new unresolved Sentry issues of the project into tasks (at most [sentry] max_new_tasks)."""
    from orchestrator.discovery.sentry import DiscoveryError, discover
    from orchestrator.wiring import load_world

    settings, world = load_world()
    try:
        report = discover(world, settings, dry_run=dry_run, now=world.clock())
    except DiscoveryError as exc:
        raise OperationalError(str(exc)) from None
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        for line in report.lines():
            console().print(line, markup=False, highlight=False)


@discover_app.command("github")
def discover_github(
    dry_run: Annotated[bool, typer.Option(help="Say which issues would be taken; create and write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Turn open issues labelled [github] intake_label into tasks, and obey /swarm commands in comments."""
    from orchestrator.discovery.comment_commands import discover_github as run
    from orchestrator.discovery.github_issues import IntakeError
    from orchestrator.wiring import load_world

    settings, world = load_world(need_forge=True)
    try:
        report, commands = run(world, settings, dry_run=dry_run, now=world.clock())
    except IntakeError as exc:
        raise OperationalError(" ".join(str(exc).split())) from None
    if as_json:
        print(json.dumps({**report.as_dict(), "commands": commands}))
    else:
        for line in [*report.lines(), *(f"  {c}" for c in commands)]:
            console().print(line, markup=False, highlight=False)


@discover_app.command("notes")
def discover_notes(
    dry_run: Annotated[bool, typer.Option(help="Say which files would be read; call no model, write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Read new or changed [discovery] notes files and propose tasks from them (`swarm proposals` to answer)."""
    from orchestrator.brain.llm import llm_from
    from orchestrator.discovery.notes import discover_notes as run
    from orchestrator.wiring import load_world

    settings, world = load_world()
    llm = None if dry_run else llm_from(settings)
    report = run(world, settings, llm, world.clock(), dry_run=dry_run)
    if llm is None and not dry_run and report.waiting:
        raise OperationalError(report.notes[0])
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        for line in report.lines():
            console().print(line, markup=False, highlight=False)
