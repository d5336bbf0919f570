"""`swarm discover sentry`: outside reports become tasks. What only this command needs is imported inside it, so
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
