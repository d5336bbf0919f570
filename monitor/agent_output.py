"""What each coding-agent CLI printed on exit, read into an :class:`AgentReport`.

The monitor judges a run without spending model tokens, so it reads the CLI's own output: real recordings
(tests/fixtures) show exit code 0 proves nothing and ``subtype=success`` can carry ``is_error=true``.
Parsers are lenient: stray text and garbage never raise."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict

FINAL_TEXT_LIMIT = 2000
ERROR_LIMIT = 300
FAILED_OUTPUT_LIMIT = 1500
GEMINI_TURN_LIMIT_EXIT = 53

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Signs that a failure came from the model API or its transport, not from the agent's own work.
_API_FAILURE = re.compile(
    r"reconnect|stream|\bhttps?\b|\bstatus\b|\b[45]\d\d\b|server_error|rate.?limit|overloaded|"
    r"high demand|timed? ?out|connection|unavailable|quota|\bapi\b|\{\s*\"error\"",
    re.IGNORECASE,
)
# The model's context window is full: Claude Code's "Prompt is too long", Codex's "ran out of room".
_CONTEXT_FULL = re.compile(
    r"prompt is too long|prompt_too_long|context window|context_length_exceeded|maximum context length",
    re.IGNORECASE,
)


class AgentReport(BaseModel):
    """What one finished agent run reported about itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    parser: str
    tool_calls: int = 0
    failed_commands: int = 0
    is_error: bool = False
    subtype: str | None = None
    num_turns: int | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # part of input_tokens read from the provider's cache (priced lower)
    api_error: bool = False
    max_turns: bool = False
    context_exhausted: bool = False  # the model's context window was full (narrow the scope, not "continue")
    model: str = ""  # the model the CLI reported using, when it says
    failed_command: str = ""  # the last failed command and the end of its output, for the evidence
    final_text: str = ""
    error: str = ""
    has_result: bool = False


def _float(value: object) -> float:
    try:
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
    except OverflowError:  # a huge JSON integer
        return 0.0
    return number if math.isfinite(number) else 0.0


def _int(value: object) -> int:
    return int(_float(value))


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _tail(text: str) -> str:
    return text[-FINAL_TEXT_LIMIT:]


def _one_line(text: object) -> str:
    flat = " ".join(_ANSI.sub("", str(text)).split())
    return flat if len(flat) <= ERROR_LIMIT else flat[: ERROR_LIMIT - 1] + "…"


def _last_line(text: str) -> str:
    lines = [line for line in _ANSI.sub("", text).splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _loads(text: str) -> object:
    """The JSON document at the start of ``text`` (trailing text ignored), or None."""
    try:
        return json.JSONDecoder().raw_decode(text.strip())[0]
    except (ValueError, RecursionError):  # RecursionError: absurdly nested garbage
        return None


def _events(text: str) -> Iterator[dict[str, Any]]:
    """JSON objects in ``text``: one per line (arrays are flattened), or the whole text as one document."""
    found = False
    for line in text.splitlines():
        value = _loads(line) if line.lstrip().startswith(("{", "[")) else None
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                found = True
                yield item
    if not found:
        whole = _loads(text)
        yield from (item for item in (whole if isinstance(whole, list) else [whole]) if isinstance(item, dict))


def _stray_lines(text: str) -> str:
    """The text with every JSON line removed (what the CLI printed besides its event stream)."""
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith(("{", "[")))


def _claude_call(block: dict[str, Any]) -> str:
    """A tool call as one line: ``$ command`` for Bash, else the tool's name and input."""
    arguments = _dict(block.get("input"))
    if block.get("name") == "Bash" and isinstance(arguments.get("command"), str):
        return f"$ {_one_line(arguments['command'])}"
    return _one_line(f"{block.get('name')} {json.dumps(arguments)}")


