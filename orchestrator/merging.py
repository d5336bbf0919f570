"""Asking the merge train to land a task: `swarm merge TASK` and a `/swarm merge` PR comment both call
``request_merge``. It records who approved which head, and when, in the registry (the approval the train
needs on either forge) and wakes `swarm serve`; the monitor's tick does the merging, one task at a time."""

from __future__ import annotations

from pathlib import Path

from monitor.merge.queue import ordinal, position
from monitor.wake import wake
from monitor.world.git import Git
from orchestrator.config import CONFIG_NAME
from orchestrator.errors import UsageError
from orchestrator.view import find_task, load_view, utc_now
from registry.events import EventLog
from registry.models import MergeRequest, RegistryState, Status

ENABLE = f'set [merge] mode = "queue" in {CONFIG_NAME} to let swarm merge approved PRs (or merge it yourself)'


class MergeError(UsageError):
    """The merge cannot be requested as asked (unknown task, not ready, merge mode manual); one line."""


def request_merge(root: Path, task_id: str, by: str, *, via: str = "cli") -> str:
    """Record ``by``'s approval of the task's current head for the merge train; returns a one-line message.
    ``via`` says where it came from ("cli", "comment" for a `/swarm merge` PR comment).

    Raises MergeError for an unknown task, a task that is not ready, or ``[merge] mode = "manual"``.
    Asking again for a task already in the train keeps its place (and its first approval).
    """
    settings, view = load_view(root)
    if settings.merge.mode != "queue":
        raise MergeError(f"merge mode is manual: {ENABLE}")
    try:
        task = find_task(view.registry, view.layout.state_dir, task_id)
    except UsageError as exc:
        raise MergeError(str(exc)) from None
    who = " ".join(by.split())[:100] or "someone"
    if task.status is Status.merged:
        raise MergeError(f"task {task.id} is already merged")
    if task.merge_request is not None and task.status is not Status.ready:
        raise MergeError(f"task {task.id} is already in the merge train ({task.merge_request.waiting or 'queued'})")
    if task.status is not Status.ready:
        why = f": {task.reason}" if task.reason else ""
        raise MergeError(f"task {task.id} is {task.status.value}{why}; only a ready task can join the merge train")
    head = Git(view.layout.repo).head(task.branch)
    if head is None:
        raise MergeError(f"task {task.id}: its branch {task.branch} has no commits here; nothing to merge")
    now = utc_now()
    already: list[bool] = []

    def approve(state: RegistryState) -> RegistryState:
        current = state.tasks.get(task.id)
        if current is None or current.status is not Status.ready:
            raise MergeError(f"task {task.id} changed meanwhile; look at `swarm status {task.id}`")
        if current.merge_request is not None:
            already.append(True)
            return state
        request = MergeRequest(by=who, at=now, head=head, via=via, waiting="in the merge train; the next tick takes it")
        return state.with_task(current.model_copy(update={"merge_request": request, "updated_at": now}))

    state = view.registry.update(approve)
    place = position(state.tasks.values(), task.id) or 1
    if not already:
        EventLog(view.layout.events_path).append(now, task.id, "merge_requested", by=who, head=head, via=via)
        wake(view.layout.state_dir, [task.id])
        return f"{task.id}: approved by {who} for {head[:7]}; {ordinal(place)} in the merge train"
    return f"{task.id}: already in the merge train ({ordinal(place)})"
