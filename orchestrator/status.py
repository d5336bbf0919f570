"""`swarm status`: the registry as a table for people and as JSON for scripts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.durations import format_duration
from monitor.merge.queue import train_json, train_reason
from monitor.merge.stack import stack_json, stack_position, stack_wait
from registry.models import Status, Task

STYLE = {
    Status.queued: "dim", Status.running: "cyan", Status.checking: "yellow", Status.ready: "green",
    Status.merged: "blue", Status.failed: "red", Status.cancelled: "dim",
}


def task_json(task: Task, tasks: Mapping[str, Task] | None = None) -> dict[str, Any]:
    """One task for scripts; ``tasks`` (the registry's) lets a stacked task name its dependency's PR."""
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
        "stack": stack_json(task, tasks or {}),  # null, or where the branch stands: {"on", "pr", "position", ...}
        "merge": train_json(task, (tasks or {}).values()),  # null, or the merge train: who approved, place, why
        "tokens": task.tokens,
        "cost_usd": task.cost_usd,
        "cost_known": task.cost_known,  # false: some tokens were spent on a model with no price (cost_usd is a floor)
        "llm_tokens": task.llm_tokens,  # the orchestrator's share of the above (planning, retry prompts, reviews)
        "llm_cost_usd": task.llm_cost_usd,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
        "failures": [
            {"attempt": a.number, "kind": a.failure.kind.value, "summary": a.failure.summary}
            for a in task.attempts if a.failure
        ],
    }


# Columns that go first when the terminal is narrow (the id, the status and the reason stay).
DROP_ORDER = ("tokens", "cost", "agent", "att", "age")
MIN_REASON = 20  # a reason shorter than this says little: drop a number column first
PIPED_WIDTH = 200  # no terminal and no $COLUMNS: wide enough that nothing is cut (the table is only as wide
# as its content), narrow enough for a pager


def _cells(task: Task, now: datetime, tasks: Mapping[str, Task] | None = None) -> dict[str, str]:
    age = format_duration(max(0.0, (now - task.created_at).total_seconds()))
    position = stack_position(task, tasks or {})
    reason = f"{position}: {task.reason}" if position else task.reason
    reason = train_reason(task) or reason  # in the merge train: its place and what it waits for
    return {
        "task": task.id, "status": task.status.value, "att": str(len(task.attempts)), "agent": task.agent,
        "age": age, "tokens": f"{task.tokens:,}" if task.tokens else "",
        "cost": task_cost(task) if task.cost_usd or not task.cost_known else "",
        "reason": " ".join(reason.split())[:90],
    }


def _fits(widths: dict[str, int], columns: list[str], width: int, framed: bool) -> bool:
    """Whether these columns fit: a framed table takes 3 characters per column plus one; a bare one 1."""
    used = sum(widths[c] for c in columns) + (3 * len(columns) + 1 if framed else len(columns) - 1)
    return used <= width


def table(tasks: list[Task], now: datetime, width: int | None = None) -> Table:
    """The tasks as a table at most ``width`` characters wide. Every id and status is shown whole: columns
    are dropped (tokens, cost, agent, attempts, age, in that order), the reason is shortened, and at the
    very narrowest the frame goes. Every cell is a Text: titles, reasons and ids are data, never markup."""
    by_id = {t.id: t for t in tasks}
    rows = [_cells(task, now, by_id) for task in tasks]
    names = ["task", "status", "att", "agent", "age", "tokens", "cost", "reason"]
    widths = {n: max([len(n), *(len(r[n]) for r in rows)]) for n in names}
    limit = width or 10_000
    columns, framed = list(names), True
    reason_room = widths["reason"]
    for drop in (None, *DROP_ORDER):
        if drop is not None:
            columns.remove(drop)
        others = {**widths, "reason": 0}
        spare = limit - (sum(others[c] for c in columns) + 3 * len(columns) + 1)
        if spare >= min(widths["reason"], MIN_REASON):
            reason_room = min(widths["reason"], spare)
            break
    else:  # only the id, the status and the reason are left: a short reason beats none
        spare = limit - (widths["task"] + widths["status"] + 3 * 3 + 1)
        if spare >= 8:
            reason_room = min(widths["reason"], spare)
        else:
            columns.remove("reason")
            framed = _fits(widths, columns, limit, framed=True)
    grid = Table(show_lines=False, header_style="bold", expand=False, box=box.HEAVY_HEAD if framed else None,
                 padding=(0, 1) if framed else (0, 1, 0, 0), show_edge=framed)
    for name in columns:
        if name == "reason":
            grid.add_column(name, overflow="ellipsis", no_wrap=True, max_width=reason_room)
        elif name == "task" and not framed:  # wider than the screen: the id folds, it never loses its end
            grid.add_column(name, overflow="fold")
        else:
            grid.add_column(name, no_wrap=True, min_width=widths[name])
    for task, row in zip(tasks, rows, strict=True):
        cells = [Text(row[n], style=STYLE[task.status] if n == "status" else "") for n in columns]
        grid.add_row(*cells)
    if tasks:
        grid.caption = Text(cost_footer(tasks))
        grid.caption_justify = "left"
    return grid


def table_width(console: Console, environ: Mapping[str, str] | None = None) -> int:
    """The terminal's width; piped, $COLUMNS when set, else PIPED_WIDTH."""
    env = os.environ if environ is None else environ
    if console.is_terminal or env.get("COLUMNS", "").isdigit():
        return console.width
    return PIPED_WIDTH


def blocked(tasks: list[Task]) -> list[str]:
    """Queued tasks waiting on a dependency that failed or was cancelled: without a word they wait forever."""
    by_id = {t.id: t for t in tasks}
    lines = []
    for task in tasks:
        if task.status is not Status.queued:
            continue
        for dep in task.after:
            other = by_id.get(dep)
            if other is not None and other.status in (Status.failed, Status.cancelled):
                lines.append(f"WARNING: {task.id} waits for {dep}, which is {other.status.value} and will never "
                             f"merge: `swarm retry {dep}`, or `swarm cancel {task.id}`")
    return lines


def money(dollars: float) -> str:
    """Cents for real sums; four decimals for the small ones (one retry prompt costs a fraction of a cent)."""
    return f"${dollars:.2f}" if dollars >= 0.01 or dollars == 0 else f"${dollars:.4f}"


def task_cost(task: Task) -> str:
    """The task's cost, or "unknown" when an agent's model has no price (never a made-up $0.00)."""
    return money(task.cost_usd) if task.cost_known else "unknown"


def cost_footer(tasks: list[Task]) -> str:
    """What a ready pull request costs: every task's spend (failed and cancelled ones are part of the price)
    over the tasks that reached ready or merged."""
    total = round(sum(t.cost_usd for t in tasks), 6)
    done = sum(1 for t in tasks if t.status in (Status.ready, Status.merged))
    unpriced = sum(1 for t in tasks if not t.cost_known)
    if unpriced:
        return (f"cost per ready PR: unknown ({done} ready/merged; {unpriced} task(s) used a model with no price: "
                "add it under [pricing] in swarm.toml)")
    each = money(total / done) if done else "n/a"
    return f"cost per ready PR: {each} ({done} ready/merged, {money(total)} total)"


def detail(console: Console, task: Task, tasks: Mapping[str, Task] | None = None) -> None:
    """One task in full. Nothing here is markup: titles come from users, Sentry and the planner."""
    def say(*parts: str | Text) -> None:
        console.print(Text.assemble(*parts), highlight=False)

    say(Text(task.title, style="bold"), f"  ({task.id})")
    say(f"status    {task.status.value} — {task.reason}")
    say(f"agent     {task.agent}    kind {task.kind}")
    say(f"branch    {task.branch}")
    say(f"worktree  {task.worktree}")
    if task.pr is not None:
        say(f"pr        #{task.pr.number} {task.pr.url}")
    if task.after:
        say(f"after     {', '.join(task.after)}")
    if task.stacked_on:
        wait = stack_wait(task, tasks or {})
        say(f"stacked   {stack_position(task, tasks or {})}, based on {(task.stack_base_sha or '?')[:10]}"
            + (f"; {wait}" if wait else ""))
    if task.merge_request is not None:
        request = task.merge_request
        say(f"merge     approved by {request.by} ({request.via}) for {request.head[:7]} at "
            f"{request.at:%Y-%m-%d %H:%M}" + (f"; {request.waiting}" if request.waiting else ""))
    if task.checks:
        say("checks    " + ", ".join(f"{k}: {v}" for k, v in task.checks.items()))
    say(f"tokens    {task.tokens:,}    cost {f'${task.cost_usd:.4f}' if task.cost_known else 'unknown'}"
        + (f"    (orchestrator: {task.llm_tokens:,} tokens, ${task.llm_cost_usd:.4f})"
           if task.llm_tokens or task.llm_cost_usd else ""))
    for attempt in task.attempts:
        ended = f"ended {attempt.ended_at:%H:%M:%S}" if attempt.ended_at else "running"
        line = f"attempt {attempt.number}: started {attempt.started_at:%Y-%m-%d %H:%M:%S}, {ended}"
        if attempt.exit_code is not None:
            line += f", exit {attempt.exit_code}"
        say(line)
        if attempt.failure:
            say("  ", Text(attempt.failure.kind.value, style="red"), f": {attempt.failure.summary}")
