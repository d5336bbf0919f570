"""The monitor's heartbeat: every finished tick writes its time to ``.swarm/last-tick``, so `swarm status`
can say whether a monitor runs at all. Without it nothing tells the user that no daemon, timer or cron
job is ticking, and tasks sit "running" forever while nobody watches them."""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from monitor.durations import format_duration

LAST_TICK = "last-tick"


def record_tick(state_dir: Path, at: datetime) -> None:
    """Write the tick's time atomically (a reader never sees half a timestamp)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{LAST_TICK}.tmp-{secrets.token_hex(4)}"
    tmp.write_text(at.isoformat() + "\n", encoding="utf-8")
    os.replace(tmp, state_dir / LAST_TICK)


def last_tick(state_dir: Path) -> datetime | None:
    """The time of the last finished tick; None when none ran (or the file is unreadable)."""
    try:
        when = datetime.fromisoformat((state_dir / LAST_TICK).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return when if when.tzinfo is not None else None


def monitor_line(state_dir: Path, now: datetime, interval: float) -> tuple[bool, str]:
    """(healthy, one line) for `swarm status`: unhealthy when no tick ran, or none for two intervals."""
    when = last_tick(state_dir)
    start = "start one: `swarm monitor daemon`, `swarm systemd install` or cron running `swarm monitor run-once`"
    if when is None:
        return False, f"monitor: no tick has run yet; nothing watches the agents — {start}"
    age = max(0.0, (now - when).total_seconds())
    ago = f"last tick {format_duration(age)} ago ({when:%Y-%m-%d %H:%M:%S} UTC)"
    if age > 2 * interval:
        return False, (f"WARNING: monitor: {ago}, over two intervals of {format_duration(interval)}: it is not "
                       f"running — {start}")
    return True, f"monitor: {ago}"
