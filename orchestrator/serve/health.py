"""What `swarm status` says about `swarm serve`: whether it runs, its last webhook, GitHub's budget.

The service writes ``.swarm/serve.json`` (pid, address, start, a heartbeat every 30 s) and removes it when
it stops cleanly; ``.swarm/last-webhook.json`` holds the last accepted delivery. Readers trust neither
blindly: a pid that is gone or a heartbeat older than two minutes means "not running" (a SIGKILLed service
leaves its file behind). No web framework is imported here: `swarm status` stays quick.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.agent_run import write_json_atomic
from monitor.durations import format_duration
from monitor.world.proc import pid_alive

SERVE_FILE = "serve.json"
WEBHOOK_FILE = "last-webhook.json"
HEARTBEAT_EVERY = 30.0
STALE_AFTER = 120.0


def read_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def aware_time(value: object) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def write_serve(state_dir: Path, *, host: str, port: int, interval: float, started: datetime,
                now: datetime) -> None:
    write_json_atomic(state_dir / SERVE_FILE, {
        "pid": os.getpid(), "host": host, "port": port, "interval": interval,
        "started_at": started.isoformat(), "heartbeat_at": now.isoformat(),
    })


def clear_serve(state_dir: Path) -> None:
    """Removed on a clean stop, only if it is still this process's file."""
    if read_object(state_dir / SERVE_FILE).get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (state_dir / SERVE_FILE).unlink()


def record_webhook(state_dir: Path, event: str, delivery: str, tasks: int, now: datetime) -> None:
    write_json_atomic(state_dir / WEBHOOK_FILE, {
        "at": now.isoformat(), "event": event, "delivery": delivery, "tasks": tasks})




def serve_running(state_dir: Path, now: datetime) -> dict[str, Any] | None:
    """The service's file when it runs (live pid, fresh heartbeat); None otherwise."""
    data = read_object(state_dir / SERVE_FILE)
    beat = aware_time(data.get("heartbeat_at"))
    if not data or beat is None or not pid_alive(data.get("pid")):
        return None
    return data if (now - beat).total_seconds() <= STALE_AFTER else None


def serve_lines(state_dir: Path, now: datetime) -> list[str]:
    """Lines for `swarm status`: the service, the last webhook, GitHub's budget (each only when known)."""
    lines = []
    running = serve_running(state_dir, now)
    if running is not None:
        started = aware_time(running.get("started_at"))
        up = f", up {format_duration(max(0.0, (now - started).total_seconds()))}" if started else ""
        lines.append(f"serve: running (pid {running.get('pid')}, http://{running.get('host')}:{running.get('port')}"
                     f"{up}; reconcile every {format_duration(float(running.get('interval', 0) or 0))})")
    elif (state_dir / SERVE_FILE).exists():
        lines.append("serve: not running (it stopped without cleaning up: `swarm serve` or "
                     "`systemctl --user restart swarm-serve-*` starts it again)")
    hook = read_object(state_dir / WEBHOOK_FILE)
    at = aware_time(hook.get("at"))
    if at is not None:
        ago = format_duration(max(0.0, (now - at).total_seconds()))
        lines.append(f"webhooks: last {str(hook.get('event', '?'))[:40]} {ago} ago ({at:%Y-%m-%d %H:%M:%S} UTC)")
    elif running is not None:
        lines.append("webhooks: none received yet")
    budget = github_budget(state_dir, now)
    if budget:
        lines.append(budget)
    return lines


def github_budget(state_dir: Path, now: datetime) -> str:
    """What ``.swarm/github.json`` knows of the rate limit: a block in force, or what is left of each budget
    (GraphQL points and REST requests are separate hourly budgets), from the last answers' headers."""
    data = read_object(state_dir / "github.json")
    blocked = data.get("blocked_until")
    if isinstance(blocked, int | float) and blocked > now.timestamp():
        until = datetime.fromtimestamp(blocked, UTC)
        return (f"GitHub: rate-limited until {until:%H:%M:%S} UTC ({str(data.get('blocked_reason', ''))[:80]}); "
                "no calls until then")
    rates = data.get("rates")
    known = [r for r in (rates.values() if isinstance(rates, dict) else [data.get("rate")])
             if isinstance(r, dict) and isinstance(r.get("remaining"), int)]
    parts = [_budget(rate, now) for rate in sorted(known, key=lambda r: _RESOURCES.get(str(r.get("resource")), 9))]
    return f"GitHub budget: {'; '.join(parts)}" if parts else ""


_RESOURCES = {"graphql": 0, "core": 1}  # the GraphQL points first: a tick's reads spend them
_NAMES = {"graphql": "GraphQL points", "core": "REST requests"}


def _budget(rate: dict[str, Any], now: datetime) -> str:
    """One resource's budget, as the last answer reported it: "4,988 of 5,000 GraphQL points left (resets
    21:52 UTC)"; once the reset has passed the hour began again (full, as far as swarm knows)."""
    resource = str(rate.get("resource") or "core")
    name = _NAMES.get(resource, f"{resource[:20]} requests")
    limit = rate.get("limit")
    reset = rate.get("reset")
    if isinstance(reset, int | float) and 0 < reset <= now.timestamp() and isinstance(limit, int):
        return f"{limit:,} of {limit:,} {name} (its hour began again at {datetime.fromtimestamp(reset, UTC):%H:%M} UTC)"
    of = f" of {limit:,}" if isinstance(limit, int) else ""
    when = (f" (resets {datetime.fromtimestamp(reset, UTC):%H:%M} UTC)"
            if isinstance(reset, int | float) and reset > 0 else "")
    return f"{rate['remaining']:,}{of} {name} left{when}"
