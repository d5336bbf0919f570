"""Transitions chained within one tick, through real ticks: an exited agent's checks start in the tick that
sees the exit, a dependent task starts in the tick that sees its dependency merged, wait reasons are
current, and a tick where nothing changed observes and writes nothing more."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from monitor.agent_run import RESULT
from monitor.tick import World, run_tick
from registry.models import Status
from tests.conftest import git
from tests.monitor.test_tick import CI_CHECK, spawn
from tests.worlds import make_world


def wait_for(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def jobs_done(world: World, task_id: str) -> bool:
    checks = world.layout.task_dir(task_id) / "checks"
    jobs = [d for d in checks.glob("*/*") if d.is_dir()] if checks.exists() else []
    return bool(jobs) and all((d / RESULT).exists() for d in jobs)


def test_an_exited_agent_is_ready_two_ticks_later(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, notifier = make_world(git_repo, tmux_socket, ci=CI_CHECK)
    task = spawn(world, "scenario: commit-good")
    wait_for(lambda: (world.layout.run_dir(task.id, 1) / RESULT).exists())

    report = run_tick(world)  # agent finished → checking → CI started, in one tick
    current = world.registry.read().tasks[task.id]
    assert current.status is Status.checking
    assert current.reason == "starting CI"
    assert f"{task.id}: agent_finished" in report.actions and f"{task.id}: checks_started" in report.actions

    wait_for(lambda: jobs_done(world, task.id))  # CI runs between ticks
    prefetches: list[int] = []
    real_prefetch = world.forge.prefetch
    world.forge.prefetch = lambda tasks: prefetches.append(len(tasks)) or real_prefetch(tasks)  # type: ignore
    run_tick(world)
    assert world.registry.read().tasks[task.id].status is Status.ready
    assert prefetches == [1], "a task just made ready is not read again in the same tick"
    assert [m.kind for m in notifier.sent] == ["ready"]


def test_a_dependent_starts_in_the_tick_that_sees_its_dependency_merged(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, ci=CI_CHECK)
    first = spawn(world, "scenario: commit-good", title="First")
    second = spawn(world, "scenario: sleep", title="Second", after=(first.id,))
    third = spawn(world, "scenario: sleep", title="Third", after=(second.id,))
    deadline = time.monotonic() + 30
    while world.registry.read().tasks[first.id].status is not Status.ready:
        assert time.monotonic() < deadline, world.registry.read().tasks[first.id].reason
        run_tick(world)
        wait_for(lambda: jobs_done(world, first.id) or not (world.layout.task_dir(first.id) / "checks").exists())
    assert world.registry.read().tasks[second.id].reason == f"waiting for {first.id} (ready)"

    git(git_repo, "merge", "-q", "--no-ff", "-m", "merge first", first.branch)
    run_tick(world)

    state = world.registry.read()
    assert state.tasks[first.id].status is Status.merged
    assert state.tasks[second.id].status is Status.running, state.tasks[second.id].reason
    assert state.tasks[third.id].reason == f"waiting for {second.id} (running)", "the wait reason is current"


def test_a_tick_with_nothing_changed_reads_the_forge_once_and_writes_nothing(
    git_repo: Path, tmux_socket: str
) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, ci=CI_CHECK)
    ready = spawn(world, "scenario: commit-good", title="Ready")
    spawn(world, "scenario: sleep", title="Busy")
    deadline = time.monotonic() + 30
    while world.registry.read().tasks[ready.id].status is not Status.ready:
        assert time.monotonic() < deadline
        run_tick(world)
        time.sleep(0.1)
    run_tick(world)
    calls: list[str] = []
    real_prefetch, real_view = world.forge.prefetch, world.forge.view

    def prefetch(tasks: Any) -> None:
        calls.append("prefetch")
        real_prefetch(tasks)

    def view(*args: Any) -> Any:
        calls.append("view")
        return real_view(*args)

    world.forge.prefetch = prefetch  # type: ignore[method-assign]
    world.forge.view = view  # type: ignore[method-assign,assignment]
    serial = world.registry.read().serial
    for _ in range(3):
        report = run_tick(world)
        assert report.actions == []
    assert calls == ["prefetch", "view"] * 3, "one read per task per tick: no chained round"
    assert world.registry.read().serial == serial, "a healthy tick writes nothing"
