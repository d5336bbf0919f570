"""`swarm attach` on a task whose agent runs in a container: a shell inside that container, in a terminal."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

from monitor.layout import session_for
from tests.fakes.podman import Podman
from tests.runtime.test_container_lifecycle import container_config, containers, output, spawn
from tests.waiting import wait_for
from tests.worlds import make_world

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def _in_terminal(argv: list[str], cwd: Path, typed: bytes, timeout: float = 60) -> str:
    """Run ``argv`` on a pseudo-terminal, type ``typed``, and return everything it printed until it exits."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        os.chdir(cwd)
        os.execvp(argv[0], argv)
    os.write(fd, typed)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the terminal closed: the command exited
            break
        if not chunk:
            break
        seen += chunk
    os.close(fd)
    os.waitpid(pid, 0)
    return seen.decode(errors="replace")


def test_swarm_attach_opens_a_shell_in_the_agents_container(git_repo: Path, tmux_socket: str, podman: Podman) -> None:
    world, _, _ = make_world(git_repo, tmux_socket, extra=container_config(podman))
    task = spawn(world, "scenario: sleep")
    name = session_for(task.id)
    try:
        wait_for(lambda: containers(world).get(name), what="the agent's container running")
        wait_for(lambda: "scenario sleep" in output(world, task), what="the agent to start")
        printed = _in_terminal([*SWARM, "attach", task.id], git_repo,
                               b"echo in-$(tr '\\0' '\\n' < /proc/1/cmdline | grep -c swarm-entry)-$(id -u); exit\n")
        assert f"in-1-{os.getuid()}" in printed, printed
    finally:
        world.runner.kill_agent(world.registry.read().tasks[task.id])
