"""``/swarm`` commands in GitHub comments: the human drives a task from the pull request or the issue.

Why: the person reviewing a swarm PR (or watching the issue it came from) is on GitHub, not at the
machine that runs swarm. A comment whose text starts with ``/swarm`` on a swarm PR or an intake issue is a
command, taken only from people with write access to the repository (GitHub's collaborator permission):

- ``/swarm retry [note]`` — a new attempt now, as ``swarm retry --note`` (also a failed or cancelled task);
  the note is the commenter's text, so it reaches the agent **fenced as untrusted data**, never as an
  instruction of swarm's;
- ``/swarm cancel`` — as ``swarm cancel``;
- ``/swarm merge`` — asks the merge train to land the task (``orchestrator.merging.request_merge``);
- ``/swarm status`` — answers with the task's status line.

Everyone else gets no effect and, at most once per person and task, a polite reply saying so. swarm answers
every command it takes with a reply, so the human sees it was taken. Each comment is handled exactly once,
whether it arrives as an ``issue_comment`` webhook (once or twice), through the poll of the repository's
comments, or both: its id is recorded in ``.swarm/github-intake.json`` under the intake lock *before* it is
acted on (a crash loses the command, which the human can repeat, rather than running it twice).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.fence import Fence
from monitor.issue_mirror import inert
from monitor.tick import World
from monitor.world.forge import ForgeUnavailable
from monitor.world.github_issues import CommentInfo, IssueTracker
from orchestrator.config import Settings
from orchestrator.discovery.github_issues import (
    INTAKE_ACTIONS,
    KEEP_COMMENTS,
    IntakeError,
    IntakeReport,
    IntakeState,
    intake,
    issue_from_payload,
    load_state,
    locked,
    save_state,
    tracker_of,
)
from orchestrator.errors import UsageError
from registry.models import RegistryState, Status, Task

log = logging.getLogger(__name__)
PREFIX = "/swarm"
VERBS = ("retry", "cancel", "merge", "status")
NOTE_LIMIT = 2000
FIRST_POLL = timedelta(hours=1)  # the first poll of a repository reads this far back
USAGE = "commands: `/swarm retry [note]`, `/swarm cancel`, `/swarm merge`, `/swarm status`"
MERGE_MISSING = "merge train not available"


@dataclass(frozen=True)
class Command:
    verb: str
    note: str = ""


def parse(body: str) -> Command | None:
    """The command a comment carries (its text starts with ``/swarm``), or None."""
    text = body.lstrip()
    if not text.startswith(PREFIX):
        return None
    rest = text[len(PREFIX):]
    if rest and not rest[0].isspace():
        return None  # "/swarmy" is not ours
    words = rest.strip().split(None, 1)
    verb = words[0].lower() if words else ""
    return Command(verb, words[1].strip() if len(words) > 1 else "")


def comment_from_payload(payload: dict[str, Any]) -> CommentInfo | None:
    """The comment of an ``issue_comment`` delivery (created), or None."""
    raw, issue = payload.get("comment"), payload.get("issue")
    if not isinstance(raw, dict) or not isinstance(issue, dict) or not isinstance(raw.get("id"), int) \
            or not isinstance(issue.get("number"), int):
        return None
    user = raw.get("user") if isinstance(raw.get("user"), dict) else {}
    try:
        updated = datetime.fromisoformat(str(raw.get("updated_at") or raw.get("created_at") or "").replace("Z",
                                                                                                    "+00:00"))
    except ValueError:
        updated = datetime.now(UTC)
    return CommentInfo(id=raw["id"], number=issue["number"], author=str((user or {}).get("login") or ""),
                       body=str(raw.get("body") or ""), url=str(raw.get("html_url") or ""), updated_at=updated,
                       is_pull=issue.get("pull_request") is not None,
                       is_bot=str((user or {}).get("type") or "") == "Bot")


def tasks_for(state: RegistryState, comment: CommentInfo) -> list[Task]:
    """The swarm tasks a comment is about: the PR's task, or the tasks made from the issue."""
    if comment.is_pull:
        found = [t for t in state.tasks.values() if t.pr is not None and t.pr.number == comment.number]
    else:
        found = [t for t in state.tasks.values() if t.source_issue == comment.number]
    return sorted(found, key=lambda t: t.created_at)


