"""`swarm cleanup`: remove what finished tasks left behind, and find orphans.

Worktrees and sessions of merged or cancelled tasks are removed; orphans (worktrees or sessions that no
task owns, tasks whose worktree vanished) are reported and removed only with ``--yes``. Nothing outside
the configured worktree root is ever removed, and only through ``git worktree remove``.

A worktree with uncommitted or untracked files is never removed silently: the dry run lists it as dirty,
`swarm cleanup` first saves that work to ``refs/swarm/leftovers/<task>`` (and says how to get it back),
and the monitor's daily chore (``keep_dirty``) leaves it untouched.

Containers (``[runtime.container]``): those of this repository (its ``swarm.repo`` label; another
repository's are never listed) that no live task owns — a crash or an engine that was down when its task
ended can leave them — are orphans like sessions: listed, removed only with ``--yes`` (the daily chore
only reports them). An engine that cannot be reached is one line, and nothing there is touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from monitor.layout import AGENT_SESSION_PREFIX, JOB_SESSION_PREFIX, job_session_for, session_for
from monitor.runtime.base import TMUX, Runtime
from monitor.runtime.placement import host_of
from monitor.tick import World
from monitor.world.git import GitError, changed_paths, leftovers_ref
from monitor.world.tmux import TmuxError
from registry.archive import find_archived
from registry.models import RegistryState, Status, Task


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


def _retire_worktree(world: World, name: str, worktree: Path, why: str, *, dry_run: bool, keep_dirty: bool,
                     branch: str = "") -> str:
    """Remove one worktree, saving its uncommitted work first (or keeping it); one line saying what happened."""
    root = world.layout.worktree_root
    verb = "would remove" if dry_run else "removed"
    size = _mb(disk_usage(worktree))
    try:
        if worktree.resolve() not in world.git.worktrees():
            return f"left {worktree} alone ({why}): it is not a git worktree of this repository"
        changes = world.git.is_dirty(worktree)
    except GitError as exc:
        return f"kept {worktree}: cannot tell whether it holds uncommitted work ({exc})"
    ref = leftovers_ref(name)
    if changes:
        what = f"{len(changes)} uncommitted/untracked file(s): {changed_paths(changes)}"
        if keep_dirty:
            return f"kept dirty worktree {worktree} ({why}, {what}); `swarm cleanup` saves them to {ref} and removes it"
        if dry_run:
            return f"would save dirty worktree {worktree} ({why}, {what}) to {ref}, then remove it ({size})"
        try:
            world.git.save_leftovers(worktree, ref, f"swarm: uncommitted work left in {worktree.name} ({why})")
            world.git.remove_worktree(worktree, root, discard_changes=True)
        except GitError as exc:
            return f"kept {worktree}: {exc}"
        where = f"a checkout of {branch}" if branch else "a checkout of its branch"
        return (f"removed worktree {worktree} ({why}, {size}); its {what} are saved in {ref}: see them with "
                f"`git show --stat {ref}`, get them back in {where} with `git checkout {ref} -- .`")
    if not dry_run:
        try:
            world.git.remove_worktree(worktree, root)
        except GitError as exc:
            return f"kept {worktree}: {exc}"
    return f"{verb} worktree {worktree} ({why}, {size})"


def run_cleanup(world: World, *, dry_run: bool, remove_orphans: bool, keep_dirty: bool = False) -> Iterator[str]:
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
                yield _retire_worktree(world, task.id, worktree, f"{task.status.value} task", dry_run=dry_run,
                                       keep_dirty=keep_dirty, branch=task.branch)
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
                line = _retire_worktree(world, child.name, child, "orphan", dry_run=False, keep_dirty=keep_dirty)
                yield line.replace("removed worktree", "removed orphan worktree", 1)
            else:
                try:
                    changes = world.git.is_dirty(child)
                except GitError:
                    changes = []
                dirty = (f", dirty: {len(changes)} uncommitted/untracked file(s), saved to "
                         f"{leftovers_ref(child.name)} first" if changes else "")
                yield f"orphan worktree {child} ({_mb(disk_usage(child))}{dirty}); `swarm cleanup --yes` removes it"
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
    yield from _orphan_containers(world, state, remove=remove_orphans and not dry_run)
    if world.tmux.panes() is not None:  # with no tmux answer, every job would look ended
        yield from _orphan_check_containers(world, set(panes), remove=remove_orphans and not dry_run)
    live = [Path(t.worktree) for t in state.tasks.values() if Path(t.worktree).exists()]
    total = sum(disk_usage(p) for p in live)
    yield f"worktrees in use: {len(live)}, {_mb(total)} under {root}"


def _engine(key: str, runtime: Runtime) -> str:
    """The engine a runtime talks to (two host names may point at one engine)."""
    return str(getattr(runtime, "engine", "") or key)


def _where(key: str, engine: str) -> str:
    host = host_of(key)
    return f"host {host} ({engine})" if host else engine


def _why(name: str, tasks: dict[str, Task], engines: dict[str, str], state_dir: Path) -> str:
    """Why no live task owns container ``name``: its task ended (or was archived), runs elsewhere now, or
    is unknown."""
    task = next((t for t in tasks.values() if session_for(t.id) == name), None)
    if task is None:
        gone = find_archived(state_dir, name.removeprefix(AGENT_SESSION_PREFIX))
        return (f"task {gone.id} is {gone.status.value} and archived" if gone is not None
                else "no task of this repository has that name")
    if not (task.status.active or task.status is Status.failed) or task.attempt is None:
        return f"task {task.id} is {task.status.value}"
    runtime = task.attempt.runtime
    where = "tmux" if runtime == TMUX else _where(runtime, engines.get(runtime, runtime))
    return f"task {task.id}'s attempt {task.attempt.number} runs in {where}"


def _orphan_containers(world: World, state: RegistryState, *, remove: bool) -> Iterator[str]:
    """This repository's containers that no live (active or failed) task's last attempt runs in, per engine:
    listed, or removed with ``remove``. One line for an engine that cannot be asked; nothing changes there."""
    runtimes = {key: rt for key, rt in sorted(world.runner.runtimes.items()) if key != TMUX}
    if not runtimes:
        return
    engines = {key: _engine(key, rt) for key, rt in runtimes.items()}
    owned: set[tuple[str, str]] = set()  # (engine, container name)
    anywhere: set[str] = set()  # live attempts in a runtime swarm.toml no longer names: kept on every engine
    for task in state.tasks.values():
        attempt = task.attempt
        if attempt is None or attempt.runtime == TMUX or not (task.status.active or task.status is Status.failed):
            continue
        names = {session_for(task.id), attempt.session}
        if attempt.runtime in engines:
            owned.update((engines[attempt.runtime], name) for name in names)
        else:
            anywhere.update(names)
    seen: set[str] = set()
    for key, runtime in runtimes.items():
        engine = engines[key]
        if engine in seen:
            continue
        seen.add(engine)
        where = _where(key, engine)
        try:
            containers = runtime.panes() or {}
        except TmuxError as exc:  # RuntimeUnavailable and RuntimeFailure are TmuxErrors
            detail = " ".join(str(exc).split())
            yield f"containers on {where} not checked: {detail}; run `swarm cleanup` again once it answers"
            continue
        for name, pane in sorted(containers.items()):
            if (engine, name) in owned or name in anywhere:
                continue
            what = f"exited {pane.dead_status}" if pane.dead else "running"
            why = _why(name, state.tasks, engines, world.layout.state_dir)
            if not remove:
                yield f"orphan container {name} on {where} ({what}, {why}); `swarm cleanup --yes` removes it"
                continue
            try:
                runtime.kill(name)
            except TmuxError as exc:
                yield f"kept orphan container {name} on {where}: {' '.join(str(exc).split())}"
                continue
            yield f"removed orphan container {name} on {where} ({what}, {why})"


def _orphan_check_containers(world: World, sessions: set[str], *, remove: bool) -> Iterator[str]:
    """Check-job containers (label ``swarm.check``) whose job session is gone: its process was hard-killed
    before it could remove the container. Listed, or removed with ``remove``; a running job's stays."""
    from monitor.runtime.checkjob import check_containers, remove_check_container
    from monitor.runtime.container import ContainerRuntime

    seen: set[str] = set()
    for key, runtime in sorted(world.runner.runtimes.items()):
        if not isinstance(runtime, ContainerRuntime) or runtime.engine in seen:
            continue
        seen.add(runtime.engine)
        try:
            found = check_containers(runtime)
        except TmuxError:  # the agent containers' sweep above already said the engine did not answer
            continue
        for name, running in sorted(found.items()):
            if name in sessions:
                continue
            what = "running" if running else "exited"
            where = _where(key, runtime.engine)
            if not remove:
                yield (f"orphan check container {name} on {where} ({what}, its job has ended); "
                       "`swarm cleanup --yes` removes it")
                continue
            try:
                remove_check_container(runtime, name)
            except TmuxError as exc:
                yield f"kept orphan check container {name} on {where}: {' '.join(str(exc).split())}"
                continue
            yield f"removed orphan check container {name} on {where} ({what}, its job has ended)"
