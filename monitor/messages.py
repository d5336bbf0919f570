"""The words the human reads: the text of "ready for review" and "needs manual help" notifications.

Built from registry values only (no I/O), redacted, with evidence capped, so they are safe to put in
the outbox and print or send anywhere.
"""

from __future__ import annotations

from datetime import datetime

from monitor.durations import format_duration
from monitor.fence import cap
from monitor.redact import redact
from registry.models import OutboxMessage, Task


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


def ready_message(task: Task, head: str, now: datetime) -> OutboxMessage:
    checks = ", ".join(f"{name}: {value}" for name, value in task.checks.items()) or "all checks passed"
    where = task.pr.url if task.pr else f"branch {task.branch} ({head[:10]})"
    elapsed = format_duration((now - task.created_at).total_seconds())
    text = (
        f"PR ready for review — {task.title} [{task.id}]\n"
        f"  {where}\n"
        f"  checks: {checks}\n"
        f"  attempts: {len(task.attempts)}, time since spawn: {elapsed}, tokens: {task.tokens}, "
        f"cost: ${task.cost_usd:.2f}\n"
        f"  review: git diff {task.base_branch}...{task.branch}   (swarm logs {task.id}; "
        f"swarm retry {task.id} --note \"...\" for changes)"
    )
    return OutboxMessage(key=f"{task.id}:ready:{head}", task_id=task.id, kind="ready", text=redact(text),
                         created_at=now)


def needs_help_message(task: Task, now: datetime) -> OutboxMessage:
    lines = [f"Needs manual help — {task.title} [{task.id}]", f"  {task.reason}", "  history:"]
    for attempt in task.attempts:
        failure = attempt.failure
        what = f"{failure.kind.value}: {_first_line(failure.summary)}" if failure else "no failure recorded"
        lines.append(f"    attempt {attempt.number}: {what}")
    last = task.attempts[-1].failure if task.attempts else None
    if last is not None and last.evidence.strip():
        lines += ["  last evidence:", *("    " + line for line in cap(last.evidence, 1200).splitlines()[-15:])]
    lines += [
        "  next steps:",
        f"    swarm logs {task.id}",
        f"    swarm attach {task.id}",
        f"    swarm retry {task.id} --note \"what to do differently\"",
    ]
    number = len(task.attempts)
    return OutboxMessage(key=f"{task.id}:needs_help:{number}", task_id=task.id, kind="needs_help",
                         text=redact("\n".join(lines)), created_at=now)


def waiting_message(task: Task, key: str, summary: str, evidence: str, now: datetime) -> OutboxMessage:
    """The task is not failed but cannot go on without the human (e.g. a workflow run to approve)."""
    lines = [f"Waiting for you — {task.title} [{task.id}]", f"  {summary}"]
    if task.pr is not None:
        lines.append(f"  {task.pr.url}")
    if evidence.strip():
        lines += ["  details:", *("    " + line for line in cap(evidence, 800).splitlines()[-10:])]
    lines.append(f"  the monitor carries on by itself once this is done (swarm status {task.id})")
    return OutboxMessage(key=f"{task.id}:waiting:{key}", task_id=task.id, kind="needs_help",
                         text=redact("\n".join(lines)), created_at=now)