def status_line(task: Task) -> str:
    pr = f", PR #{task.pr.number}" if task.pr is not None else ""
    reason = f": {inert(task.reason)}" if task.reason else ""
    return f"`{task.id}` is **{task.status.value}**{reason} (attempt {len(task.attempts)}{pr})"


def _note(author: str, text: str) -> str:
    """The commenter's note as the agent reads it: fenced, labelled with its source, capped and redacted."""
    fence = Fence()
    return (f"{author} asked for this attempt in a GitHub comment (`/swarm retry`). {fence.preamble()}\n"
            + fence.wrap(f"github comment by {author}", text, NOTE_LIMIT))


def _run(world: World, command: Command, task: Task, author: str) -> str:
    from orchestrator import tasks as task_ops

    try:
        if command.verb == "retry":
            note = _note(author, command.note) if command.note else ""
            done = task_ops.retry(world, task.id, note)
            return f"retrying `{task.id}` (attempt {len(done.attempts)})" + (" with your note" if note else "")
        if command.verb == "cancel":
            task_ops.cancel(world, task.id)
            return f"cancelled `{task.id}`"
        if command.verb == "merge":
            try:
                from orchestrator.merging import request_merge
            except ImportError:
                return f"{MERGE_MISSING}: merge pull request #{task.pr.number if task.pr else '?'} yourself"
            return inert(request_merge(world.layout.repo, task.id, f"{author} on GitHub"), 500)
        return status_line(task)
    except UsageError as exc:  # a task that cannot do that now: the reason, as the CLI says it
        return inert(str(exc), 500)


def _reply(tracker: IssueTracker, comment: CommentInfo, lines: Sequence[str]) -> None:
    body = "\n".join(f"swarm: {line}" for line in lines) + f"\n<!-- swarm-reply: {comment.id} -->"
    try:
        tracker.comment(comment.number, body)
    except ForgeUnavailable as exc:
        log.warning("could not answer comment %d: %s", comment.id, exc)


def handle_comments(world: World, settings: Settings, tracker: IssueTracker, comments: Sequence[CommentInfo],
                    ) -> list[str]:
    """Take the ``/swarm`` commands among ``comments`` (each once ever); returns one line per command."""
    del settings  # commands need write access whatever [github] intake_anyone says
    done: list[str] = []
    woken: set[str] = set()
    state_dir = world.layout.state_dir
    with locked(state_dir):
        state = load_state(state_dir)
        for comment in sorted(comments, key=lambda c: c.id):
            command = parse(comment.body)
            if command is None or comment.id in state.comments or comment.is_bot:
                continue
            tasks = tasks_for(world.registry.read(), comment)
            if not tasks:
                continue  # not a swarm PR or intake issue: not ours to answer
            state = _handled(state_dir, state, comment.id)
            who = f"@{comment.author}"
            try:
                allowed = tracker.can_write(comment.author)
            except ForgeUnavailable as exc:
                log.warning("comment %d: could not ask GitHub who may write (%s); not taken", comment.id, exc)
                continue
            if not allowed:
                state = _tell_once(state_dir, state, tracker, comment, tasks[0])
                done.append(f"#{comment.number}: /swarm {command.verb} from {comment.author} ignored (no write access)")
                continue
            if command.verb not in VERBS:
                _reply(tracker, comment, [f"{inert(who)}, `{inert(command.verb or '(nothing)', 40)}` is not a "
                                          f"command; {USAGE}"])
                continue
            targets = [t for t in tasks if t.status.active] or tasks[-1:]
            if command.verb == "retry":
                targets = [t for t in tasks if t.status is not Status.merged][-1:] or tasks[-1:]
            lines = [_run(world, command, task, who) for task in targets]
            woken |= {t.id for t in targets}
            _reply(tracker, comment, lines)
            world.events.append(world.clock(), targets[0].id, "comment_command", verb=command.verb,
                                by=comment.author, comment=comment.id)
            done.append(f"#{comment.number}: /swarm {command.verb} from {comment.author}: {'; '.join(lines)}")
    if woken:
        from monitor.wake import wake

        wake(state_dir, woken)  # a running `swarm serve` looks at them now
    return done


