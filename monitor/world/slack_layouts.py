"""Block Kit layouts of outbox messages for Slack: what the human sees, within Slack's limits.

Why this module exists: the notifiers in :mod:`monitor.world.slack` deal with delivery (threads, retries,
Slack's error codes); how a "ready", "failed", "waiting", "stuck" or "discovered" event looks is a separate
concern that changes for other reasons. Everything here is pure: an :class:`OutboxMessage` in, Slack's
``text`` and ``blocks`` out. Text from outside (titles, CI logs, reports) is escaped, so it is shown as data
and can never ping a channel, and every block is cut to Slack's size limits so a long log never makes Slack
refuse the message.

- :func:`blocks_for` and :func:`fallback_text`: a message in a thread (or a webhook's channel).
- :func:`parent_for` and :func:`status_line`: the task's parent message, kept current by ``chat.update``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from registry.models import OutboxMessage

SECTION_CHARS = 3000  # Slack: a section's text
HEADER_CHARS = 150  # Slack: a header's plain text
MAX_BLOCKS = 50  # Slack: blocks per message
URL = re.compile(r"^https?://[^\s<>|]+$")  # a link Slack can render (no spaces or mrkdwn delimiters)


def escape(text: str) -> str:
    """Slack's mrkdwn control characters: unescaped, a ``<!channel>`` in a CI log would ping everyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(url: Any, label: str) -> str:
    url = str(url or "")
    return f"<{url}|{escape(label)}>" if URL.match(url) else escape(label)


def _code(text: str, room: int = SECTION_CHARS - 200) -> str:
    """A code block holding the end of ``text`` (where errors are); backtick fences inside cannot close it."""
    body = escape(text.replace("```", "'''")).strip("\n")
    if len(body) > room:
        body = "…" + body[-room:]
    return f"```{body or ' '}```"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit(text, SECTION_CHARS)}}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _fit(text, HEADER_CHARS), "emoji": True}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _fit(text, SECTION_CHARS)}]}


def _title(data: dict[str, Any]) -> str:
    number = data.get("pr_number")
    label = f"#{number} {data.get('title', '')}" if number else str(data.get("title", ""))
    return f"*{_link(data.get('pr_url'), label)}*  `{escape(str(data.get('task_id', '')))}`"


def _good(result: str) -> bool:
    match = re.fullmatch(r"(\d+)/(\d+)", result)
    return result in ("ok", "pass", "passed", "success", "n/a") or bool(match and match[1] >= match[2])


def _commands(data: dict[str, Any]) -> str:
    return _code("\n".join(str(c) for c in data.get("commands", [])))


