"""Sentry discovery: production errors become bug-fix tasks, at most one per Sentry issue.

Why: the errors users hit are the most valuable work for the fleet, and copying a stack trace from
Sentry into ``swarm spawn`` by hand is exactly the toil swarm removes. ``swarm discover sentry`` (and the
monitor every ``[sentry] discover_every``) lists the project's unresolved issues over Sentry's REST API
and turns each one that matters into a task whose prompt carries the latest event's stack trace.

How, in one run:

1. ``GET /api/0/projects/{org}/{project}/`` resolves the project (slug → numeric id, which the issue
   list needs) and fails early with a clear message on a wrong token, org or project.
2. ``GET /api/0/organizations/{org}/issues/`` twice: new issues (``is:unresolved firstSeen:-24h`` +
   ``[sentry] query``) and regressed ones (``is:unresolved is:regressed``: regressions count whatever
   their age). Pages follow the ``Link`` header's ``rel="next"`` cursor until ``results="false"``, at
   most ``MAX_PAGES`` pages per list. An issue qualifies with ``count >= min_events`` **or**
   ``userCount >= min_users``; Sentry's search cannot say "or" across the two, so that filter is ours.
3. For each qualifying issue without a task yet: ``GET .../issues/{id}/events/latest/`` and its last
   in-app frames. All of these are fetched before any task is created, so a Sentry failure (401, 403,
   429, 5xx, timeout, bad JSON) stops the run with a ``SentryError`` and nothing half-made; a failure
   that concerns one issue only (its event is gone, a 5xx after retries) skips that issue, with the
   reason in the report.
4. At most ``max_new_tasks`` tasks are spawned; each is recorded in ``.swarm/discovered.json`` right
   after ``spawn`` returns (atomic write). A crash between the two is repaired by the next run, which
   adopts the task whose links carry the issue's permalink instead of spawning a second one.

Dedupe and regressions: ``discovered.json`` maps the Sentry issue id to the tasks made for it and is
kept when tasks end or are archived, so an issue gets one task, ever — unless it **regresses**: its
latest task has ended (merged, failed, cancelled, or gone from the registry), Sentry marks the issue
regressed (resolved, then new events: the ``is:regressed`` list or ``substatus: "regressed"``), and its
``lastSeen`` is later than when that task ended. The new task's prompt and links name the old task and
its pull request. A task made *for* a regression stays the answer to it until the issue has been seen
out of the regressed state (not regressed in a list, or absent from a complete regressed list): a fix
that is merged but not deployed yet keeps receiving events and must not breed a second task.

Secrets: the token travels only in the ``Authorization: Bearer`` header, never in a URL, a message or a
log line. Everything Sentry returns is untrusted: it enters the prompt only fenced (``monitor.fence``,
redacted and capped), and the title and anything else kept are redacted first.
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.agent_run import write_json_atomic
from monitor.fence import Fence
from monitor.messages import discovered_message
from monitor.redact import redact
from monitor.tick import World
from orchestrator.config import ConfigError, SentrySettings, Settings
from orchestrator.wiring import UsageError
from registry.archive import archived
from registry.models import Status, Task

log = logging.getLogger(__name__)

MAX_PAGES = 10  # per issue list; past it the report says so and asks for a narrower [sentry] query
PAGE_LIMIT = 100  # issues per page (Sentry's maximum)
FRAMES = 5  # in-app frames per exception given to the agent, innermost last
STATE_NAME = "discovered.json"
TITLE_LIMIT = 72
_ISSUE_ID = re.compile(r"^\d{1,20}$")
_SHORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")
_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[A-Za-z]+="[^"]*")*)')
_LINK_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')


class DiscoveryError(Exception):
    """Discovery cannot run: its dedupe file is damaged, or another run holds it."""


class SentryError(DiscoveryError):
    """Sentry failed or refused; the message is one line that names the fix."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


# ------------------------------------------------------------------------------------------ the client


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def next_cursor(link_header: str) -> str | None:
    """The cursor of ``rel="next"`` when it says ``results="true"``; None at the end (Sentry always sends
    both links, and the last page's next link says ``results="false"``)."""
    for match in _LINK.finditer(link_header or ""):
        params = dict(_LINK_PARAM.findall(match.group(2)))
        if params.get("rel") == "next":
            if params.get("results") != "true":
                return None
            return params.get("cursor") or None
    return None


