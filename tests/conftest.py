"""Shared fixtures: real git repositories and a private tmux server per test, and guards that make a
test fail loudly when it would touch the network or the real home directory."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.world.tmux import Tmux

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh HOME and git identity for every test; no inherited tmux client or tokens."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "swarm-test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@swarm.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "swarm-test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@swarm.invalid")
    for name in ("TMUX", "TMUX_PANE", "GITHUB_TOKEN", "GH_TOKEN", "SLACK_BOT_TOKEN", "SENTRY_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connecting anywhere but loopback fails the test: outside services are faked on 127.0.0.1."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"test tried to reach {address!r}; fake the service on 127.0.0.1")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    """The name of a private tmux socket (``tmux -L NAME``); its server is killed after the test."""
    name = f"swarm-test-{secrets.token_hex(4)}"
    yield name
    Tmux(name).kill_server()  # and its socket file


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A private podman serving the Docker Engine API (``.url``) with the offline base image (``.image``),
    one per test worker. Skipped only outside CI when podman is missing; in CI that fails the test."""
    from tests.fakes import podman as fake

    if not fake.available():
        if not os.environ.get("CI"):
            pytest.skip("podman/debootstrap not installed (scripts/ensure-system-deps installs them)")
        pytest.fail("podman/debootstrap not installed: scripts/ensure-system-deps must install them in CI")
    with fake.podman_service(tmp_path_factory.mktemp("podman")) as engine:
        yield engine


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real repository on branch ``main`` with one commit, under ``tmp_path/repo``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# demo\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def fixtures_dir() -> Path:
    """Real recorded outputs of the Claude Code and Codex CLIs (see the README in each folder)."""
    return FIXTURES


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stripped stdout (for test setup and assertions)."""
    return _git(cwd, *args)


__all__ = ["git"]
