"""A registry that parses but is wrong, through the `swarm` command line: the user's exact story (`{}` in
registry.json made `status` say "no tasks yet" and the next spawn overwrite the good backup)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.test_cli import one_line_error, swarm
from tests.worlds import write_config


@pytest.fixture
def repo(git_repo: Path, tmux_socket: str) -> Path:
    write_config(git_repo, tmux_socket)
    return git_repo


@pytest.mark.parametrize("wrong", [b"{}", b'{"tasks": {}, "serial": 0}'], ids=["empty-object", "no-version"])
def test_an_emptied_registry_is_damaged_and_restore_brings_the_tasks_back(repo: Path, wrong: bytes) -> None:
    for title in ("First", "Second"):
        swarm(repo, "spawn", "--title", title, "--prompt", "scenario: sleep")
    registry = repo / ".swarm" / "registry.json"
    backup = repo / ".swarm" / "registry.json.bak"
    registry.write_bytes(wrong)
    good_backup = backup.read_bytes()

    status = swarm(repo, "status", "--json")
    assert "WARNING" in status.stderr and "swarm registry restore" in status.stderr
    assert sorted(t["title"] for t in json.loads(status.stdout)) == ["First", "Second"]  # not "no tasks yet"
    assert "restore" in one_line_error(swarm(repo, "spawn", "--title", "Third", "--prompt", "p", check=1))
    assert "restore" in one_line_error(swarm(repo, "monitor", "run-once", check=1))
    assert registry.read_bytes() == wrong
    assert backup.read_bytes() == good_backup, "the empty state was copied over the good backup"

    swarm(repo, "registry", "restore")
    assert sorted(t["title"] for t in json.loads(swarm(repo, "status", "--json").stdout)) == ["First", "Second"]
    [aside] = (repo / ".swarm").glob("registry.json.damaged-*")
    assert aside.read_bytes() == wrong


def test_restore_refuses_to_put_the_older_backup_over_a_healthy_registry(repo: Path) -> None:
    for title in ("First", "Second"):
        swarm(repo, "spawn", "--title", title, "--prompt", "scenario: sleep")
    registry = repo / ".swarm" / "registry.json"
    before = registry.read_bytes()
    line = one_line_error(swarm(repo, "registry", "restore", check=1))
    assert "nothing was restored" in line
    assert registry.read_bytes() == before
    assert sorted(t["title"] for t in json.loads(swarm(repo, "status", "--json").stdout)) == ["First", "Second"]
