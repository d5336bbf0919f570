"""One task's page as plain values: the attempt timeline, the evidence each retry was given, each attempt's
prompt, the readable transcript (``monitor.transcript``, as `swarm logs` and the retry evidence read it),
the definition-of-done checks, the PR and what the task cost, by source. Files are read from the task's own
run directories only, and only their ends: an agent's log can be large."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from monitor.agent_run import LOG
from monitor.durations import format_duration
from monitor.layout import Layout
from monitor.transcript import readable
from orchestrator.dashboard.board import Card, card
from orchestrator.status import money
from registry.models import Attempt, Task

PROMPT_LIMIT = 100_000  # characters of a prompt shown (a prompt is capped at 200 KB when spawned)
LOG_TAIL_BYTES = 256 * 1024  # of an agent's output.log, read from its end
TRANSCRIPT_LINES = 300


@dataclass(frozen=True)
class AttemptView:
    number: int
    started: str
    ended: str
    duration: str
    exit_code: str
    failure_kind: str
    failure_summary: str
    evidence: str  # the evidence the next attempt's prompt was given about this failure (fenced there)
    prompt: str
    transcript: str  # a finished attempt's readable output (the running one is tailed live instead)
    tokens: str
    cost: str
    runtime: str


@dataclass(frozen=True)
class CostLine:
    source: str
    tokens: str
    cost: str


@dataclass(frozen=True)
class TaskPage:
    card: Card
    kind: str
    branch: str
    after: list[str]
    notes: list[str]
    checks: list[tuple[str, str]]
    attempts: list[AttemptView]
    costs: list[CostLine]
    transcript: str
    transcript_attempt: int
    live: bool  # an agent runs: the transcript is tailed
    can_retry: bool
    can_cancel: bool
    can_merge: bool = False  # [merge] mode = "queue", ready, not yet approved: the merge-train button


def _clock(when: datetime | None) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S} UTC" if when is not None else "—"


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def read_prompt(layout: Layout, task: Task, attempt: Attempt) -> str:
    """The attempt's prompt file, only from under this task's run directory."""
    path = Path(attempt.prompt_path) if attempt.prompt_path else layout.run_dir(task.id, attempt.number) / "prompt.md"
    if not _inside(path, layout.task_dir(task.id)):
        return "(the prompt's path is outside this task's run directory: not shown)"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no prompt file: it was archived or removed)"
    if len(text) <= PROMPT_LIMIT:
        return text
    return text[:PROMPT_LIMIT] + f"\n[… {len(text) - PROMPT_LIMIT} characters more]"


def log_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                handle.seek(size - limit)
                handle.readline()  # from the first whole line on
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def log_size(layout: Layout, task_id: str, attempt: int) -> int:
    try:
        return (layout.run_dir(task_id, attempt) / LOG).stat().st_size
    except OSError:
        return -1


def transcript(layout: Layout, task: Task, attempt: int | None = None) -> tuple[int, str]:
    """(attempt number, its readable transcript): the given attempt's or the last one's."""
    number = attempt if attempt is not None else (task.attempt.number if task.attempt else 0)
    if number <= 0:
        return 0, ""
    return number, readable(log_tail(layout.run_dir(task.id, number) / LOG), max_lines=TRANSCRIPT_LINES)


def attempt_view(layout: Layout, task: Task, attempt: Attempt) -> AttemptView:
    ended = attempt.ended_at
    start = attempt.launched_at or attempt.started_at
    failure = attempt.failure
    return AttemptView(
        number=attempt.number, started=_clock(attempt.started_at), ended=_clock(ended) if ended else "running",
        duration=format_duration(max(0.0, (ended - start).total_seconds())) if ended else "",
        exit_code="" if attempt.exit_code is None else str(attempt.exit_code),
        failure_kind=failure.kind.value if failure else "", failure_summary=failure.summary if failure else "",
        evidence=failure.evidence if failure else "", prompt=read_prompt(layout, task, attempt),
        transcript=transcript(layout, task, attempt.number)[1] if ended else "",
        tokens=f"{attempt.tokens:,}", cost=money(attempt.cost_usd) if attempt.cost_known else "unknown",
        runtime=attempt.runtime,
    )


LLM_SOURCES = {"retry prompt": "retry prompts (model)", "review": "reviews (model)"}


def costs(task: Task) -> list[CostLine]:
    """Where the money went: the first attempt's agent, the retries' agents, and the orchestrator's model by
    what it did (``Task.llm_spend``: retry prompts, reviews); the rest of ``llm_tokens`` is the task's share
    of planning (recorded at submit, and all of it for registries older than ``llm_spend``)."""
    first = task.attempts[:1]
    retries = task.attempts[1:]

    def line(source: str, attempts: tuple[Attempt, ...]) -> CostLine:
        known = all(a.cost_known for a in attempts)
        return CostLine(source, f"{sum(a.tokens for a in attempts):,}",
                        money(sum(a.cost_usd for a in attempts)) if known else "unknown")

    model: dict[str, tuple[int, float]] = {}
    for spend in task.llm_spend:
        name = LLM_SOURCES.get(spend.what, f"{spend.what or 'other'} (model)")
        tokens, usd = model.get(name, (0, 0.0))
        model[name] = (tokens + spend.tokens, usd + spend.cost_usd)
    rest_tokens = task.llm_tokens - sum(s.tokens for s in task.llm_spend)
    rest_usd = task.llm_cost_usd - sum(s.cost_usd for s in task.llm_spend)
    lines = [line("agent (attempt 1)", first),
             line(f"retries (attempts 2–{len(task.attempts)})" if len(retries) > 1 else "retries (agent)", retries),
             CostLine("planning (its share)", f"{max(rest_tokens, 0):,}", money(max(rest_usd, 0.0)))]
    lines += [CostLine(name, f"{tokens:,}", money(usd)) for name, (tokens, usd) in sorted(model.items())]
    lines.append(CostLine("total", f"{task.tokens:,}", money(task.cost_usd) if task.cost_known else "unknown"))
    return lines


def task_page(layout: Layout, task: Task, now: datetime, max_attempts: int, merge_mode: str = "manual") -> TaskPage:
    number, text = transcript(layout, task)
    return TaskPage(
        card=card(task, now, max_attempts), kind=task.kind, branch=task.branch, after=list(task.after),
        notes=list(task.notes), checks=sorted(task.checks.items()),
        attempts=[attempt_view(layout, task, a) for a in reversed(task.attempts)], costs=costs(task),
        transcript=text, transcript_attempt=number, live=task.status.value == "running",
        can_retry=task.status.value not in ("queued", "merged"), can_cancel=task.status.active,
        can_merge=merge_mode == "queue" and task.status.value == "ready" and task.merge_request is None,
    )
