"""`swarm status`: the tasks, their state and why. What only this command needs is imported inside it, so every
other command starts fast."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console, err


@app.command()
def status(
    task: Annotated[str | None, typer.Argument(help="Show one task in detail")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
    watch: Annotated[bool, typer.Option(help="Refresh every 2 s until Ctrl-C")] = False,
    active: Annotated[bool, typer.Option("--active", help="Only tasks still in flight")] = False,
) -> None:
    """The tasks, their state and why."""
    from rich.console import Console
    from rich.live import Live

    from monitor.heartbeat import monitor_line
    from orchestrator import status as status_view
    from orchestrator.serve.health import serve_lines, serve_running
    from orchestrator.view import find_task, load_view, utc_now
    from registry.models import Task

    settings, world = load_view()  # read only: no tmux, git or forge to set up
    if task:
        found = find_task(world.registry, world.layout.state_dir, task)
        everyone = world.registry.read().tasks  # a stacked task names its dependency's PR
        if as_json:
            print(json.dumps(status_view.task_json(found, everyone), indent=1))
        else:
            status_view.detail(console(), found, everyone)
        return

    def current() -> list[Task]:
        listed = sorted(world.registry.read().tasks.values(), key=lambda t: t.created_at)
        return [t for t in listed if not active or t.status.active]

    if as_json:
        everyone = world.registry.read().tasks
        print(json.dumps([status_view.task_json(t, everyone) for t in current()], indent=1))
    elif watch:
        with Live(status_view.table(current(), utc_now(), console().width), console=console(),
                  refresh_per_second=1) as live:
            try:
                while True:
                    time.sleep(2)
                    live.update(status_view.table(current(), utc_now(), console().width))
            except KeyboardInterrupt:
                pass
    else:
        tasks = current()
        if not tasks:
            console().print("no tasks yet: `swarm spawn --title ... --prompt ...`")
        else:
            width = status_view.table_width(console())
            wide = console() if console().width == width else Console(soft_wrap=True, width=width)
            wide.print(status_view.table(tasks, utc_now(), width))
        from orchestrator.budget import today

        spend = today(settings, world.layout.state_dir, world.registry, utc_now())
        if spend is not None:  # [budget]: today $x of $y (held in yellow when over)
            (err() if spend.over else console()).print(spend.line() + (f" — held: {spend.reason}" if spend.over
                                                                        else ""), markup=False, highlight=False,
                                                       style="yellow" if spend.over else None)
        for warning in status_view.blocked(sorted(world.registry.read().tasks.values(), key=lambda t: t.created_at)):
            err().print(warning, markup=False, highlight=False, style="yellow")
        serving = serve_running(world.layout.state_dir, utc_now())
        interval = max(settings.monitor.interval, float(serving.get("interval", 0))) if serving else None
        healthy, line = monitor_line(world.layout.state_dir, utc_now(), interval or settings.monitor.interval)
        (console() if healthy else err()).print(line, markup=False, highlight=False,
                                                style=None if healthy else "yellow")
        for line in serve_lines(world.layout.state_dir, utc_now()):  # `swarm serve`, webhooks, GitHub's budget
            console().print(line, markup=False, highlight=False)
