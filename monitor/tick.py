"""One tick of the monitor: lock, observe all, decide, act, flush the outbox. The daemon is a loop
around it (``monitor/daemon.py``); ``swarm monitor run-once`` is one call, for systemd timers and cron."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from monitor.act import Actor
from monitor.actions import Fail, Progress, Respawn, ToChecking
from monitor.budget import budget_message, held_reason
from monitor.budget import prune as prune_spend
from monitor.budget_override import budget_verdict
from monitor.clockjump import boot_id, measure_jump
from monitor.decide import (
    JUMP_SLACK,
    Decision,
    cap_respawns,
    decide,
    hold_for_budget,
    outage_tasks,
    plan_starts,
    rebaseline,
)
from monitor.heartbeat import record_tick
from monitor.issue_mirror import mirror_issues
from monitor.layout import Layout
from monitor.locks import try_lock
from monitor.merge.stack import RESTACKABLE, plan_restacks
from monitor.merge.train import step as train_step
from monitor.messages import outage_message
from monitor.observation import Observation
from monitor.observe import Observer, read_panes
from monitor.policy import Policy
from monitor.redact import redact
from monitor.retry import RetryPrompter
from monitor.runner import Runner
from monitor.world.forge import Forge, ForgeUnavailable
from monitor.world.git import Git, GitError
from monitor.world.notify import DELIVERED_FILE, DeliveredLog, Notifier, NotifyError
from monitor.world.tmux import Tmux
from registry.events import EventLog
from registry.models import RegistryState, Status, Task
from registry.store import Registry

log = logging.getLogger(__name__)
OUTBOX_KEEP = timedelta(days=7)
CHAIN_ROUNDS = 3  # how many times a tick re-judges the tasks whose state it just changed


@dataclass
class World:
    """Every outside system the monitor touches, wired once by the CLI (or by a test)."""

    layout: Layout
    registry: Registry
    events: EventLog
    tmux: Tmux
    git: Git
    runner: Runner
    forge: Forge
    notifier: Notifier
    prompter: RetryPrompter
    policy: Policy
    clock: Callable[[], datetime]
    # a clock that never steps (and stops during suspend): clock jumps are measured against it
    monotonic: Callable[[], float] = field(default_factory=lambda: time.monotonic)


@dataclass
class TickReport:
    skipped: bool = False
    actions: list[str] = field(default_factory=list)
    tasks: int = 0
    notified: int = 0
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped, "tasks": self.tasks, "actions": self.actions, "notified": self.notified,
            "stopped_early": self.stopped_early,
        }


@contextlib.contextmanager
def tick_lock(layout: Layout) -> Iterator[bool]:
    """Non-blocking: yields False when another tick holds it."""
    with try_lock(layout.tick_lock) as held:
        yield held


def _soft_updates(
    decisions: list[Decision],
    waiting: dict[str, str],
    now: datetime,
    observations: Mapping[str, Observation] | None = None,
) -> Callable[[RegistryState], RegistryState]:
    """Progress marks, reasons, checks and branch facts of the whole tick, as one registry update."""
    facts = {tid: o.branch_facts for tid, o in (observations or {}).items() if o.branch_facts is not None}
    progress = {a.task_id: a for d in decisions for a in d.actions if isinstance(a, Progress)}
    views = {d.task_id: (d.reason, dict(d.checks)) for d in decisions}
    passed = {d.task_id: d.passed_head for d in decisions if d.passed_head}  # stacked dependents start on these
    # these tasks get their reason from the action itself, written by act
    acted = {d.task_id for d in decisions if any(isinstance(a, Respawn | Fail | ToChecking) for a in d.actions)}

    def apply(state: RegistryState) -> RegistryState:
        tasks = dict(state.tasks)
        changed = False
        for task_id, task in state.tasks.items():
            update: dict[str, Any] = {}
            mark = progress.get(task_id)
            attempt = task.attempt
            if mark and attempt and attempt.number == mark.attempt and task.status is Status.running:
                task = task.with_attempt(attempt.model_copy(update={
                    "log_size": mark.log_size, "progress_at": mark.at, "seen_head": mark.head or attempt.seen_head}))
                update["updated_at"] = now
            if task_id in views and task_id not in acted:
                reason, checks = views[task_id]
                if reason and reason != task.reason:
                    update["reason"] = reason
                if checks and checks != task.checks:
                    update["checks"] = checks
            if task.status is Status.queued and task_id in waiting and waiting[task_id] != task.reason:
                update["reason"] = waiting[task_id]
            if task_id in facts and facts[task_id] != task.branch_facts:
                update["branch_facts"] = facts[task_id]
            if task_id in passed and passed[task_id] != task.passed_head and task.status in RESTACKABLE:
                update["passed_head"] = passed[task_id]
            if update or mark:
                tasks[task_id] = task.model_copy(update=update)
                changed = True
        return state.model_copy(update={"tasks": tasks}) if changed else state

    return apply


def flush_outbox(world: World) -> int:
    """Deliver owed notifications; a failure leaves the message queued and never fails the tick.

    A notifier that says "stop" (a rate limit, an outage, a rejected token) gets nothing more this tick:
    Slack's limits are per app and method, and a service that is down would otherwise cost one timeout per
    queued message. A rate-limited message waits out its ``Retry-After`` (``not_before``) across ticks, and
    the messages queued after it wait with it, so that a task's thread stays in order.

    A key in ``.swarm/delivered.jsonl`` is never sent again (a restored registry is one write behind, and
    may have lost its "sent" mark): each delivery is recorded there, fsynced, before the registry is marked.
    """
    sent = 0
    delivered = DeliveredLog(world.layout.state_dir / DELIVERED_FILE)
    for message in world.registry.read().outbox:
        if message.sent_at is not None:
            continue
        already = message.key in delivered
        if not already and message.not_before is not None and message.not_before > world.clock():
            break  # a rate limit holds the whole queue (in order): no request at all before Retry-After
        error, wait, stop = "", None, False
        try:
            if already:
                log.info("notification %s was delivered before (registry restored?); not sending it twice",
                         message.key)
            else:
                world.notifier.send(message)
        except NotifyError as exc:
            error = _one_line(exc)
            stop = exc.permanent or exc.retry_after is not None
            if exc.retry_after:
                wait = timedelta(seconds=exc.retry_after)
            if exc.permanent:  # the human must act: one clear line per tick, whatever is queued
                log.error("notifications held (message %s kept): %s", message.key, error)
            else:
                log.warning("notification %s not delivered: %s", message.key, error)
        except Exception as exc:  # any other notifier failure: keep the message, carry on
            error = _one_line(exc)
            log.warning("notification %s not delivered: %s", message.key, error)
        now = world.clock()
        not_before = now + wait if wait is not None else None
        if not error and not already:
            delivered.add(message.key, now)  # on disk before the registry says "sent"

        def mark(
            state: RegistryState, key: str = message.key, error: str = error, now: datetime = now,
            not_before: datetime | None = not_before,
        ) -> RegistryState:
            outbox = tuple(
                m.model_copy(update={"tries": m.tries + 1, "last_error": error, "not_before": not_before} if error
                             else {"sent_at": now, "tries": m.tries + 1, "last_error": "", "not_before": None})
                if m.key == key else m for m in state.outbox
                # delivered long ago: the history is in events.jsonl; keep the live registry small
                if m.sent_at is None or now - m.sent_at < OUTBOX_KEEP
            )
            return state.model_copy(update={"outbox": outbox})

        world.registry.update(mark)
        if not error and not already:
            sent += 1
            world.events.append(now, message.task_id, "notified", kind=message.kind)
        if stop:
            break
    return sent


def _one_line(exc: Exception) -> str:
    """An error as one redacted log line (a library's message can quote a URL or span lines)."""
    return " ".join(redact(f"{type(exc).__name__}: {exc}").split())[:500]


def run_tick(world: World, stop: threading.Event | None = None, only: set[str] | None = None) -> TickReport:
    """One tick. ``only`` (from `swarm serve`, woken by events) limits observing and judging to those tasks;
    starts, the outage check and the outbox are fleet-wide as always (they read no outside system)."""
    report = TickReport()
    with tick_lock(world.layout) as acquired:
        if not acquired:
            report.skipped = True
            return report
        _tick(world, report, stop or threading.Event(), only)
        record_tick(world.layout.state_dir, world.clock())  # `swarm status` shows it; warns when ticks stop
    return report


def _tick(world: World, report: TickReport, stop: threading.Event, only: set[str] | None = None) -> None:
    world.registry.check_writable()
    now = world.clock()
    _rebaseline(world, now)
    state = world.registry.read()
    observer = Observer(world.layout, world.tmux, world.git, world.forge, world.runner.runtimes)
    concerned = state if only is None else state.model_copy(
        update={"tasks": {tid: t for tid, t in state.tasks.items() if tid in only}})
    observations = observer.observe_all(concerned, now)
    decisions = [decide(state.tasks[tid], obs, world.policy, now) for tid, obs in observations.items()]
    held = budget_hold(world, state, now)
    decisions = cap_respawns(hold_for_budget(decisions, held), world.policy)
    report.tasks = len([t for t in state.tasks.values() if t.status.active])
    actor = Actor(world.registry, world.events, world.runner, world.forge, world.tmux, world.git, world.policy,
                  world.prompter, now, thread_events=getattr(world.notifier, "wants_events", False))
    respawns = 0
    for chained in range(CHAIN_ROUNDS + 1):
        # Transitions chain within the tick: a task that changed state is observed and judged again at once
        # (agent exited → checking → CI started; ready → merged → its dependents start), nothing else is.
        respawns += sum(isinstance(a, Respawn) for d in decisions for a in d.actions)
        world.registry.update(_soft_updates(decisions, {}, now, observations))
        for decision in decisions:
            if stop.is_set():
                report.stopped_early = True
                return _finish(world, report, actor, now)
            actor.apply(decision)
        after = world.registry.read()
        changed = [after.tasks[d.task_id] for d in decisions if d.task_id in after.tasks
                   and after.tasks[d.task_id].status is not state.tasks[d.task_id].status
                   and after.tasks[d.task_id].status is Status.checking]  # just made ready: nothing more to do
        state = after
        if not changed or chained == CHAIN_ROUNDS:
            break
        observations = _observe_again(world, observer, changed, now)
        rest = replace(world.policy, max_respawns_per_tick=max(0, world.policy.max_respawns_per_tick - respawns))
        decisions = cap_respawns(hold_for_budget([decide(state.tasks[tid], obs, world.policy, now)
                                                  for tid, obs in observations.items()], held), rest)
    # Stacked branches follow a dependency that merged or has a new checked head in this tick (monitor/merge/).
    restacks, _ = plan_restacks(state.tasks)
    for restack in restacks:
        if stop.is_set():
            report.stopped_early = True
            return _finish(world, report, actor, now)
        actor.restack(restack)
    state = world.registry.read() if restacks else state
    try:  # [merge] mode = "queue": approvals join the train, its first task is updated, gated or merged
        train_step(actor)
    except (ForgeUnavailable, GitError) as exc:
        log.warning("merge train: %s; the next tick goes on", exc)
    state = world.registry.read()
    # Starts are planned from the state the tick leaves behind: a dependency merged in this tick counts.
    busy = sum(1 for t in state.tasks.values() if t.status.holds_slot)
    starts, _ = plan_starts(state, world.policy, busy, held)
    for start in starts:
        if stop.is_set():
            report.stopped_early = True
            break
        actor.run(start)
    # ... and the wait reasons from the state after those starts (a dependency that just started says so).
    state = world.registry.read() if starts else state
    _, waiting = plan_starts(state, world.policy, sum(1 for t in state.tasks.values() if t.status.holds_slot), held)
    world.registry.update(_soft_updates([], waiting, now))
    _finish(world, report, actor, now)


def budget_hold(world: World, state: RegistryState, now: datetime) -> str:
    """Why nothing new may start or respawn (the day's or week's budget is spent), or "". The human is told
    once per period and limit; the limits are read again each tick (`swarm budget` may have raised them)."""
    verdict = budget_verdict(world.layout.state_dir, world.policy, state, now)
    if verdict is None or not verdict.over:
        world.registry.update(lambda s: prune_spend(s, now))
        return ""
    message = budget_message(verdict, now)
    world.registry.update(lambda s: prune_spend(s, now).enqueue(message))
    if not any(m.key == message.key for m in state.outbox):
        world.events.append(now, "", "budget_held", period=verdict.over, reason=verdict.reason)
    return held_reason(verdict)


def _finish(world: World, report: TickReport, actor: Actor, now: datetime) -> None:
    report.actions = actor.done
    world.registry.update(lambda state: _outage(state, world.policy, now))
    report.actions += mirror_issues(world.registry, world.forge)  # the issues' comments, only where a state moved
    report.notified = flush_outbox(world)


def _observe_again(world: World, observer: Observer, tasks: list[Task], now: datetime) -> dict[str, Observation]:
    """Observations of the tasks that changed state in this tick (only them: one forge read for them)."""
    panes, blind = read_panes(world.tmux)
    try:
        world.forge.prefetch(tasks)  # their PR may have been opened, or CI started, a moment ago
    except ForgeUnavailable as exc:
        log.warning("forge unavailable this tick: %s", exc)
    observations = {}
    for task in tasks:
        try:
            observations[task.id] = observer.observe(task, panes, now, world.git.head(task.branch), blind)
        except GitError as exc:
            log.warning("task %s: git failed while observing: %s", task.id, exc)
    return observations


def _outage(state: RegistryState, policy: Policy, now: datetime) -> RegistryState:
    """Several tasks hit by API errors within the backoff window: one fleet-wide message, then quiet until
    no task is affected any more."""
    hit = outage_tasks(state, policy, now)
    if state.outage_since is None and len(hit) >= policy.outage_tasks:
        message = outage_message(hit, policy.api_error_attempts, now)
        return state.model_copy(update={"outage_since": now}).enqueue(message)
    if state.outage_since is not None and not hit:
        return state.model_copy(update={"outage_since": None})
    return state


def _rebaseline(world: World, now: datetime) -> None:
    """A wall clock that jumped since the last tick (or a suspend) shifts the running attempts' marks."""
    jump = measure_jump(world.layout.state_dir, now, world.monotonic(), boot_id())
    if abs(jump) <= JUMP_SLACK:
        return
    log.warning("the clock jumped %+.0f s since the last tick; running attempts re-baselined, none judged on it",
                jump.total_seconds())
    world.registry.update(lambda state: rebaseline(state, jump))
    world.events.append(now, "", "clock_jump", seconds=round(jump.total_seconds()))


def start_queued(world: World) -> list[str]:
    """Start what can start now (used by `swarm spawn` so a task does not wait for the next tick)."""
    with tick_lock(world.layout) as acquired:
        if not acquired:
            return []
        state = world.registry.read()
        busy = sum(1 for t in state.tasks.values() if t.status.holds_slot)
        now = world.clock()
        verdict = budget_verdict(world.layout.state_dir, world.policy, state, now)
        starts, waiting = plan_starts(state, world.policy, busy,
                                      held_reason(verdict) if verdict is not None and verdict.over else "")
        actor = Actor(world.registry, world.events, world.runner, world.forge, world.tmux, world.git, world.policy,
                      world.prompter, now, thread_events=getattr(world.notifier, "wants_events", False))
        for start in starts:
            actor.run(start)
        world.registry.update(_soft_updates([], waiting, now))
        return actor.done
