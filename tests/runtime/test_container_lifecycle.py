"""Agents in containers through real ticks: real git worktrees, a real podman engine (Docker Engine API),
the local forge. The agent (tests/runtime/boxed_agent.py) runs inside the image with python3 and git only."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.runtime.base import CONTAINER
from monitor.runtime.container import ContainerRuntime
from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from orchestrator.config import load
from orchestrator.wiring import build_world
from registry.models import FailureKind, RegistryState, Status, Task
from tests.conftest import git
from tests.fakes.podman import Podman
from tests.monitor.test_tick import tick_until as tick_until_in
from tests.waiting import output_of, wait_for
from tests.worlds import Clock, RecordingNotifier, make_world, write_config

AGENT = Path(__file__).with_name("boxed_agent.py")


def container_config(engine: Podman, memory: str = "256m") -> str:
    source = AGENT.read_text()
    assert "'''" not in source
    return f"""
[agents.boxed]
command = ["python3", "-c", '''{source}''']
prompt = "stdin"
runtime = "container"

[runtime.container]
engine = "{engine.url}"
image = "{engine.image}"
network = "none"
memory = "{memory}"
cpus = 1
pids = 256
"""


@pytest.fixture
def boxed(git_repo: Path, tmux_socket: str, podman: Podman) -> Iterator[tuple[World, Clock, RecordingNotifier]]:
    parts = make_world(git_repo, tmux_socket, extra=container_config(podman))
    yield parts
    runtime = parts[0].runner.runtimes[CONTAINER]
    assert isinstance(runtime, ContainerRuntime)
    for name in runtime.panes() or {}:  # this repository's containers only
        runtime.kill(name)


def spawn(world: World, prompt: str) -> Task:
    return task_ops.spawn(world, title="Boxed", prompt=prompt, agent="boxed", kind="default", after=[],
                          base_branch="main")


def tick_until(world: World, done: Callable[[RegistryState], bool], timeout: float = 60.0) -> RegistryState:
    """The tmux tests' loop, with more time: a container starts slower than a tmux session."""
    return tick_until_in(world, done, timeout)


def containers(world: World) -> dict[str, bool]:
    """This repository's containers: name -> running."""
    runtime = world.runner.runtimes[CONTAINER]
    return {name: not pane.dead for name, pane in (runtime.panes() or {}).items()}


def output(world: World, task: Task, attempt: int = 1) -> str:
    """The attempt's output so far ("" before its entry has written a line: a running container's entry may
    not have created the log yet)."""
    return output_of(world.layout, task.id, attempt)


def test_a_task_reaches_ready_in_a_container(boxed: tuple[World, Clock, RecordingNotifier]) -> None:
    world, _clock, notifier = boxed
    task = spawn(world, "scenario: commit")
    assert task.attempt is not None and task.attempt.runtime == CONTAINER
    assert not world.tmux.has_session(session_for(task.id)), "a container attempt starts no tmux session"

    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    final = state.tasks[task.id]
    assert len(final.attempts) == 1 and final.attempts[0].exit_code == 0
    assert git(world.layout.repo, "log", "--format=%s", f"swarm/{task.id}", "-1") == "work 1"
    assert git(world.layout.repo, "log", "--format=%an", f"swarm/{task.id}", "-1") == "swarm-test"
    assert "boxed agent: attempt 1, scenario commit" in output(world, task)
    assert [m.kind for m in notifier.sent] == ["ready"]
    assert session_for(task.id) not in containers(world), "the finished container is removed"