def _handled(state_dir: Any, state: IntakeState, comment_id: int) -> IntakeState:
    state = state.model_copy(update={"comments": (*state.comments, comment_id)[-KEEP_COMMENTS:]})
    save_state(state_dir, state)
    return state


def _tell_once(state_dir: Any, state: IntakeState, tracker: IssueTracker, comment: CommentInfo,
               task: Task) -> IntakeState:
    key = f"{comment.author.lower()}:{task.id}"
    if key in state.told:
        return state
    state = state.model_copy(update={"told": (*state.told, key)[-KEEP_COMMENTS:]})
    save_state(state_dir, state)
    _reply(tracker, comment, [f"sorry {inert('@' + comment.author)}, only people with write access to this "
                              "repository can give swarm commands; a maintainer can repeat it."])
    return state


def poll_comments(world: World, settings: Settings, tracker: IssueTracker, now: datetime) -> list[str]:
    """Read the repository's comments updated since the last poll (one request per hundred) and take the
    commands among them; the webhook path (``handle_comments``) may have taken some already."""
    state = load_state(world.layout.state_dir)
    since = state.comments_since or now - FIRST_POLL
    comments = tracker.comments_since(since)
    done = handle_comments(world, settings, tracker, comments)
    newest = max((c.updated_at for c in comments), default=since)
    with locked(world.layout.state_dir):
        state = load_state(world.layout.state_dir)
        if state.comments_since is None or newest > state.comments_since:
            save_state(world.layout.state_dir, state.model_copy(update={"comments_since": newest}))
    return done


def discover_github(world: World, settings: Settings, *, dry_run: bool, now: datetime,
                    ) -> tuple[IntakeReport, list[str]]:
    """One poll: the labelled issues (planned when a model key is set; not on a dry run), then the commands
    in the comments since the last poll (none on a dry run). Raises IntakeError or ConfigError."""
    tracker = tracker_of(world, settings)
    llm = None
    if not dry_run:
        from orchestrator.brain.llm import llm_from

        llm = llm_from(settings)
    report = intake(world, settings, dry_run=dry_run, now=now, tracker=tracker, llm=llm)
    if report.task_ids:
        from monitor.wake import wake

        wake(world.layout.state_dir, report.task_ids)
    if dry_run:
        return report, []
    try:
        return report, poll_comments(world, settings, tracker, now)
    except ForgeUnavailable as exc:
        raise IntakeError(f"GitHub comments: {exc}") from None


def on_webhook(world: World, settings: Settings, event: str, payload: dict[str, Any]) -> set[str]:
    """An ``issues`` delivery (opened, labeled, reopened, edited) → intake of that issue; an
    ``issue_comment`` delivery (created) → its command. Returns the tasks made or touched."""
    if settings.project.forge != "github":
        return set()
    if event == "issues":
        issue = issue_from_payload(payload) if payload.get("action") in INTAKE_ACTIONS else None
        if issue is None:
            return set()
        from orchestrator.brain.llm import llm_from

        report = intake(world, settings, dry_run=False, now=world.clock(), only=[issue], llm=llm_from(settings))
        skipped = "; ".join(s.reason for s in report.skipped)
        world.events.append(world.clock(), "", "issue_webhook", issue=issue.number, action=str(payload["action"]),
                            tasks=report.task_ids, skipped=skipped)  # what became of each delivery
        return set(report.task_ids)
    if event == "issue_comment" and payload.get("action") == "created":
        comment = comment_from_payload(payload)
        if comment is None or parse(comment.body) is None:
            return set()
        handle_comments(world, settings, tracker_of(world, settings), [comment])
        return {t.id for t in tasks_for(world.registry.read(), comment)}
    return set()


__all__ = ["MERGE_MISSING", "USAGE", "VERBS", "Command", "comment_from_payload", "discover_github",
           "handle_comments", "on_webhook", "parse", "poll_comments", "status_line", "tasks_for"]
