"""What the monitor enforces, as plain values: built by the CLI from the settings, so the monitor never
imports the orchestrator's config."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.budget import Limits


@dataclass(frozen=True)
class DonePolicy:
    commits: bool = True
    pr: bool = True
    no_conflict: bool = True
    up_to_date: bool = False
    ci: bool = True
    reviews: int = 0
    reviewers: tuple[str, ...] = ()
    screenshots_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 3
    stuck_after: float = 1200.0
    attempt_timeout: float = 7200.0
    max_parallel: int = 4
    max_respawns_per_tick: int = 4
    token_budget: int = 0  # tokens per task (agents + orchestrator); once over it, a failure is final (0 = none)
    # Provider outages (api_error): the next attempt waits api_backoff * 2^(n-1), jittered, at most
    # api_backoff_max; the first api_error_attempts of them per task are not counted against max_attempts;
    # outage_tasks tasks hitting it within api_backoff_max make one fleet-wide notification.
    api_backoff: float = 60.0
    api_backoff_max: float = 1800.0
    api_error_attempts: int = 5
    outage_tasks: int = 3
    # Stacked starts ([plan] stack): "off", "contracts" (dependencies that own a contract of the plan) or "all";
    # restacks rebase ("rebase") or merge ("merge") the dependent onto its dependency's new head.
    stack: str = "contracts"
    restack: str = "rebase"
    # The merge train ([merge]): "manual" (the human merges) or "queue" (human-approved PRs land one at a
    # time behind the CI gate), merged with "merge", "squash" or "rebase".
    merge_mode: str = "manual"
    merge_method: str = "merge"
    done: DonePolicy = field(default_factory=DonePolicy)
    budget: Limits = field(default_factory=Limits)  # [budget]: spend limits (monitor/budget.py)
    timezone: str = ""  # where the budget's day starts at midnight ("" = this machine's zone)
