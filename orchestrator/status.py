"""`swarm status`: the registry as a table for people and as JSON for scripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from monitor.durations import format_duration
from registry.models import Status, Task

STYLE = {
    Status.queued: "dim", Status.running: "cyan", Status.checking: "yellow", Status.ready: "green",
    Status.merged: "blue", Status.failed: "red", Status.cancelled: "dim",
}


def task_json(task: Task) -> dict[str, Any]:
    attempt = task.attempt
    return {
        "id": task.id,
        "title": task.title,
        "status": task.status.value,
        "agent": task.agent,
        "kind": task.kind,
        "attempts": len(task.attempts),
        "branch": task.branch,
        "worktree": task.worktree,
        "session": attempt.session if attempt else None,
        "pr": task.pr.model_dump() if task.pr else None,
        "checks": dict(task.checks),
        "reason": task.reason,
        "after": list(task.after),
        "tokens": task.tokens,
        "cost_usd": task.cost_usd,
        "llm_tokens": task.llm_tokens,  # the orchestrator's share of the above (planning, retry prompts, reviews)
        "llm_cost_usd": task.llm_cost_usd,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
        "failures": [
            {"attempt": a.number, "kind": a.failure.kind.value, "summary": a.failure.summary}
            for a in task.attempts if a.failure
        ],
    }


def table(tasks: list[Task], now: datetime) -> Table:
    grid = Table(show_lines=False, header_style="bold", expand=False)
    for column in ("task", "status", "att", "agent", "age", "tokens", "cost"):
        grid.add_column(column, no_wrap=True)
    grid.add_column("reason", overflow="ellipsis", no_wrap=True, max_width=90)
    for task in tasks:
        age = format_duration(max(0.0, (now - task.created_at).total_seconds()))
        grid.add_row(
            task.id, f"[{STYLE[task.status]}]{task.status.value}[/]", str(len(task.attempts)), task.agent, age,
            f"{task.tokens:,}" if task.tokens else "", money(task.cost_usd) if task.cost_usd else "", task.reason[:90],
        )
    if tasks:
        grid.caption = cost_footer(tasks)
        grid.caption_justify = "left"
    return grid


def money(dollars: float) -> str:
    """Cents for real sums; four decimals for the small ones (one retry prompt costs a fraction of a cent)."""
    return f"${dollars:.2f}" if dollars >= 0.01 or dollars == 0 else f"${dollars:.4f}"


def cost_footer(tasks: list[Task]) -> str:
    """What a ready pull request costs: every task's spend (failed and cancelled ones are part of the price)
    over the tasks that reached ready or merged."""
    total = round(sum(t.cost_usd for t in tasks), 6)
    done = sum(1 for t in tasks if t.status in (Status.ready, Status.merged))
    each = money(total / done) if done else "n/a"
    return f"cost per ready PR: {each} ({done} ready/merged, {money(total)} total)"


def detail(console: Console, task: Task) -> None:
    console.print(f"[bold]{task.title}[/]  ({task.id})")
    console.print(f"status    {task.status.value} — {task.reason}")
    console.print(f"agent     {task.agent}    kind {task.kind}")
    console.print(f"branch    {task.branch}\nworktree  {task.worktree}")
    if task.pr is not None:
        console.print(f"pr        #{task.pr.number} {task.pr.url}")
    if task.after:
        console.print(f"after     {', '.join(task.after)}")
    if task.checks:
        console.print("checks    " + ", ".join(f"{k}: {v}" for k, v in task.checks.items()))
    console.print(f"tokens    {task.tokens:,}    cost ${task.cost_usd:.4f}"
                  + (f"    (orchestrator: {task.llm_tokens:,} tokens, ${task.llm_cost_usd:.4f})"
                     if task.llm_tokens or task.llm_cost_usd else ""))
    for attempt in task.attempts:
        ended = f"ended {attempt.ended_at:%H:%M:%S}" if attempt.ended_at else "running"
        line = f"attempt {attempt.number}: started {attempt.started_at:%Y-%m-%d %H:%M:%S}, {ended}"
        if attempt.exit_code is not None:
            line += f", exit {attempt.exit_code}"
        console.print(line)
        if attempt.failure:
            console.print(f"  [red]{attempt.failure.kind.value}[/]: {attempt.failure.summary}", markup=True)