def _claude_result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _parse_claude(text: str, exit_code: int) -> AgentReport:
    tool_calls = 0
    calls: dict[str, str] = {}  # tool_use id -> the call, to name a failed one
    failed = 0
    last_failed = ""
    last_text = ""
    result: dict[str, Any] | None = None
    last_retry: dict[str, Any] | None = None
    model = ""
    for event in _events(text):
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init" and isinstance(event.get("model"), str):
            model = event["model"]
        elif kind == "assistant":
            for block in _list(_dict(event.get("message")).get("content")):
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    tool_calls += 1
                    calls[str(block.get("id"))] = _claude_call(block)
                elif isinstance(block, dict) and block.get("type") == "text" and block.get("text"):
                    last_text = str(block["text"])
        elif kind == "user":
            for block in _list(_dict(event.get("message")).get("content")):
                if isinstance(block, dict) and block.get("type") == "tool_result" and block.get("is_error") is True:
                    failed += 1
                    output = _claude_result_text(block).rstrip()[-FAILED_OUTPUT_LIMIT:]
                    last_failed = f"{calls.get(str(block.get('tool_use_id')), '(a tool call)')}\n{output}".rstrip()
        elif kind == "system" and event.get("subtype") == "api_retry":
            last_retry = event
        elif kind == "result":
            result = event

    if result is None:
        retry = last_retry or {}
        error = f"API failing, still retrying (attempt {retry.get('attempt')}/{retry.get('max_retries')}): "
        error += f"HTTP {retry.get('error_status')} {retry.get('error') or ''}"
        if last_retry is None:
            error = _last_line(_stray_lines(text)) or f"exited with code {exit_code} without a result record"
            error = error if exit_code != 0 else ""
        return AgentReport(
            parser="claude",
            model=model,
            tool_calls=tool_calls,
            failed_commands=failed,
            failed_command=last_failed,
            is_error=exit_code != 0,
            api_error=last_retry is not None,
            final_text=_tail(last_text),
            error=_one_line(error),
        )

    usage = _dict(result.get("usage"))
    turns = result.get("num_turns")
    result_text = str(result["result"]) if isinstance(result.get("result"), str) else ""
    subtype = str(result["subtype"]) if isinstance(result.get("subtype"), str) else None
    is_error = bool(result.get("is_error")) or (subtype or "").startswith("error")
    api_status = result.get("api_error_status")
    api_error = api_status is not None or result.get("terminal_reason") == "api_error"
    api_error = api_error or result_text.startswith("API Error")
    errors = result.get("errors")
    detail = "; ".join(map(str, errors)) if isinstance(errors, list) else ""
    fallback = f"API error (HTTP {api_status})" if api_error else (subtype or "error")
    error = ((result_text if api_error else detail) or detail or result_text or fallback) if is_error else ""
    context_full = result.get("terminal_reason") == "prompt_too_long" or (
        is_error and bool(_CONTEXT_FULL.match(result_text))
    )
    return AgentReport(
        parser="claude",
        model=model,
        tool_calls=tool_calls,
        failed_commands=failed,
        failed_command=last_failed,
        is_error=is_error,
        subtype=subtype,
        num_turns=turns if isinstance(turns, int) and not isinstance(turns, bool) else None,
        cost_usd=_float(result.get("total_cost_usd")),
        input_tokens=_int(usage.get("input_tokens"))
        + _int(usage.get("cache_creation_input_tokens"))
        + _int(usage.get("cache_read_input_tokens")),
        cached_input_tokens=_int(usage.get("cache_read_input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        api_error=api_error and not context_full,
        context_exhausted=context_full,
        max_turns=subtype == "error_max_turns" or result.get("terminal_reason") == "max_turns",
        final_text=_tail(result_text or last_text),
        error=_one_line(error),
        has_result=True,
    )


def _codex_message(raw: object) -> str:
    """An error message; codex often wraps the API's JSON error body in it, so unwrap that."""
    text = str(raw or "")
    inner = _dict(_dict(_loads(text)).get("error"))
    if inner.get("message"):
        kind = f" ({inner['type']})" if inner.get("type") else ""
        return f"{inner['message']}{kind}"
    return text


def _failed_command(item: dict[str, Any]) -> str:
    """``$ command (exit N)`` and the end of what it printed: the real error a retry needs to see."""
    command = _one_line(item.get("command", ""))
    output = str(item.get("aggregated_output") or "").rstrip()
    code = item.get("exit_code")
    head = f"$ {command} (exit {code if isinstance(code, int) else item.get('status', '?')})"
    return f"{head}\n{output[-FAILED_OUTPUT_LIMIT:]}" if output else head


def _parse_codex(text: str, exit_code: int) -> AgentReport:
    tools: set[str] = set()  # item ids (started and completed events describe the same item)
    failed: set[str] = set()
    input_tokens = output_tokens = cached = 0
    last_failed = ""
    last_message = ""
    stream_errors: list[str] = []
    turn_failed: str | None = None
    has_result = False
    for position, event in enumerate(_events(text)):
        kind = event.get("type")
        if kind in ("item.started", "item.completed", "item.updated"):
            item = _dict(event.get("item"))
            item_type = item.get("type")
            item_id = item.get("id") if isinstance(item.get("id"), str) else None
            if item_id is None and kind != "item.completed":
                continue  # an anonymous item is counted once, when it completes
            key = item_id or f"#{position}"
            if item_type in ("command_execution", "file_change"):
                tools.add(key)
            if kind != "item.completed":
                continue
            if item_type == "command_execution":
                code = item.get("exit_code")
                if (isinstance(code, int) and code != 0) or item.get("status") == "failed":
                    failed.add(key)
                    last_failed = _failed_command(item)
            elif item_type == "agent_message" and isinstance(item.get("text"), str):
                last_message = item["text"]
        elif kind == "error":
            stream_errors.append(_codex_message(event.get("message")))
        elif kind == "turn.completed":
            has_result = True
            usage = _dict(event.get("usage"))
            input_tokens += _int(usage.get("input_tokens"))
            cached += _int(usage.get("cached_input_tokens"))
            output_tokens += _int(usage.get("output_tokens")) + _int(usage.get("reasoning_output_tokens"))
        elif kind == "turn.failed":
            has_result = True
            turn_failed = _codex_message(_dict(event.get("error")).get("message")) or "turn failed"

    failure = turn_failed is not None or (not has_result and exit_code != 0)
    error = turn_failed or (stream_errors[-1] if stream_errors else _last_line(_stray_lines(text)))
    error = (error or f"exited with code {exit_code} without finishing a turn") if failure else ""
    context_full = failure and bool(_CONTEXT_FULL.search(error))
    api_error = failure and (bool(stream_errors) or bool(turn_failed and _API_FAILURE.search(turn_failed)))
    return AgentReport(
        parser="codex",
        tool_calls=len(tools),
        failed_commands=len(failed),
        failed_command=last_failed,
        is_error=failure,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output_tokens,
        api_error=api_error and not context_full,
        context_exhausted=context_full,
        final_text=_tail(last_message),
        error=_one_line(error),
        has_result=has_result,
    )


def _gemini_payload(text: str) -> dict[str, Any] | None:
    """The CLI's JSON object: the whole text, the last line that parses, or a block starting at a line."""
    lines = text.splitlines()
    candidates = [text, *[line for line in reversed(lines) if line.lstrip().startswith("{")][:50]]
    candidates += ["\n".join(lines[i:]) for i, line in enumerate(lines) if line.startswith("{")][:20]
    for candidate in candidates:
        value = _loads(candidate)
        if isinstance(value, dict):
            return value
    return None


def _parse_gemini(text: str, exit_code: int) -> AgentReport:
    payload = _gemini_payload(text) or {}
    stats = _dict(payload.get("stats"))
    input_tokens = _int(stats.get("inputTokens"))
    output_tokens = _int(stats.get("outputTokens"))
    for model in _dict(stats.get("models")).values():
        tokens = _dict(_dict(model).get("tokens"))
        input_tokens += _int(tokens.get("prompt"))
        output_tokens += _int(tokens.get("candidates")) + _int(tokens.get("thoughts"))
    raw_error = payload.get("error")
    is_error = exit_code != 0 or raw_error is not None
    error = ""
    if raw_error is not None:
        error = str(_dict(raw_error).get("message") or raw_error)
    elif is_error:
        error = _last_line(text) or f"exited with code {exit_code}"
    response = payload.get("response")
    return AgentReport(
        parser="gemini",
        tool_calls=_int(_dict(stats.get("tools")).get("totalCalls")),
        is_error=is_error,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        api_error=bool(raw_error is not None and _API_FAILURE.search(error)),
        max_turns=exit_code == GEMINI_TURN_LIMIT_EXIT,
        final_text=_tail(response if isinstance(response, str) else ("" if payload else text)),
        error=_one_line(error),
        has_result=bool(payload),
    )


def _parse_unstructured(parser: str, text: str, exit_code: int) -> AgentReport:
    failed = exit_code != 0
    return AgentReport(
        parser=parser,
        is_error=failed,
        final_text=_tail(text),
        error=_one_line(_last_line(text) or f"exited with code {exit_code}") if failed else "",
    )


_PARSERS: dict[str, Callable[[str, int], AgentReport]] = {
    "claude": _parse_claude,
    "codex": _parse_codex,
    "gemini": _parse_gemini,
    "aider": partial(_parse_unstructured, "aider"),
    "plain": partial(_parse_unstructured, "plain"),
}


def parse_output(parser: str, text: str, exit_code: int) -> AgentReport:
    """Read what an agent CLI printed; ``parser`` names the format. Never raises on malformed output."""
    if parser not in _PARSERS:
        raise ValueError(f"unknown agent output parser {parser!r} (known: {', '.join(_PARSERS)})")
    return _PARSERS[parser](text, exit_code)
