"""GitHub issues → tasks: open issues labelled ``[github] intake_label`` become work, once per issue.

Why: the team already files work as GitHub issues; a label is the whole hand-over. ``swarm discover
github`` runs it, `swarm serve` runs it for one issue when an ``issues`` webhook says it was opened,
labelled, reopened or edited, and the monitor every ``[github] intake_every``. In one run:

1. the open issues with the label (one request per hundred; pull requests, which the issues API lists
   too, are left out), or the one issue a webhook named;
2. for each one without a task: its author must have write access (GitHub's collaborator permission, asked
   once per author and run) unless ``intake_anyone``; an issue ignored for that is not asked about again
   until it changes (its ``updated_at``);
3. at most ``intake_max_new`` tasks: with a model key the planner plans the issue (usually one task, the
   issue fenced in every prompt), without one a single task; each links the issue, carries
   ``source_issue`` (so its pull request says ``Fixes #N`` and the monitor mirrors its state as one comment
   on the issue) and is announced like a Sentry task.

Exactly one task per issue, whoever asks: every run holds ``.swarm/github-intake.lock`` (waiting for the
other run, never skipping it) while it reads ``.swarm/github-intake.json``, spawns and records, so a webhook
delivered twice and a poll at the same moment make one task. A crash between the spawn and the record is
repaired by the next run, which adopts the live task that links the issue instead of spawning again.
The same file and lock serve the ``/swarm`` comment commands (``comment_commands.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.agent_run import write_json_atomic
from monitor.messages import discovered_message
from monitor.tick import World
from monitor.world.forge import ForgeUnavailable
from monitor.world.github_issues import IssueInfo, IssueTracker, tracker_for
from orchestrator.config import ConfigError, Settings
from orchestrator.discovery.github_issues_prompt import build_prompt, issue_section, planning_request, task_title
from orchestrator.errors import OperationalError
from registry.models import OutboxMessage, RegistryState, Task

log = logging.getLogger(__name__)
STATE_NAME = "github-intake.json"
LOCK_NAME = "github-intake.lock"
LOCK_WAIT = 120.0  # a run waits this long for another one (a plan may take a model call) before giving up
KEEP_COMMENTS = 5000
INTAKE_ACTIONS = frozenset({"opened", "labeled", "reopened", "edited"})


class IntakeError(OperationalError):
    """Intake could not run (GitHub unavailable, a damaged state file, another run holding the lock)."""


class IssueRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    tasks: tuple[str, ...]
    title: str = ""
    at: datetime


class IntakeState(BaseModel):
    """What intake and the comment commands remember, outliving tasks and their archiving."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int = 1
    issues: dict[str, IssueRecord] = {}
    ignored: dict[str, str] = {}  # issue number -> its updated_at when it was ignored (no write access)
    comments: tuple[int, ...] = ()  # comment ids already handled (the newest KEEP_COMMENTS)
    comments_since: datetime | None = None  # the poll reads comments updated after this
    told: tuple[str, ...] = ()  # "login:task" pairs already answered "you may not" (one polite reply each)


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_NAME


def load_state(state_dir: Path) -> IntakeState:
    """Never reset: a damaged file would make every known issue a second task."""
    path = state_path(state_dir)
    try:
        return IntakeState.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return IntakeState()
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise IntakeError(f"{path} is damaged ({first}); GitHub intake will not run without it (every known "
                          "issue would get a second task): repair it, or move it aside to start over") from None


