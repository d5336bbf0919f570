"""Readable evidence from the recorded agent outputs."""

from __future__ import annotations

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
