"""Clock jumps between ticks, measured against a clock that does not jump.

The wall clock can step (NTP, a human, a VM restored from a snapshot) and a suspended laptop wakes up hours
later; judged by the wall clock alone, every healthy agent then looks timed out or stuck. Each tick records
its wall time beside ``CLOCK_MONOTONIC`` (which never steps and stops during suspend) in
``.swarm/clock.json``; the next tick, in this process or another one, compares how far each clock moved.
The difference is the jump, which the tick uses to shift the running attempts' time marks instead of
judging them. The monotonic clock restarts at boot, so a mark from another boot gives no figure.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from monitor.files import read_json

log = logging.getLogger(__name__)
CLOCK_FILE = "clock.json"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot's id (Linux); empty elsewhere, where a reboot is then told apart by the monotonic clock."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def measure_jump(state_dir: Path, wall: datetime, mono: float, boot: str) -> timedelta:
    """How far the wall clock moved beyond the monotonic one since the last tick's mark; records this
    tick's mark. Zero when there is no usable mark (first tick, another boot, an unreadable file)."""
    path = state_dir / CLOCK_FILE
    data = read_json(path)
    jump = timedelta(0)
    if data is not None:
        try:
            last_wall = datetime.fromisoformat(str(data["wall"]))
            last_mono = float(data["mono"])
            same_boot = str(data.get("boot", "")) == boot and mono >= last_mono
            if same_boot:
                jump = (wall - last_wall) - timedelta(seconds=mono - last_mono)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring an unreadable %s (%s); the next tick measures again", path, exc)
    _write(path, {"wall": wall.isoformat(), "mono": mono, "boot": boot})
    return jump


def _write(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
