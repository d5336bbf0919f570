"""[runtime] and [runtime.container] in swarm.toml, [agents.X] runtime, and how they reach the Runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.runtime.base import CONTAINER, TMUX
from monitor.runtime.container import ContainerRuntime
from orchestrator.config import ConfigError, parse
from orchestrator.wiring import runtimes_from
from registry.models import Attempt
from tests.worlds import make_world

PATH = Path("swarm.toml")


def test_two_lines_move_a_profile_into_containers() -> None:
    settings = parse({"agents": {"claude": {"runtime": "container"}},
                      "runtime": {"container": {"image": "ghcr.io/acme/agent:latest"}}}, PATH)
    assert settings.runtime.default == TMUX
    container = settings.runtime.container
    assert (container.engine, container.network, container.memory, container.cpus, container.pids) == (
        "", "bridge", "4g", 2.0, 1024)


@pytest.mark.parametrize(("raw", "message"), [
    ({"runtime": {"default": "container"}}, "runtime.container.image: required when agents run in containers"),
    ({"agents": {"claude": {"runtime": "container"}}}, "runtime.container.image: required"),
    ({"runtime": {"default": "k8s"}}, "runtime.default: Input should be 'tmux' or 'container'"),
    ({"agents": {"claude": {"runtime": "vm"}}}, "agents.claude: runtime: Input should be"),
    ({"runtime": {"container": {"image": "x", "memory": "lots"}}}, 'runtime.container.memory: invalid memory size'),
    ({"runtime": {"container": {"image": "x", "cpus": 0}}}, "runtime.container.cpus"),
    ({"runtime": {"container": {"image": "x", "gpus": 1}}}, "runtime.container.gpus: unknown key"),
])
def test_bad_runtime_settings_are_one_line_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(raw, PATH)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_runner_picks_the_profile_runtime_else_the_default(git_repo: Path, tmux_socket: str) -> None:
    extra = """
[agents.boxed]
command = ["agent"]
runtime = "container"

[runtime]
default = "tmux"

[runtime.container]
engine = "unix:///nonexistent/engine.sock"
image = "example/agent:1"
memory = "1g"
"""
    world, _, _ = make_world(git_repo, tmux_socket, extra=extra)
    runtime = world.runner.runtimes[CONTAINER]
    assert isinstance(runtime, ContainerRuntime)
    assert (runtime.engine, runtime.image, runtime.owner, runtime.limits.memory) == (
        "unix:///nonexistent/engine.sock", "example/agent:1", str(world.layout.repo), "1g")
    assert world.runner.runtimes[TMUX] is world.tmux
    from orchestrator import tasks as task_ops

    boxed = task_ops.spawn(world, title="t", prompt="p", agent="boxed", kind="default", after=[], base_branch="main")
    # the engine does not answer: the attempt is recorded in the container runtime and its launch waits
    assert boxed.attempt is not None and boxed.attempt.runtime == CONTAINER and boxed.attempt.launched_at is None
    plain = task_ops.spawn(world, title="t", prompt="scenario: sleep", agent="scripted", kind="default", after=[],
                           base_branch="main")
    assert plain.attempt is not None and plain.attempt.runtime == TMUX


def test_no_image_no_container_runtime_and_old_attempts_read_as_tmux(git_repo: Path, tmux_socket: str) -> None:
    world, _, _ = make_world(git_repo, tmux_socket)
    assert set(world.runner.runtimes) == {TMUX}
    from orchestrator.config import load

    assert runtimes_from(world.layout, load(git_repo / "swarm.toml")) == {}
    old = Attempt.model_validate({"number": 1, "session": "s", "prompt_path": "p",
                                  "started_at": "2026-01-01T00:00:00Z"})
    assert old.runtime == TMUX
