"""The merge train's order, as values: dependency order first, then approval order; only approved tasks
that can still land are in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.merge.queue import ordinal, position, train_order, train_reason
from registry.models import MergeRequest, Status, Task

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _task(task_id: str, approved: int | None, after: tuple[str, ...] = (), status: Status = Status.ready) -> Task:
    request = None if approved is None else MergeRequest(by="alice", at=T0 + timedelta(minutes=approved),
                                                         head="a" * 40, waiting=f"w-{task_id}")
    return Task(id=task_id, title=task_id, prompt="p", agent="x", base_branch="main", branch=f"swarm/{task_id}",
                worktree=f"/w/{task_id}", after=after, status=status, merge_request=request, created_at=T0,
                updated_at=T0)


def test_dependencies_go_first_then_the_earlier_approval() -> None:
    tasks = [
        _task("child", 1, after=("parent",)),
        _task("parent", 5),
        _task("other", 3),
        _task("unapproved", None),
        _task("failed", 0, status=Status.failed),
        _task("merged", 0, status=Status.merged),
    ]
    assert [t.id for t in train_order(tasks)] == ["other", "parent", "child"]
    assert position(tasks, "child") == 3 and position(tasks, "unapproved") is None
    assert train_reason(tasks[0]) == "w-child" and train_reason(tasks[4]) == ""


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
