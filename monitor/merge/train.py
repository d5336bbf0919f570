"""The merge train's order and state: which approved tasks wait to land, in which order (dependency order,
then approval order), and one line saying why the head of the train waits. Pure: values in, values out;
the tick's act step (monitor/merge/train_act.py) does the git and forge work."""

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


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _at(task: Task) -> str:
    assert task.merge_request is not None
    return task.merge_request.at.isoformat()
