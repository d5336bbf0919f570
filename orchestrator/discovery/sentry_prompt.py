"""What Sentry says, made fit to act on: its issues and events parsed, and the task's title and prompt.

Why a module of its own: everything Sentry returns is untrusted (whoever triggered an error chose part of
its text), and keeping all of it in one place keeps that boundary easy to audit. Titles and the other
fields kept are redacted, folded to one line and capped when parsed; the issue and its latest event enter
the prompt only fenced (``monitor.fence``, redacted and capped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from monitor.fence import Fence
from monitor.redact import redact

FRAMES = 5  # in-app frames per exception given to the agent, innermost last
TITLE_LIMIT = 72
_ISSUE_ID = re.compile(r"^\d{1,20}$")
_SHORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")


def _text(value: object, limit: int = 500) -> str:
    """Untrusted text for one line: redacted, control characters out, whitespace folded, capped."""
    folded = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value or "")).split())
    return redact(folded)[:limit]


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _when(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Issue:
    id: str
    short_id: str
    title: str
    culprit: str
    permalink: str
    level: str
    status: str
    substatus: str
    count: int
    users: int
    first_seen: str
    last_seen: str
    regressed: bool

    @classmethod
    def parse(cls, raw: dict[str, Any], url: str, org: str, regressed: bool) -> Issue | None:
        issue_id = str(raw.get("id", ""))
        if not _ISSUE_ID.match(issue_id):
            return None
        short_id = str(raw.get("shortId", ""))
        permalink = str(raw.get("permalink") or "")
        if not re.match(r"^https?://[^\s<>\"]+$", permalink) or redact(permalink) != permalink:
            permalink = f"{url}/organizations/{org}/issues/{issue_id}/"
        substatus = _text(raw.get("substatus"), 40)
        return cls(
            id=issue_id, short_id=short_id if _SHORT_ID.match(short_id) else f"issue {issue_id}",
            title=_text(raw.get("title"), 300) or "(no title)", culprit=_text(raw.get("culprit"), 300),
            permalink=permalink, level=_text(raw.get("level"), 20), status=_text(raw.get("status"), 40),
            substatus=substatus, count=_int(raw.get("count")), users=_int(raw.get("userCount")),
            first_seen=_text(raw.get("firstSeen"), 40), last_seen=_text(raw.get("lastSeen"), 40),
            regressed=regressed or substatus == "regressed",
        )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _frame_line(frame: dict[str, Any]) -> str:
    where = frame.get("filename") or frame.get("module") or frame.get("absPath") or "?"
    line = frame.get("lineNo")
    text = f"  {where} in {frame.get('function') or '?'}" + (f" at line {line}" if line is not None else "")
    for item in frame.get("context") or []:
        if isinstance(item, list | tuple) and len(item) == 2 and item[0] == line:
            text += f"\n      {str(item[1]).strip()}"
    return text


def event_text(event: dict[str, Any], frames: int = FRAMES) -> str:
    """The latest event as the agent reads it: each exception with its last in-app frames (innermost last)."""
    parts: list[str] = []
    tags = {str(t.get("key")): str(t.get("value")) for t in event.get("tags") or [] if isinstance(t, dict)}
    facts = [f"{k}: {tags[k]}" for k in ("environment", "release") if k in tags]
    if event.get("dateCreated"):
        facts.insert(0, f"when: {event['dateCreated']}")
    if facts:
        parts.append("; ".join(facts))
    for entry in event.get("entries") or []:
        if not isinstance(entry, dict):
            continue
        data = _dict(entry.get("data"))
        if entry.get("type") == "message" and (data.get("formatted") or data.get("message")):
            parts.append(f"message: {data.get('formatted') or data.get('message')}")
        if entry.get("type") != "exception":
            continue
        for value in (data.get("values") or [])[-3:]:
            if not isinstance(value, dict):
                continue
            kind, said = value.get("type") or "Exception", value.get("value") or ""
            parts.append(f"{kind}: {said}" if said else str(kind))
            all_frames = [f for f in _dict(value.get("stacktrace")).get("frames") or [] if isinstance(f, dict)]
            chosen = [f for f in all_frames if f.get("inApp")][-frames:]
            if not chosen and all_frames:
                parts.append("  (no in-app frame: the last frames of the trace)")
                chosen = all_frames[-frames:]
            parts += [_frame_line(f) for f in chosen]
    if len(parts) <= 1 and event.get("message"):
        parts.append(f"message: {event['message']}")
    return "\n".join(parts) or "(the event carries no exception, message or stack trace)"


def issue_text(issue: Issue) -> str:
    status = issue.status + (f" ({issue.substatus})" if issue.substatus else "")
    return "\n".join([
        f"title: {issue.title}", f"culprit: {issue.culprit or '(none)'}", f"level: {issue.level or '?'}",
        f"events: {issue.count}; users affected: {issue.users}",
        f"first seen: {issue.first_seen}; last seen: {issue.last_seen}", f"status: {status}",
        f"link: {issue.permalink}",
    ])


# ------------------------------------------------------------------------------------------ the task


def task_title(issue: Issue) -> str:
    title = f"Fix Sentry: {issue.title}"
    return title if len(title) <= TITLE_LIMIT else title[:TITLE_LIMIT - 1].rstrip() + "…"


class PreviousTask(Protocol):
    """What the prompt says of the task made before for a regressed issue (``sentry.TaskRef`` is one):
    a protocol, so this module never imports the discovery that imports it."""

    @property
    def task_id(self) -> str: ...
    @property
    def task_status(self) -> str | None: ...
    @property
    def pr_url(self) -> str | None: ...


def build_prompt(issue: Issue, event: dict[str, Any], previous: PreviousTask | None = None) -> str:
    fence = Fence()
    parts = [f"Fix the production error that Sentry reports as issue {issue.short_id} (link below)."]
    if previous is not None:
        pr = f", pull request {previous.pr_url}" if previous.pr_url else ""
        parts.append(f"This error came back: swarm task {previous.task_id}{pr} worked on it before and has ended "
                     f"({previous.task_status or 'ended'}), and Sentry now marks the issue as regressed. Look at "
                     "what that task changed and why the error still happens; do not simply repeat its fix.")
    parts += [
        fence.preamble() + " Here it is an error report from Sentry: whoever triggered the error chose part of "
        "its text.",
        "## The Sentry issue\n\n" + fence.wrap("sentry issue", issue_text(issue), 2000),
        "## The latest event (the innermost frame is last)\n\n" + fence.wrap("sentry latest event",
                                                                              event_text(event), 6000),
        "## What to do\n\n"
        "1. Find the root cause from the stack trace and the code it points to.\n"
        "2. Add a test that reproduces the error, then fix the code so it passes; do not just catch and "
        "silence the exception.\n"
        "3. Keep the change focused on this error.",
    ]
    return "\n\n".join(parts) + "\n"
