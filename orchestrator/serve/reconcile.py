"""The reconcile loop of `swarm serve`: every tick runs on one worker thread, one at a time.

Two kinds of ticks reach it. The timer (APScheduler, as `swarm monitor daemon`; the first at once) asks for
a full tick: every task, then the chores. An event (the local socket, a webhook) asks for a tick limited to
the tasks it names. Requests that arrive while a tick runs, or within ``settle`` seconds of each other, are
coalesced into the next tick; a full tick swallows the pending task ids. A tick skipped because another
process holds the tick lock (a timer unit, `swarm spawn`) is tried again shortly with the same tasks, so an
event is not lost to a busy lock; one lost anyway (a crash) is caught by the next full reconcile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from monitor.tick import TickReport

log = logging.getLogger(__name__)

# tick(stop, only): only=None is a full tick
Tick = Callable[[threading.Event, set[str] | None], TickReport]


class Reconciler:
    def __init__(self, tick: Tick, interval: float, *, settle: float = 0.05, retry_skipped: float = 0.5,
                 on_tick: Callable[[TickReport, set[str] | None], None] | None = None) -> None:
        self.tick = tick
        self.interval = interval
        self.settle = settle
        self.retry_skipped = retry_skipped
        self.on_tick = on_tick
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.pending: set[str] = set()
        self.full = False
        self.ticks = 0
        self.partial_ticks = 0
        self.thread = threading.Thread(target=self._loop, name="swarm-reconcile", daemon=True)
        self.scheduler = BackgroundScheduler(timezone=UTC)

    def start(self, extra_jobs: list[tuple[Callable[[], None], float]] | None = None) -> None:
        self.scheduler.add_job(
            self.request_full, "interval", seconds=self.interval, next_run_time=datetime.now(UTC),
            max_instances=1, coalesce=True, misfire_grace_time=max(1, int(self.interval)), id="swarm-reconcile",
        )
        for index, (job, every) in enumerate(extra_jobs or []):
            self.scheduler.add_job(job, "interval", seconds=every, next_run_time=datetime.now(UTC),
                                   max_instances=1, coalesce=True, id=f"swarm-serve-{index}")
        self.thread.start()
        self.scheduler.start()

    def request_full(self) -> None:
        with self.cond:
            self.full = True
            self.cond.notify()

    def request(self, task_ids: set[str]) -> None:
        """Tasks that changed: a tick for them soon (an empty set means everything)."""
        with self.cond:
            if task_ids:
                self.pending |= task_ids
            else:
                self.full = True
            self.cond.notify()

    def shutdown(self, timeout: float = 600.0) -> None:
        """Let the running tick finish its current step, then stop (SIGTERM and Ctrl-C end here)."""
        self.stop.set()
        self.scheduler.shutdown(wait=False)
        with self.cond:
            self.cond.notify()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _next(self) -> tuple[bool, set[str] | None]:
        """(go on, the next tick's tasks: None for all); (False, None) when stopping."""
        with self.cond:
            while not (self.full or self.pending) and not self.stop.is_set():
                self.cond.wait()
            if self.stop.is_set():
                return False, None
        if self.settle > 0:
            self.stop.wait(self.settle)  # a burst (agent exit + CI job + spawn) becomes one tick
        with self.cond:
            if self.stop.is_set():
                return False, None
            only = None if self.full else set(self.pending)
            self.full = False
            self.pending = set()
            return True, only

    def _loop(self) -> None:
        while True:
            go_on, only = self._next()
            if not go_on:
                return
            started = time.monotonic()
            try:
                report = self.tick(self.stop, only)
            except Exception:
                log.exception("tick failed; the next one runs on schedule")
                continue
            if report.skipped:  # another process ticks now: try the same tasks again in a moment
                self.request(only or set())
                self.stop.wait(self.retry_skipped)
                continue
            self.ticks += 1
            self.partial_ticks += only is not None
            log.info("%s tick: %d action(s) in %.2fs", "full" if only is None else f"{len(only)}-task",
                     len(report.actions), time.monotonic() - started)
            if self.on_tick is not None:
                self.on_tick(report, only)
