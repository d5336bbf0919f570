"""`swarm monitor run-once | daemon`: the token-free supervisor's ticks. What only this command needs is imported
inside it, so every other command starts fast."""

from __future__ import annotations

import json
import threading
from typing import Annotated

import typer

from orchestrator.cli.apps import monitor_app
from orchestrator.cli.output import console, err
from orchestrator.errors import UsageError


@monitor_app.command("run-once")
def run_once(as_json: Annotated[bool, typer.Option("--json", help="Print the tick's report as JSON")] = False) -> None:
    """One token-free tick (what the systemd timer and cron call), then the chores that are due."""
    from monitor import selfmon
    from orchestrator.maintenance import service_tick, start_self_monitoring
    from orchestrator.wiring import load_world

    settings, world = load_world(need_forge=True)
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    start_self_monitoring(settings)
    try:
        report, chores = service_tick(world, settings, stop)
    finally:
        selfmon.flush()  # a one-shot process: what is queued must leave before it exits
    if as_json:
        print(json.dumps({**report.as_dict(), "chores": chores}))
    elif report.skipped:
        err().print("another tick is running; skipped this one")
    else:
        for line in [*report.actions, *chores]:
            console().print(line, markup=False, highlight=False)
        err().print(f"tick done: {report.tasks} active task(s), {len(report.actions)} action(s), "
                  f"{report.notified} notification(s)")


@monitor_app.command()
def daemon(interval: Annotated[str, typer.Option(help="Time between ticks, e.g. 2m")] = "") -> None:
    """Tick forever on APScheduler; SIGTERM finishes the current tick and exits."""
    from monitor.daemon import run_daemon
    from monitor.durations import parse_duration
    from orchestrator.wiring import load_world

    settings, world = load_world(need_forge=True)
    try:
        seconds = parse_duration(interval) if interval else settings.monitor.interval
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    if seconds < 1:
        raise UsageError("--interval must be at least 1s")

    from monitor import selfmon
    from orchestrator.maintenance import service_tick, start_self_monitoring

    def tick(stop: threading.Event) -> None:
        report, chores = service_tick(world, settings, stop)
        for line in [*report.actions, *chores]:
            console().print(line, markup=False, highlight=False)

    start_self_monitoring(settings)
    err().print(f"monitor daemon: ticking every {seconds:g}s (Ctrl-C or SIGTERM to stop)")
    try:
        run_daemon(tick, seconds)
    finally:
        selfmon.flush()
