"""The merge train's step, run by each tick after its decisions (its order is ``monitor/merge/queue.py``): a
human approval seen on GitHub joins the train, a task a fixer took leaves it (its new head needs a new
approval), GitHub's own merge queue gets every approved PR when the repository has one, else the first task
is brought up to date with its base, waits for its checks (the CI gate) on that exact head, and is merged
with ``[merge] method``; one message when the train lands or stops."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from monitor.actions import Action, MarkMerged
from monitor.merge.queue import in_train, ordinal, train_order
from monitor.policy import Policy
from monitor.redact import redact
from monitor.world.forge import Forge, MergeRefused
from monitor.world.git import Git
from registry.models import MergeRequest, OutboxMessage, Status, Task
from registry.store import Registry

log = logging.getLogger(__name__)


class TrainActor(Protocol):
    registry: Registry
    forge: Forge
    git: Git
    policy: Policy
    now: datetime

    def _update(self, task_id: str, fn: Callable[[Task], Task | None],
                message: OutboxMessage | None = None) -> Task | None: ...
    def _event(self, task_id: str, event: str, **data: object) -> None: ...
    def run(self, action: Action) -> None: ...


def step(actor: TrainActor) -> None:
    """One step of the merge train, after the tick's decisions: approvals seen on GitHub join it, a task a
    fixer took leaves it, and its head is brought up to date, waits for its gate, or is merged."""
    if actor.policy.merge_mode != "queue":
        return
    _join_from_forge(actor)
    _leave_when_fixed(actor)
    _leave_when_withdrawn(actor)
    order = train_order(actor.registry.read().tasks.values())
    if order and actor.forge.supports_pr and actor.forge.merge_queue(order[0].base_branch):
        _enqueue_all(actor, order)
    elif order:
        _advance(actor, order)
    _landed(actor)


def _join_from_forge(actor: TrainActor) -> None:
    """A human's approval of the current head on the forge (GitHub) puts a ready task in the train."""
    if not actor.forge.supports_pr:
        return
    for task in actor.registry.read().tasks.values():
        if task.status is not Status.ready or task.merge_request is not None or task.pr is None:
            continue
        head = actor.git.head(task.branch)
        who = actor.forge.approvals(task, head) if head else ()
        if not who or head is None:
            continue
        request = MergeRequest(by=", ".join(who), at=actor.now, head=head, via="github",
                               waiting="in the merge train; the next tick takes it")

        def join(current: Task, request: MergeRequest = request) -> Task | None:
            if current.status is not Status.ready or current.merge_request is not None:
                return None
            return current.model_copy(update={"merge_request": request})

        if actor._update(task.id, join) is not None:
            actor._event(task.id, "merge_requested", by=request.by, head=head, via="github")


def _leave_when_fixed(actor: TrainActor) -> None:
    """A fixer changes what the human approved: the task leaves the train (approve it again once it is
    ready), and the human is told once."""
    for task in actor.registry.read().tasks.values():
        request = task.merge_request
        if request is None or task.status is not Status.running:
            continue
        why = task.reason or "a fixer attempt started"
        message = train_message("stopped", task, f"the merge train stopped at {task.id}: {why}; a fixer is at work. "
                                f"Approve it again once it is ready (`swarm merge {task.id}`)", actor.now)

        def leave(current: Task) -> Task | None:
            return current.model_copy(update={"merge_request": None}) if current.merge_request else None

        if actor._update(task.id, leave, message) is not None:
            actor._event(task.id, "train_left", why=why, head=request.head[:12])


def _leave_when_withdrawn(actor: TrainActor) -> None:
    """An approval given on GitHub that was dismissed (or followed by a request for changes) no longer
    approves: the task leaves the train before anything is merged, and the human is told once."""
    if not actor.forge.supports_pr:
        return
    for task in actor.registry.read().tasks.values():
        request = task.merge_request
        if request is None or request.via != "github" or not in_train(task) or request.enqueued:
            continue
        if actor.forge.still_approved(task, request.head):
            continue
        why = f"the approval of {request.head[:7]} by {request.by} was dismissed or withdrawn"
        message = train_message("stopped", task, f"the merge train let {task.id} go: {why}; approve it again to "
                                f"land it", actor.now, f"train:withdrawn:{task.id}:{request.head}")

        def leave(current: Task) -> Task | None:
            return current.model_copy(update={"merge_request": None}) if current.merge_request else None

        if actor._update(task.id, leave, message) is not None:
            actor._event(task.id, "train_left", why=why, head=request.head[:12])


def _enqueue_all(actor: TrainActor, order: list[Task]) -> None:
    """GitHub runs the queue: every approved, ready PR is handed to it once (no second queue here)."""
    for task in order:
        head = actor.git.head(task.branch)
        request = task.merge_request
        if task.status is not Status.ready or head is None or request is None or request.enqueued:
            continue
        try:
            actor.forge.enqueue(task, head)
        except MergeRefused as exc:
            _wait(actor, task, f"GitHub's merge queue refused it: {exc}")
            continue
        _wait(actor, task, "in GitHub's merge queue", enqueued=True)
        actor._event(task.id, "train_enqueued", head=head[:12])


