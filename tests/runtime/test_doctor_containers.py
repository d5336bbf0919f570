"""`swarm doctor` with a profile routed into containers, against a real podman: the engine (reachable,
which version), the image (present), and a container that commits in a throwaway worktree with an
attempt's mounts and user, leaving nothing behind; each wrong answer is one line with its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.runtime.container import REPO_LABEL
from orchestrator.doctor import run_doctor
from tests.conftest import git
from tests.fakes.podman import Podman
from tests.runtime.test_container_lifecycle import container_config
from tests.runtime.test_placement import hosts_config
from tests.worlds import write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def configure(repo: Path, socket: str, extra: str, *, routed: bool = True) -> None:
    path = write_config(repo, socket, extra=extra)
    if routed:
        path.write_text(path.read_text().replace('default = "scripted"\n', 'default = "scripted"\nboxed = "boxed"\n'))


def lines(repo: Path) -> dict[str, tuple[bool, str]]:
    """The container lines of doctor, by their first word(s)."""
    found: dict[str, tuple[bool, str]] = {}
    for good, line in run_doctor(repo):
        for key in ("container engine", "container host", "image", "container commit", "agent boxed"):
            if line.startswith(key):
                found[line.split(":", 1)[0] if key == "container host" else key] = (good, line)
    return found


def leftovers(repo: Path, engine: Podman) -> tuple[int, str, str]:
    containers = engine.cli("ps", "-a", "--filter", f"label={REPO_LABEL}", "--format", "{{.Names}}").split()
    return (git(repo, "worktree", "list", "--porcelain").count("worktree "), " ".join(
        n for n in containers if n.startswith("swarm-doctor")), git(repo, "branch", "--format=%(refname:short)"))


def test_a_routed_container_profile_gets_the_engine_the_image_and_a_commit_checked(
    git_repo: Path, tmux_socket: str, podman: Podman
) -> None:
    configure(git_repo, tmux_socket, container_config(podman))
    before = git(git_repo, "rev-parse", "HEAD")
    found = lines(git_repo)
    assert found["container engine"][0], found
    assert f"{podman.url} answers: Podman Engine 4." in found["container engine"][1]
    assert "(API 1.4" in found["container engine"][1]
    assert found["image"] == (True, found["image"][1]) and f"image {podman.image}: present on" in found["image"][1]
    assert found["container commit"][0], found["container commit"][1]
    assert "wrote a commit in a throwaway worktree as uid:gid" in found["container commit"][1]
    assert found["agent boxed"] == (True, f"agent boxed (routing: boxed): runs in a container ({podman.image})")
    assert leftovers(git_repo, podman) == (1, "", "main"), "no worktree, container or branch is left behind"
    assert git(git_repo, "rev-parse", "HEAD") == before


def test_the_cli_exits_1_when_the_image_is_missing_and_says_how_to_get_it(
    git_repo: Path, tmux_socket: str, podman: Podman
) -> None:
    configure(git_repo, tmux_socket, container_config(podman).replace(podman.image, "localhost/not-built:1"))
    result = subprocess.run([*SWARM, "doctor"], cwd=git_repo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "FAIL image localhost/not-built:1: not on" in result.stdout
    assert "pull localhost/not-built:1" in result.stdout
    assert "container commit" not in result.stdout, "no commit probe without the image"
    assert "ok   container engine:" in result.stdout


def test_an_unreachable_engine_is_one_line_and_nothing_more_is_tried(
    git_repo: Path, tmux_socket: str, tmp_path: Path
) -> None:
    gone = Podman(url=f"unix://{tmp_path}/no.sock", root=tmp_path, env={})
    configure(git_repo, tmux_socket, container_config(gone))
    found = lines(git_repo)
    good, line = found["container engine"]
    assert not good and "cannot be reached" in line and "podman system service" in line and "\n" not in line
    assert "image" not in found and "container commit" not in found


def test_an_agent_command_missing_from_the_image_is_named(git_repo: Path, tmux_socket: str, podman: Podman) -> None:
    config = container_config(podman).replace('command = ["python3", "-c",', 'command = ["no-such-agent-cli", "-c",')
    configure(git_repo, tmux_socket, config)
    good, line = lines(git_repo)["container commit"]
    assert not good and "no-such-agent-cli is not on the image's PATH" in line
    assert leftovers(git_repo, podman) == (1, "", "main")


def test_nothing_is_asked_of_an_engine_when_no_routed_profile_runs_in_a_container(
    git_repo: Path, tmux_socket: str, tmp_path: Path
) -> None:
    gone = Podman(url=f"unix://{tmp_path}/no.sock", root=tmp_path, env={})
    configure(git_repo, tmux_socket, container_config(gone), routed=False)
    found = lines(git_repo)
    assert "container engine" not in found and "image" not in found


def test_each_listed_host_is_checked_on_its_own(git_repo: Path, tmux_socket: str, podman: Podman,
                                                tmp_path: Path) -> None:
    hosts = [("here", podman.url, 2), ("far", f"unix://{tmp_path}/no.sock", 2)]
    configure(git_repo, tmux_socket, hosts_config(podman.image, hosts))
    found = lines(git_repo)
    assert found["container host here"][0] and "answers: Podman Engine" in found["container host here"][1]
    assert not found["container host far"][0] and "cannot be reached" in found["container host far"][1]
    assert found["container commit"][0], "the reachable host's probe ran"
    summary = [line for _, line in run_doctor(git_repo) if line.startswith("container hosts:")]
    assert summary == ["container hosts: 4 slot(s) in all (here 2, far 2), filled in this order"]
    configure(git_repo, tmux_socket, hosts_config(podman.image, hosts[:1]))
    summary = [line for _, line in run_doctor(git_repo) if line.startswith("container hosts:")]
    assert summary == ["container hosts: 2 slot(s) in all (here 2), filled in this order; monitor.max_parallel = 4 "
                       "is more, so some attempts will wait for a slot (set it to 2 or add slots)"]


def test_a_user_without_a_git_identity_is_told_to_set_one(
    git_repo: Path, tmux_socket: str, podman: Podman, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(git_repo, tmux_socket, container_config(podman))
    for role in ("AUTHOR", "COMMITTER"):
        for part in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{role}_{part}")
    good, line = lines(git_repo)["container commit"]
    assert not good and "set your git identity" in line and "\n" not in line
    assert leftovers(git_repo, podman) == (1, "", "main")
