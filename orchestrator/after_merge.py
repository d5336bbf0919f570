"""After merges: small follow-up tasks (``[after_merge] tasks = ["changelog", "docs"]``) when swarm pull
requests have merged into the base branch.

Run after every tick of the service (the timer, the daemon and `swarm serve`, where a ``push`` webhook to
the base wakes the tick that sees the pull request merged). Reads only the registry and
``.swarm/after_merge.json``, so it costs nothing when nothing merged.

One open chore per kind at most: while one is open, later merges wait; when it has ended (merged, failed
or cancelled) the next one covers every swarm task merged after what the previous one covered. A chore's
own merge is never a reason for another chore (no loop). Merges from before the feature was turned on are
not chores: the first run only records where it starts. Only swarm's own merged tasks count; a person's
direct push to the base makes no chore.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.agent_run import write_json_atomic
from monitor.fence import Fence
from monitor.locks import try_lock
from monitor.tick import World
from orchestrator.config import Settings
from orchestrator.errors import UsageError
from registry.models import Status, Task

log = logging.getLogger(__name__)
STATE_NAME = "after_merge.json"
MARK = "swarm after-merge chore"  # in a chore task's links: how a chore is told from other work

BUILTIN = {
    "changelog": (
        "Update {changelog} with the pull requests merged into {base} listed below (they merged since the "
        "changelog was last updated by swarm). Add one short line per item under an \"Unreleased\" heading at the "
        "top, in the style the file already uses (create the file, or the heading, if missing). Write each line "
        "for users: what changed for them, not how. Change nothing but {changelog}."
    ),
    "docs": (
        "Bring the documentation up to date with the pull requests merged into {base} listed below. Update only "
        "documentation (README, docs/, docstrings of public interfaces) where it describes behaviour those "
        "changes altered; change no code."
    ),
}
DOCS_COMMAND = (
    "Regenerate the documentation after the merges listed below: run `{command}` in the repository root and "
    "commit what it changed. If it fails, fix only what the documentation build needs, and say so in the commit "
    "message."
)
TITLES = {"changelog": "Changelog: {n} merged pull request(s)", "docs": "Docs: update after {n} merge(s)"}


@contextlib.contextmanager
def _lock(state_dir: Path) -> Iterator[bool]:
    with try_lock(state_dir / "after_merge.lock") as held:
        yield held


def _load(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / STATE_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def is_chore(task: Task) -> bool:
    return any(link.startswith(MARK) for link in task.links)


def _when(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def prompt_for(kind: str, settings: Settings, merged: Sequence[Task]) -> str:
    """The chore's prompt: the kind's instructions and the merged items, fenced (titles can come from issues,
    Sentry or notes)."""
    am = settings.after_merge
    if kind in am.prompts and am.prompts[kind].strip():
        head = am.prompts[kind].strip()
    elif kind == "docs" and am.docs_command.strip():
        head = DOCS_COMMAND.format(command=am.docs_command.strip())
    else:
        head = BUILTIN[kind]
    head = head.replace("{changelog}", am.changelog).replace("{base}", settings.project.base_branch)
    fence = Fence()
    items = "\n".join(f"- {t.title} ({f'#{t.pr.number}' if t.pr else f'task {t.id}'})" for t in merged)
    return "\n\n".join([head, fence.preamble() + " Here it is the list of merged pull requests (their titles "
                        "may quote outside reports).", fence.wrap("merged pull requests", items, 8000)]) + "\n"


def check(world: World, settings: Settings, now: datetime) -> list[str]:
    """Spawn the chores that are due; one line per chore spawned (or why one could not be)."""
    kinds = settings.after_merge.tasks
    if not kinds:
        return []
    state_dir = world.layout.state_dir
    with _lock(state_dir) as mine:
        if not mine:
            return []
        data = _load(state_dir)
        if _when(data.get("since")) is None:  # turned on now: earlier merges are not chores
            write_json_atomic(state_dir / STATE_NAME, {"since": now.isoformat(), "kinds": {}})
            return []
        return _spawn_due(world, settings, data, now)


def _spawn_due(world: World, settings: Settings, data: dict[str, Any], now: datetime) -> list[str]:
    from orchestrator.tasks import spawn

    state_dir = world.layout.state_dir
    tasks = world.registry.read().tasks
    since = _when(data["since"])
    assert since is not None
    entries: dict[str, Any] = dict(data.get("kinds") or {})
    lines: list[str] = []
    for kind in kinds_of(settings):
        entry = entries.get(kind) if isinstance(entries.get(kind), dict) else {}
        assert isinstance(entry, dict)
        open_task = tasks.get(str(entry.get("task_id", "")))
        if open_task is not None and open_task.status.active:
            continue  # one at a time: the next one covers what merges meanwhile
        covered = _when(entry.get("covered_until")) or since
        merged = sorted((t for t in tasks.values() if t.status is Status.merged and t.ended_at is not None
                         and t.ended_at > covered and not is_chore(t)), key=lambda t: t.ended_at or now)
        if not merged:
            continue
        title = TITLES.get(kind, f"{kind}: after {{n}} merge(s)").format(n=len(merged))
        try:
            task = spawn(world, title=title, prompt=prompt_for(kind, settings, merged),
                         agent=settings.routing.get(kind, settings.routing["default"]), kind=kind, after=(),
                         base_branch=settings.project.base_branch, links=(f"{MARK}: {kind}",))
        except UsageError as exc:
            lines.append(f"after-merge {kind}: not spawned: {exc}")
            continue
        entries[kind] = {"task_id": task.id, "covered_until": max(t.ended_at or now for t in merged).isoformat(),
                         "spawned_at": now.isoformat()}
        write_json_atomic(state_dir / STATE_NAME, {**data, "kinds": entries})
        world.events.append(now, task.id, "after_merge", kind=kind, merged=",".join(t.id for t in merged))
        lines.append(f"after-merge {kind}: task {task.id} for {len(merged)} merged task(s)")
    return lines


def kinds_of(settings: Settings) -> list[str]:
    return list(dict.fromkeys(settings.after_merge.tasks))


def safe_check(world: World, settings: Settings, now: datetime) -> list[str]:
    """``check`` for the service: a failure is one logged line, never a failed tick."""
    try:
        return check(world, settings, now)
    except Exception as exc:
        log.warning("after-merge chores failed: %s: %s", type(exc).__name__, " ".join(str(exc).split())[:300])
        return [f"after-merge: failed: {exc}"]
