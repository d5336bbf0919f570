"""Archiving finished tasks and the monitor's schedule of chores, on a real registry and repository."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.tick import World
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, load
from orchestrator.maintenance import run_due
from orchestrator.wiring import UsageError
from registry.archive import archive_finished, archived, find_archived
from registry.models import RegistryState, Status, Task
from tests.worlds import Clock, make_world

DAY = timedelta(days=1)


def add(world: World, task_id: str, status: Status, ended_days_ago: float, after: tuple[str, ...] = ()) -> Task:
    now = world.clock()
    ended = now - ended_days_ago * DAY
    task = Task(id=task_id, title=task_id, prompt="p", agent="scripted", status=status, base_branch="main",
                branch=f"swarm/{task_id}", worktree=str(world.layout.worktree(task_id)), after=after,
                created_at=ended - DAY, updated_at=ended,
                ended_at=None if status.active else ended)
    world.registry.update(lambda s: s.with_task(task))
    runs = world.layout.run_dir(task_id, 1)
    runs.mkdir(parents=True)
    (runs / "output.log").write_text(f"log of {task_id}\n")
    return task


@pytest.fixture
def world(git_repo: Path, tmux_socket: str) -> tuple[World, Clock]:
    world, clock, _ = make_world(git_repo, tmux_socket)
    return world, clock


def test_old_finished_tasks_move_to_the_archive_with_their_logs(world: tuple[World, Clock]) -> None:
    w, _ = world
    add(w, "old-merged", Status.merged, 20)
    add(w, "old-failed", Status.failed, 30)
    add(w, "new-cancelled", Status.cancelled, 2)
    add(w, "old-dep", Status.merged, 40)
    add(w, "waiting", Status.queued, 0, after=("old-dep",))
    moved = archive_finished(w.registry, w.layout.state_dir / "runs", w.clock(), 14 * DAY)
    assert sorted(t.id for t in moved) == ["old-failed", "old-merged"]
    left = w.registry.read().tasks
    assert sorted(left) == ["new-cancelled", "old-dep", "waiting"]  # a dependency of an active task stays
    assert {t.id for t in archived(w.layout.state_dir)} == {"old-merged", "old-failed"}
    archived_log = w.layout.state_dir / "archive" / "runs" / "old-merged" / "1" / "output.log"
    assert archived_log.read_text() == "log of old-merged\n"
    assert not w.layout.task_dir("old-merged").exists()
    with pytest.raises(UsageError, match="merged and was archived"):
        task_ops.get_task(w, "old-merged")


def test_a_crash_before_the_registry_update_loses_nothing_and_is_repaired(world: tuple[World, Clock],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    w, _ = world
    add(w, "old", Status.merged, 20)

    def crash(fn: object) -> RegistryState:
        raise OSError("killed")

    with monkeypatch.context() as patch:
        patch.setattr(w.registry, "update", crash)
        with pytest.raises(OSError):
            archive_finished(w.registry, w.layout.state_dir / "runs", w.clock(), 14 * DAY)
    assert "old" in w.registry.read().tasks  # still live
    assert find_archived(w.layout.state_dir, "old") is not None  # and already archived: in both, never neither
    archive_finished(w.registry, w.layout.state_dir / "runs", w.clock(), 14 * DAY)
    assert "old" not in w.registry.read().tasks
    assert [t.id for t in archived(w.layout.state_dir)] == ["old", "old"]
    assert find_archived(w.layout.state_dir, "old") is not None


def test_chores_run_when_due_and_a_failing_one_is_retried(world: tuple[World, Clock]) -> None:
    w, clock = world
    settings = load(w.layout.repo / CONFIG_NAME)
    add(w, "old", Status.merged, 20)
    calls: list[str] = []

    def flaky() -> list[str]:
        calls.append("x")
        if len(calls) == 1:
            raise RuntimeError("sentry is down")
        return ["created 0 task(s)"]

    first = run_due(w, settings, {"discover": (3600.0, flaky)})
    assert any(line.startswith("cleanup: archived 1") for line in first)
    assert "discover: failed: sentry is down" in first
    assert "old" not in w.registry.read().tasks
    last = json.loads((w.layout.state_dir / "maintenance.json").read_text())
    assert set(last) == {"cleanup"}  # the failed chore is not marked done
    again = run_due(w, settings, {"discover": (3600.0, flaky)})
    assert again == ["discover: created 0 task(s)"]  # cleanup is not due yet, discovery is retried
    assert run_due(w, settings, {"discover": (3600.0, flaky)}) == []
    clock.advance(hours=25)
    later = run_due(w, settings, {"discover": (3600.0, flaky)})
    assert {line.split(":")[0] for line in later} == {"cleanup", "discover"}


def test_cleanup_dry_run_says_what_it_would_archive_and_changes_nothing(world: tuple[World, Clock]) -> None:
    from orchestrator.maintenance import clean_and_archive

    w, _ = world
    settings = load(w.layout.repo / CONFIG_NAME)
    add(w, "old", Status.cancelled, 20)
    lines = clean_and_archive(w, settings, w.clock(), dry_run=True)
    assert "would archive 1 finished task(s) older than 14 day(s)" in lines
    assert "old" in w.registry.read().tasks and not (w.layout.state_dir / "archive").exists()


def test_a_full_disk_never_fails_the_tick_through_the_chores(git_repo: Path, tmux_socket: str) -> None:
    from tests.tinydisk import fill, tiny_disk

    with tiny_disk(git_repo / ".swarm", "256k") as state_dir:
        w, _clock, _ = make_world(git_repo, tmux_socket)
        settings = load(w.layout.repo / CONFIG_NAME)
        filler = fill(state_dir)

        done = run_due(w, settings)  # nothing to archive, then maintenance.json cannot be written

        assert any(line.startswith("cleanup: ") for line in done)
        assert not (state_dir / "maintenance.json").exists()
        assert [p.name for p in state_dir.iterdir() if p.name.startswith(".maintenance")] == []
        filler.unlink()
        assert run_due(w, settings)  # still due: it runs again once there is room
        assert (state_dir / "maintenance.json").exists()
