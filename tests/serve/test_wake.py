"""Waking `swarm serve`: the datagram socket, the agent wrapper's wake on exit, and a tick limited to the
tasks an event names."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from monitor.tick import run_tick
from monitor.wake import decode, encode, socket_path, state_dir_for_run, wake
from orchestrator import tasks as task_ops
from orchestrator.serve.events import EventSocket
from registry.models import Status
from tests.waiting import wait_for, wait_for_result
from tests.worlds import REPO_ROOT, make_world


class Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[set[str]] = []

    def __call__(self, ids: set[str]) -> None:
        with self.lock:
            self.messages.append(ids)

    def all(self) -> set[str]:
        with self.lock:
            return set().union(*self.messages) if self.messages else set()


def test_wake_without_a_service_returns_at_once_and_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / ".swarm"
    state.mkdir()
    started = time.monotonic()
    assert wake(state, ["a-1"]) is False
    assert time.monotonic() - started < 0.5
    assert list(state.iterdir()) == []


def test_a_stale_socket_left_by_a_killed_service_is_harmless(tmp_path: Path) -> None:
    state = tmp_path / ".swarm"
    state.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as bound:
        bound.bind(str(socket_path(state)))
    # closed: the file stays and nobody listens, as a SIGKILLed service leaves it
    assert socket_path(state).exists()
    assert wake(state, ["a-1"]) is False


def test_messages_name_task_ids_and_nothing_else(tmp_path: Path) -> None:
    state = tmp_path / ".swarm"
    state.mkdir()
    got = Received()
    events = EventSocket(state, got)
    events.open()
    try:
        assert stat.S_IMODE(os.stat(socket_path(state)).st_mode) == 0o600
        assert wake(state, ["fix-login-1a2b", "../etc", "ALSO BAD", "ok-2"])
        wait_for(lambda: got.all() == {"fix-login-1a2b", "ok-2"}, "the two valid ids")
    finally:
        events.close()
    assert not socket_path(state).exists(), "a clean stop removes the socket"
    assert decode(b"a-1 \x00\xff b-2 $(rm) " + b"x" * 5000) == {"a-1", "b-2"}
    assert len(encode([f"task-{i:04d}" for i in range(2000)])) <= 4096


def test_a_long_state_path_gets_a_short_private_socket(tmp_path: Path) -> None:
    state = tmp_path / ("deep-" * 20) / ".swarm"
    state.mkdir(parents=True)
    path = socket_path(state)
    assert len(str(path)) < 108 and path != state / "serve.sock"
    got = Received()
    events = EventSocket(state, got)
    events.open()
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
        assert wake(state, ["t-1"])
        wait_for(lambda: got.all() == {"t-1"}, "the id through the short socket")
    finally:
        events.close()


def test_the_run_dir_tells_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "repo" / ".swarm"
    assert state_dir_for_run(state / "runs" / "t-1" / "2") == state.resolve()
    assert state_dir_for_run(state / "runs" / "t-1" / "checks" / "abc" / "ci") == state.resolve()
    assert state_dir_for_run(tmp_path / "elsewhere") is None


def test_the_agent_wrapper_wakes_the_service_after_writing_its_result(tmp_path: Path) -> None:
    state = tmp_path / ".swarm"
    run_dir = state / "runs" / "task-7" / "1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({
        "task": "task-7", "attempt": 1, "argv": [sys.executable, "-c", "print('done')"], "prompt_mode": "none",
        "parser": "plain", "env": {}, "unset_env": [], "cwd": str(tmp_path), "setup": None}))
    seen: list[bool] = []
    got = Received()

    def on_wake(ids: set[str]) -> None:
        seen.append((run_dir / "result.json").exists())  # the result is on disk before the wake
        got(ids)

    events = EventSocket(state, on_wake)
    events.open()
    try:
        subprocess.run([sys.executable, "-m", "monitor.agent_run", str(run_dir)], cwd=REPO_ROOT, check=True,
                       capture_output=True, timeout=60)
        wait_for(lambda: got.all() == {"task-7"}, "the wrapper's wake")
    finally:
        events.close()
    assert seen == [True]


def test_a_tick_limited_to_some_tasks_observes_only_them(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _notifier = make_world(git_repo, tmux_socket, ci="true")
    first = task_ops.spawn(world, title="One", prompt="scenario: commit-good", agent="scripted", kind="default",
                           after=[], base_branch="main")
    second = task_ops.spawn(world, title="Two", prompt="scenario: commit-good", agent="scripted", kind="default",
                            after=[], base_branch="main")
    wait_for_result(world.layout, first.id)
    wait_for_result(world.layout, second.id)
    run_tick(world, only={first.id})
    state = world.registry.read()
    assert state.tasks[first.id].status is not Status.running, "the named task was judged"
    assert state.tasks[second.id].status is Status.running, "the other task was left for its own event"
    run_tick(world)
    assert world.registry.read().tasks[second.id].status is not Status.running
