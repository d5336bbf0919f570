"""`swarm monitor daemon`: the tick on an APScheduler loop.

First tick at once, never two at a time (``max_instances=1``, ``coalesce``), a misfire grace of about
one interval (APScheduler's default of 1 s would drop ticks after a slow one), and SIGTERM finishes the
current tick and stops: the scheduler installs no signal handler of its own.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger(__name__)


def run_daemon(tick: Callable[[threading.Event], None], interval: float) -> None:
    stop = threading.Event()
    scheduler = BlockingScheduler(timezone=UTC)

    def job() -> None:
        if stop.is_set():
            return
        try:
            tick(stop)
        except Exception:
            log.exception("tick failed; the next one runs on schedule")

    scheduler.add_job(
        job, "interval", seconds=interval, next_run_time=datetime.now(UTC), max_instances=1, coalesce=True,
        misfire_grace_time=max(1, int(interval)), id="swarm-tick",
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: finishing the current tick, then stopping", signal.Signals(signum).name)
        stop.set()
        scheduler.shutdown(wait=False)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler.start()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
