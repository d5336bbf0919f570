"""Budgets enforced by code, not by a model: spend summed from the registry, checked against the limits.

Pure: (registry state, limits, now, time zone) → a verdict. The tick holds new starts and respawns on a
verdict that is over the day's or the week's limit (``monitor/decide.py``), ``decide`` refuses retries to a
task over its own limit, and the orchestrator asks before each model call.

What counts, and when (one rule per record, so nothing is counted twice):

- an agent's attempt: its tokens and dollars on the day it ended (``ended_at``; a running attempt has
  reported nothing yet);
- the orchestrator's spend on a task (retry prompts, reviews): each ``Task.llm_spend`` entry on its day;
  what ``llm_tokens`` holds beyond those entries (the planning share, older registries) on the day the task
  was created;
- the orchestrator's spend on no task (reading meeting notes): ``RegistryState.spend``.

A day starts at local midnight in the user's time zone, a week at Monday's. Anything recorded at or after
the start of the period counts in it, including a record that lies in the future (the clock was set back):
moving the clock back never empties the day, and a record is one record, so moving it forward never counts
it twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from registry.models import OutboxMessage, RegistryState, Task

KEEP_SPEND = timedelta(days=8)  # RegistryState.spend entries older than this no longer count in any week


@dataclass(frozen=True)
class Limits:
    """0 = no limit."""

    per_task_usd: float = 0.0
    per_day_usd: float = 0.0
    per_week_usd: float = 0.0
    per_task_tokens: int = 0
    per_day_tokens: int = 0
    per_week_tokens: int = 0

    @property
    def any(self) -> bool:
        return any((self.per_task_usd, self.per_day_usd, self.per_week_usd, self.per_task_tokens,
                    self.per_day_tokens, self.per_week_tokens))


@dataclass(frozen=True)
class Spent:
    tokens: int = 0
    usd: float = 0.0


@dataclass(frozen=True)
class Verdict:
    day: Spent
    week: Spent
    limits: Limits
    day_start: datetime
    week_start: datetime
    over: str = ""  # "" | "day" | "week"
    reason: str = ""  # one line when over

    @property
    def key(self) -> str:
        """The notification key: one message per period and limit (a raise that is spent again tells again)."""
        if self.over == "day":
            return f"budget:day:{self.day_start.date()}:{self.limits.per_day_usd:g}:{self.limits.per_day_tokens}"
        return f"budget:week:{self.week_start.date()}:{self.limits.per_week_usd:g}:{self.limits.per_week_tokens}"

    def line(self) -> str:
        """``today $x of $y`` (and the week's), for `swarm status` and Slack."""
        return (f"spend: today {_amount(self.day, self.limits.per_day_usd, self.limits.per_day_tokens)}; "
                f"this week {_amount(self.week, self.limits.per_week_usd, self.limits.per_week_tokens)}")


def _amount(spent: Spent, usd: float, tokens: int) -> str:
    text = f"${spent.usd:.2f}" + (f" of ${usd:.2f}" if usd else "")
    if tokens:
        text += f", {spent.tokens:,} of {tokens:,} tokens"
    return text


def entries(state: RegistryState) -> Iterator[tuple[datetime, int, float]]:
    """Every spend record as (when, tokens, dollars), by the rules of the module docstring."""
    for task in state.tasks.values():
        yield from task_entries(task)
    for spend in state.spend:
        yield spend.at, spend.tokens, spend.cost_usd


def task_entries(task: Task) -> Iterator[tuple[datetime, int, float]]:
    for attempt in task.attempts:
        if attempt.tokens or attempt.cost_usd:
            yield attempt.ended_at or attempt.started_at, attempt.tokens, attempt.cost_usd
    for spend in task.llm_spend:
        yield spend.at, spend.tokens, spend.cost_usd
    rest_tokens = task.llm_tokens - sum(s.tokens for s in task.llm_spend)
    rest_usd = task.llm_cost_usd - sum(s.cost_usd for s in task.llm_spend)
    if rest_tokens > 0 or rest_usd > 1e-9:
        yield task.created_at, max(rest_tokens, 0), max(rest_usd, 0.0)


def period_starts(now: datetime, zone: tzinfo | None) -> tuple[datetime, datetime]:
    """The start of today and of this week (Monday), at local midnight in ``zone`` (None: the machine's)."""
    today = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())

    def midnight(day: date) -> datetime:
        if zone is None:  # a naive local time, placed by the machine's rules (its offset on that day)
            return datetime.combine(day, time(0)).astimezone()
        return datetime.combine(day, time(0), tzinfo=zone)

    return midnight(today), midnight(monday)


