"""The one comment swarm keeps on a GitHub issue it took work from, edited in place as the task moves.

Why: whoever filed the issue watches the issue, not swarm's registry or Slack. Each task made from an issue
carries ``source_issue``; at the end of every tick the tasks of each issue are rendered into one short
comment (started, pull request opened, ready, failed, merged, cancelled), and only when that text differs
from what the comment says (``issue_mirrored``, a digest) does a request go out: a quiet tick costs nothing.
The comment's id is kept on the tasks (``issue_comment_id``) and the comment carries a hidden marker, so a
comment posted just before a crash is found and edited, never posted twice; one a human deleted is posted
again. A forge that is unavailable (a rate limit) leaves the digest as it was: the next tick tries again.
At most ``WRITES_PER_TICK`` comments are written per tick; the rest wait for the next one.
Titles and failure summaries may hold text from issues and agents: redacted, with markup and @mentions
made inert.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor.redact import redact
from monitor.world.forge import Forge, ForgeUnavailable
from registry.models import RegistryState, Status, Task
from registry.store import Registry

if TYPE_CHECKING:
    from monitor.world.github_issues import IssueTracker

log = logging.getLogger(__name__)
MARKER = "<!-- swarm-issue: {number} -->"
WRITES_PER_TICK = 20
"""Comments written in one tick at most: PyGithub spaces writes a second apart and GitHub allows about 80
content creations a minute, so a hundred issues taken at once are mirrored over five ticks, not one long one."""
COMMANDS = ("`/swarm status`, `/swarm retry [note]`, `/swarm cancel` or `/swarm merge` in a comment "
            "(people with write access)")


def inert(text: str, limit: int = 200) -> str:
    """Untrusted text for one line of a GitHub comment: redacted, no markup, no mention, no line break."""
    text = " ".join(redact(text).split())
    text = text.replace("<", "&lt;").replace(">", "&gt;").replace("@", "@\u200b").replace("`", "'")
    for char in "*_[]|#~":
        text = text.replace(char, "\\" + char)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def phase(task: Task) -> str:
    """Where the task stands, in words that change only when its state does (never the tick's reason)."""
    pr = f"pull request #{task.pr.number}" if task.pr is not None else ""
    attempt = task.attempt
    if task.status is Status.queued:
        return "queued: starts when an agent slot is free"
    if task.status is Status.running:
        number = attempt.number if attempt else 1
        again = ""
        if number > 1 and len(task.attempts) > 1 and task.attempts[-2].failure is not None:
            again = f", after {task.attempts[-2].failure.kind.value}"
        return f"an agent is working on it (attempt {number}{again})" + (f"; {pr}" if pr else "")
    if task.status is Status.checking:
        return f"{pr} opened; checks running" if pr else "the agent finished; checking its work"
    if task.status is Status.ready:
        return f"ready for review: {pr}" if pr else "ready for review"
    if task.status is Status.merged:
        return f"merged ({pr})" if pr else "merged"
    if task.status is Status.failed:
        failure = attempt.failure if attempt else None
        why = f"{failure.kind.value}: {inert(failure.summary)}" if failure else inert(task.reason)
        return f"failed, a human is needed ({why})"
    return "cancelled"


def render(number: int, tasks: Sequence[Task]) -> str:
    lines = ["**swarm** took this issue."]
    for task in sorted(tasks, key=lambda t: t.created_at):
        lines.append(f"- `{task.id}` ({inert(task.title, 120)}): {phase(task)}")
    lines += ["", f"_This comment is kept up to date by swarm. Ask with {COMMANDS}._", MARKER.format(number=number)]
    return "\n".join(lines)


def digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _groups(state: RegistryState) -> dict[int, list[Task]]:
    groups: dict[int, list[Task]] = defaultdict(list)
    for task in state.tasks.values():
        if task.source_issue is not None:
            groups[task.source_issue].append(task)
    return groups


def mirror_issues(registry: Registry, forge: Forge, tracker: IssueTracker | None = None) -> list[str]:
    """Bring each issue's comment up to date; returns one line per comment written. Never raises."""
    try:
        return _mirror(registry, forge, tracker)
    except Exception as exc:  # the mirror must never fail a tick
        log.warning("issue comments not updated: %s", " ".join(redact(str(exc)).split())[:300])
        return []


def _mirror(registry: Registry, forge: Forge, tracker: IssueTracker | None) -> list[str]:
    pending = {number: tasks for number, tasks in _groups(registry.read()).items()
               if any(t.issue_mirrored != digest(render(number, tasks)) for t in tasks)}
    if not pending:
        return []
    from github import GithubException  # only once there is something to write: a local forge never loads it

    from monitor.world.github_issues import tracker_for

    tracker = tracker or tracker_for(forge)
    if tracker is None:
        return []
    done: list[str] = []
    for number, tasks in sorted(pending.items())[:WRITES_PER_TICK]:
        body = render(number, tasks)
        known = next((t.issue_comment_id for t in tasks if t.issue_comment_id), None)
        comment_id: int | None = known
        try:
            comment_id = _write(tracker, number, known, body)
        except ForgeUnavailable as exc:
            log.warning("issue #%d: comment not updated (%s); next tick", number, exc)
            break
        except GithubException as exc:  # a refusal (no permission, issue locked): said once, not every tick
            log.warning("issue #%d: GitHub refused swarm's comment (%s); it is not retried until the task moves",
                        number, exc.status)
        _record(registry, [t.id for t in tasks], comment_id, digest(body))
        done.append(f"issue #{number}: comment {'updated' if known else 'posted'}")
    return done


def _write(tracker: IssueTracker, number: int, known: int | None, body: str) -> int:
    if known is not None and tracker.edit_comment(number, known, body):
        return known
    found = tracker.find_comment(number, MARKER.format(number=number))
    if found is not None and tracker.edit_comment(number, found, body):
        return found
    return tracker.comment(number, body)


def _record(registry: Registry, task_ids: list[str], comment_id: int | None, mirrored: str) -> None:
    def apply(state: RegistryState) -> RegistryState:
        for task_id in task_ids:
            task = state.tasks.get(task_id)
            if task is not None:
                state = state.with_task(task.model_copy(update={"issue_comment_id": comment_id,
                                                                "issue_mirrored": mirrored}))
        return state

    registry.update(apply)


__all__ = ["MARKER", "digest", "inert", "mirror_issues", "phase", "render"]
