"""The budget as the orchestrator sees it: today's verdict for `swarm budget` and `swarm status`, the check
before every model call the orchestrator makes (submit, plan, review, reading notes), and the record of
spend that belongs to no task. The arithmetic is in ``monitor/budget.py``; this only wires it to settings.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from monitor.budget import Limits, Verdict
from monitor.budget_override import budget_verdict
from monitor.policy import Policy
from orchestrator.config import Settings
from orchestrator.errors import OperationalError
from registry.models import RegistryState, Spend
from registry.store import Registry


def limits_from(settings: Settings) -> Limits:
    """``[budget]`` as the monitor's values; ``[llm] task_token_budget`` is the older name of per_task_tokens."""
    b = settings.budget
    return Limits(per_task_usd=b.per_task_usd, per_day_usd=b.per_day_usd, per_week_usd=b.per_week_usd,
                  per_task_tokens=b.per_task_tokens or settings.llm.task_token_budget,
                  per_day_tokens=b.per_day_tokens, per_week_tokens=b.per_week_tokens)


def today(settings: Settings, state_dir: Path, registry: Registry, now: datetime) -> Verdict | None:
    """Spend today and this week against the effective limits (None: no day or week limit is set). Loads no
    world (git, tmux): `swarm status` calls it."""
    policy = Policy(budget=limits_from(settings), timezone=settings.budget.timezone)
    return budget_verdict(state_dir, policy, registry.read(), now)


def check_llm(settings: Settings, state_dir: Path, registry: Registry, now: datetime, what: str) -> None:
    """Refuse a model call when the day's (week's) budget is spent: one line saying how to go on."""
    verdict = today(settings, state_dir, registry, now)
    if verdict is not None and verdict.over:
        raise OperationalError(f"{what} not run: {verdict.reason}; `swarm budget --raise-{verdict.over} N` "
                               "to go on today")


def record_spend(registry: Registry, at: datetime, tokens: int, cost_usd: float, what: str) -> None:
    """Spend on no task (reading notes): counted in today's and this week's budget."""
    if not tokens and not cost_usd:
        return
    entry = Spend(at=at, tokens=tokens, cost_usd=round(cost_usd, 6), what=what)

    def add(state: RegistryState) -> RegistryState:
        return state.model_copy(update={"spend": (*state.spend, entry)})

    registry.update(add)
