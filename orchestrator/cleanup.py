"""`swarm cleanup`: remove what finished tasks left behind, and find orphans.

Worktrees and sessions of merged or cancelled tasks are removed; orphans (worktrees or sessions that no
task owns, tasks whose worktree vanished) are reported and removed only with ``--yes``. Nothing outside
the configured worktree root is ever removed, and only through ``git worktree remove``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from monitor.layout import AGENT_SESSION_PREFIX, JOB_SESSION_PREFIX, job_session_for, session_for
from monitor.tick import World
from monitor.world.git import GitError
from registry.models import Status


def disk_usage(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def run_cleanup(world: World, *, dry_run: bool, remove_orphans: bool) -> Iterator[str]:
    state = world.registry.read()
    root = world.layout.worktree_root
    verb = "would remove" if dry_run else "removed"
    registered = world.git.worktrees()
    panes = world.tmux.panes() or {}
    owned_sessions: set[str] = set()
    for task in state.tasks.values():
        if task.status.active or task.status is Status.failed:
            owned_sessions.add(session_for(task.id))
            owned_sessions.update(s for s in panes if s.startswith(job_session_for(task.id, "")))
    for task in sorted(state.tasks.values(), key=lambda t: t.created_at):
        worktree = Path(task.worktree)
        if task.status in (Status.merged, Status.cancelled):
            for session in [session_for(task.id), *(s for s in panes if s.startswith(job_session_for(task.id, "")))]:
                if session in panes:
                    if not dry_run:
                        world.tmux.kill(session)
                    yield f"{verb} session {session} ({task.status.value} task)"
            if worktree.exists():
                size = disk_usage(worktree)
                if not dry_run:
                    try:
                        world.git.remove_worktree(worktree, root)
                    except GitError as exc:
                        yield f"kept {worktree}: {exc}"
                        continue
                yield f"{verb} worktree {worktree} ({task.status.value} task, {_mb(size)})"
        elif task.status.active and task.attempts and not worktree.exists():
            yield f"attention: task {task.id} is {task.status.value} but its worktree {worktree} is gone"
    known = {Path(t.worktree).resolve() for t in state.tasks.values()}
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.resolve() in known or not child.is_dir():
                continue
            if child.resolve() not in registered:
                yield f"orphan: {child} is not a git worktree of this repository; left alone"
                continue
            if remove_orphans and not dry_run:
                world.git.remove_worktree(child, root)
                yield f"removed orphan worktree {child}"
            else:
                yield f"orphan worktree {child} ({_mb(disk_usage(child))}); `swarm cleanup --yes` removes it"
    for session in sorted(panes):
        if not session.startswith((AGENT_SESSION_PREFIX, JOB_SESSION_PREFIX)) or session in owned_sessions:
            continue
        if any(session == session_for(t.id) for t in state.tasks.values() if t.status in (Status.merged,
                                                                                        Status.cancelled)):
            continue
        if remove_orphans and not dry_run:
            world.tmux.kill(session)
            yield f"killed orphan session {session}"
        else:
            yield f"orphan session {session}; `swarm cleanup --yes` kills it"
    live = [Path(t.worktree) for t in state.tasks.values() if Path(t.worktree).exists()]
    total = sum(disk_usage(p) for p in live)
    yield f"worktrees in use: {len(live)}, {_mb(total)} under {root}"