def test_an_agent_finds_none_of_swarms_secrets_and_cannot_write_outside_its_worktree(
    boxed: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    world, _clock, _ = boxed
    planted = {name: f"planted-{secrets.token_hex(8)}" for name in ("GITHUB_TOKEN", "SLACK_BOT_TOKEN", "GH_TOKEN")}
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    repo = world.layout.repo
    outside = [repo / "escaped.txt", repo / ".git" / "hooks" / "post-commit", repo / ".git" / "config",
               tmp_path / "home-file.txt"]
    task = spawn(world, "scenario: probe\n" + "".join(f"escape: {path}\n" for path in outside))
    config_before = (repo / ".git" / "config").read_text()

    tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    text = output(world, task)
    assert "probe: /proc/1/environ " in text and f"probe: /proc/{1}/environ HOME=/tmp" in text
    assert "probe: /proc/self/environ " in text
    for name, value in planted.items():
        assert value not in text, f"{name}'s value reached the container"
        assert f" {name}=" not in text
    for path in outside:
        assert f"escape: {path}" in text
        assert not (path.name == "escaped.txt" and path.exists())
    assert not (repo / "escaped.txt").exists()
    assert not (tmp_path / "home-file.txt").exists()
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    assert f"escape: {repo / '.git' / 'hooks' / 'post-commit'} failed" in text  # read-only mount
    assert f"escape: {repo / '.git' / 'config'} failed" in text
    assert (repo / ".git" / "config").read_text() == config_before


def test_out_of_memory_is_killed_with_evidence_and_retried(boxed: tuple[World, Clock, RecordingNotifier]) -> None:
    world, _clock, _ = boxed
    task = spawn(world, "scenario: hog\nretry: commit")

    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    final = state.tasks[task.id]
    first = final.attempts[0]
    assert first.failure is not None and first.failure.kind is FailureKind.agent_error
    assert "out of memory" in first.failure.summary
    assert "of its 256 MiB limit" in first.failure.summary
    assert first.exit_code == 137
    retry_prompt = Path(final.attempts[1].prompt_path).read_text()
    assert "out of memory" in retry_prompt
    assert len(final.attempts) == 2


def test_an_unreachable_engine_is_no_mass_respawn(
    boxed: tuple[World, Clock, RecordingNotifier], podman: Podman
) -> None:
    world, clock, _ = boxed
    tasks = [spawn(world, "scenario: sleep") for _ in range(2)]
    tick_until(world, lambda s: all(s.tasks[t.id].attempt is not None and s.tasks[t.id].attempt.launched_at  # type: ignore[union-attr]
                                    for t in tasks))
    wait_for(lambda: all(containers(world).get(session_for(t.id)) for t in tasks), what="both containers running")
    podman.stop_service()
    try:
        for _ in range(3):
            clock.advance(minutes=3)  # well within stuck_after (10m)
            run_tick(world)
        state = world.registry.read()
        for task in tasks:
            current = state.tasks[task.id]
            assert current.status is Status.running and len(current.attempts) == 1, current.reason
            assert "cannot be reached" in current.reason
    finally:
        podman.start_service()
    run_tick(world)
    state = world.registry.read()
    assert all(len(state.tasks[t.id].attempts) == 1 and state.tasks[t.id].status is Status.running for t in tasks)
    assert all(containers(world).get(session_for(t.id)) for t in tasks), "the agents kept running"


def test_a_container_killed_from_outside_dies_and_is_respawned_once(
    boxed: tuple[World, Clock, RecordingNotifier], podman: Podman
) -> None:
    world, _clock, _ = boxed
    task = spawn(world, "scenario: sleep\nretry: commit")
    name = session_for(task.id)
    wait_for(lambda: containers(world).get(name), what="the agent's container running")
    wait_for(lambda: "scenario sleep" in output(world, task), what="the agent to start")
    podman.cli("kill", name)

    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    final = state.tasks[task.id]
    assert len(final.attempts) == 2
    failure = final.attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.died
    assert [e["event"] for e in world.events.read(task.id)].count("respawn") == 1
    assert os.path.exists(world.layout.run_dir(task.id, 2) / "output.log")


def test_cancel_removes_the_container_and_attach_gives_a_shell_in_it(
    boxed: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, _ = boxed
    task = spawn(world, "scenario: sleep")
    name = session_for(task.id)
    wait_for(lambda: containers(world).get(name), what="the agent's container running")
    current = world.registry.read().tasks[task.id]
    argv = world.runner.attach_argv(current)
    assert argv is not None and argv[-3:] == ["-it", name, "/bin/sh"] and "exec" in argv

    task_ops.cancel(world, task.id)
    assert name not in containers(world)
    assert world.runner.attach_argv(world.registry.read().tasks[task.id]) is None


def test_a_running_container_agent_is_kept_when_the_profile_moves_back_to_tmux(
    boxed: tuple[World, Clock, RecordingNotifier], podman: Podman, tmux_socket: str
) -> None:
    world, _clock, _ = boxed
    task = spawn(world, "scenario: sleep\nretry: commit")
    name = session_for(task.id)
    wait_for(lambda: containers(world).get(name), what="the agent's container running")
    wait_for(lambda: "scenario sleep" in output(world, task), what="the agent to start")
    config = container_config(podman).replace('runtime = "container"\n', 'runtime = "tmux"\n')
    moved, _, _ = make_world(world.layout.repo, tmux_socket, extra=config)
    run_tick(moved)
    current = moved.registry.read().tasks[task.id]
    assert current.status is Status.running and len(current.attempts) == 1, current.reason
    assert current.reason == "agent running"
    podman.cli("kill", name)  # the next attempt runs where the profile now says: tmux
    state = tick_until(moved, lambda s: len(s.tasks[task.id].attempts) == 2)
    assert state.tasks[task.id].attempts[0].runtime == CONTAINER
    assert state.tasks[task.id].attempts[1].runtime == "tmux"


def test_setup_runs_in_the_container_once_per_worktree(
    git_repo: Path, tmux_socket: str, podman: Podman
) -> None:
    write_config(git_repo, tmux_socket, extra=container_config(podman))
    config = (git_repo / "swarm.toml").read_text().replace(
        'forge = "local"\n', 'forge = "local"\nsetup = "sh -c \'echo set-up-in $(cat /etc/hostname) >> .setup-log\'"\n')
    (git_repo / "swarm.toml").write_text(config)
    world = build_world(git_repo, load(git_repo / "swarm.toml"), RecordingNotifier())
    try:
        task = spawn(world, "scenario: sleep\nretry: commit")
        name = session_for(task.id)
        wait_for(lambda: containers(world).get(name), what="the agent's container running")
        wait_for(lambda: "scenario sleep" in output(world, task), what="the agent to start")
        podman.cli("kill", name)
        tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
        log = (Path(world.registry.read().tasks[task.id].worktree) / ".setup-log").read_text()
        assert log.count("set-up-in") == 1, log
        assert socket.gethostname() not in log, "the setup ran in the container, not on the host"
        assert "$ sh -c" in output(world, task, 1)
        assert "$ sh -c" not in output(world, task, 2)
    finally:
        runtime = world.runner.runtimes[CONTAINER]
        for leftover in runtime.panes() or {}:
            runtime.kill(leftover)


def test_a_stuck_container_agent_is_stopped_and_retried(boxed: tuple[World, Clock, RecordingNotifier]) -> None:
    world, clock, _ = boxed
    task = spawn(world, "scenario: sleep\nretry: commit")
    name = session_for(task.id)
    wait_for(lambda: containers(world).get(name), what="the agent's container running")
    wait_for(lambda: "scenario sleep" in output(world, task), what="the agent to start")
    run_tick(world)  # its first output is progress
    clock.advance(minutes=11)  # stuck_after is 10m
    run_tick(world)
    state = world.registry.read()
    first = state.tasks[task.id].attempts[0]
    assert first.failure is not None and first.failure.kind is FailureKind.stuck
    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    assert len(state.tasks[task.id].attempts) == 2
    assert "scenario sleep" not in output(world, task, 2), "the stuck container was replaced, not reused"
