"""What the human does to tasks from the CLI: spawn, retry, cancel. Each is one registry update plus the
same runner and actor the monitor uses, so a task started by hand and one started by a tick are alike."""

from __future__ import annotations

import re
import secrets
import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from monitor.act import Actor
from monitor.layout import branch_for, job_session_for
from monitor.tick import World, start_queued
from orchestrator.init import NO_COMMITS
from orchestrator.view import find_task
from orchestrator.wiring import UsageError
from registry.models import Failure, FailureKind, RegistryState, Status, Task

MAX_PROMPT_BYTES = 200_000
MAX_TITLE_CHARS = 200
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # text that reorders what follows


def slugify(title: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "task"


def new_task_id(title: str, existing: Sequence[str]) -> str:
    while True:
        candidate = f"{slugify(title)}-{secrets.token_hex(2)}"
        if candidate not in existing:
            return candidate


def spawn(
    world: World,
    *,
    title: str,
    prompt: str,
    agent: str,
    kind: str,
    after: Sequence[str],
    base_branch: str,
    acceptance: Sequence[str] = (),
    links: Sequence[str] = (),
) -> Task:
    title = clean_title(title)
    if not title:
        raise UsageError("--title is empty: give the task a short title")
    acceptance = [a.strip() for a in acceptance if a.strip()]
    if acceptance:
        prompt = prompt.rstrip() + "\n\n## Acceptance criteria\n\n" + "\n".join(f"- {a}" for a in acceptance)
    if not prompt.strip():
        raise UsageError("the prompt is empty: pass --prompt TEXT or --prompt-file FILE with the task")
    if len(prompt.encode()) > MAX_PROMPT_BYTES:
        raise UsageError(f"the prompt is {len(prompt.encode())} bytes; keep it under {MAX_PROMPT_BYTES}")
    if agent not in world.runner.profiles:
        known = ", ".join(sorted(world.runner.profiles))
        raise UsageError(f"--agent {agent!r} is not a configured profile (known: {known}); add [agents.{agent}]")
    binary = world.runner.profiles[agent].command[0]
    # a container's agent is in its image, not on this machine's PATH
    if world.runner.profile_runtime(agent) == "tmux" and shutil.which(binary) is None:
        raise UsageError(f"agent {agent!r}: command {binary!r} is not installed or not on PATH; install it or "
                         f"set [agents.{agent}] command in swarm.toml (`swarm doctor` checks every profile)")
    if shutil.which("tmux") is None:
        raise UsageError("tmux is not installed: every agent runs in a tmux session; install it (apt-get install "
                         "tmux, brew install tmux) and spawn again (`swarm doctor` checks)")
    if world.git.head(base_branch) is None:
        if world.git.head("HEAD") is None:
            raise UsageError(NO_COMMITS)
        raise UsageError(f"base branch {base_branch!r} does not exist; set project.base_branch in swarm.toml")
    now = world.clock()
    created: list[Task] = []

    def add(state: RegistryState) -> RegistryState:
        deps = resolve_after(state, after)
        task_id = new_task_id(title, list(state.tasks))
        task = Task(
            id=task_id, title=title, prompt=prompt, agent=agent, kind=kind, base_branch=base_branch,
            branch=branch_for(task_id), worktree=str(world.layout.worktree(task_id)), after=deps,
            acceptance=tuple(acceptance), links=tuple(x.strip() for x in links if x.strip()),
            created_at=now, updated_at=now, reason="queued",
        )
        if Path(task.worktree).exists():
            raise UsageError(f"{task.worktree} already exists; remove it or set project.worktree_root")
        created.append(task)
        return state.with_task(task)

    world.registry.update(add)
    task = created[0]
    world.events.append(now, task.id, "spawned", title=title, agent=agent, after=",".join(task.after))
    start_queued(world)
    return world.registry.read().tasks[task.id]


def check_title(title: str) -> str:
    """A title typed by the user is one short line of printable text (it names the branch, the PR and the
    Slack thread); anything else is refused with one line saying what to fix. Returns it cleaned."""
    title = title.strip()
    if not title:
        raise UsageError("--title is empty: give the task a short title")
    if "\n" in title or "\r" in title:
        raise UsageError("--title has a line break: give one short line (the details go in the prompt)")
    bad = next((c for c in title if c != "\t" and _control(c)), None)
    if bad is not None:
        raise UsageError(f"--title has a control character (U+{ord(bad):04X}); use plain text")
    if len(title) > MAX_TITLE_CHARS:
        raise UsageError(f"--title is {len(title)} characters; keep it to {MAX_TITLE_CHARS} at most (the details go "
                         "in the prompt)")
    return " ".join(title.split())


def clean_title(title: str) -> str:
    """What a title from Sentry or the planner becomes: one line, no control characters, at most
    MAX_TITLE_CHARS (the CLI refuses such titles instead, with `check_title`)."""
    text = "".join(" " if _control(c) else c for c in title)
    text = " ".join(text.split())
    return text if len(text) <= MAX_TITLE_CHARS else text[:MAX_TITLE_CHARS - 1].rstrip() + "…"


def _control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs") or char in BIDI


def resolve_after(state: RegistryState, after: Sequence[str]) -> tuple[str, ...]:
    """Each --after as a full task id (a unique prefix is enough, as everywhere); a failed or cancelled
    dependency is refused, because the new task would wait for its merge forever."""
    deps: list[str] = []
    for given in after:
        given = given.strip()
        if given in state.tasks:
            dep = given
        else:
            matches = [t for t in state.tasks if given and t.startswith(given)]
            if len(matches) != 1:
                hint = f"matches {', '.join(sorted(matches)[:5])}; give more of the id" if matches else \
                    "no such task (see `swarm status`)"
                raise UsageError(f"--after {given}: {hint}")
            dep = matches[0]
        other = state.tasks[dep]
        if other.status in (Status.failed, Status.cancelled):
            raise UsageError(f"--after {dep}: that task is {other.status.value} and will never merge; "
                             f"`swarm retry {dep}` first, or spawn without it")
        if dep not in deps:
            deps.append(dep)
    return tuple(deps)


def get_task(world: World, task_id: str) -> Task:
    return find_task(world.registry, world.layout.state_dir, task_id)


def cancel(world: World, task_id: str) -> Task:
    task = get_task(world, task_id)
    if not task.status.active:
        raise UsageError(f"task {task.id} is already {task.status.value}; nothing to cancel")
    now = world.clock()

    def do_cancel(current: Task) -> Task:
        return current.model_copy(update={"status": Status.cancelled, "ended_at": now, "updated_at": now,
                                          "reason": "cancelled by the human"})

    world.registry.update(lambda s: s.with_task(do_cancel(s.tasks[task.id])))
    world.runner.kill_agent(task)  # its tmux session or container
    for session in world.tmux.panes() or {}:
        if session.startswith(job_session_for(task.id, "")):
            world.tmux.kill(session)
    world.events.append(now, task.id, "cancelled", by="human")
    return world.registry.read().tasks[task.id]


def retry(world: World, task_id: str, note: str) -> Task:
    """A human-ordered new attempt, with the note in the prompt; allowed past max_attempts (one at a time)."""
    task = get_task(world, task_id)
    if task.status is Status.queued:
        raise UsageError(f"task {task.id} has not started yet; it starts when its dependencies and a slot allow")
    if task.status is Status.merged:
        raise UsageError(f"task {task.id} is merged; spawn a new task for more work")
    now = world.clock()
    notes = (*task.notes, note.strip()) if note.strip() else task.notes
    if task.attempt is None or (not Path(task.worktree).is_dir() and world.git.head(task.branch) is None):
        world.registry.update(lambda s: s.with_task(s.tasks[task.id].model_copy(update={
            "status": Status.queued, "notes": notes, "updated_at": now, "ended_at": None})))
        world.events.append(now, task.id, "retry", by="human", note=note)
        start_queued(world)
        return world.registry.read().tasks[task.id]
    world.runner.ensure_worktree(task)  # the human asked: an existing branch gets its worktree back
    last = task.attempt
    # With no failure on record, the human is the reviewer asking for more: the retry must add commits.
    failure = last.failure or Failure(kind=FailureKind.changes_requested, summary="the human asked for another "
                                      "attempt", evidence=note.strip(), at=now)
    actor = Actor(world.registry, world.events, world.runner, world.forge, world.tmux, world.git, world.policy,
                  world.prompter, now)
    if not actor.respawn(task.id, last.number, failure, notes=notes, by_human=True):
        raise UsageError(f"task {task.id} changed while retrying; look at `swarm status {task.id}` and try again")
    return world.registry.read().tasks[task.id]
