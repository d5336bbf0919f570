"""`swarm proposals`: the tasks proposed from meeting notes, waiting for a person's yes or no. What only this
command needs is imported inside it, so every other command starts fast."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console

proposals_app = typer.Typer(help="Tasks proposed from meeting notes: list, approve, drop.",
                            invoke_without_command=True)
app.add_typer(proposals_app, name="proposals")


@proposals_app.callback()
def list_proposals(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Also the approved and dropped ones")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """The pending proposals (with --all: every one), each with the lines of the notes it came from."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator import proposals
    from orchestrator.view import load_view

    _, view = load_view()
    shown = [p for p in proposals.load(view.layout.state_dir).proposals if show_all or p.status == "pending"]
    if as_json:
        print(json.dumps([p.model_dump(mode="json") for p in shown], indent=1))
        return
    if not shown:
        console().print("no proposals waiting (`swarm discover notes` reads the [discovery] notes)",
                        markup=False, highlight=False)
        return
    for p in shown:
        state = "" if p.status == "pending" else f" — {p.status}" + (f" as task {p.task_id}" if p.task_id else "")
        console().print(f"{p.id}  [{p.kind}] {p.title}  (from {p.source}){state}", markup=False, highlight=False)
        for quote in p.quotes[:3]:
            console().print(f"      > {quote[:200]}", markup=False, highlight=False)


@proposals_app.command("approve")
def approve(ids: Annotated[list[str], typer.Argument(help="Proposal ids (p1 or 1)")]) -> None:
    """Spawn these proposals as tasks (through the same code as `swarm spawn`)."""
    from monitor.wake import wake
    from orchestrator import proposals
    from orchestrator.wiring import load_world

    settings, world = load_world()
    for given in ids:
        done = proposals.approve(world, settings, given)
        wake(world.layout.state_dir, [done.task_id])
        console().print(f"{done.id}: task {done.task_id} spawned ({done.title})", markup=False, highlight=False)


@proposals_app.command("drop")
def drop(ids: Annotated[list[str], typer.Argument(help="Proposal ids (p1 or 1)")]) -> None:
    """Say no to these proposals (they stay listed under --all)."""
    from orchestrator import proposals
    from orchestrator.view import load_view, utc_now

    _, view = load_view()
    for given in ids:
        done = proposals.drop(view.layout.state_dir, given, utc_now())
        console().print(f"{done.id}: dropped ({done.title})", markup=False, highlight=False)
