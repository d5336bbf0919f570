"""`swarm status` shows what the work cost: per task (agents + orchestrator) and per ready pull request."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from orchestrator.status import cost_footer, table, task_json
from registry.models import Attempt, Status, Task

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def make(task_id: str, status: Status, *costs: float, llm: float = 0.0, llm_tokens: int = 0) -> Task:
    attempts = tuple(Attempt(number=i + 1, session="s", prompt_path="/p", started_at=NOW, tokens=1000, cost_usd=c)
                     for i, c in enumerate(costs))
    return Task(id=task_id, title=task_id, prompt="p", agent="claude", status=status, base_branch="main",
                branch=f"swarm/{task_id}", worktree="/wt", attempts=attempts, llm_tokens=llm_tokens,
                llm_cost_usd=llm, created_at=NOW, updated_at=NOW)


TASKS = [
    make("a", Status.ready, 1.0, llm=0.25, llm_tokens=500),
    make("b", Status.merged, 2.0, 1.5),
    make("c", Status.failed, 0.5, 0.5, 0.5),  # its spend is part of what the ready ones cost
    make("d", Status.running, 0.75),
]


def test_footer_is_the_whole_spend_over_the_ready_and_merged_tasks() -> None:
    assert cost_footer(TASKS) == "cost per ready PR: $3.50 (2 ready/merged, $7.00 total)"
    assert cost_footer([TASKS[2]]) == "cost per ready PR: n/a (0 ready/merged, $1.50 total)"


def test_the_table_shows_tokens_cost_and_the_footer() -> None:
    console = Console(record=True, width=200)
    console.print(table(TASKS, NOW))
    out = console.export_text()
    row = next(line for line in out.splitlines() if line.startswith("│ a "))
    assert "1,500" in row and "$1.25" in row, "agent tokens and cost plus the orchestrator's"
    assert out.rstrip().endswith("cost per ready PR: $3.50 (2 ready/merged, $7.00 total)")


def test_json_splits_the_orchestrators_share() -> None:
    data = task_json(TASKS[0])
    assert (data["tokens"], data["cost_usd"], data["llm_tokens"], data["llm_cost_usd"]) == (1500, 1.25, 500, 0.25)
