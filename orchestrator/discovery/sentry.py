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
   their age), at most ``MAX_PAGES`` pages each. An issue qualifies with ``count >= min_events`` **or**
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

Layout: this module keeps the dedupe state, the run (``discover``), its report and ``swarm doctor``'s
``check``. ``sentry_api`` holds the HTTP client, its errors, paging and the searches (and keeps the token
out of URLs, messages and logs); ``sentry_prompt`` parses what Sentry says, all of it untrusted, and
builds the fenced prompt. Their public names are re-exported here, so callers import from this module.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from monitor.messages import discovered_message
from monitor.tick import World
from orchestrator.config import ConfigError, SentrySettings, Settings
from orchestrator.discovery.sentry_api import (
    MAX_PAGES,
    PAGE_LIMIT,
    DiscoveryError,
    SentryClient,
    SentryError,
    next_cursor,
    queries,
    relative,
)
from orchestrator.discovery.sentry_prompt import (
    FRAMES,
    TITLE_LIMIT,
    Issue,
    _when,
    build_prompt,
    event_text,
    issue_text,
    task_title,
)
from orchestrator.discovery.sentry_state import (
    STATE_NAME,
    DiscoveredState,
    IssueRecord,
    TaskRef,
    discovery_lock,
    load_state,
    save_state,
    state_path,
)
from orchestrator.wiring import UsageError
from registry.archive import archived
from registry.models import Status, Task

__all__ = [
    "FRAMES", "MAX_PAGES", "PAGE_LIMIT", "STATE_NAME", "TITLE_LIMIT", "Created", "DiscoveredState", "DiscoveryError",
    "DiscoveryReport", "Issue", "IssueRecord", "SentryClient", "SentryError", "Skipped", "TaskRef", "build_prompt",
    "check", "discover", "event_text", "issue_text", "load_state", "next_cursor", "queries", "relative",
    "save_state", "state_path", "task_title",
]

log = logging.getLogger(__name__)



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
    with client, (contextlib.nullcontext() if dry_run else discovery_lock(world.layout.state_dir)):
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
