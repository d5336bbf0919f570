"""A container host that cannot see the worktree (``shares_worktree = false``), through real ticks on a real
podman: nothing of the repository is mounted, the branch is pushed in, and the agent's commits are fetched
back into the local worktree before the attempt counts as exited, so ready and phantom work as anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.runtime.probe import commit_check
from monitor.runtime.remote import RemoteContainerRuntime
from monitor.tick import World
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, load
from registry.models import FailureKind, Status, Task
from tests.conftest import git
from tests.fakes.podman import Podman
from tests.runtime.test_container_lifecycle import tick_until
from tests.runtime.test_placement import hosts_config
from tests.waiting import wait_for
from tests.worlds import make_world, write_config

IDLE = """
[agents.idle]
command = ["sh", "-c", "cat >/dev/null; echo looked around, changed nothing"]
prompt = "stdin"
runtime = "container"

[agents.slow]
command = ["sh", "-c", "cat >/dev/null; echo p > p; git add p; git commit -qm partial; echo committed; sleep 600"]
prompt = "stdin"
runtime = "container"
"""


def remote_config(engine: Podman) -> str:
    return hosts_config(engine.image, [("far", engine.url, 2)]) + "shares_worktree = false\n" + IDLE


@pytest.fixture
def far(git_repo: Path, tmux_socket: str, podman: Podman) -> Iterator[World]:
    world, _, _ = make_world(git_repo, tmux_socket, extra=remote_config(podman))
    yield world
    runtime = world.runner.runtimes["container:far"]
    assert isinstance(runtime, RemoteContainerRuntime)
    for name in runtime.panes() or {}:
        runtime.kill(name)


def spawn(world: World, agent: str, prompt: str) -> Task:
    return task_ops.spawn(world, title="Far", prompt=prompt, agent=agent, kind="default", after=[],
                          base_branch="main")


def test_the_setting_loads_as_a_host_whose_containers_mount_nothing(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket, extra=hosts_config("img", [("far", "ssh://build2", 2)])
                 + "shares_worktree = false\n")
    assert load(git_repo / CONFIG_NAME).runtime.container.hosts[0].shares_worktree is False
    world, _, _ = make_world(git_repo, tmux_socket, extra=hosts_config("img", [("far", "ssh://build2", 2)])
                             + "shares_worktree = false\n")
    assert isinstance(world.runner.runtimes["container:far"], RemoteContainerRuntime)


def test_a_task_on_a_host_that_cannot_see_the_worktree_reaches_ready_with_its_commit_fetched_back(
    far: World, podman: Podman
) -> None:
    world = far
    task = spawn(world, "boxed", "scenario: commit")
    assert task.attempt is not None and task.attempt.runtime == "container:far"
    inspected = podman.cli("inspect", "--format", "{{json .Mounts}}", session_for(task.id))
    assert "bind" not in inspected and str(world.layout.repo) not in inspected, inspected
    base = git(world.layout.repo, "rev-parse", "main")

    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    final = state.tasks[task.id]
    assert len(final.attempts) == 1 and final.attempts[0].exit_code == 0
    branch = f"swarm/{task.id}"
    assert git(world.layout.repo, "log", "--format=%s %an", branch, "-1") == "work 1 swarm-test"
    assert git(world.layout.repo, "rev-parse", f"{branch}~1") == base
    worktree = Path(final.worktree)
    assert (worktree / "work-1.txt").read_text() == "attempt 1\n", "the local worktree holds the agent's work"
    assert git(worktree, "status", "--porcelain") == ""
    log = (world.layout.run_dir(task.id, 1) / "output.log").read_text()
    assert log.count("boxed agent: attempt 1, scenario commit") == 1, "the output came back once: " + log


def test_a_phantom_on_such_a_host_is_still_caught(far: World) -> None:
    world = far
    task = spawn(world, "idle", "do something")
    state = tick_until(world, lambda s: s.tasks[task.id].attempts[0].failure is not None)
    first = state.tasks[task.id].attempts[0]
    assert first.failure is not None and first.failure.kind is FailureKind.phantom, first
    assert first.exit_code == 0
    assert "looked around, changed nothing" in (world.layout.run_dir(task.id, 1) / "output.log").read_text()


def test_an_agent_stopped_while_it_runs_keeps_the_commits_it_made(far: World) -> None:
    world = far
    task = spawn(world, "slow", "work slowly")
    log = world.layout.run_dir(task.id, 1) / "output.log"
    tick_until(world, lambda s: log.exists() and "committed" in log.read_text())
    task_ops.cancel(world, task.id)  # kills the container: what it committed is fetched first
    runtime = world.runner.runtimes["container:far"]
    assert session_for(task.id) not in (runtime.panes() or {})
    assert git(world.layout.repo, "log", "--format=%s", f"swarm/{task.id}", "-1") == "partial"


def test_doctor_does_not_try_a_bind_mounted_commit_on_such_a_host(git_repo: Path) -> None:
    runtime = RemoteContainerRuntime("unix:///nowhere.sock", image="img", owner=str(git_repo))
    ok, line = commit_check(runtime, git_repo, git_repo.parent / "worktrees", [], {})
    assert ok and "not tried on a host that cannot see the worktree" in line
    assert git(git_repo, "worktree", "list").count("\n") == 0, "no throwaway worktree was made"


def test_a_container_killed_from_outside_before_its_fetch_dies_and_the_retry_reaches_ready(
    far: World, podman: Podman
) -> None:
    world = far
    task = spawn(world, "boxed", "scenario: sleep\nretry: commit")
    log = world.layout.run_dir(task.id, 1) / "output.log"
    tick_until(world, lambda s: log.exists() and "scenario sleep" in log.read_text())  # copied while it runs
    podman.cli("kill", session_for(task.id))

    ended = world.registry.read().tasks[task.id]
    assert ended.attempt is not None
    wait_for(lambda: podman.cli("inspect", "--format", "{{.State.Running}}", session_for(task.id)).strip() == "false",
             what="the container to end")
    world.runner.launch(ended, ended.attempt)  # launching it again is a no-op: the dead container is kept
    assert podman.cli("inspect", "--format", "{{.State.ExitCode}}", session_for(task.id)).strip() == "137"

    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    final = state.tasks[task.id]
    assert len(final.attempts) == 2
    failure = final.attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.died, failure
    assert git(world.layout.repo, "log", "--format=%s", f"swarm/{task.id}", "-1") == "work 2"
