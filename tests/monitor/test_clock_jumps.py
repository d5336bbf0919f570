"""Time through real ticks: the attempt budget holds for a chatty agent, and a wall clock that jumps (or a
suspend) re-baselines the running agents instead of killing them. Real git, real tmux, real agents."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.agent_run import LOG
from monitor.clockjump import CLOCK_FILE, measure_jump
from monitor.files import file_size
from monitor.tick import World, run_tick
from registry.models import FailureKind, Status, Task
from tests.monitor.test_tick import spawn
from tests.worlds import make_world


def wait_for_output(world: World, tasks: list[Task], timeout: float = 20.0) -> None:
    """Until every agent has printed its first line (it then sleeps, or keeps printing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(file_size(world.layout.run_dir(t.id, 1) / LOG) > 0 for t in tasks):
            return
        time.sleep(0.05)
    raise AssertionError("the agents printed nothing")


def killed(world: World, tasks: list[Task]) -> list[str]:
    state = world.registry.read()
    return [t.id for t in tasks if len(state.tasks[t.id].attempts) > 1 or state.tasks[t.id].status is not
            Status.running]


def test_timeout_fires_for_an_agent_that_keeps_printing(git_repo: Path, tmux_socket: str) -> None:
    world, clock, _ = make_world(git_repo, tmux_socket)
    world.policy = replace(world.policy, attempt_timeout=10.0, stuck_after=5.0)
    task = spawn(world, "scenario: chatty\nretry: commit-good")
    wait_for_output(world, [task])
    run_tick(world)
    size = world.registry.read().tasks[task.id].attempts[0].log_size
    clock.advance(seconds=11)
    deadline = time.monotonic() + 10
    while file_size(world.layout.run_dir(task.id, 1) / LOG) == size and time.monotonic() < deadline:
        time.sleep(0.05)  # the agent prints again before the next tick looks: it is busy, not stuck
    run_tick(world)
    failure = world.registry.read().tasks[task.id].attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.timeout
    assert failure.summary == "the attempt ran 11s, over the budget of 10s"


def test_a_clock_three_hours_ahead_kills_no_healthy_agent(git_repo: Path, tmux_socket: str) -> None:
    world, clock, notifier = make_world(git_repo, tmux_socket, monitor="max_parallel = 5")
    tasks = [spawn(world, "scenario: sleep", title=f"T{i}") for i in range(5)]
    wait_for_output(world, tasks)
    run_tick(world)
    clock.jump(hours=3)  # attempt_timeout is 1h, stuck_after 10m: judged by the wall clock, all 5 are dead
    run_tick(world)
    run_tick(world)
    assert killed(world, tasks) == []
    assert all(world.tmux.has_session(f"swarm-{t.id}") for t in tasks)
    assert not notifier.sent
    assert [e["seconds"] for e in world.events.read() if e["event"] == "clock_jump"] == [3 * 3600]


def test_a_clock_set_back_then_corrected_kills_nothing_and_says_nothing(git_repo: Path, tmux_socket: str) -> None:
    world, clock, notifier = make_world(git_repo, tmux_socket)
    tasks = [spawn(world, "scenario: sleep", title=f"T{i}") for i in range(3)]
    wait_for_output(world, tasks)
    run_tick(world)
    clock.jump(hours=-3)
    run_tick(world)
    clock.jump(hours=3)  # NTP puts it right
    run_tick(world)
    clock.advance(minutes=5)
    run_tick(world)
    assert killed(world, tasks) == []
    assert [m.kind for m in world.registry.read().outbox] == [] and notifier.sent == []


def test_a_suspend_wakes_up_to_agents_judged_from_the_monotonic_clock(git_repo: Path, tmux_socket: str) -> None:
    world, clock, _ = make_world(git_repo, tmux_socket)
    [task] = [spawn(world, "scenario: sleep")]
    wait_for_output(world, [task])
    run_tick(world)
    clock.jump(hours=8)  # the laptop slept: the wall clock moved, the monotonic one did not
    run_tick(world)
    assert killed(world, [task]) == []


def test_a_genuinely_stuck_agent_is_still_caught_after_a_jump(git_repo: Path, tmux_socket: str) -> None:
    world, clock, notifier = make_world(git_repo, tmux_socket)
    task = spawn(world, "scenario: sleep\nretry: sleep")
    wait_for_output(world, [task])
    run_tick(world)
    clock.jump(hours=3)
    run_tick(world)
    assert killed(world, [task]) == []
    clock.advance(minutes=11)  # stuck_after is 10m of real (monotonic) time without output
    run_tick(world)
    failure = world.registry.read().tasks[task.id].attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.stuck
    assert failure.summary == "no output and no commit for 11m"
    run_tick(world)
    assert [m.kind for m in notifier.sent] == ["stuck"]


def test_the_jump_is_measured_only_against_a_mark_from_this_boot(tmp_path: Path) -> None:
    wall = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    assert measure_jump(tmp_path, wall, 100.0, "boot-a") == timedelta(0), "no mark yet"
    assert measure_jump(tmp_path, wall + timedelta(seconds=30), 130.0, "boot-a") == timedelta(0)
    assert measure_jump(tmp_path, wall + timedelta(hours=1), 140.0, "boot-a") == timedelta(seconds=3600 - 30 - 10)
    assert measure_jump(tmp_path, wall + timedelta(hours=5), 5.0, "boot-b") == timedelta(0), "rebooted"
    (tmp_path / CLOCK_FILE).write_text("{not json")
    assert measure_jump(tmp_path, wall, 10.0, "boot-b") == timedelta(0)
    assert measure_jump(tmp_path, wall - timedelta(hours=3), 10.0, "boot-b") == timedelta(hours=-3)
