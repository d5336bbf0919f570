"""Ticks a task needs between transitions, on real git, a real tmux server and the local forge.

Run: ``.venv/bin/python bench/chain_bench.py`` (``--json`` for the figures as JSON).

1. From an agent's exit to ``ready``: the agent commits and exits; the local forge's CI (``[local] ci``) is a
   command that passes at once. Between two ticks the benchmark waits for the CI job to finish, so the
   figure counts the monitor's ticks, not the CI's run time. The least possible is 2: the tick that sees the
   exit starts CI, and CI runs between ticks.
2. From a dependency's merge to its dependent's start: the human merges task A; task B (``after = [A]``)
   starts in the tick that sees the merge, or a tick later.

Each figure is a count of ticks (the median of ``--rounds`` runs) and the seconds those ticks took.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import GIT_IDENTITY, sandbox
from monitor.agent_run import RESULT
from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, load
from orchestrator.wiring import build_world
from registry.models import Status

MAX_TICKS = 10


def _world(world: World) -> World:
    """The sandbox's world, with the local forge's CI set to a command that passes."""
    config = Path(world.layout.repo) / CONFIG_NAME
    config.write_text(config.read_text() + '\n[local]\nci = "true"\n')
    return build_world(Path(world.layout.repo), load(config), world.notifier)


def _jobs_done(world: World, task_id: str, timeout: float = 10.0) -> None:
    """Wait until every check job started for the task has written its result."""
    deadline = time.monotonic() + timeout
    checks = world.layout.task_dir(task_id) / "checks"
    while time.monotonic() < deadline:
        jobs = [d for d in checks.glob("*/*") if d.is_dir()] if checks.exists() else []
        if all((d / RESULT).exists() for d in jobs):
            return
        time.sleep(0.02)


def _ticks_until(world: World, task_id: str, done: Any) -> tuple[int, float]:
    ticks, spent = 0, 0.0
    while ticks < MAX_TICKS:
        started = time.monotonic()
        run_tick(world)
        spent += time.monotonic() - started
        ticks += 1
        if done(world.registry.read().tasks[task_id]):
            return ticks, spent
        _jobs_done(world, task_id)
    raise RuntimeError(f"{task_id} not done after {MAX_TICKS} ticks: {world.registry.read().tasks[task_id].reason}")


def exit_to_ready() -> tuple[int, float]:
    with sandbox(max_parallel=4) as base:
        world = _world(base)
        task = task_ops.spawn(world, title="Commit", prompt="commit", agent="committer", kind="default",
                              after=[], base_branch="main")
        result = world.layout.run_dir(task.id, 1) / RESULT
        deadline = time.monotonic() + 30
        while not result.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return _ticks_until(world, task.id, lambda t: t.status is Status.ready)


def merge_to_dependent_start() -> tuple[int, float]:
    with sandbox(max_parallel=4) as base:
        world = _world(base)
        first = task_ops.spawn(world, title="First", prompt="commit", agent="committer", kind="default",
                               after=[], base_branch="main")
        second = task_ops.spawn(world, title="Second", prompt="commit", agent="committer", kind="default",
                                after=[first.id], base_branch="main")
        deadline = time.monotonic() + 60
        while world.registry.read().tasks[first.id].status is not Status.ready and time.monotonic() < deadline:
            run_tick(world)
            _jobs_done(world, first.id)
        repo = Path(world.layout.repo)
        subprocess.run(["git", *GIT_IDENTITY, "merge", "-q", "--no-ff", "-m", "merge", first.branch], cwd=repo,
                       check=True, capture_output=True)
        return _ticks_until(world, second.id, lambda t: t.status is not Status.queued)


def chain_figures(rounds: int = 3) -> dict[str, Any]:
    """Median ticks (and seconds of ticking) from an agent's exit to ready, and from a merge to the start of
    the task that waited for it."""
    figures: dict[str, Any] = {}
    for name, measure in (("exit_to_ready", exit_to_ready), ("merge_to_dependent_start", merge_to_dependent_start)):
        runs = [measure() for _ in range(rounds)]
        figures[f"{name}_ticks"] = statistics.median(r[0] for r in runs)
        figures[f"{name}_s"] = round(statistics.median(r[1] for r in runs), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = chain_figures(args.rounds)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"ticks from an agent's exit to ready (local CI): {figures['exit_to_ready_ticks']} "
          f"({figures['exit_to_ready_s']} s of ticking)")
    print(f"ticks from a merge to the dependent task's start: {figures['merge_to_dependent_start_ticks']} "
          f"({figures['merge_to_dependent_start_s']} s of ticking)")


if __name__ == "__main__":
    main()
