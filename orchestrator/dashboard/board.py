"""The board and the fleet header as plain values, built from the registry and the files ``swarm serve``
keeps under ``.swarm/`` (its heartbeat, the last tick, the last webhook, GitHub's budget). No HTML here: the
templates lay these out, and everything from users, agents, CI and models stays text for them to escape."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from monitor.budget import Spent, period_starts, spent_since
from monitor.budget_override import budget_verdict, zone_of
from monitor.durations import format_duration
from monitor.heartbeat import last_tick
from monitor.policy import Policy
from orchestrator.serve import health
from orchestrator.status import money, task_cost
from registry.models import RegistryState, Status, Task

COLUMNS = (Status.queued, Status.running, Status.checking, Status.ready, Status.failed)
FOLDED = (Status.merged, Status.cancelled)  # one folded column: done with, rarely looked at
FOLDED_SHOWN = 50
_SPACE = re.compile(r"\s")


@dataclass(slots=True)
class Card:
    id: str
    title: str
    status: str
    agent: str
    attempt: str  # "2/3"
    in_state: str  # "4m10s"
    reason: str
    pr_number: int | None
    pr_url: str
    ci: str
    reviews: str
    tokens: str
    cost: str


@dataclass(frozen=True)
class Column:
    status: str
    cards: list[Card]
    folded: bool = False
    total: int = 0  # the folded column shows only the newest FOLDED_SHOWN of its cards


@dataclass(frozen=True)
class Fleet:
    serving: str  # "running (pid 12, up 3h)" or "not running"
    last_tick: str
    next_tick: str
    last_webhook: str
    github_budget: str
    today: str  # "12,300 tokens, $0.42"
    week: str
    held: str  # the day's or week's budget is spent: nothing new starts (why)
    running: int
    max_parallel: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Board:
    fleet: Fleet
    needs_you: list[Card]
    columns: list[Column]
    total: int


def since(task: Task) -> datetime:
    """When the task entered its current state, as near as the registry tells."""
    attempt = task.attempt
    if task.status is Status.running and attempt is not None:
        return attempt.launched_at or attempt.started_at
    if task.status is Status.checking and attempt is not None and attempt.ended_at is not None:
        return attempt.ended_at
    if task.status is Status.queued and not task.attempts:
        return task.created_at
    if task.status in (Status.failed, Status.merged, Status.cancelled) and task.ended_at is not None:
        return task.ended_at
    return task.updated_at


def safe_url(url: str) -> str:
    """A link target from the registry only when it is http(s): never ``javascript:`` or ``data:``."""
    return url if url.startswith(("https://", "http://")) and not _SPACE.search(url) else ""



def _ago(now: datetime, when: datetime | None) -> str:
    if when is None:
        return "never"
    return f"{format_duration(max(0.0, (now - when).total_seconds()))} ago"


def card(task: Task, now: datetime, max_attempts: int) -> Card:
    return Card(
        id=task.id, title=task.title, status=task.status.value, agent=task.agent,
        attempt=f"{len(task.attempts)}/{max(max_attempts, len(task.attempts))}",
        in_state=format_duration(max(0.0, (now - since(task)).total_seconds())),
        reason=" ".join(task.reason.split())[:240],
        pr_number=task.pr.number if task.pr else None, pr_url=safe_url(task.pr.url) if task.pr else "",
        ci=task.checks.get("ci", ""), reviews=task.checks.get("reviews", ""),
        tokens=f"{task.tokens:,}" if task.tokens else "0",
        cost=task_cost(task),
    )


def spend(state: RegistryState, state_dir: Path, now: datetime, policy: Policy) -> tuple[str, str, str]:
    """(today, this week, why new work is held or ""): the spend as `swarm budget` counts it
    (``monitor.budget``: each record on its day, local midnight), against the limits when any are set."""
    verdict = budget_verdict(state_dir, policy, state, now)
    if verdict is None:
        day_start, week_start = period_starts(now, zone_of(policy.timezone))
        day, week = spent_since(state, day_start), spent_since(state, week_start)
        return _spent(day, 0.0), _spent(week, 0.0), ""
    limits = verdict.limits
    return (_spent(verdict.day, limits.per_day_usd), _spent(verdict.week, limits.per_week_usd),
            verdict.reason if verdict.over else "")


def _spent(spent: Spent, limit: float) -> str:
    return f"{spent.tokens:,} tokens, {money(spent.usd)}" + (f" of {money(limit)}" if limit else "")


def fleet(state: RegistryState, state_dir: Path, now: datetime, policy: Policy, interval: float) -> Fleet:
    tasks = list(state.tasks.values())
    running = health.serve_running(state_dir, now)
    if running is not None:
        started = health.aware_time(running.get("started_at"))
        up = f", up {format_duration((now - started).total_seconds())}" if started else ""
        serving = f"running (pid {running.get('pid')}{up})"
        interval = float(running.get("interval") or interval)
    else:
        serving = "not running"
    tick = last_tick(state_dir)
    next_tick = "—"
    if tick is not None and interval > 0:
        due = tick + timedelta(seconds=interval)
        next_tick = f"in {format_duration((due - now).total_seconds())}" if due > now else "due now"
    hook = health.read_object(state_dir / health.WEBHOOK_FILE)
    hook_at = health.aware_time(hook.get("at"))
    last_webhook = f"{_ago(now, hook_at)} ({str(hook.get('event', '?'))[:40]})" if hook_at else "none"
    today, week, held = spend(state, state_dir, now, policy)
    counts = {s.value: 0 for s in Status}
    for task in tasks:
        counts[task.status.value] += 1
    return Fleet(
        serving=serving, last_tick=_ago(now, tick), next_tick=next_tick, last_webhook=last_webhook,
        github_budget=health.github_budget(state_dir, now) or "no GitHub calls recorded",
        today=today, week=week, held=held,
        running=sum(1 for t in tasks if t.status.holds_slot), max_parallel=policy.max_parallel, counts=counts,
    )


def board(state: RegistryState, state_dir: Path, now: datetime, *, policy: Policy, interval: float) -> Board:
    """Every task as a card in its column, newest first; "needs you" (ready PRs, failed tasks) on top."""
    ordered = sorted(state.tasks.values(), key=lambda t: t.updated_at, reverse=True)
    by_status: dict[Status, list[Card]] = {s: [] for s in Status}
    for task in ordered:
        if task.status not in FOLDED:
            by_status[task.status].append(card(task, now, policy.max_attempts))
    columns = [Column(s.value, by_status[s], total=len(by_status[s])) for s in COLUMNS]
    done = sorted((t for t in ordered if t.status in FOLDED), key=lambda t: t.ended_at or t.updated_at, reverse=True)
    columns.append(Column("done", [card(t, now, policy.max_attempts) for t in done[:FOLDED_SHOWN]], folded=True,
                          total=len(done)))
    needs = by_status[Status.ready] + by_status[Status.failed]
    return Board(fleet=fleet(state, state_dir, now, policy, interval), needs_you=needs, columns=columns,
                 total=len(ordered))
