"""The reconcile loop: one tick at a time, a full tick at start and on the timer, event ticks limited to
the tasks named, bursts coalesced, a tick skipped for a busy lock tried again with the same tasks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.tick import TickReport
from orchestrator.serve import health
from orchestrator.serve.reconcile import Reconciler
from tests.waiting import wait_for


class Ticks:
    def __init__(self, skip_first: int = 0, hold: threading.Event | None = None) -> None:
        self.calls: list[set[str] | None] = []
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.skip = skip_first
        self.hold = hold

    def __call__(self, stop: threading.Event, only: set[str] | None) -> TickReport:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.calls.append(only)
            skip = self.skip > 0
            self.skip -= 1
        if self.hold is not None:
            self.hold.wait(10)
        with self.lock:
            self.running -= 1
        return TickReport(skipped=skip)


def test_a_full_tick_at_start_then_event_ticks_for_the_named_tasks_only() -> None:
    ticks = Ticks()
    loop = Reconciler(ticks, interval=3600)
    loop.start()
    try:
        wait_for(lambda: ticks.calls == [None], "the first, full tick")
        loop.request({"a-1"})
        wait_for(lambda: len(ticks.calls) == 2, "the event tick")
        assert ticks.calls[1] == {"a-1"}
    finally:
        loop.shutdown()
    assert loop.partial_ticks == 1 and loop.ticks == 2


def test_events_during_a_tick_are_coalesced_into_one_and_ticks_never_overlap() -> None:
    hold = threading.Event()
    ticks = Ticks(hold=hold)
    loop = Reconciler(ticks, interval=3600)
    loop.start()
    try:
        wait_for(lambda: ticks.running == 1, "the first tick to be running")
        for number in range(50):
            loop.request({f"t-{number % 5}"})
        hold.set()
        wait_for(lambda: len(ticks.calls) == 2 and ticks.running == 0, "one tick for the whole burst")
        assert ticks.calls[1] == {f"t-{n}" for n in range(5)}
        assert ticks.most == 1
    finally:
        loop.shutdown()


def test_a_full_request_swallows_pending_tasks() -> None:
    hold = threading.Event()
    ticks = Ticks(hold=hold)
    loop = Reconciler(ticks, interval=3600)
    loop.start()
    try:
        wait_for(lambda: ticks.running == 1, "the first tick")
        loop.request({"a-1"})
        loop.request(set())  # a message naming no task: reconcile everything
        hold.set()
        wait_for(lambda: len(ticks.calls) == 2, "the next tick")
        assert ticks.calls[1] is None
    finally:
        loop.shutdown()


def test_a_tick_skipped_for_a_busy_lock_is_tried_again_with_the_same_tasks() -> None:
    ticks = Ticks()
    loop = Reconciler(ticks, interval=3600, retry_skipped=0.05)
    loop.start()
    try:
        wait_for(lambda: ticks.calls == [None], "the first tick")
        ticks.skip = 1
        loop.request({"b-2"})
        wait_for(lambda: len(ticks.calls) == 3, "the retry")
        assert ticks.calls[1:] == [{"b-2"}, {"b-2"}]
    finally:
        loop.shutdown()


def test_shutdown_lets_the_running_tick_finish() -> None:
    hold = threading.Event()
    ticks = Ticks(hold=hold)
    loop = Reconciler(ticks, interval=3600)
    loop.start()
    wait_for(lambda: ticks.running == 1, "a tick running")
    stopper = threading.Thread(target=loop.shutdown)
    stopper.start()
    wait_for(loop.stop.is_set, "the stop flag the tick sees")
    assert stopper.is_alive(), "shutdown waits for the tick"
    hold.set()
    stopper.join(10)
    assert not stopper.is_alive() and ticks.running == 0


def test_status_lines_say_whether_serve_runs(tmp_path: Path) -> None:
    now = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
    assert health.serve_lines(tmp_path, now) == []
    health.write_serve(tmp_path, host="127.0.0.1", port=8765, interval=600, started=now, now=now)
    lines = health.serve_lines(tmp_path, now + timedelta(seconds=40))
    assert lines[0].startswith("serve: running (pid") and "every 10m" in lines[0]
    assert lines[1] == "webhooks: none received yet"
    assert health.serve_lines(tmp_path, now + timedelta(minutes=5))[0].startswith("serve: not running")
    health.record_webhook(tmp_path, "check_run", "d-1", 1, now)
    assert any(line.startswith("webhooks: last check_run 40s ago") for line in
               health.serve_lines(tmp_path, now + timedelta(seconds=40)))
    until = (now + timedelta(minutes=3)).timestamp()
    (tmp_path / "github.json").write_text(json.dumps({"blocked_until": until, "blocked_reason": "403"}))
    assert any(line.startswith("GitHub: rate-limited until 21:03:00") for line in health.serve_lines(tmp_path, now))
    health.clear_serve(tmp_path)
    assert not (tmp_path / health.SERVE_FILE).exists()


def test_github_events_settle_longer_than_local_ones() -> None:
    from orchestrator.config import Settings
    from orchestrator.serve.command import settle_for

    github = Settings.model_validate({"project": {"forge": "github"}, "github": {"repo": "acme/shop"}})
    assert settle_for(github) == 1.0
    assert settle_for(Settings()) == 0.05
