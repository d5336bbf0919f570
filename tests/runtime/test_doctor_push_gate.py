"""`swarm doctor` on a host with ``push_credential`` (a real podman): a probe container reaches a throwaway
push gate on this machine at the configured address, or doctor says, in one line, what to set."""

from __future__ import annotations

from pathlib import Path

from orchestrator.doctor import run_doctor
from tests.fakes.podman import Podman
from tests.runtime.test_doctor_containers import configure
from tests.runtime.test_remote_push import push_config


def gate_line(repo: Path) -> tuple[bool, str]:
    found = [(good, line) for good, line in run_doctor(repo) if line.startswith("push gate:")]
    assert len(found) == 1, found
    return found[0]


def test_doctor_checks_that_a_container_reaches_the_push_gate(git_repo: Path, tmux_socket: str,
                                                              podman: Podman) -> None:
    configure(git_repo, tmux_socket, push_config(podman))
    good, line = gate_line(git_repo)
    assert good, line
    assert f"a container on {podman.url} reaches this machine at http://127.0.0.1:" in line


def test_doctor_says_what_to_set_when_the_container_cannot_reach_it(git_repo: Path, tmux_socket: str,
                                                                   podman: Podman) -> None:
    config = push_config(podman).replace('network = "host"', 'network = "none"')
    configure(git_repo, tmux_socket, config)
    good, line = gate_line(git_repo)
    assert not good, line
    assert "cannot reach http://127.0.0.1:" in line and "set push_host" in line and "\n" not in line