class SentryClient:
    """The REST calls discovery needs, with bounded retries on 5xx and timeouts, and every failure turned
    into a one-line ``SentryError``. Next pages are asked for with the cursor from the ``Link`` header on
    our own URL, so the token never follows a link to another host."""

    def __init__(
        self, url: str, token: str, org: str, *, timeout: float = 15.0,
        token_env: str = "SENTRY_AUTH_TOKEN",  # noqa: S107 (the variable's name, for messages)
        retries: int = 2, backoff: float = 0.5, transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.org = org
        self.timeout = timeout
        self.token_env = token_env
        self.retries = retries
        self.backoff = backoff
        self.requests = 0
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport, follow_redirects=False,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "swarm"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SentryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _refused(self, response: httpx.Response, what: str, missing: str) -> SentryError:
        status = response.status_code
        if status == 401:
            return SentryError(f"Sentry refused the token in ${self.token_env} (401) while reading {what}: it is "
                               "wrong, expired or revoked; create a new auth token with the project:read and "
                               "event:read scopes", status=status)
        if status == 403:
            return SentryError(f"the token in ${self.token_env} may not read {what} (403): give it the "
                               f"project:read and event:read scopes and access to the organization {self.org!r}",
                               status=status)
        if status == 404:
            return SentryError(f"Sentry found no {what.removeprefix('the ')} (404): {missing}", status=status)
        if status == 429:
            wait = _retry_after(response.headers.get("retry-after"))
            after = f"retry after {wait:.0f} s" if wait is not None else "retry in a minute or more"
            return SentryError(f"Sentry's rate limit was hit while reading {what} (429): {after}; nothing was "
                               "created, the next run carries on", status=status, retry_after=wait)
        detail = ""
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(response.json().get("detail", ""))
        detail = f" ({redact(detail)[:200]})" if detail else ""
        return SentryError(f"Sentry rejected the request for {what} ({status}){detail}: check [sentry] query, "
                           "org and project in swarm.toml", status=status)

    def get(self, path: str, params: dict[str, Any], what: str, missing: str = "") -> httpx.Response:
        """GET with retries on 5xx, timeouts and lost connections; any answer but 200 is a ``SentryError``."""
        problem = SentryError(f"Sentry was not asked for {what}")
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
            self.requests += 1
            try:
                response = self._http.get(path, params=params)
            except httpx.TimeoutException:
                problem = SentryError(f"Sentry did not answer within {self.timeout:g} s while reading {what}: "
                                      "the next run tries again (raise [sentry] timeout if this repeats)")
                continue
            except httpx.TransportError as exc:
                problem = SentryError(f"cannot reach Sentry at {self.url} while reading {what} "
                                      f"({type(exc).__name__}): check [sentry] url and the network")
                continue
            if response.status_code >= 500:
                problem = SentryError(f"Sentry answered {response.status_code} {response.reason_phrase} while "
                                      f"reading {what}: a problem on Sentry's side; the next run tries again",
                                      status=response.status_code)
                continue
            if response.status_code != 200:
                raise self._refused(response, what, missing)
            return response
        raise problem

    def json(self, response: httpx.Response, what: str, kind: type[dict[str, Any]] | type[list[Any]]) -> Any:
        try:
            data = response.json()
        except ValueError:
            kind_seen = response.headers.get("content-type", "no content type")
            raise SentryError(f"Sentry answered {what} with something that is not JSON ({kind_seen}): is "
                              f"[sentry] url ({self.url}) the Sentry server, e.g. https://sentry.io?") from None
        if not isinstance(data, kind):
            raise SentryError(f"Sentry answered {what} with JSON of an unexpected shape ({type(data).__name__}, "
                              f"expected {kind.__name__}): is [sentry] url ({self.url}) the Sentry API?")
        return data

    def project(self, project: str) -> dict[str, Any]:
        what = f"the project {self.org}/{project}"
        response = self.get(f"/api/0/projects/{self.org}/{project}/", {}, what,
                            "check [sentry] org and project in swarm.toml (the slugs in the project's URL)")
        data: dict[str, Any] = self.json(response, what, dict)
        if not str(data.get("id", "")).isdigit():
            raise SentryError(f"Sentry answered {what} without a numeric id: is [sentry] url the Sentry API?")
        return data

    def issues(
        self, project_id: str, query: str, *, environment: str = "", period: str = "24h", sort: str = "freq",
        max_pages: int = MAX_PAGES,
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """Every issue the query finds, following the cursor: (issues, pages read, whether the list is complete)."""
        params: dict[str, Any] = {"project": project_id, "query": query, "statsPeriod": period, "sort": sort,
                                  "limit": PAGE_LIMIT}
        if environment:
            params["environment"] = environment
        found: list[dict[str, Any]] = []
        seen_cursors: set[str] = set()
        for page in range(1, max_pages + 1):
            what = f"the issue list ({query!r}, page {page})"
            response = self.get(f"/api/0/organizations/{self.org}/issues/", params, what,
                                "check [sentry] org in swarm.toml")
            found += [i for i in self.json(response, what, list) if isinstance(i, dict)]
            cursor = next_cursor(response.headers.get("link", ""))
            if cursor is None or cursor in seen_cursors:
                return found, page, True
            seen_cursors.add(cursor)
            params["cursor"] = cursor
        return found, max_pages, False

    def latest_event(self, issue_id: str, environment: str = "") -> dict[str, Any]:
        what = f"the latest event of issue {issue_id}"
        params = {"environment": environment} if environment else {}
        response = self.get(f"/api/0/organizations/{self.org}/issues/{issue_id}/events/latest/", params, what,
                            "the issue has no event left (deleted or past retention)")
        data: dict[str, Any] = self.json(response, what, dict)
        return data


# ------------------------------------------------------------------------------------ what Sentry says


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


# ----------------------------------------------------------------------------------------- dedupe state


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskRef(_Record):
    """One task made for an issue, with what Sentry said then and what became of the task (kept here so
    it outlives the task's archiving)."""

    task_id: str
    created_at: datetime
    status_at_discovery: str
    substatus_at_discovery: str = ""
    count: int = 0
    users: int = 0
    last_seen: str = ""
    regression_of: str | None = None
    task_status: str | None = None
    ended_at: datetime | None = None
    pr_url: str | None = None


class IssueRecord(_Record):
    short_id: str
    permalink: str
    title: str
    first_seen: str
    armed: bool = True  # a regression seen now is a new one (False right after a task made for a regression)
    tasks: tuple[TaskRef, ...]

    @property
    def latest(self) -> TaskRef:
        return self.tasks[-1]


class DiscoveredState(_Record):
    version: int = 1
    issues: dict[str, IssueRecord] = {}


def state_path(world: World) -> Path:
    return world.layout.state_dir / STATE_NAME


def load_state(path: Path) -> DiscoveredState:
    """Never reset: a damaged file would make every known issue a new task, so discovery stops instead."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DiscoveredState()
    try:
        return DiscoveredState.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise DiscoveryError(f"{path} is damaged ({first}); discovery will not run without it (every known issue "
                             "would get a second task): repair it, or move it aside to start over") from None


def save_state(path: Path, state: DiscoveredState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, state.model_dump(mode="json"))


@contextlib.contextmanager
def _lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "discovered.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DiscoveryError("another Sentry discovery is running (it holds .swarm/discovered.lock); "
                                 "this one did nothing") from None
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ the report


@dataclass(frozen=True)
class Created:
    issue_id: str
    short_id: str
    title: str
    task_id: str | None  # None in a dry run
    regression_of: str | None = None


@dataclass(frozen=True)
class Skipped:
    issue_id: str
    short_id: str
    reason: str


@dataclass
class DiscoveryReport:
    dry_run: bool
    queries: tuple[str, ...] = ()
    pages: int = 0
    found: int = 0
    created: list[Created] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verb = "would create" if self.dry_run else "created"
        out = [f"sentry: {self.found} unresolved issue(s) found in {self.pages} page(s); "
               f"{verb} {len(self.created)} task(s), skipped {len(self.skipped)}"]
        for c in self.created:
            again = f" (regression; previous task {c.regression_of})" if c.regression_of else ""
            out.append(f"  {verb} {c.task_id or '-'} for {c.short_id}: {c.title}{again}")
        out += [f"  skipped {s.short_id}: {s.reason}" for s in self.skipped]
        out += [f"  note: {n}" for n in self.notes]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "queries": list(self.queries), "pages": self.pages, "found": self.found,
                "created": [c.__dict__ for c in self.created], "skipped": [s.__dict__ for s in self.skipped],
                "notes": list(self.notes)}


# ------------------------------------------------------------------------------------------- discovery


def relative(seconds: float) -> str:
    """Sentry's relative time (``firstSeen:-24h``): weeks, days, hours or minutes (rounded up)."""
    whole = math.ceil(seconds)
    for size, unit in ((604800, "w"), (86400, "d"), (3600, "h")):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{max(1, math.ceil(whole / 60))}m"


def queries(settings: SentrySettings) -> tuple[str, str]:
    """(new issues, regressed issues), each ``is:unresolved`` + the window or ``is:regressed`` + ``query``."""
    extra = " ".join(settings.query.split())
    new = " ".join(p for p in ("is:unresolved", f"firstSeen:-{relative(settings.first_seen_within)}", extra) if p)
    again = " ".join(p for p in ("is:unresolved", "is:regressed", extra) if p)
    return new, again


def task_title(issue: Issue) -> str:
    title = f"Fix Sentry: {issue.title}"
    return title if len(title) <= TITLE_LIMIT else title[:TITLE_LIMIT - 1].rstrip() + "…"


def build_prompt(issue: Issue, event: dict[str, Any], previous: TaskRef | None = None) -> str:
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


@dataclass(frozen=True)
class _Plan:
    issue: Issue
    previous: TaskRef | None  # set for a regression
    event: dict[str, Any]


class _Tasks:
    """Where a recorded task stands now: the registry, else the archive, else gone (deleted)."""

    def __init__(self, world: World) -> None:
        self.live = world.registry.read().tasks
        self._state_dir = world.layout.state_dir
        self._archived: dict[str, Task] | None = None

    def get(self, task_id: str) -> Task | None:
        if task_id in self.live:
            return self.live[task_id]
        if self._archived is None:
            self._archived = {t.id: t for t in archived(self._state_dir)}
        return self._archived.get(task_id)

    def linking(self, permalink: str, after: datetime | None) -> Task | None:
        """A live task that links the issue and is newer than ``after``: spawned but not recorded (a crash
        between the two), or spawned by hand with ``--link``."""
        found = [t for t in self.live.values() if permalink in t.links and (after is None or t.created_at > after)]
        return min(found, key=lambda t: t.created_at) if found else None


def _open(status: str) -> bool:
    return status in {s.value for s in Status if s.active}


def _refresh(ref: TaskRef, tasks: _Tasks, now: datetime) -> TaskRef:
    """Copy what became of the task into the record, so it survives the task's archiving or deletion."""
    task = tasks.get(ref.task_id)
    if task is None:
        if ref.task_status is None or _open(ref.task_status):
            return ref.model_copy(update={"task_status": "gone", "ended_at": ref.ended_at or now})
        return ref
    update: dict[str, Any] = {"task_status": task.status.value}
    if task.pr is not None:
        update["pr_url"] = task.pr.url
    if not task.status.active:
        update["ended_at"] = task.ended_at or task.updated_at
    return ref.model_copy(update=update)


def _ref(task: Task, issue: Issue, regression_of: str | None) -> TaskRef:
    return TaskRef(task_id=task.id, created_at=task.created_at, status_at_discovery=issue.status,
                   substatus_at_discovery=issue.substatus, count=issue.count, users=issue.users,
                   last_seen=issue.last_seen, regression_of=regression_of)


def _add(state: DiscoveredState, issue: Issue, ref: TaskRef) -> DiscoveredState:
    old = state.issues.get(issue.id)
    record = IssueRecord(short_id=issue.short_id, permalink=issue.permalink, title=issue.title,
                         first_seen=old.first_seen if old else issue.first_seen, armed=not issue.regressed,
                         tasks=(*(old.tasks if old else ()), ref))
    return state.model_copy(update={"issues": {**state.issues, issue.id: record}})


def _qualifies(issue: Issue, s: SentrySettings) -> str | None:
    if issue.count >= s.min_events or issue.users >= s.min_users:
        return None
    return (f"below the thresholds: {issue.count} event(s) < min_events {s.min_events} and {issue.users} "
            f"user(s) < min_users {s.min_users}")


def discover(
    world: World, settings: Settings, *, dry_run: bool, now: datetime, client: SentryClient | None = None,
) -> DiscoveryReport:
    """One discovery run. Raises ``ConfigError`` (org, project or token missing), ``SentryError`` (Sentry
    failed: nothing was created) or ``DiscoveryError`` (damaged dedupe file, another run busy)."""
    s = settings.sentry
    if not s.org or not s.project:
        raise ConfigError("[sentry] org and project must be set in swarm.toml for Sentry discovery "
                          "(the slugs in the project's URL)")
    if client is None:
        token = os.environ.get(s.token_env, "").strip()
        if not token:
            raise ConfigError(f"Sentry discovery needs an auth token in the environment variable {s.token_env} "
                              "([sentry] token_env) with the project:read and event:read scopes; export it")
        client = SentryClient(s.url, token, s.org, timeout=s.timeout, token_env=s.token_env)
    with client, (contextlib.nullcontext() if dry_run else _lock(world.layout.state_dir)):
        return _discover(world, settings, client, dry_run, now)


def _discover(world: World, settings: Settings, client: SentryClient, dry_run: bool,
              now: datetime) -> DiscoveryReport:
    s = settings.sentry
    path = state_path(world)
    state = load_state(path)
    new_q, again_q = queries(s)
    report = DiscoveryReport(dry_run=dry_run, queries=(new_q, again_q))
    project_id = str(client.project(s.project)["id"])
    period = "24h" if s.first_seen_within <= 86400 else "14d"
    fresh, pages, full = client.issues(project_id, new_q, environment=s.environment, period=period)
    regressed, more, regressed_full = client.issues(project_id, again_q, environment=s.environment, period="24h")
    report.pages = pages + more
    for name, complete in (("new", full), ("regressed", regressed_full)):
        if not complete:
            report.notes.append(f"the {name} issue list was cut after {MAX_PAGES} pages: narrow [sentry] query")
    issues: dict[str, Issue] = {}
    for raw_list, is_regressed in ((regressed, True), (fresh, False)):
        for raw in raw_list:
            parsed = Issue.parse(raw, client.url, s.org, is_regressed)
            if parsed is not None and parsed.id not in issues:
                issues[parsed.id] = parsed
    report.found = len(issues)
    tasks = _Tasks(world)
    before = state
    state = _observe(state, issues, regressed_full, tasks, now)
    candidates: list[tuple[Issue, TaskRef | None]] = []
    for issue in sorted(issues.values(), key=lambda i: (not i.regressed, -i.count, -i.users, i.id)):
        record = state.issues.get(issue.id)
        previous, reason = None, _qualifies(issue, s)
        if reason is None:
            previous, reason = _judge(issue, record, tasks)
        adopted = tasks.linking(issue.permalink, record.latest.created_at if record else None)
        if reason is None and adopted is not None:
            state = _add(state, issue, _ref(adopted, issue, previous.task_id if previous else None))
            reason = f"task {adopted.id} already links this issue (spawned by hand or by an interrupted run)"
        if reason is not None:
            report.skipped.append(Skipped(issue.id, issue.short_id, reason))
        else:
            candidates.append((issue, previous))
    if not dry_run and state != before:
        save_state(path, state)
    plans = _fetch_events(client, candidates, s, report)
    for plan in plans:
        task_id = None if dry_run else _spawn(world, settings, plan, report, now)
        if dry_run or task_id:
            report.created.append(Created(plan.issue.id, plan.issue.short_id, task_title(plan.issue), task_id,
                                          plan.previous.task_id if plan.previous else None))
    return report


def _observe(state: DiscoveredState, issues: dict[str, Issue], regressed_complete: bool, tasks: _Tasks,
             now: datetime) -> DiscoveredState:
    """Bring the records up to date: what became of their tasks, and whether a regression would be new."""
    records = dict(state.issues)
    for issue_id, record in state.issues.items():
        latest = _refresh(record.latest, tasks, now)
        issue = issues.get(issue_id)
        out = issue is None or not issue.regressed
        # seen out of the regressed state: not in a complete list of regressed issues (resolved, archived,
        # ongoing), or listed with a substatus other than "regressed"
        armed = record.armed or (out and (regressed_complete or (issue is not None and bool(issue.substatus))))
        records[issue_id] = record.model_copy(update={"armed": armed, "tasks": (*record.tasks[:-1], latest)})
    return state.model_copy(update={"issues": records})


def _judge(issue: Issue, record: IssueRecord | None, tasks: _Tasks) -> tuple[TaskRef | None, str | None]:
    """(the previous task when this is a regression, or the reason to skip the issue); (None, None) = new."""
    if record is None:
        return None, None
    latest = record.latest
    if latest.task_status and _open(latest.task_status):
        return None, f"task {latest.task_id} is still open ({latest.task_status})"
    done = f"task {latest.task_id} handled it ({latest.task_status or 'ended'})"
    if not issue.regressed:
        return None, f"{done}; Sentry does not mark it regressed"
    if not record.armed:
        return None, f"{done} as a regression; waiting for Sentry to see it resolved before another one counts"
    seen, ended = _when(issue.last_seen), latest.ended_at or latest.created_at
    if seen is None or seen <= ended:
        return None, f"{done}; no event since it ended"
    return latest, None


def _fetch_events(client: SentryClient, candidates: Sequence[tuple[Issue, TaskRef | None]], s: SentrySettings,
                  report: DiscoveryReport) -> list[_Plan]:
    """The latest event of each candidate, up to the cap; a failure that concerns one issue skips it, any
    other failure (token, rate limit) stops the run before anything is created."""
    plans: list[_Plan] = []
    for issue, previous in candidates:
        if len(plans) >= s.max_new_tasks:
            report.skipped.append(Skipped(issue.id, issue.short_id,
                                          f"cap of {s.max_new_tasks} new task(s) per run reached; next run"))
            continue
        try:
            event = client.latest_event(issue.id, s.environment)
        except SentryError as exc:
            if exc.status in (401, 403, 429):
                raise
            report.skipped.append(Skipped(issue.id, issue.short_id, f"latest event unavailable: {exc}"))
            continue
        plans.append(_Plan(issue, previous, event))
    return plans


def _spawn(world: World, settings: Settings, plan: _Plan, report: DiscoveryReport, now: datetime) -> str | None:
    from orchestrator.tasks import spawn

    issue, previous = plan.issue, plan.previous
    links = [issue.permalink]
    if previous is not None:
        links.append(f"regression of swarm task {previous.task_id}"
                     + (f" ({previous.pr_url})" if previous.pr_url else ""))
    kind = settings.sentry.kind
    try:
        task = spawn(world, title=task_title(issue), prompt=build_prompt(issue, plan.event, previous),
                     agent=settings.routing.get(kind, settings.routing["default"]), kind=kind, after=(),
                     base_branch=settings.project.base_branch, links=links)
    except UsageError as exc:
        report.skipped.append(Skipped(issue.id, issue.short_id, f"the task could not be created: {exc}"))
        return None
    path = state_path(world)
    save_state(path, _add(load_state(path), issue, _ref(task, issue, previous.task_id if previous else None)))
    summary = f"{issue.title}\n{issue.culprit}" if issue.culprit else issue.title
    message = discovered_message(task, issue.permalink, summary, now)
    world.registry.update(lambda state: state.enqueue(message))  # "new task" goes to the human (Slack)
    world.events.append(now, task.id, "discovered", source="sentry", issue=issue.id, short_id=issue.short_id,
                        regression_of=previous.task_id if previous else None)
    log.info("sentry: task %s created for issue %s%s", task.id, issue.short_id,
             f" (regression after task {previous.task_id})" if previous else "")
    return task.id


def check(settings: SentrySettings, token: str, *, transport: httpx.BaseTransport | None = None) -> tuple[bool, str]:
    """For ``swarm doctor``: the token is accepted, the project is visible and its issues readable."""
    if not settings.org or not settings.project:
        return False, "sentry: [sentry] org and project are not set in swarm.toml — set both (the slugs in the URL)"
    if not token.strip():
        return False, (f"sentry: no token in ${settings.token_env} — create an auth token with the project:read "
                       "and event:read scopes and export it")
    try:
        with SentryClient(settings.url, token.strip(), settings.org, timeout=settings.timeout, retries=0,
                          token_env=settings.token_env, transport=transport) as client:
            project = client.project(settings.project)
            client.issues(str(project["id"]), "is:unresolved", max_pages=1)
    except SentryError as exc:
        return False, f"sentry: {exc}"
    return True, (f"sentry: {settings.org}/{project.get('slug') or settings.project} (project id {project['id']}) "
                  f"readable at {settings.url} with the token in ${settings.token_env}")
