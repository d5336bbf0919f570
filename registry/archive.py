"""Finished tasks leave the live registry for ``.swarm/archive/``, so ``registry.json`` stays small.

Every tick reads and every change rewrites ``registry.json``: a year of merged tasks in it would make both
slow. A task that ended (merged, cancelled or failed) more than ``older_than`` ago is appended to a
monthly JSON-lines file and its run directory (prompts, logs) is moved next to it; only then is it
removed from the registry. A crash in between leaves the task in both places, never in neither, and
reading the archive keeps the last copy of a task. A task that an active task waits for (``after``)
stays, so that a dependency never turns into "unknown task".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from registry.models import RegistryState, Status, Task
from registry.store import Registry

FINISHED = (Status.merged, Status.cancelled, Status.failed)


def archive_dir(state_dir: Path) -> Path:
    return state_dir / "archive"


def due(state: RegistryState, now: datetime, older_than: timedelta) -> list[Task]:
    """Finished tasks ended before ``now - older_than`` that no active task depends on."""
    needed = {dep for t in state.tasks.values() if t.status.active for dep in t.after}
    return sorted(
        (t for t in state.tasks.values()
         if t.status in FINISHED and t.id not in needed and (t.ended_at or t.updated_at) < now - older_than),
        key=lambda t: t.created_at,
    )


def archive_finished(registry: Registry, runs_dir: Path, now: datetime, older_than: timedelta) -> list[Task]:
    """Move the due tasks out of the registry; returns them. Safe to interrupt at any point."""
    tasks = due(registry.read(), now, older_than)
    if not tasks:
        return []
    target = archive_dir(registry.dir)
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"tasks-{now:%Y-%m}.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        for task in tasks:
            handle.write(task.model_dump_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    for task in tasks:
        runs = runs_dir / task.id
        if runs.is_dir():
            (target / "runs").mkdir(exist_ok=True)
            dest = target / "runs" / task.id
            if not dest.exists():
                runs.rename(dest)
    ids = {t.id for t in tasks}

    def drop(state: RegistryState) -> RegistryState:
        kept = {tid: t for tid, t in state.tasks.items()
                if tid not in ids or t.status not in FINISHED}  # revived meanwhile by `swarm retry`: kept
        outbox = tuple(m for m in state.outbox if m.task_id not in ids or m.sent_at is None)
        return state.model_copy(update={"tasks": kept, "outbox": outbox})

    registry.update(drop)
    return tasks


def archived(state_dir: Path) -> Iterator[Task]:
    """Every archived task, oldest file first (a task archived twice after a crash appears twice)."""
    target = archive_dir(state_dir)
    if not target.is_dir():
        return
    for path in sorted(target.glob("tasks-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                yield Task.model_validate(json.loads(line))
            except (ValueError, TypeError):
                continue  # a torn last line after a crash: the task is still in the registry


def find_archived(state_dir: Path, task_id: str) -> Task | None:
    found = None
    for task in archived(state_dir):
        if task.id == task_id:
            found = task
    return found