def save_state(state_dir: Path, state: IntakeState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(state_path(state_dir), state.model_dump(mode="json"))


@contextlib.contextmanager
def locked(state_dir: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the intake lock, waiting for another run to finish (its work is then seen, never repeated)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IntakeError(f"another GitHub intake has held .swarm/{LOCK_NAME} for {wait:.0f}s; "
                                      "this run did nothing") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def tracker_of(world: World, settings: Settings) -> IssueTracker:
    if settings.project.forge != "github":
        raise ConfigError("GitHub intake needs project.forge = \"github\" and [github] repo in swarm.toml")
    tracker = tracker_for(world.forge)
    if tracker is None:  # pragma: no cover - a github forge always has issues
        raise ConfigError("the forge has no GitHub issues")
    return tracker


# ------------------------------------------------------------------------------------------ the report


@dataclass(frozen=True)
class Taken:
    number: int
    title: str
    task_ids: tuple[str, ...]  # empty in a dry run


@dataclass(frozen=True)
class Passed:
    number: int
    reason: str


@dataclass
class IntakeReport:
    dry_run: bool
    label: str
    found: int = 0
    created: list[Taken] = field(default_factory=list)
    skipped: list[Passed] = field(default_factory=list)

    @property
    def task_ids(self) -> list[str]:
        return [t for taken in self.created for t in taken.task_ids]

    def lines(self) -> list[str]:
        verb = "would take" if self.dry_run else "took"
        out = [f"github: {self.found} open issue(s) labelled {self.label!r}; {verb} {len(self.created)}, "
               f"skipped {len(self.skipped)}"]
        out += [f"  {verb} #{c.number} as {', '.join(c.task_ids) or '-'}: {c.title}" for c in self.created]
        out += [f"  skipped #{s.number}: {s.reason}" for s in self.skipped]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "label": self.label, "found": self.found,
                "created": [{"issue": c.number, "title": c.title, "tasks": list(c.task_ids)} for c in self.created],
                "skipped": [{"issue": s.number, "reason": s.reason} for s in self.skipped]}


# -------------------------------------------------------------------------------------------- intake


def issue_from_payload(payload: dict[str, Any]) -> IssueInfo | None:
    """The issue of an ``issues`` webhook delivery (None for a pull request or a malformed payload)."""
    raw = payload.get("issue")
    if not isinstance(raw, dict) or raw.get("pull_request") is not None or not isinstance(raw.get("number"), int):
        return None
    user = raw.get("user") if isinstance(raw.get("user"), dict) else {}
    labels = tuple(str(x.get("name")) for x in raw.get("labels") or [] if isinstance(x, dict))
    return IssueInfo(number=raw["number"], title=str(raw.get("title") or ""), body=str(raw.get("body") or ""),
                     author=str((user or {}).get("login") or ""), labels=labels, url=str(raw.get("html_url") or ""),
                     state=str(raw.get("state") or ""), updated_at=str(raw.get("updated_at") or ""))


def intake(world: World, settings: Settings, *, dry_run: bool, now: datetime, tracker: IssueTracker | None = None,
           only: Sequence[IssueInfo] | None = None, llm: Any = None) -> IntakeReport:
    """One run over the open labelled issues (or ``only`` these, from a webhook). Raises ConfigError or
    IntakeError; an issue that cannot be made into a task is skipped with the reason."""
    gh = settings.github
    tracker = tracker or tracker_of(world, settings)
    try:
        issues = list(only) if only is not None else tracker.open_issues(gh.intake_label)
    except ForgeUnavailable as exc:
        raise IntakeError(f"GitHub intake: {exc}") from None
    issues = [i for i in issues if i.state == "open" and gh.intake_label in i.labels and not i.is_pull]
    report = IntakeReport(dry_run=dry_run, label=gh.intake_label, found=len(issues))
    with contextlib.nullcontext() if dry_run else locked(world.layout.state_dir):
        state = load_state(world.layout.state_dir)
        for issue in sorted(issues, key=lambda i: i.number):
            state = _one(world, settings, tracker, issue, state, report, dry_run, now, llm)
    return report


def _linked(registry_state: RegistryState, issue: IssueInfo) -> list[Task]:
    return [t for t in registry_state.tasks.values()
            if t.source_issue == issue.number or (issue.url and issue.url in t.links)]


def _one(world: World, settings: Settings, tracker: IssueTracker, issue: IssueInfo, state: IntakeState,
         report: IntakeReport, dry_run: bool, now: datetime, llm: Any) -> IntakeState:
    key = str(issue.number)
    record = state.issues.get(key)
    if record is not None:
        report.skipped.append(Passed(issue.number, f"already taken as {', '.join(record.tasks)}"))
        return state
    adopted = _linked(world.registry.read(), issue)
    if adopted:  # spawned by an interrupted run (or by hand with --link): adopt, never spawn again
        ids = tuple(t.id for t in adopted)
        if not dry_run:
            _mark(world, ids, issue.number)
            state = _remember(world, state, issue, ids, now)
        report.skipped.append(Passed(issue.number, f"task(s) {', '.join(ids)} already link it"))
        return state
    if not settings.github.intake_anyone:
        if state.ignored.get(key) == issue.updated_at and issue.updated_at:
            report.skipped.append(Passed(issue.number, "opened by someone without write access (unchanged since)"))
            return state
        try:
            allowed = tracker.can_write(issue.author)
        except ForgeUnavailable as exc:
            report.skipped.append(Passed(issue.number, f"could not ask GitHub who may write: {exc}"))
            return state
        if not allowed:
            report.skipped.append(Passed(issue.number, f"opened by {issue.author or 'someone'} without write "
                                                       "access ([github] intake_anyone = true takes it anyway)"))
            if not dry_run:
                state = state.model_copy(update={"ignored": {**state.ignored, key: issue.updated_at}})
                save_state(world.layout.state_dir, state)
            return state
    if len(report.created) >= settings.github.intake_max_new:
        report.skipped.append(Passed(issue.number, f"cap of {settings.github.intake_max_new} new task(s) per run "
                                                   "reached; next run"))
        return state
    title = task_title(issue)
    if dry_run:
        report.created.append(Taken(issue.number, title, ()))
        return state
    try:
        ids = _spawn(world, settings, issue, llm)
    except Exception as exc:  # one issue that cannot become a task never stops the others
        report.skipped.append(Passed(issue.number, f"the task could not be created: {' '.join(str(exc).split())}"))
        return state
    state = _remember(world, state, issue, ids, now)
    report.created.append(Taken(issue.number, title, ids))
    for task_id in ids:
        task = world.registry.read().tasks.get(task_id)
        if task is not None:
            message = discovered_message(task, issue.url, title, now)

            def announce(registry_state: RegistryState, message: OutboxMessage = message) -> RegistryState:
                return registry_state.enqueue(message)

            world.registry.update(announce)
        world.events.append(now, task_id, "discovered", source="github", issue=issue.number)
    log.info("github: issue #%d became task(s) %s", issue.number, ", ".join(ids))
    return state


def _remember(world: World, state: IntakeState, issue: IssueInfo, ids: tuple[str, ...], now: datetime
              ) -> IntakeState:
    record = IssueRecord(tasks=ids, title=task_title(issue), at=now)
    ignored = {k: v for k, v in state.ignored.items() if k != str(issue.number)}
    state = state.model_copy(update={"issues": {**state.issues, str(issue.number): record}, "ignored": ignored})
    save_state(world.layout.state_dir, state)
    return state


def _mark(world: World, task_ids: Sequence[str], number: int,
          shares: Sequence[tuple[int, float]] = ()) -> None:
    """Give the tasks their ``source_issue`` (and each its share of the planning spend)."""
    def apply(state: RegistryState) -> RegistryState:
        for index, task_id in enumerate(task_ids):
            task = state.tasks.get(task_id)
            if task is None:
                continue
            update: dict[str, Any] = {"source_issue": number}
            if index < len(shares):
                update |= {"llm_tokens": task.llm_tokens + shares[index][0],
                           "llm_cost_usd": round(task.llm_cost_usd + shares[index][1], 6)}
            state = state.with_task(task.model_copy(update=update))
        return state

    world.registry.update(apply)


def _spawn(world: World, settings: Settings, issue: IssueInfo, llm: Any) -> tuple[str, ...]:
    from orchestrator import tasks as task_ops

    repo = settings.github.repo
    base = settings.project.base_branch
    if llm is None:
        kind = "default"
        task = task_ops.spawn(world, title=task_title(issue), prompt=build_prompt(issue, repo),
                              agent=settings.routing.get(kind, settings.routing["default"]), kind=kind, after=(),
                              base_branch=base, links=[issue.url] if issue.url else [])
        _mark(world, [task.id], issue.number)
        return (task.id,)
    return _spawn_planned(world, settings, issue, llm)


def _spawn_planned(world: World, settings: Settings, issue: IssueInfo, llm: Any) -> tuple[str, ...]:
    """The planner's tasks, dependencies first; every prompt ends with the fenced issue (the plan's text came
    from it). A spawn that fails midway cancels the tasks already made."""
    from monitor.fence import Fence
    from orchestrator import tasks as task_ops
    from orchestrator.budget import check_llm
    from orchestrator.submit import prepare, problems_of, split_usage

    check_llm(settings, world.layout.state_dir, world.registry, world.clock(), f"planning issue #{issue.number}")
    plan, usage, _context, planned, _notes = prepare(world, settings, planning_request(issue, settings.github.repo),
                                                     llm)
    problems = problems_of(world, settings, planned)
    if problems:
        raise IntakeError(problems[0])
    ids: dict[str, str] = {}
    try:
        for item in planned:
            prompt = item.prompt.rstrip() + "\n\n## The GitHub issue this comes from\n\n" \
                + issue_section(issue, Fence()) + "\n"
            task = task_ops.spawn(world, title=item.planned.title, prompt=prompt, agent=item.agent,
                                  kind=item.planned.kind, after=[ids[d] for d in item.planned.depends_on],
                                  base_branch=settings.project.base_branch, links=[issue.url] if issue.url else [])
            ids[item.planned.id] = task.id
    except Exception:
        for task_id in ids.values():
            with contextlib.suppress(Exception):
                task_ops.cancel(world, task_id)
        raise
    _mark(world, list(ids.values()), issue.number, split_usage(usage, len(ids)))
    log.info("github: issue #%d planned into %d task(s) (%s)", issue.number, len(plan.tasks), usage.tokens)
    return tuple(ids.values())


__all__ = ["INTAKE_ACTIONS", "IntakeError", "IntakeReport", "IntakeState", "IssueRecord", "intake",
           "issue_from_payload", "load_state", "locked", "save_state", "state_path", "tracker_of"]
