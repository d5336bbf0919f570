"""Scenario helpers for the merge package's tests: a World whose agent runs the steps a test writes
(``tests/merge/steps_agent.py``), ticks run until a condition holds, and step scripts as text."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from monitor.agent_run import RESULT
from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from registry.models import RegistryState, Task
from tests.waiting import wait_for
from tests.worlds import REPO_ROOT, Clock, RecordingNotifier, make_world

COMMIT = """
import subprocess
from pathlib import Path
def commit(files, message):
    for name, text in files.items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text(text)
        subprocess.run(["git", "add", name], check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], check=True)
"""


def steps_world(repo: Path, socket: str, steps: Path, *, ci: str = "", extra: str = "",
                **config: str) -> tuple[World, Clock, RecordingNotifier]:
    steps.mkdir(parents=True, exist_ok=True)
    agent = f"""
[agents.steps]
command = ["{sys.executable}", "-m", "tests.merge.steps_agent"]
prompt = "stdin"
env = {{ PYTHONPATH = "{REPO_ROOT}", STEPS_DIR = "{steps}" }}
"""
    return make_world(repo, socket, ci=ci, extra=extra + agent, **config)


def step(steps: Path, attempt: int, body: str) -> None:
    (steps / f"attempt-{attempt}.py").write_text(COMMIT + body)


def spawn(world: World, title: str = "Task", after: tuple[str, ...] = ()) -> Task:
    return task_ops.spawn(world, title=title, prompt="Do the task.", agent="steps", kind="default",
                          after=list(after), base_branch="main")


def tick_until(world: World, what: str, done: Callable[[RegistryState], bool], timeout: float = 60.0) -> RegistryState:
    def once() -> RegistryState | None:
        run_tick(world)
        state = world.registry.read()
        return state if done(state) else None

    found = wait_for(once, what, timeout=timeout, interval=0.1)
    assert found is not None
    return found


def finished(world: World, task_id: str, attempt: int) -> bool:
    return (world.layout.run_dir(task_id, attempt) / RESULT).exists()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
