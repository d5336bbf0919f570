"""What really ended an attempt, from the real CLIs' recorded output to the failure the human and the next
attempt see: a failed command is not a phantom, a full context window is not an API outage, and the
summary names the cause instead of "agent exited with code 1"."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.actions import Respawn
from monitor.agent_output import parse_output
from monitor.agent_run import write_json_atomic
from monitor.decide import decide
from monitor.observation import Liveness, Observation
from monitor.observe import load_result
from monitor.policy import Policy
from monitor.retry import TemplateRetryPrompter
from monitor.transcript import readable
from registry.models import Attempt, FailureKind, Status, Task

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _task() -> Task:
    # retry_at passed: an api_error respawns now instead of starting its backoff
    attempt = Attempt(number=1, session="swarm-t1", prompt_path="/p.md", started_at=NOW - timedelta(minutes=30),
                      launched_at=NOW - timedelta(minutes=30), start_head="a" * 40,
                      retry_at=NOW - timedelta(minutes=1))
    return Task(id="t1", title="Add greet", prompt="Add greet()", agent="codex", status=Status.running,
                base_branch="main", branch="swarm/t1", worktree="/w", attempts=(attempt,),
                created_at=NOW - timedelta(hours=1), updated_at=NOW)


def _judge(tmp_path: Path, parser: str, fixture: Path, exit_code: int, ahead: int = 0) -> Respawn:
    """The wrapper's result.json for this recorded output, read back by the observer, judged by decide."""
    text = fixture.read_text()
    report = parse_output(parser, text, exit_code)
    write_json_atomic(tmp_path / "result.json", {
        "phase": "agent", "exit_code": exit_code, "killed_by": "",
        "started_at": (NOW - timedelta(minutes=5)).isoformat(), "ended_at": NOW.isoformat(),
        "error": report.error, "report": report.model_dump(),
    })
    result = load_result(tmp_path / "result.json")
    assert result is not None
    obs = Observation(liveness=Liveness.exited, worktree_exists=True, result=result, head="a" * 40, ahead=ahead,
                      log_tail=readable(text))
    decision = decide(_task(), obs, Policy(), NOW)
    [action] = decision.actions
    assert isinstance(action, Respawn), decision
    assert decision.reason == action.failure.summary  # what `swarm status` shows is the cause too
    return action


def test_a_failed_command_is_an_agent_error_with_its_output(tmp_path: Path, fixtures_dir: Path) -> None:
    respawn = _judge(tmp_path, "codex", fixtures_dir / "codex" / "failing-cmd.jsonl", 0)
    failure = respawn.failure
    assert failure.kind is FailureKind.agent_error  # was: phantom, "exited 0 claiming success"
    assert "claiming success" not in failure.summary
    assert failure.summary == ("1 command(s) failed and nothing new was committed; last: "
                               "$ /bin/bash -lc \"python3 -c 'import sys; sys.exit(3)'\" (exit 3)")
    assert "(exit 3)" in failure.evidence and "The command failed; I could not finish." in failure.evidence


def test_a_failed_claude_tool_call_is_an_agent_error(tmp_path: Path, fixtures_dir: Path) -> None:
    failure = _judge(tmp_path, "claude", fixtures_dir / "claude-code" / "failing-cmd-stream-json.jsonl", 0).failure
    assert failure.kind is FailureKind.agent_error
    assert "last: $ echo 'ModuleNotFoundError" in failure.summary
    assert "ModuleNotFoundError: No module named greet_helpers" in failure.evidence


def test_a_failed_commands_output_reaches_the_retry_prompt(tmp_path: Path) -> None:
    item = {"id": "item_1", "type": "command_execution", "command": "/bin/bash -lc 'git commit -qm x'",
            "aggregated_output": "fatal: Unable to create '/r/.git/worktrees/t1/index.lock': Read-only file system\n",
            "exit_code": 128, "status": "failed"}
    events = [{"type": "item.completed", "item": item},
              {"type": "item.completed", "item": {"id": "item_2", "type": "agent_message", "text": "Done."}},
              {"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 1}}]
    log = tmp_path / "output.jsonl"
    log.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    failure = _judge(tmp_path, "codex", log, 0).failure
    assert failure.kind is FailureKind.agent_error
    assert "(exit 128)" in failure.summary
    prompt = TemplateRetryPrompter().retry_prompt(_task(), failure, 2, 3)
    assert "Read-only file system" in prompt


def test_a_commit_after_a_failed_command_is_work(tmp_path: Path, fixtures_dir: Path) -> None:
    text = (fixtures_dir / "codex" / "failing-cmd.jsonl").read_text()
    report = parse_output("codex", text, 0)
    write_json_atomic(tmp_path / "result.json", {"phase": "agent", "exit_code": 0, "started_at": NOW.isoformat(),
                                                 "ended_at": NOW.isoformat(), "report": report.model_dump()})
    result = load_result(tmp_path / "result.json")
    obs = Observation(liveness=Liveness.exited, worktree_exists=True, result=result, head="b" * 40, ahead=1,
                      new_commits=1)
    assert [type(a).__name__ for a in decide(_task(), obs, Policy(), NOW).actions] == ["ToChecking"]


@pytest.mark.parametrize(("parser", "fixture"), [
    ("claude", "claude-code/prompttoolong-stream-json.jsonl"),
    ("codex", "codex/contextwindow.jsonl"),
])
def test_context_exhaustion_narrows_the_scope(tmp_path: Path, fixtures_dir: Path, parser: str, fixture: str) -> None:
    failure = _judge(tmp_path, parser, fixtures_dir / fixture, 1).failure
    assert failure.kind is FailureKind.max_turns  # was: api_error ("the model API failed... continue")
    assert failure.summary.startswith("ran out of context (the model's context window is full): ")
    prompt = TemplateRetryPrompter().retry_prompt(_task(), failure, 2, 3)
    assert "Narrow down" in prompt


@pytest.mark.parametrize(("parser", "fixture", "kind", "start"), [
    ("claude", "claude-code/maxturns-stream-json.jsonl", FailureKind.max_turns, "ran out of turns: "),
    ("claude", "claude-code/apierror400-stream-json.jsonl", FailureKind.api_error,
     "the model API failed: API Error: 400"),
    ("codex", "codex/apierror500.jsonl", FailureKind.api_error, "the model API failed: We’re currently experiencing"),
])
def test_the_summary_names_the_cause(tmp_path: Path, fixtures_dir: Path, parser: str, fixture: str,
                                     kind: FailureKind, start: str) -> None:
    failure = _judge(tmp_path, parser, fixtures_dir / fixture, 1).failure
    assert failure.kind is kind
    assert failure.summary.startswith(start), failure.summary
    assert "exited with code" not in failure.summary
