"""A plan of dependent tasks on the local forge (real git, real tmux, the scripted agent) and a simulated human
who merges each ready pull request one tick after it became ready: shared by the stack tests and
bench/stack_bench.py, which compare landing a three-level plan with and without ``[plan] stack``."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from registry.models import Status, Task
from tests.worlds import Clock, RecordingNotifier, make_world

INTERVAL_MINUTES = 5  # the simulated tick interval (the default [monitor] interval)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def stack_world(repo: Path, socket: str, *, stack: bool | str = True, restack: str = "rebase",
                ci: str = "true") -> tuple[World, Clock, RecordingNotifier]:
    value = f'"{stack}"' if isinstance(stack, str) else str(stack).lower()
    return make_world(repo, socket, ci=ci, extra=f'\n[plan]\nstack = {value}\nrestack = "{restack}"\n')


def spawn(world: World, title: str, scenario: str, after: tuple[str, ...] = ()) -> Task:
    task = task_ops.spawn(world, title=title, prompt=f"scenario: {scenario}\nDo the task.", agent="scripted",
                          kind="default", after=list(after), base_branch="main")
    if after:  # as `swarm submit` records a dependency that owns a contract of the plan
        world.registry.update(lambda s: s.with_task(s.tasks[task.id].model_copy(update={"contract_deps": after})))
    return task


def human_merge(repo: Path, branch: str, *, squash: bool = False) -> None:
    """The human lands a branch on main in the main checkout (a merge commit, or one squashed commit)."""
    if squash:
        git(repo, "merge", "--squash", "-q", branch)
        git(repo, "commit", "-q", "-m", f"{branch} (squashed)")
    else:
        git(repo, "merge", "--no-ff", "-q", "-m", f"Merge {branch}", branch)


@dataclass
class Landing:
    ticks_to_last_ready: int = 0
    ticks_to_landed: int = 0
    seconds_to_last_ready: float = 0.0
    seconds_to_landed: float = 0.0
    ready_at: dict[str, int] = field(default_factory=dict)
    merged_at: dict[str, int] = field(default_factory=dict)


def three_level_plan(world: World) -> list[Task]:
    """a ← b ← c, each committing its own file."""
    a = spawn(world, "Level one", "write:one.txt:one")
    b = spawn(world, "Level two", "write:two.txt:two", (a.id,))
    c = spawn(world, "Level three", "write:three.txt:three", (b.id,))
    return [a, b, c]


def settle(world: World, timeout: float = 60.0) -> None:
    """Wait until no agent or check job is running: every agent here finishes within one interval, so the tick
    counts do not depend on how loaded the machine is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(pane.dead for pane in (world.tmux.panes() or {}).values()):
            return
        time.sleep(0.05)


def land(world: World, clock: Clock, tasks: list[Task], *, review_ticks: int = 4, max_ticks: int = 120) -> Landing:
    """Tick (one simulated interval each; the clock stands still, so nothing is judged stuck) until every task
    merged. The human starts reviewing a PR when it is first ready (a stacked PR shows only its own diff, so it
    is reviewed while its dependency is) and merges it ``review_ticks`` later, once it is ready and targets
    main. Returns ticks and wall time to the last ready and to all merged."""
    repo = Path(world.layout.repo)
    ids = [t.id for t in tasks]
    result = Landing()
    started = time.monotonic()
    for tick in range(1, max_ticks + 1):
        settle(world)
        run_tick(world)
        state = world.registry.read()
        for task_id in ids:
            task = state.tasks[task_id]
            if task.status in (Status.ready, Status.merged) and task_id not in result.ready_at:
                result.ready_at[task_id] = tick
            if task.status is Status.merged and task_id not in result.merged_at:
                result.merged_at[task_id] = tick
            if task.status is Status.failed:
                raise AssertionError(f"{task_id} failed: {task.reason}")
        if len(result.ready_at) == len(ids) and not result.ticks_to_last_ready:
            result.ticks_to_last_ready, result.seconds_to_last_ready = tick, time.monotonic() - started
        if len(result.merged_at) == len(ids):
            result.ticks_to_landed, result.seconds_to_landed = tick, time.monotonic() - started
            return result
        for task_id in ids:  # reviewed since it was first ready; merged once it targets main
            task = state.tasks[task_id]
            reviewed = task_id in result.ready_at and tick - result.ready_at[task_id] >= review_ticks
            if task.status is Status.ready and task.base_branch == "main" and reviewed:
                human_merge(repo, task.branch)
    raise AssertionError(f"not landed in {max_ticks} ticks: "
                         f"{[(t.id, t.status.value, t.reason) for t in world.registry.read().tasks.values()]}")
