"""What a decision is, and the pieces every per-task walk shares: the failure kinds that bind a retry to
a new head or end the task, a failure record with its text redacted, and the retry-or-fail verdict (attempts,
free provider outages, the per-task budget).

Split out of ``monitor/decide.py`` so that the walks of running tasks (``monitor/decide_running.py``), of
checking ones (``monitor/decide_checking.py``) and the fleet-wide steps (``monitor/decide_fleet.py``) import
one module instead of each other; like them it is pure (no I/O, no clock).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from monitor.actions import Action, Fail, Respawn
from monitor.budget import task_over
from monitor.observation import RunResult
from monitor.policy import Policy
from monitor.redact import redact
from registry.models import Attempt, Failure, FailureKind, Task

# Failures whose retry must produce new commits: the old head is the thing that failed.
HEAD_BOUND = {
    FailureKind.ci_failed,
    FailureKind.changes_requested,
    FailureKind.conflict,
    FailureKind.behind,
    FailureKind.screenshots_missing,
}
# Failures no new agent attempt can fix: the human is told at once.
TERMINAL = {FailureKind.setup_failed, FailureKind.launch_failed, FailureKind.worktree_missing}
CLOCK_SLACK = timedelta(minutes=5)
# How far the wall clock may drift from the monotonic one between two ticks before it counts as a jump.
JUMP_SLACK = timedelta(minutes=1)
ASKED = "asked:"  # keys in Task.fired of questions put to the human (not failures)


@dataclass(frozen=True)
class Decision:
    task_id: str
    actions: tuple[Action, ...] = ()
    reason: str = ""
    checks: Mapping[str, str] = field(default_factory=dict)
    passed_head: str = ""  # the head whose own checks all passed (monitor/merge/stack.py): dependents stack on it


def _failure(kind: FailureKind, summary: str, evidence: str, now: datetime) -> Failure:
    # Summaries and evidence quote agent output, CI logs and reviews: never let a token through.
    return Failure(kind=kind, summary=redact(summary), evidence=redact(evidence), at=now)


def free_api_errors(task: Task, policy: Policy, current: Failure | None = None) -> int:
    """Attempts lost to provider outages that do not count against ``max_attempts`` (at most
    ``api_error_attempts``); ``current`` is the failure of the attempt being closed, if not yet recorded."""
    seen = sum(1 for a in task.attempts if a.failure is not None and a.failure.kind is FailureKind.api_error)
    if current is not None and current.kind is FailureKind.api_error and task.attempt and task.attempt.failure is None:
        seen += 1
    return min(seen, policy.api_error_attempts)


def api_backoff(task_id: str, count: int, policy: Policy) -> timedelta:
    """The wait before the next attempt after the ``count``-th api_error: exponential, capped, with a jitter
    derived from the task and the count (so that ``decide`` stays pure and a fleet does not retry in step)."""
    base = min(policy.api_backoff_max, policy.api_backoff * 2 ** min(max(count - 1, 0), 30))
    digest = hashlib.sha256(f"{task_id}:{count}".encode()).digest()
    jitter = int.from_bytes(digest[:4], "big") / 2**32  # [0, 1)
    return timedelta(seconds=base * (0.5 + 0.5 * jitter))


def _retry_or_fail(
    task: Task,
    attempt: Attempt,
    failure: Failure,
    policy: Policy,
    *,
    result: RunResult | None = None,
    kill: bool = False,
    fired: str = "",
) -> Action:
    counted = attempt.number - free_api_errors(task, policy, failure)
    if failure.kind in TERMINAL or counted >= policy.max_attempts:
        return Fail(task.id, attempt.number, failure, result, kill)
    # The attempt that just ended is billed from its result: the record gets its tokens only when closed.
    spent = task.tokens - attempt.tokens + result.tokens if result is not None else task.tokens
    usd = task.cost_usd - attempt.cost_usd + result.cost_usd if result is not None else task.cost_usd
    limits = policy.budget
    if not limits.per_task_tokens and policy.token_budget:  # [llm] task_token_budget, the older name
        limits = replace(limits, per_task_tokens=policy.token_budget)
    over = task_over(task, limits, spent, usd)
    if over:
        return Fail(task.id, attempt.number, failure.model_copy(update={"summary": f"{failure.summary}; {over}"}),
                    result, kill)
    return Respawn(task.id, attempt.number, failure, result, kill, fired)


def _worktree_missing(task: Task, attempt: Attempt, now: datetime, *, kill: bool) -> Decision:
    """Flag it for the human; never re-create a worktree elsewhere or delete anything."""
    failure = _failure(
        FailureKind.worktree_missing,
        f"the worktree {task.worktree} is gone; nothing was re-created. Restore it, then `swarm retry {task.id}`",
        "",
        now,
    )
    return Decision(task.id, (Fail(task.id, attempt.number, failure, kill=kill),), failure.summary)
