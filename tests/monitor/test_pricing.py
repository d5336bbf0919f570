"""Costs from token counts: known models priced, the user's [pricing] table over the built-in one, and
"unknown" (never $0.00) where the price is unknown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from monitor.agent_output import parse_output
from monitor.agent_run import write_json_atomic
from monitor.messages import ready_message
from monitor.observe import load_result
from monitor.pricing import BUILTIN, codex_default_model, cost_usd, model_from_launch, price_of, use_table
from orchestrator.config import ConfigError, parse
from orchestrator.status import cost_footer, table, task_json
from registry.models import Attempt, Status, Task

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_user_prices() -> Iterator[None]:
    use_table({})
    yield
    use_table({})


def test_known_models_and_their_snapshots() -> None:
    assert price_of("gpt-5.5") == BUILTIN["gpt-5.5"]
    assert price_of("GPT-5-2025-08-07") == BUILTIN["gpt-5"]
    assert price_of("claude-sonnet-4-5-20250929") == BUILTIN["claude-sonnet-4-5"]
    assert price_of("openai/gpt-5.4-mini") == BUILTIN["gpt-5.4-mini"]
    assert price_of("claude-opus-5-5[1m]") == BUILTIN["claude-opus-5-5"]
    assert price_of("gpt-5.6-sol") is None  # no guessing from a family name
    assert price_of("claude-haiku-5-5") is None  # priced by prompt length: one rate would be wrong
    assert price_of("my-local-llama") is None


def test_cost_counts_cached_input_at_its_own_rate() -> None:
    # gpt-5: $1.25 input, $0.125 cached, $10 output per million
    assert cost_usd("gpt-5", 1_000_000, 0, 0) == pytest.approx(1.25)
    assert cost_usd("gpt-5", 1_000_000, 800_000, 100_000) == pytest.approx(0.25 + 0.1 + 1.0)
    assert cost_usd("unknown-model", 10, 0, 10) is None
    assert cost_usd("", 10, 0, 10) is None


def test_the_model_comes_from_the_profile() -> None:
    assert model_from_launch(["codex", "exec", "-m", "gpt-5.5", "-"], {}) == "gpt-5.5"
    assert model_from_launch(["codex", "exec", "--model=gpt-5.4"], {}) == "gpt-5.4"
    assert model_from_launch(["codex", "exec", "-c", 'model="gpt-5.4-nano"'], {}) == "gpt-5.4-nano"
    assert model_from_launch(["claude", "-p"], {"ANTHROPIC_MODEL": "claude-opus-5-5"}) == "claude-opus-5-5"
    assert model_from_launch(["codex", "exec", "-c", "model_provider=x"], {}) == ""


def test_codex_default_model_from_its_config(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('model = "gpt-5.4"\n')
    assert codex_default_model({"CODEX_HOME": str(tmp_path)}) == "gpt-5.4"
    assert codex_default_model({"CODEX_HOME": str(tmp_path / "none")}) == ""


def test_user_table_extends_and_overrides(tmp_path: Path) -> None:
    parse({"pricing": {"my-llama": {"input": 1.0, "output": 2.0}, "gpt-5": {"input": 9, "output": 9,
                                                                               "cached_input": 0}}},
          tmp_path / "swarm.toml")
    assert cost_usd("my-llama", 1_000_000, 500_000, 1_000_000) == pytest.approx(3.0)  # cached defaults to input
    assert cost_usd("gpt-5", 2_000_000, 1_000_000, 0) == pytest.approx(9.0)
    with pytest.raises(ConfigError, match=r"pricing\.x\.input"):
        parse({"pricing": {"x": {"input": -1, "output": 1}}}, tmp_path / "swarm.toml")


def _result(tmp_path: Path, fixture: Path, argv: list[str], env: dict[str, str] | None = None) -> tuple[float, bool]:
    report = parse_output("codex", fixture.read_text(), 0)
    (tmp_path / "run.json").write_text(json.dumps({"argv": argv, "env": env or {}, "parser": "codex"}))
    write_json_atomic(tmp_path / "result.json", {"phase": "agent", "exit_code": 0, "started_at": NOW.isoformat(),
                                                 "ended_at": NOW.isoformat(), "report": report.model_dump()})
    result = load_result(tmp_path / "result.json")
    assert result is not None and result.tokens == 2100
    return result.cost_usd, result.cost_known


def test_codex_tokens_are_priced(tmp_path: Path, fixtures_dir: Path) -> None:
    fixture = fixtures_dir / "codex" / "success.jsonl"  # 2000 input, 100 output tokens
    cost, known = _result(tmp_path, fixture, ["codex", "exec", "-m", "gpt-5.5", "-"])
    assert known and cost == pytest.approx((2000 * 5.0 + 100 * 30.0) / 1e6)  # was: 0.0
    cost, known = _result(tmp_path, fixture, ["codex", "exec", "-"], {"CODEX_HOME": str(tmp_path / "nothing")})
    assert (cost, known) == (0.0, False)


def _task(task_id: str, status: Status, cost: float, known: bool) -> Task:
    attempt = Attempt(number=1, session="s", prompt_path="/p", started_at=NOW, tokens=2100, cost_usd=cost,
                      cost_known=known)
    return Task(id=task_id, title=task_id, prompt="p", agent="codex", status=status, base_branch="main",
                branch=f"swarm/{task_id}", worktree="/wt", attempts=(attempt,), created_at=NOW, updated_at=NOW)


def test_status_and_notifications_say_unknown_instead_of_zero() -> None:
    tasks = [_task("a", Status.ready, 0.0, False), _task("b", Status.ready, 0.013, True)]
    console = Console(record=True, width=200)
    console.print(table(tasks, NOW))
    out = console.export_text()
    row = next(line for line in out.splitlines() if line.startswith("│ a "))
    assert "unknown" in row
    assert "$0.00" not in out
    assert cost_footer(tasks).startswith("cost per ready PR: unknown (2 ready/merged; 1 task(s) used a model")
    assert cost_footer(tasks[1:]) == "cost per ready PR: $0.01 (1 ready/merged, $0.01 total)"
    assert task_json(tasks[0])["cost_known"] is False
    message = ready_message(tasks[0], "a" * 40, NOW)
    assert "cost: unknown" in message.text and "$0.00" not in message.text
    assert "cost: $0.01" in ready_message(tasks[1], "a" * 40, NOW).text
