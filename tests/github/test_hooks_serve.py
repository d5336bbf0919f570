"""The whole setup a user makes, end to end: `swarm serve` authenticated as a GitHub App (no personal token),
its webhook installed by `swarm github hook install`, the fake GitHub delivering a signed check_run over real
HTTP to the service, which respawns the agent with the failing check's output; `swarm doctor` then reports the
hook and its successful last delivery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orchestrator.serve.health import SERVE_FILE
from tests.fakes.github_server import FakeGitHub
from tests.github.test_app import APP_ID, INSTALLATION
from tests.github.test_hooks import SECRET, app_key
from tests.github.test_scenarios import REPO, SWARM, TOKEN, Stage, stage_for
from tests.serve.conftest import payload
from tests.waiting import wait_for
from tests.worlds import REPO_ROOT

AS_APP = {"GITHUB_TOKEN": "", "SWARM_GITHUB_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as server:
        yield server


@contextmanager
def serving(stage: Stage) -> Iterator[str]:
    env = {**os.environ, **AS_APP, "PYTHONPATH": str(REPO_ROOT)}
    service = subprocess.Popen([*SWARM, "serve", "--port", "0", "--interval", "10m"], cwd=stage.repo, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = stage.repo / ".swarm" / SERVE_FILE
        wait_for(path.exists, "serve to start")
        yield f"http://127.0.0.1:{json.loads(path.read_text())['port']}/webhooks/github"
    finally:
        service.send_signal(signal.SIGTERM)
        _out, err = service.communicate(timeout=60)
        assert service.returncode == 0, err
        assert "PRIVATE KEY" not in err and SECRET not in err


def test_serve_as_the_app_with_an_installed_hook_reacts_to_a_real_delivery(
        git_repo: Path, tmux_socket: str, fake: FakeGitHub, tmp_path: Path) -> None:
    key_file, public = app_key(tmp_path)
    fake.add_app(APP_ID, public, INSTALLATION)
    stage = stage_for(git_repo, tmux_socket, fake, github=f"app_id = {APP_ID}\ninstallation_id = {INSTALLATION}\n"
                                                         f'private_key_file = "{key_file}"\n')
    task_id = stage.swarm("spawn", "--title", "Hooked app", "--prompt", "scenario: commit\nretry: commit",
                          env=AS_APP).splitlines()[0].strip()
    with serving(stage) as url:
        out = stage.swarm("github", "hook", "install", "--url", url, env=AS_APP)
        assert out.startswith("created webhook")
        wait_for(lambda: stage.task(task_id).get("pr") is not None, "the PR to be opened", timeout=60)
        number = stage.task(task_id)["pr"]["number"]
        head = stage.head(task_id)
        fake.add_check_run(REPO, head, "test", conclusion="failure", title="1 test failed", summary="test_y failed")
        data: dict[str, Any] = json.loads(payload("check_run.completed"))
        run = data["check_run"]
        run["head_sha"] = run["check_suite"]["head_sha"] = head
        run["check_suite"]["head_branch"] = f"swarm/{task_id}"
        run["pull_requests"] = [{**run["pull_requests"][0], "number": number}]
        assert fake.deliver(REPO, "check_run", data) == [202]
        wait_for(lambda: len(stage.task(task_id)["attempts"]) == 2, "a respawn on the delivered check", timeout=30)
        assert "test_y failed" in stage.prompt(task_id, 2)
        doctor = stage.swarm("doctor", check=None, env=AS_APP)
    hook_id = fake.hooks(REPO)[0]["id"]
    assert f"ok   github webhook {hook_id} → {url}: active, JSON" in doctor
    assert f"ok   github webhook {hook_id}: last delivery (check_run, " in doctor and "answered 202" in doctor
    assert fake.tokens_minted and all(r.status != 401 for r in fake.requests)
