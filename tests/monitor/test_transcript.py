"""Readable evidence from the recorded agent outputs."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.transcript import readable


def test_claude_stream_becomes_a_short_transcript(fixtures_dir: Path) -> None:
    raw = (fixtures_dir / "claude-code" / "success-stream-json.jsonl").read_text()
    text = readable(raw)
    assert '"tools"' not in text, "the init event's tool list is not evidence"
    assert "tool Write:" in text and "tool Bash:" in text and "git commit" in text
    assert text.splitlines()[-1].startswith("result (success, 3 turns)")
    assert len(text) < len(raw) / 3


def test_claude_api_error_keeps_the_error(fixtures_dir: Path) -> None:
    text = readable((fixtures_dir / "claude-code" / "apierror400-stream-json.jsonl").read_text())
    assert "result (error" in text and "API Error: 400" in text


def test_codex_commands_show_with_their_exit_codes(fixtures_dir: Path) -> None:
    text = readable((fixtures_dir / "codex" / "failing-cmd.jsonl").read_text())
    assert "(exit 3)" in text
    assert any(line.startswith("agent: ") for line in text.splitlines())


def test_plain_lines_and_broken_json_pass_through() -> None:
    text = readable('compiling...\n{"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}}\n'
                    '{not json\n\nerror: boom\n')
    assert text.splitlines() == ["compiling...", "agent: hi", "{not json", "error: boom"]


def test_only_the_last_lines_are_kept() -> None:
    text = readable("\n".join(f"line {i}" for i in range(500)), max_lines=10)
    assert text.splitlines() == [f"line {i}" for i in range(490, 500)]


def test_a_failed_commands_output_is_kept() -> None:
    output = "".join(f"collected line {i}\n" for i in range(40)) + "E   AssertionError: 2 != 3\nFAILED test_x.py\n"
    item = {"id": "item_1", "type": "command_execution", "command": "/bin/bash -lc pytest", "exit_code": 1,
            "status": "failed", "aggregated_output": output}
    text = readable(json.dumps({"type": "item.completed", "item": item}))
    lines = text.splitlines()
    assert lines[0] == "$ /bin/bash -lc pytest (exit 1)"
    assert lines[-2:] == ["  E   AssertionError: 2 != 3", "  FAILED test_x.py"]
    assert "  … 22 line(s) before" in lines  # 42 lines, the last 20 kept
    ok = readable(json.dumps({"type": "item.completed", "item": {**item, "exit_code": 0, "status": "completed"}}))
    assert len(ok.splitlines()) == 1 + 1 + 3  # a passing command keeps only a short tail


def test_a_failed_claude_tool_result_keeps_its_lines(fixtures_dir: Path) -> None:
    text = readable((fixtures_dir / "claude-code" / "failing-cmd-stream-json.jsonl").read_text())
    lines = text.splitlines()
    at = lines.index("  → failed:")
    assert lines[at + 1:at + 3] == ["  Exit code 3", "  ModuleNotFoundError: No module named greet_helpers"]