def spent_since(state: RegistryState, start: datetime) -> Spent:
    tokens, usd = 0, 0.0
    for at, t, c in entries(state):
        if at >= start:
            tokens += t
            usd += c
    return Spent(tokens, round(usd, 6))


def verdict(state: RegistryState, limits: Limits, now: datetime, zone: tzinfo | None = None) -> Verdict:
    day_start, week_start = period_starts(now, zone)
    day, week = spent_since(state, day_start), spent_since(state, week_start)
    over, reason = "", ""
    if limits.per_day_usd and day.usd >= limits.per_day_usd:
        over, reason = "day", f"today's spend ${day.usd:.2f} reached the day's budget of ${limits.per_day_usd:.2f}"
    elif limits.per_day_tokens and day.tokens >= limits.per_day_tokens:
        over, reason = "day", (f"today's spend of {day.tokens:,} tokens reached the day's budget of "
                               f"{limits.per_day_tokens:,}")
    elif limits.per_week_usd and week.usd >= limits.per_week_usd:
        over, reason = "week", (f"this week's spend ${week.usd:.2f} reached the week's budget of "
                                f"${limits.per_week_usd:.2f}")
    elif limits.per_week_tokens and week.tokens >= limits.per_week_tokens:
        over, reason = "week", (f"this week's spend of {week.tokens:,} tokens reached the week's budget of "
                                f"{limits.per_week_tokens:,}")
    return Verdict(day, week, limits, day_start, week_start, over, reason)


def held_reason(v: Verdict) -> str:
    """Why nothing new starts, for the tasks that wait (stable within the period: written once)."""
    until = "tomorrow" if v.over == "day" else "next Monday"
    return f"held: {v.reason}; waits until {until} or `swarm budget --raise-{v.over} N`"


def task_over(task: Task, limits: Limits, tokens: int, usd: float) -> str:
    """Why a task that has spent ``tokens`` / ``usd`` in all may not be retried, or ""."""
    if limits.per_task_tokens and tokens > limits.per_task_tokens:
        return (f"token budget exceeded: {tokens:,} tokens spent, over the budget of {limits.per_task_tokens:,} "
                "per task")
    if limits.per_task_usd and usd > limits.per_task_usd:
        return f"budget exceeded: ${usd:.2f} spent, over the budget of ${limits.per_task_usd:.2f} per task"
    return ""


def prune(state: RegistryState, now: datetime) -> RegistryState:
    """Drop orchestrator spend on no task older than any week it could count in."""
    kept = tuple(s for s in state.spend if now - s.at <= KEEP_SPEND)
    return state if len(kept) == len(state.spend) else state.model_copy(update={"spend": kept})


def budget_message(v: Verdict, now: datetime) -> OutboxMessage:
    """The one message when the day's (week's) budget is spent: nothing new starts, running agents finish."""
    until = "tomorrow" if v.over == "day" else "next Monday"
    lines = [f"Budget reached — {v.reason}",
             f"  nothing new starts or respawns until {until}; running agents finish their attempt",
             f"  {v.line()}",
             f"  raise it: swarm budget --raise-{v.over} 20   (or: swarm budget set per_{v.over}_usd 40)"]
    data = {"event": "budget", "task_id": "", "title": "Budget reached", "status": "held", "reason": v.reason,
            "commands": [f"swarm budget --raise-{v.over} 20", "swarm budget"]}
    return OutboxMessage(key=v.key, task_id="fleet", kind="budget", text="\n".join(lines), data=data,
                         created_at=now)
