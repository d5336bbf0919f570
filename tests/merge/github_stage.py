"""A merge-train World on the fake GitHub: a real bare repository as ``origin``, served by the fake on
127.0.0.1 (real PyGithub and httpx), agents that run the steps a test writes, ticks run in this process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from monitor.tick import World
from orchestrator.config import CONFIG_NAME, load
from orchestrator.wiring import build_world
from tests.conftest import git
from tests.fakes.github_server import FakeGitHub
from tests.worlds import REPO_ROOT, Clock, RecordingNotifier, write_config

TOKEN = "ghp_FAKEtoken0123456789abcdefghijklmnopqrst"
REPO = "acme/shop"


def github_world(repo: Path, socket: str, fake: FakeGitHub, steps: Path, monkeypatch: pytest.MonkeyPatch, *,
                 merge_queue: bool = False, done: str = "", merge: str = 'mode = "queue"', monitor: str = "",
                 ) -> tuple[World, RecordingNotifier]:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    steps.mkdir(parents=True, exist_ok=True)
    bare = repo.parent / "remote.git"
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "fetch", "-q", "origin")
    owner, name = REPO.split("/")
    fake.add_repo(owner, name, bare, merge_queue=merge_queue)
    extra = f"""
[github]
repo = "{REPO}"
api_url = "{fake.url}"
ci_grace = "0s"
timeout = "5s"

[done]
{done}

[merge]
{merge}

[agents.steps]
command = ["{sys.executable}", "-m", "tests.merge.steps_agent"]
prompt = "stdin"
env = {{ PYTHONPATH = "{REPO_ROOT}", STEPS_DIR = "{steps}" }}
"""
    write_config(repo, socket, extra=extra, forge="github", monitor=monitor)
    notifier = RecordingNotifier()
    world = build_world(repo, load(repo / CONFIG_NAME), notifier, need_forge=True)
    clock = Clock()
    world.clock = clock
    world.monotonic = clock.monotonic
    return world, notifier
