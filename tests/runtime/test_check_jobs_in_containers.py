"""A task whose agent ran in a container gets its check jobs (local CI, local reviewers) in a container like
its agent's, on a real podman: the CI command's own output says where it ran, its verdict is read as
before (pass: ready; fail: ci_failed with the output as evidence), a killed job leaves no container, and
the AI review lenses and tmux tasks' jobs stay on the host."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.agent_run import LOG, SPEC
from monitor.layout import job_session_for
from monitor.runtime.checkjob import CHECK_LABEL
from monitor.tick import World
from orchestrator import tasks as task_ops
from registry.models import Attempt, FailureKind, Status, Task
from tests.conftest import git
from tests.fakes.podman import Podman
from tests.runtime.test_container_lifecycle import container_config, tick_until
from tests.runtime.test_placement import hosts_config
from tests.waiting import wait_for
from tests.worlds import make_world

WHERE = ('sh -c "echo ci-hostname=$(hostname); test -e /run/.containerenv && echo in-a-container; '
         'test -e work-1.txt && echo sees-the-agent-commit; echo cgroup=$(head -n 1 /proc/1/cgroup)"')


def make(git_repo: Path, tmux_socket: str, engine: Podman, ci: str, *, remote: bool = False) -> World:
    config = (hosts_config(engine.image, [("far", engine.url, 2)]) + "shares_worktree = false\n" if remote
              else container_config(engine))
    world, _, _ = make_world(git_repo, tmux_socket, extra=config, ci=ci)
    return world


@pytest.fixture
def cleanup(podman: Podman) -> Iterator[list[World]]:
    worlds: list[World] = []
    yield worlds
    for world in worlds:
        for runtime in world.runner.runtimes.values():
            if runtime is not world.tmux:
                for name in runtime.panes() or {}:
                    runtime.kill(name)


def spawn(world: World, prompt: str = "scenario: commit") -> Task:
    return task_ops.spawn(world, title="Checked", prompt=prompt, agent="boxed", kind="default", after=[],
                          base_branch="main")


def job_output(world: World, task: Task, job: str = "ci") -> str:
    head = git(world.layout.repo, "rev-parse", task.branch)
    return (world.layout.job_dir(task.id, head, job) / LOG).read_text(errors="replace")


def check_containers(engine: Podman) -> list[str]:
    return engine.cli("ps", "-a", "--filter", f"label={CHECK_LABEL}", "--format", "{{.Names}}").split()


@pytest.mark.parametrize("remote", [False, True], ids=["shared", "remote"])
def test_a_container_tasks_ci_runs_in_a_container_and_its_pass_is_read_as_before(
    git_repo: Path, tmux_socket: str, podman: Podman, cleanup: list[World], remote: bool
) -> None:
    world = make(git_repo, tmux_socket, podman, WHERE, remote=remote)
    cleanup.append(world)
    task = spawn(world)
    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    assert state.tasks[task.id].checks.get("ci") == "pass", state.tasks[task.id].checks
    out = job_output(world, task)
    assert "in-a-container" in out, out
    assert "sees-the-agent-commit" in out, "the job ran at the agent's head: " + out
    hostname = out.split("ci-hostname=", 1)[1].split()[0]
    assert hostname and hostname != socket.gethostname(), out
    head = git(world.layout.repo, "rev-parse", task.branch)
    spec = json.loads((world.layout.job_dir(task.id, head, "ci") / SPEC).read_text())
    assert spec["container"]["image"] == podman.image and spec["container"]["network"] == "none"
    assert spec["container"]["memory"] == "256m" and spec["container"]["shares_worktree"] is (not remote)
    assert check_containers(podman) == [], "the job's container is removed"


def test_a_failing_ci_in_a_container_is_ci_failed_with_its_output(
    git_repo: Path, tmux_socket: str, podman: Podman, cleanup: list[World]
) -> None:
    ci = 'sh -c "echo ci-hostname=$(hostname); exit 3"'
    world = make(git_repo, tmux_socket, podman, ci)
    cleanup.append(world)
    task = spawn(world)
    state = tick_until(world, lambda s: s.tasks[task.id].attempts[0].failure is not None)
    failure = state.tasks[task.id].attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.ci_failed, failure
    ran_on = failure.evidence.split("\nci-hostname=", 1)[1].split()[0]  # its output, not the command's text
    assert ran_on and ran_on != socket.gethostname(), failure.evidence


def test_a_killed_check_job_leaves_no_container(
    git_repo: Path, tmux_socket: str, podman: Podman, cleanup: list[World]
) -> None:
    world = make(git_repo, tmux_socket, podman, 'sh -c "echo checking; sleep 600"')
    cleanup.append(world)
    task = spawn(world)
    session = job_session_for(task.id, "ci")
    tick_until(world, lambda s: session in check_containers(podman))
    assert "checking" in wait_for(lambda: job_output(world, task) if "checking" in job_output(world, task) else "",
                                  what="the job's output to stream back")
    world.tmux.kill(session)
    wait_for(lambda: session not in check_containers(podman), what="the job's container to be removed")


def test_lenses_and_tmux_tasks_keep_their_jobs_on_the_host(git_repo: Path, tmux_socket: str, podman: Podman) -> None:
    world = make(git_repo, tmux_socket, podman, "true")
    now = world.clock()
    first = Attempt(number=1, session="swarm-t1", prompt_path="p", started_at=now, runtime="container")
    boxed = Task(id="t1", title="t", prompt="p", agent="boxed", branch="swarm/t1", worktree=str(git_repo),
                 base_branch="main", created_at=now, updated_at=now, attempts=(first,))
    runner = world.runner
    assert runner._job_runtime(boxed, "ci") is runner.runtimes["container"]
    assert runner._job_runtime(boxed, "review-lint") is runner.runtimes["container"]
    assert runner._job_runtime(boxed, "review-swarm-security") is None, "a lens needs the model key: the host"
    tmux_task = boxed.model_copy(update={"attempts": (boxed.attempts[0].model_copy(update={"runtime": "tmux"}),)})
    assert runner._job_runtime(tmux_task, "ci") is None