def _ready(data: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [_header("✅ PR ready for review"), _section(f"{_title(data)}\nbranch `{escape(data['branch'])}`")]
    if data.get("summary"):
        blocks.append(_section(escape(str(data["summary"]))))
    dod = [f"{'✅' if _good(str(d['result'])) else '▫️'} {escape(str(d['item']))}: {escape(str(d['result']))}"
           for d in data.get("dod", [])]
    blocks.append(_section("*Definition of done*\n" + ("\n".join(dod) or "all checks passed")))
    reviews = [f"• {escape(str(r['reviewer']))}: {escape(str(r['verdict']))}" for r in data.get("reviews", [])]
    if reviews:
        blocks.append(_section("*Reviews*\n" + "\n".join(reviews)))
    blocks.append(_context(
        f"{data.get('attempts', 0)} attempt(s) · {escape(str(data.get('elapsed', '')))} since spawn · "
        f"{int(data.get('tokens', 0)):,} tokens · "
        + (f"${float(data.get('cost_usd', 0.0)):.2f}" if data.get("cost_known", True) else "cost unknown")))
    blocks.append(_section(f"*Review*\n`{escape(str(data.get('review_command', '')))}`\n{_commands(data)}"))
    return blocks


def _failed(data: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [_header("🆘 Needs manual help"), _section(f"{_title(data)}\n{escape(str(data.get('reason', '')))}")]
    lines = []
    for item in data.get("history", []):
        kind = f"`{escape(str(item['kind']))}` " if item.get("kind") else ""
        line = f"• attempt {item['attempt']}: {kind}{escape(str(item['summary']))}"
        if item.get("evidence"):
            line += f" — _{escape(str(item['evidence']))}_"
        lines.append(line)
    blocks.append(_section("*Failure history*\n" + "\n".join(lines[-20:])))
    if data.get("evidence"):
        blocks.append(_section("*Last evidence*\n" + _code(str(data["evidence"]))))
    blocks.append(_section("*Next steps*\n" + _commands(data)))
    return blocks


def _waiting(data: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [_header("⏸ Waiting for you"), _section(f"{_title(data)}\n{escape(str(data.get('summary', '')))}")]
    if data.get("evidence"):
        blocks.append(_section(_code(str(data["evidence"]))))
    blocks.append(_context("The monitor carries on by itself once this is done: "
                           f"`swarm status {escape(str(data.get('task_id', '')))}`"))
    return blocks


def _stuck(data: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [_header("⏳ Stuck agent"), _section(
        f"{_title(data)}\nattempt {data.get('attempt')}: no output and no commit for {escape(str(data.get('idle')))}")]
    if data.get("evidence"):
        blocks.append(_section("*Last output*\n" + _code(str(data["evidence"]))))
    blocks.append(_section("*Next steps*\n" + _commands(data)))
    return blocks


def _discovered(data: dict[str, Any]) -> list[dict[str, Any]]:
    source = _link(data.get("source_url"), str(data.get("source_url") or "an outside report"))
    blocks = [_header("🆕 Discovered task"), _section(f"{_title(data)}\nfrom {source}")]
    if data.get("summary"):  # the report's own words: shown as data, never as formatting
        blocks.append(_section(_code(str(data["summary"]))))
    blocks.append(_context(f"{escape(str(data.get('status', '')))} · agent {escape(str(data.get('agent', '')))} · "
                           f"kind {escape(str(data.get('kind', '')))}\n{_commands(data)}"))
    return blocks


_LAYOUTS: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "ready": _ready, "failed": _failed, "waiting": _waiting, "stuck": _stuck, "discovered": _discovered,
}


def blocks_for(message: OutboxMessage) -> list[dict[str, Any]]:
    """The Block Kit layout of an outbox message; a message without ``data`` shows its text."""
    layout = _LAYOUTS.get(str(message.data.get("event", "")))
    try:
        blocks = layout(message.data) if layout else []
    except (KeyError, TypeError, ValueError):  # data from an older or newer swarm: the text says it all
        blocks = []
    return (blocks or [_section(escape(message.text))])[:MAX_BLOCKS]


def fallback_text(message: OutboxMessage) -> str:
    """Slack's ``text``: shown in notifications and by clients that do not render blocks."""
    return _fit(escape(message.text), SECTION_CHARS)


def status_line(message: OutboxMessage) -> str:
    """The parent message's one line: the task's latest event (at most 300 characters)."""
    data = message.data
    event = str(data.get("event", message.kind))
    if event == "ready":
        number = data.get("pr_number")
        what = f"✅ ready for review{f' (PR #{number})' if number else ''}"
    elif event == "failed":
        what = f"🆘 needs manual help — {data.get('reason', '')}"
    elif event == "waiting":
        what = f"⏸ waiting for you — {data.get('summary', '')}"
    elif event == "stuck":
        what = f"⏳ stuck — no output for {data.get('idle', '?')} (attempt {data.get('attempt', '?')})"
    elif event == "discovered":
        what = f"🆕 {data.get('status', 'queued')} — discovered from {data.get('source_url') or 'an outside report'}"
    else:
        what = f"{data.get('status', message.kind)}"
    spend = str(data.get("spend") or "")
    return _fit(f"Status: {what}" + (f" · spent {spend}" if spend else ""), 300)


def parent_for(message: OutboxMessage) -> tuple[str, list[dict[str, Any]]]:
    """The task's parent message: its title and the current status line (text, blocks)."""
    data = message.data
    title = str(data.get("title") or message.task_id)
    line = status_line(message)
    stamp = int(message.created_at.timestamp())
    when = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{message.created_at:%Y-%m-%d %H:%M} UTC>"
    head = _title(data) if data.get("task_id") else f"*{escape(title)}*  `{escape(message.task_id)}`"
    text = escape(f"{title} [{message.task_id}] — {line}")
    return text, [_section(f"{head}\n*{escape(line)}*"), _context(f"swarm task · updated {when}")]
