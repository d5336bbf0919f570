"""The words the human reads: "ready for review", "needs manual help", "waiting for you", "stuck" and
"discovered" notifications.

Built from registry values only (no I/O), redacted, with evidence capped, so they are safe to put in
the outbox and print or send anywhere. Each message carries its plain ``text`` (the console, and Slack's
fallback) and structured ``data`` (the same facts as JSON values, for a layout such as Slack's Block Kit);
both are redacted here, once, before they are written to the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.durations import format_duration
from monitor.fence import cap
from monitor.redact import redact
from registry.models import OutboxMessage, Task

EVIDENCE_CHARS = 1200


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


def _last_line(text: str, limit: int = 160) -> str:
    """The last non-blank line: in a log or a traceback, usually the error itself."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def first_paragraph(text: str, limit: int = 600) -> str:
    """The prompt's first paragraph (headings skipped), on one line: the task in a sentence or three."""
    for block in text.strip().split("\n\n"):
        lines = [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if lines:
            paragraph = " ".join(lines)
            return paragraph if len(paragraph) <= limit else paragraph[: limit - 1].rstrip() + "…"
    return ""


def _clean(value: Any) -> Any:
    """Redact every string in a JSON value (keys are ours; values may quote agents, CI or Sentry)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def commands(task: Task) -> list[str]:
    """The exact commands to look at a task and send it back, as the human types them."""
    return [
        f"swarm logs {task.id}",
        f"swarm attach {task.id}",
        f"swarm retry {task.id} --note \"what to do differently\"",
    ]


def _base(task: Task, event: str) -> dict[str, Any]:
    return {
        "event": event, "task_id": task.id, "title": task.title, "status": task.status.value,
        "reason": task.reason, "branch": task.branch, "base_branch": task.base_branch,
        "pr_url": task.pr.url if task.pr else "", "pr_number": task.pr.number if task.pr else None,
        "spend": spend_text(task),
    }


def spend_text(task: Task) -> str:
    """What the task has cost so far (agents and the orchestrator), for the Slack thread's status line."""
    if not task.tokens:
        return ""
    cost = f"${task.cost_usd:.2f}" if task.cost_known else "cost unknown"
    return f"{task.tokens:,} tokens, {cost}"


def _message(task: Task, key: str, kind: str, text: str, data: dict[str, Any], now: datetime) -> OutboxMessage:
    return OutboxMessage(key=key, task_id=task.id, kind=kind, text=redact(text), data=_clean(data), created_at=now)


def ready_message(
    task: Task, head: str, now: datetime, reviewers: Mapping[str, str] | None = None
) -> OutboxMessage:
    """``reviewers``: each reviewer's verdict at ``head`` when the forge told us (login → verdict)."""
    checks = ", ".join(f"{name}: {value}" for name, value in task.checks.items()) or "all checks passed"
    where = task.pr.url if task.pr else f"branch {task.branch} ({head[:10]})"
    seconds = (now - task.created_at).total_seconds()
    elapsed = format_duration(seconds)
    review = f"git diff {task.base_branch}...{task.branch}"
    text = (
        f"PR ready for review — {task.title} [{task.id}]\n"
        f"  {where}\n"
        f"  checks: {checks}\n"
        f"  attempts: {len(task.attempts)}, time since spawn: {elapsed}, tokens: {task.tokens}, "
        f"cost: {f'${task.cost_usd:.2f}' if task.cost_known else 'unknown'}\n"
        f"  review: {review}   (swarm logs {task.id}; "
        f"swarm retry {task.id} --note \"...\" for changes)"
    )
    data = _base(task, "ready") | {
        "head": head, "summary": first_paragraph(task.prompt),
        "dod": [{"item": name, "result": value} for name, value in task.checks.items()],
        "reviews": [{"reviewer": who, "verdict": verdict} for who, verdict in (reviewers or {}).items()],
        "attempts": len(task.attempts), "elapsed_s": round(seconds), "elapsed": elapsed,
        "tokens": task.tokens, "cost_usd": task.cost_usd, "cost_known": task.cost_known, "review_command": review,
        "commands": [f"swarm logs {task.id}", f"swarm retry {task.id} --note \"...\""],
    }
    return _message(task, f"{task.id}:ready:{head}", "ready", text, data, now)


def _history(task: Task) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    for attempt in task.attempts:
        failure = attempt.failure
        history.append({
            "attempt": attempt.number,
            "kind": failure.kind.value if failure else "",
            "summary": _first_line(failure.summary) if failure else "no failure recorded",
            "evidence": _last_line(failure.evidence) if failure else "",
        })
    return history


def needs_help_message(task: Task, now: datetime) -> OutboxMessage:
    lines = [f"Needs manual help — {task.title} [{task.id}]", f"  {task.reason}", "  history:"]
    history = _history(task)
    for item in history:
        what = f"{item['kind']}: {item['summary']}" if item["kind"] else item["summary"]
        lines.append(f"    attempt {item['attempt']}: {what}")
    last = task.attempts[-1].failure if task.attempts else None
    evidence = cap(last.evidence, EVIDENCE_CHARS) if last is not None and last.evidence.strip() else ""
    if evidence:
        lines += ["  last evidence:", *("    " + line for line in evidence.splitlines()[-15:])]
    steps = commands(task)
    lines += ["  next steps:", *(f"    {step}" for step in steps)]
    number = len(task.attempts)
    data = _base(task, "failed") | {
        "history": history, "evidence": "\n".join(evidence.splitlines()[-30:]), "commands": steps,
        "attempts": number,
    }
    return _message(task, f"{task.id}:needs_help:{number}", "needs_help", "\n".join(lines), data, now)


def waiting_message(task: Task, key: str, summary: str, evidence: str, now: datetime) -> OutboxMessage:
    """The task is not failed but cannot go on without the human (e.g. a workflow run to approve)."""
    lines = [f"Waiting for you — {task.title} [{task.id}]", f"  {summary}"]
    if task.pr is not None:
        lines.append(f"  {task.pr.url}")
    details = "\n".join(cap(evidence, 800).splitlines()[-10:]) if evidence.strip() else ""
    if details:
        lines += ["  details:", *("    " + line for line in details.splitlines())]
    lines.append(f"  the monitor carries on by itself once this is done (swarm status {task.id})")
    data = _base(task, "waiting") | {"summary": summary, "evidence": details,
                                     "commands": [f"swarm status {task.id}"]}
    return _message(task, f"{task.id}:waiting:{key}", "needs_help", "\n".join(lines), data, now)


def stuck_message(task: Task, now: datetime, evidence: str = "") -> OutboxMessage:
    """Escalation for a task that stays stuck: its agent is alive but shows no output and no commit.

    One message per attempt (the key), so calling it at every tick of the same stuck attempt sends it once.
    ``evidence``: the last output lines, if the caller has them (else the attempt's recorded failure).
    """
    attempt = task.attempt
    number = attempt.number if attempt else 0
    since = (attempt.progress_at or attempt.launched_at or attempt.started_at) if attempt else task.updated_at
    idle = format_duration(max(0.0, (now - since).total_seconds()))
    if not evidence.strip() and attempt is not None and attempt.failure is not None:
        evidence = attempt.failure.evidence
    details = "\n".join(cap(evidence, EVIDENCE_CHARS).splitlines()[-15:]) if evidence.strip() else ""
    lines = [f"Stuck — {task.title} [{task.id}]",
             f"  attempt {number}: no output and no commit for {idle}"]
    if task.reason:
        lines.append(f"  {task.reason}")
    if details:
        lines += ["  last output:", *("    " + line for line in details.splitlines())]
    steps = [*commands(task), f"swarm cancel {task.id}"]
    lines += ["  next steps:", *(f"    {step}" for step in steps)]
    data = _base(task, "stuck") | {"attempt": number, "idle_s": round((now - since).total_seconds()),
                                   "idle": idle, "evidence": details, "commands": steps}
    return _message(task, f"{task.id}:stuck:{number}", "stuck", "\n".join(lines), data, now)


def discovered_message(task: Task, source_url: str, summary: str, now: datetime | None = None) -> OutboxMessage:
    """A task created from an outside report (a Sentry issue). ``summary`` is that report's text: untrusted,
    so it is redacted and capped like any evidence. ``now`` defaults to the task's creation time."""
    short = cap(summary.strip(), 600)
    lines = [f"New task from {source_url or 'an outside report'} — {task.title} [{task.id}]"]
    if short:
        lines += ["  " + line for line in short.splitlines()[:8]]
    lines.append(f"  status: {task.status.value} (agent {task.agent}, kind {task.kind}); swarm status {task.id}")
    data = _base(task, "discovered") | {"source_url": source_url, "summary": short, "kind": task.kind,
                                        "agent": task.agent, "commands": [f"swarm status {task.id}",
                                                                          f"swarm cancel {task.id}"]}
    return _message(task, f"{task.id}:discovered", "discovered", "\n".join(lines), data, now or task.created_at)


def outage_message(task_ids: list[str], free: int, now: datetime) -> OutboxMessage:
    """One message for a fleet-wide provider outage (several tasks hit API errors at once), not one per task.

    ``free``: how many such attempts per task are not counted against max_attempts."""
    shown = ", ".join(task_ids[:10]) + (f" and {len(task_ids) - 10} more" if len(task_ids) > 10 else "")
    lines = [f"Provider outage — {len(task_ids)} tasks hit the agents' API errors: {shown}",
             "  each task retries on its own with a growing backoff; up to "
             f"{free} attempt(s) per task lost to the outage are not counted against max_attempts",
             "  swarm status shows each task's next try"]
    data = {"event": "outage", "task_id": "", "title": "Provider outage", "status": "outage",
            "reason": f"{len(task_ids)} tasks hit API errors", "tasks": task_ids}
    return OutboxMessage(key=f"fleet:outage:{now.isoformat()}", task_id="fleet", kind="outage",
                         text=redact("\n".join(lines)), data=_clean(data), created_at=now)


EVENT_TEXT = {
    "started": "agent started (attempt {attempt})",
    "respawn": "attempt {attempt} started after {failure}: {summary}",
    "pr_opened": "pull request #{number} opened: {url}",
    "branch_updated": "branch updated with {base}",
    "merged": "merged",
    "cancelled": "cancelled ({by})",
}


def event_message(task: Task, event: str, details: Mapping[str, object], now: datetime) -> OutboxMessage | None:
    """A line in the task's thread (Slack threads only; the console shows the tick's actions instead)."""
    template = EVENT_TEXT.get(event)
    if template is None:
        return None
    values = {k: str(v) for k, v in details.items()}
    try:
        line = template.format(**values)
    except KeyError:
        line = event.replace("_", " ")
    text = f"{task.title} [{task.id}]: {line}"
    key = f"{task.id}:event:{event}:{len(task.attempts)}:{now.isoformat()}"
    return _message(task, key, "event", text, _base(task, event) | {"line": line}, now)
