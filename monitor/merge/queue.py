"""The merge train's order, as values: which approved tasks wait to land and in which order (dependency order,
then approval order), their place and why each waits. Pure and light (no git, no forge): `swarm status`
imports it without loading the monitor's adapters; ``monitor/merge/train.py`` runs the train."""

from __future__ import annotations

from collections.abc import Iterable

from registry.models import Status, Task

IN_TRAIN = (Status.checking, Status.ready)


def in_train(task: Task) -> bool:
    """Approved for the train and still able to land (a fixer at work keeps its place: status running)."""
    return task.merge_request is not None and task.status in (*IN_TRAIN, Status.running)


def train_order(tasks: Iterable[Task]) -> list[Task]:
    """The approved tasks in the order they land: a task never goes before one it depends on that is also
    in the train; otherwise the earlier approval goes first (the id breaks ties, so the order is stable)."""
    waiting = sorted((t for t in tasks if in_train(t)), key=lambda t: (_at(t), t.id))
    ids = {t.id for t in waiting}
    placed: list[Task] = []
    done: set[str] = set()
    while waiting:
        pick = next((t for t in waiting if all(d in done or d not in ids for d in t.after)), waiting[0])
        placed.append(pick)
        done.add(pick.id)
        waiting.remove(pick)
    return placed


def position(tasks: Iterable[Task], task_id: str) -> int | None:
    """1-based place of ``task_id`` in the train, or None when it is not in it."""
    for index, task in enumerate(train_order(tasks), start=1):
        if task.id == task_id:
            return index
    return None


def train_json(task: Task, tasks: Iterable[Task]) -> dict[str, object] | None:
    """``swarm status --json``'s "merge": null, or who approved which head, the place and why it waits."""
    request = task.merge_request
    if request is None:
        return None
    return {"by": request.by, "via": request.via, "at": request.at.isoformat(), "head": request.head,
            "position": position(tasks, task.id), "enqueued": request.enqueued, "waiting": request.waiting}


def train_reason(task: Task) -> str:
    """The task's line in `swarm status` while it is in the train ("2nd in train; waiting for CI on abc1234")."""
    request = task.merge_request
    if request is None or not in_train(task) or not request.waiting:
        return ""
    return request.waiting


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _at(task: Task) -> str:
    assert task.merge_request is not None
    return task.merge_request.at.isoformat()
