"""Budgets as pure arithmetic (monitor/budget.py): what counts on which day, clock moves, per-task limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.actions import Fail, Respawn
from monitor.budget import Limits, period_starts, spent_since, task_over, verdict
from monitor.budget_override import add_raise, effective, read_override, set_limit
from monitor.decide import Decision, hold_for_budget, plan_starts
from monitor.policy import Policy
from registry.models import Attempt, Failure, FailureKind, RegistryState, Spend, Status, Task

PARIS = ZoneInfo("Europe/Paris")
# Friday 4 December 2026, 23:30 UTC = Saturday 00:30 in Paris
NOW = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)


def task(task_id: str = "t1", *, created: datetime = NOW, attempts: tuple[Attempt, ...] = (),
         llm_tokens: int = 0, llm_cost: float = 0.0, llm_spend: tuple[Spend, ...] = (),
         status: Status = Status.merged) -> Task:
    return Task(id=task_id, title="T", prompt="p", agent="a", base_branch="main", branch=f"swarm/{task_id}",
                worktree=f"/w/{task_id}", created_at=created, updated_at=created, attempts=attempts,
                llm_tokens=llm_tokens, llm_cost_usd=llm_cost, llm_spend=llm_spend, status=status)


def attempt(n: int, ended: datetime | None, usd: float, tokens: int = 1000) -> Attempt:
    return Attempt(number=n, session="s", prompt_path="p", started_at=(ended or NOW) - timedelta(hours=1),
                   ended_at=ended, tokens=tokens, cost_usd=usd)


def state(*tasks: Task, spend: tuple[Spend, ...] = ()) -> RegistryState:
    return RegistryState(tasks={t.id: t for t in tasks}, spend=spend)


def test_the_day_starts_at_local_midnight_in_the_users_zone() -> None:
    day, week = period_starts(NOW, PARIS)
    assert day == datetime(2026, 12, 5, 0, 0, tzinfo=PARIS)  # already Saturday in Paris
    assert day.astimezone(UTC) == datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    assert week == datetime(2026, 11, 30, 0, 0, tzinfo=PARIS)  # Monday
    utc_day, _ = period_starts(NOW, ZoneInfo("UTC"))
    assert utc_day == datetime(2026, 12, 4, tzinfo=UTC)


def test_an_attempt_counts_on_the_day_it_ended_and_llm_spend_on_its_own_day() -> None:
    yesterday = NOW - timedelta(days=1)
    t = task(attempts=(attempt(1, yesterday, 4.0), attempt(2, NOW - timedelta(minutes=10), 1.5)),
             created=yesterday, llm_tokens=700, llm_cost=0.7,
             llm_spend=(Spend(at=NOW - timedelta(minutes=5), tokens=200, cost_usd=0.2),))
    v = verdict(state(t), Limits(per_day_usd=10), NOW, PARIS)
    # today: attempt 2 ($1.50) + the retry prompt ($0.20); the rest of llm_cost ($0.50) is the planning
    # share, counted on the day the task was created (yesterday)
    assert v.day.usd == 1.7
    assert v.day.tokens == 1200
    assert v.week.usd == 6.2
    assert not v.over


def test_over_the_day_and_the_line_for_status() -> None:
    t = task(attempts=(attempt(1, NOW - timedelta(minutes=1), 12.0),))
    v = verdict(state(t), Limits(per_day_usd=10, per_week_usd=100), NOW, PARIS)
    assert v.over == "day"
    assert "reached the day's budget of $10.00" in v.reason
    assert v.line() == "spend: today $12.00 of $10.00; this week $12.00 of $100.00"


def test_a_clock_moved_back_does_not_empty_the_day_and_forward_does_not_double_it() -> None:
    t = task(attempts=(attempt(1, NOW - timedelta(minutes=1), 12.0),),
             llm_spend=(Spend(at=NOW, tokens=10, cost_usd=0.0),))
    s = state(t)
    limits = Limits(per_day_usd=10)
    # set back three hours (into "yesterday" for Paris): the records from "the future" still count today
    back = verdict(s, limits, NOW - timedelta(hours=3), PARIS)
    assert back.over == "day" and back.day.usd == 12.0
    # forward an hour, same day: counted once
    assert verdict(s, limits, NOW + timedelta(hours=1), PARIS).day.usd == 12.0
    # the next day (local): a new day
    assert not verdict(s, limits, NOW + timedelta(days=1), PARIS).over


def test_orchestrator_spend_on_no_task_counts() -> None:
    s = state(spend=(Spend(at=NOW, tokens=5000, cost_usd=3.0, what="notes"),))
    assert spent_since(s, NOW - timedelta(hours=1)).usd == 3.0
    assert verdict(s, Limits(per_day_tokens=4000), NOW, PARIS).over == "day"


def test_task_budget_in_dollars_and_tokens() -> None:
    t = task()
    assert task_over(t, Limits(per_task_usd=5), 10, 5.01).startswith("budget exceeded: $5.01 spent")
    assert task_over(t, Limits(per_task_tokens=100), 101, 0).startswith("token budget exceeded")
    assert task_over(t, Limits(per_task_usd=5), 10, 4.99) == ""


def test_decide_refuses_a_retry_over_the_task_budget_and_task_token_budget_stays_an_alias() -> None:
    from monitor.decide import _retry_or_fail

    t = task(status=Status.running, attempts=(attempt(1, None, 0.0, tokens=0),), llm_cost=2.0, llm_tokens=50)
    failure = Failure(kind=FailureKind.agent_error, summary="exit 1", at=NOW)
    assert isinstance(_retry_or_fail(t, t.attempts[0], failure, Policy()), Respawn)
    over = _retry_or_fail(t, t.attempts[0], failure, Policy(budget=Limits(per_task_usd=1.5)))
    assert isinstance(over, Fail) and "budget exceeded: $2.00 spent" in over.failure.summary
    alias = _retry_or_fail(t, t.attempts[0], failure, Policy(token_budget=10))
    assert isinstance(alias, Fail) and "token budget exceeded" in alias.failure.summary


def test_holding_drops_respawns_and_starts_but_keeps_the_rest() -> None:
    failure = Failure(kind=FailureKind.died, summary="gone", at=NOW)
    decisions = [Decision("a", (Respawn("a", 1, failure),), "died"), Decision("b", (), "agent running")]
    held = hold_for_budget(decisions, "held: over")
    assert held[0].actions == () and held[0].reason == "died (retry held: over)"
    assert held[1] == decisions[1]
    q = task("q", status=Status.queued)
    starts, waiting = plan_starts(state(q), Policy(), 0, "held: over")
    assert starts == [] and waiting == {"q": "held: over"}
    assert plan_starts(state(q), Policy(), 0)[0] != []


def test_overrides_set_and_raise_for_today_only(tmp_path: Path) -> None:
    limits = Limits(per_day_usd=10, per_week_usd=50)
    day, _ = period_starts(NOW, PARIS)
    add_raise(tmp_path, "day", day.date(), 20, 0)
    add_raise(tmp_path, "day", day.date(), 5, 0)
    set_limit(tmp_path, "per_week_usd", 80)
    override = read_override(tmp_path)
    assert effective(limits, override, NOW, PARIS) == Limits(per_day_usd=35, per_week_usd=80)
    # tomorrow the raise is over; the set limit stays
    assert effective(limits, override, NOW + timedelta(days=1), PARIS) == Limits(per_day_usd=10, per_week_usd=80)
