"""Agent output as a person (or the next agent) would read it.

Claude Code and Codex print one JSON event per line; the tail of that stream is mostly metadata (the
init event alone lists every tool). For evidence, each event becomes one short readable line: what the
agent said, which tools it ran, what they returned, how it ended. Plain lines pass through unchanged.
"""

from __future__ import annotations

import json
from typing import Any

OUTPUT_LINES_FAILED = 20  # a failed command's output is the evidence a retry needs
OUTPUT_LINES_OK = 3


def _short(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _output(text: object, *, failed: bool) -> list[str]:
    """A command's output, indented: its last lines when it failed (the real error), else a short tail."""
    lines = [line.rstrip() for line in str(text or "").splitlines() if line.strip()]
    keep = lines[-OUTPUT_LINES_FAILED:] if failed else lines[-OUTPUT_LINES_OK:]
    cut = [f"  … {len(lines) - len(keep)} line(s) before"] if len(keep) < len(lines) else []
    return cut + [f"  {line if len(line) <= 300 else line[:299] + '…'}" for line in keep]


def _claude_blocks(event: dict[str, Any]) -> list[str]:
    message = event.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    lines = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            lines.append(f"agent: {_short(block.get('text', ''))}")
        elif kind == "tool_use":
            lines.append(f"tool {block.get('name')}: {_short(json.dumps(block.get('input', {})), 200)}")
        elif kind == "tool_result" and block.get("is_error") is True:  # the real error: keep its lines
            content = block.get("content", "")
            if isinstance(content, list):
                content = "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            lines += ["  → failed:", *_output(content, failed=True)]
        elif kind == "tool_result":
            lines.append(f"  → {_short(block.get('content', ''), 200)}")
    return lines


def _event_lines(event: dict[str, Any]) -> list[str]:
    kind = event.get("type")
    if kind in ("assistant", "user"):
        return _claude_blocks(event)
    if kind == "result":
        state = "error" if event.get("is_error") else event.get("subtype", "done")
        return [f"result ({state}, {event.get('num_turns', '?')} turns): {_short(event.get('result', ''))}"]
    if kind == "system":
        return [] if event.get("subtype") == "init" else [f"system {event.get('subtype')}: {_short(event, 200)}"]
    item = event.get("item")
    if isinstance(item, dict) and kind == "item.completed":
        if item.get("type") == "command_execution":
            return [f"$ {_short(item.get('command', ''), 200)} (exit {item.get('exit_code')})",
                    *_output(item.get("aggregated_output"), failed=item.get("exit_code") not in (0, None))]
        if item.get("type") == "agent_message":
            return [f"agent: {_short(item.get('text', ''))}"]
        if item.get("type") == "file_change":
            return [f"changed files: {_short(item.get('changes', ''), 200)}"]
        return [f"{item.get('type')}: {_short(item.get('message', item), 200)}"]
    if kind in ("turn.failed", "error"):
        return [f"{kind}: {_short(event.get('error', event.get('message', '')), 300)}"]
    if kind in ("thread.started", "turn.started", "turn.completed", "item.started", "stream_event"):
        return []
    return [_short(event, 200)]


def readable(text: str, max_lines: int = 60) -> str:
    """The last ``max_lines`` readable lines of an agent's output."""
    lines: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("{"):
            try:
                event = json.loads(stripped)
            except ValueError:
                event = None
            if isinstance(event, dict):
                lines.extend(_event_lines(event))
                continue
        if stripped:
            lines.append(raw.rstrip())
    return "\n".join(lines[-max_lines:])
