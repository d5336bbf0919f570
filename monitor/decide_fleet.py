"""The decisions about the fleet rather than one task: which queued tasks start (dependencies, stacking,
capacity, a spent budget), the per-tick cap on respawns, the budget hold on retries, a provider outage
seen across tasks, and shifting time marks over a clock jump.

Split out of ``monitor/decide.py`` (which still exports these names) to keep each module small; pure like it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.actions import Respawn, Start
from monitor.decision import CLOCK_SLACK, JUMP_SLACK, Decision
from monitor.merge.stack import stack_target
from monitor.policy import Policy
from registry.models import FailureKind, RegistryState, Status


def outage_tasks(state: RegistryState, policy: Policy, now: datetime) -> list[str]:
    """Tasks hit by the provider's API errors within the last ``api_backoff_max``: waiting to retry, or
    retried after one. Several at once are a fleet-wide outage, told to the human once."""
    window = timedelta(seconds=policy.api_backoff_max) + CLOCK_SLACK
    hit = []
    for task in state.tasks.values():
        if not task.status.active or not task.attempts:
            continue
        current = task.attempts[-1]
        recent = [a.failure for a in task.attempts[-2:] if a.failure is not None]
        if (task.status is Status.running and current.retry_at is not None) or any(
            f.kind is FailureKind.api_error and now - f.at <= window for f in recent
        ):
            hit.append(task.id)
    return sorted(hit)


def rebaseline(state: RegistryState, jump: timedelta) -> RegistryState:
    """Shift the running attempts' time marks by a clock jump (``monitor/clockjump.py``), so that ages
    and idle times come out as the monotonic clock measured them: a jump or a suspend kills nobody."""
    if abs(jump) <= JUMP_SLACK:
        return state
    tasks = dict(state.tasks)
    for task_id, task in state.tasks.items():
        attempt = task.attempt
        if task.status is not Status.running or attempt is None:
            continue
        marks = {name: getattr(attempt, name) + jump
                 for name in ("started_at", "launched_at", "progress_at", "retry_at")
                 if getattr(attempt, name) is not None}
        tasks[task_id] = task.with_attempt(attempt.model_copy(update=marks))
    return state.model_copy(update={"tasks": tasks})


def plan_starts(
    state: RegistryState, policy: Policy, busy: int, held: str = ""
) -> tuple[list[Start], dict[str, str]]:
    """Queued tasks to start now (dependencies merged, capacity free), and why the others wait. ``held``:
    the day's or week's budget is spent (monitor/budget.py), so nothing starts and that is why."""
    free = policy.max_parallel - busy
    starts: list[Start] = []
    waiting: dict[str, str] = {}
    queued = sorted((t for t in state.tasks.values() if t.status is Status.queued), key=lambda t: t.created_at)
    for task in queued:
        blockers = []
        for dep in task.after:
            other = state.tasks.get(dep)
            if other is None:
                blockers.append(f"{dep} (unknown task)")
            elif other.status is not Status.merged:
                blockers.append(f"{dep} ({other.status.value})")
        onto, stack_wait = stack_target(task, state.tasks, policy.stack)  # [plan] stack: start on its branch
        if blockers and onto is None:
            waiting[task.id] = "waiting for " + ", ".join(blockers) + (f"; {stack_wait}" if stack_wait else "")
        elif held:
            waiting[task.id] = held
        elif free <= 0:
            waiting[task.id] = f"waiting for a free slot (max_parallel = {policy.max_parallel})"
        else:
            starts.append(Start(task.id, onto.id, onto.passed_head or "") if onto is not None else Start(task.id))
            free -= 1
    return starts, waiting


def cap_respawns(decisions: Sequence[Decision], policy: Policy) -> list[Decision]:
    """At most ``max_respawns_per_tick`` new agents per tick: a mass death (reboot, clock jump, a broken
    tmux) is handled over several ticks instead of as a storm."""
    budget = policy.max_respawns_per_tick
    capped = []
    for decision in decisions:
        respawns = [a for a in decision.actions if isinstance(a, Respawn)]
        if respawns and budget <= 0:
            capped.append(Decision(decision.task_id, (), f"{decision.reason} (respawn deferred: per-tick cap)",
                                   decision.checks))
            continue
        budget -= len(respawns)
        capped.append(decision)
    return capped


def hold_for_budget(decisions: Sequence[Decision], held: str) -> list[Decision]:
    """The day's or week's budget is spent (``held`` says so): no new attempt. Running agents finish; a
    failed attempt waits with its failure until the next day or a raise, when the same decision comes again."""
    if not held:
        return list(decisions)
    kept = []
    for decision in decisions:
        if any(isinstance(a, Respawn) for a in decision.actions):
            kept.append(Decision(decision.task_id, tuple(a for a in decision.actions if not isinstance(a, Respawn)),
                                 f"{decision.reason} (retry {held})", decision.checks))
        else:
            kept.append(decision)
    return kept