def _places(actor: TrainActor, order: list[Task]) -> None:
    for place, task in enumerate(order[1:], start=2):
        _wait(actor, task, f"{ordinal(place)} in train; waiting for {order[0].id}")


def _advance(actor: TrainActor, order: list[Task]) -> None:
    first = order[0]
    _places(actor, order)
    head = actor.git.head(first.branch)
    base = actor.git.head(actor.forge.base_ref(first.base_branch))
    if head is None or base is None:
        _wait(actor, first, "its branch or the base branch is missing")
        return
    if first.status is not Status.ready:
        _wait(actor, first, f"1st in train; {_gate_wait(first, head)}")
        return
    if not actor.git.is_ancestor(base, head):
        if actor.forge.update_branch(first):
            actor._event(first.id, "train_updated", base=first.base_branch, onto=base[:12])
            _wait(actor, first, f"1st in train; bringing {head[:7]} up to date with {first.base_branch}")
        else:
            _wait(actor, first, f"1st in train; conflicts with {first.base_branch}: the fixer takes it")
        return
    _merge(actor, first, head)


def _gate_wait(task: Task, head: str) -> str:
    reason = task.reason or task.status.value
    if "CI" in reason or task.checks.get("ci") in ("pending", "not_started"):
        return f"waiting for CI on {head[:7]}"
    return f"waiting: {reason}"


def _merge(actor: TrainActor, task: Task, head: str) -> None:
    """The gate passed (the task is ready on a head that contains the base: its CI is green there)."""
    request = task.merge_request
    assert request is not None
    view = actor.forge.view(task, head, None)
    if view.ci not in ("pass", "none") or (view.supports_pr and view.pr_head != head):
        _wait(actor, task, f"1st in train; waiting for CI on {head[:7]}")
        return
    try:
        actor.forge.merge(task, head, actor.policy.merge_method)
    except MergeRefused as exc:
        why = str(exc)
        message = train_message("stopped", task, f"the merge train stopped at {task.id}: {why}", actor.now,
                                f"train:refused:{task.id}:{head}")
        if _wait(actor, task, f"merge refused: {why}", message=message):
            actor._event(task.id, "train_refused", head=head[:12], error=why)
        return
    actor._event(task.id, "train_merged", head=head[:12], method=actor.policy.merge_method, by=request.by)
    actor.registry.update(lambda s: s.model_copy(update={"train_landed": (*s.train_landed, task.id)}))
    actor.run(MarkMerged(task.id))  # the same path as a human's merge: event, clean-up, dependents start
    rest = train_order(actor.registry.read().tasks.values())
    if rest:  # its turn comes on the next tick, against the base as the forge then shows it
        _wait(actor, rest[0], f"1st in train; next: bring it up to date with {rest[0].base_branch}")
        _places(actor, rest)


def _wait(actor: TrainActor, task: Task, why: str, message: OutboxMessage | None = None,
          enqueued: bool | None = None) -> bool:
    """Record why the task waits in the train (written only when it changed); returns whether it changed."""
    def note(current: Task) -> Task | None:
        request = current.merge_request
        if request is None or (request.waiting == why and enqueued in (None, request.enqueued)):
            return None
        update: dict[str, object] = {"waiting": why}
        if enqueued is not None:
            update["enqueued"] = enqueued
        return current.model_copy(update={"merge_request": request.model_copy(update=update)})

    return actor._update(task.id, note, message) is not None


def _landed(actor: TrainActor) -> None:
    """The train emptied after merging: one message naming what landed."""
    state = actor.registry.read()
    if not state.train_landed or any(in_train(t) for t in state.tasks.values()):
        return
    landed = state.train_landed
    text = f"merge train landed: {len(landed)} merged ({', '.join(landed[:10])}{' …' if len(landed) > 10 else ''})"
    data = {"event": "train_landed", "task_id": "", "title": "Merge train", "status": "landed", "reason": text,
            "tasks": list(landed)}
    message = OutboxMessage(key=f"train:landed:{actor.now.isoformat()}", task_id="train", kind="train",
                            text=redact(text), data=data, created_at=actor.now)
    actor.registry.update(lambda s: s.model_copy(update={"train_landed": ()}).enqueue(message))
    actor._event("", "train_landed", tasks=",".join(landed))


def train_message(what: str, task: Task, text: str, now: datetime, key: str = "") -> OutboxMessage:
    data = {"event": f"train_{what}", "task_id": task.id, "title": "Merge train", "status": what,
            "reason": text}
    return OutboxMessage(key=key or f"train:{what}:{task.id}:{now.isoformat()}", task_id="train", kind="train",
                         text=redact(text), data=data, created_at=now)
