"""The crash window of a launch: the process that launches an agent (a tick, or `swarm spawn`) is SIGKILLed
after tmux started the agent and before the registry recorded the launch. The next tick must adopt the
running agent, not start it a second time. Real subprocesses, a real SIGKILL, real tmux and git."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.layout import AGENT_SESSION_PREFIX, session_for
from monitor.tick import World, run_tick
from registry.models import Status, Task
from tests.monitor.test_tick import events, spawn
from tests.waiting import output_of, wait_for_result
from tests.worlds import REPO_ROOT, make_world

# Runs in its own process: wires the world from swarm.toml as the CLI does, lets tmux start the agent, waits
# until the agent has printed (it really runs), then dies by SIGKILL before ``launch`` returns.
DIES_AFTER_LAUNCH = """
import os, signal, sys, time
from pathlib import Path
from monitor.agent_run import LOG
from monitor.tick import run_tick
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, load
from orchestrator.wiring import build_world
from tests.worlds import RecordingNotifier

repo, mode, prompt = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
world = build_world(repo, load(repo / CONFIG_NAME), RecordingNotifier())
launch = world.runner.launch

def launch_then_die(task, attempt):
    launch(task, attempt)
    log = world.layout.run_dir(task.id, attempt.number) / LOG
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "scripted agent" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)

world.runner.launch = launch_then_die
if mode == "spawn":
    task_ops.spawn(world, title="Crash", prompt=prompt, agent="scripted", kind="default", after=[],
                   base_branch="main")
else:
    run_tick(world)
raise SystemExit("the hook never ran")
"""


def die_after_launch(repo: Path, mode: str, prompt: str = "") -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.run([sys.executable, "-c", DIES_AFTER_LAUNCH, str(repo), mode, prompt], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=90)
    assert child.returncode == -signal.SIGKILL, f"exit {child.returncode}\n{child.stdout}\n{child.stderr}"


def processes() -> dict[int, tuple[int, list[bytes]]]:
    """Every process: pid -> (parent pid, argv)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry.name)] = (ppid, argv)
    return found


def agent_processes(world: World, task: Task, attempt: int) -> tuple[list[int], list[int]]:
    """The wrappers running this attempt (``python -m monitor.agent_run RUN_DIR``) and the agents under them."""
    run_dir = str(world.layout.run_dir(task.id, attempt)).encode()
    table = processes()
    wrappers = [pid for pid, (_, argv) in table.items() if argv[1:4] == [b"-m", b"monitor.agent_run", run_dir]]
    agents = [pid for pid, (ppid, argv) in table.items() if ppid in wrappers and b"tests.agents.scripted" in argv]
    return wrappers, agents


def real_clock_world(git_repo: Path, tmux_socket: str) -> World:
    world, _clock, _ = make_world(git_repo, tmux_socket)
    world.clock = lambda: datetime.now(UTC)  # the killed process wrote real times; this one reads them
    world.monotonic = time.monotonic
    return world


def assert_adopted_once(world: World, task: Task, attempt: int) -> None:
    run_tick(world)
    run_tick(world)
    current = world.registry.read().tasks[task.id]
    assert current.status is Status.running
    assert len(current.attempts) == attempt, "the repair tick adopts the recorded attempt; it adds none"
    assert current.attempts[-1].launched_at is not None, "the launch is recorded"
    assert [e["attempt"] for e in world.events.read(task.id) if e["event"] == "launched"].count(attempt) == 1
    wrappers, agents = agent_processes(world, task, attempt)
    assert (len(wrappers), len(agents)) == (1, 1), "one agent process for the attempt"
    sessions = [s for s in world.tmux.panes() or {} if s.startswith(AGENT_SESSION_PREFIX)]
    assert sessions == [session_for(task.id)], "one session"
    assert output_of(world.layout, task.id, attempt).count(f"scripted agent: attempt {attempt}") == 1


def test_a_spawn_killed_between_launch_and_record_is_adopted_by_the_next_tick(
    git_repo: Path, tmux_socket: str,
) -> None:
    world = real_clock_world(git_repo, tmux_socket)

    die_after_launch(git_repo, "spawn", "scenario: sleep")

    [task] = world.registry.read().tasks.values()
    assert task.status is Status.running and task.attempts[0].launched_at is None, "the crash window is hit"
    assert world.tmux.has_session(session_for(task.id))
    assert_adopted_once(world, task, 1)
    assert events(world, task.id).count("started") == 1


@pytest.mark.parametrize("killed_ticks", [1, 2])
def test_a_tick_killed_between_launch_and_record_is_adopted_by_the_next_tick(
    git_repo: Path, tmux_socket: str, killed_ticks: int,
) -> None:
    world = real_clock_world(git_repo, tmux_socket)
    task = spawn(world, "scenario: fail\nretry: sleep")
    wait_for_result(world.layout, task.id)  # attempt 1 failed: the next tick respawns

    for _ in range(killed_ticks):  # a second killed tick (a crash loop) must not start it again either
        die_after_launch(git_repo, "tick")

    recorded = world.registry.read().tasks[task.id]
    assert len(recorded.attempts) == 2 and recorded.attempts[1].launched_at is None, "the crash window is hit"
    assert_adopted_once(world, task, 2)
    assert events(world, task.id).count("respawn") == 1
