"""`swarm serve` on the GitHub forge: a signed webhook (check run completed, review submitted) makes the
service act on the task at once, with a ten-minute reconcile timer. Real PyGithub and httpx against the
fake GitHub on 127.0.0.1, real git (a bare remote), real tmux agents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.serve.health import SERVE_FILE, WEBHOOK_FILE
from tests.fakes.github_server import FakeGitHub
from tests.github.test_scenarios import REPO, SWARM, TOKEN, Stage, stage_for
from tests.serve.conftest import SECRET, payload, signed_headers
from tests.waiting import wait_for
from tests.worlds import REPO_ROOT


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as server:
        yield server


@contextmanager
def serving(stage: Stage) -> Iterator[str]:
    env = {**os.environ, "GITHUB_TOKEN": TOKEN, "SWARM_GITHUB_WEBHOOK_SECRET": SECRET.decode(),
           "PYTHONPATH": str(REPO_ROOT)}
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


def deliver(url: str, event: str, name: str, edit: Any) -> None:
    data = json.loads(payload(name))
    edit(data)
    body = json.dumps(data).encode()
    answer = httpx.post(url, content=body, headers=signed_headers(body, event))
    assert answer.status_code == 202, answer.text


def test_a_failed_check_run_webhook_respawns_and_an_approval_makes_it_ready(
        git_repo: Path, tmux_socket: str, fake: FakeGitHub) -> None:
    stage = stage_for(git_repo, tmux_socket, fake, done="reviews = 1")
    task_id = stage.spawn("Hooked", "scenario: commit\nretry: commit")
    with serving(stage) as url:
        # the agent's exit wakes the service: it pushes, opens the PR and waits for CI and a review
        wait_for(lambda: stage.task(task_id).get("pr") is not None, "the PR to be opened", timeout=60)
        number = stage.task(task_id)["pr"]["number"]
        head = stage.head(task_id)
        fake.add_check_run(REPO, head, "test", conclusion="failure", title="1 test failed", summary="test_x failed")

        def check_run(data: dict[str, Any]) -> None:
            run = data["check_run"]
            run["head_sha"] = run["check_suite"]["head_sha"] = head
            run["check_suite"]["head_branch"] = f"swarm/{task_id}"
            run["pull_requests"] = [{**run["pull_requests"][0], "number": number}]

        deliver(url, "check_run", "check_run.completed", check_run)
        wait_for(lambda: len(stage.task(task_id)["attempts"]) == 2, "a respawn on the failed check", timeout=30)
        assert "test_x failed" in stage.prompt(task_id, 2)
        wait_for(lambda: stage.task(task_id)["status"] == "checking" and stage.head(task_id) != head
                 and fake.branch_sha(REPO, f"swarm/{task_id}") == stage.head(task_id),
                 "the second attempt pushed", timeout=60)
        new_head = stage.head(task_id)
        fake.add_check_run(REPO, new_head, "test", conclusion="success")
        fake.add_review(REPO, number, "carol", "APPROVED", body="ship it")

        def review(data: dict[str, Any]) -> None:
            data["pull_request"]["number"] = number
            data["pull_request"]["head"] = {**data["pull_request"]["head"], "ref": f"swarm/{task_id}",
                                            "sha": new_head}

        deliver(url, "pull_request_review", "pull_request_review.submitted", review)
        wait_for(lambda: stage.task(task_id)["status"] == "ready", "ready on the approval", timeout=30)
    hook = json.loads((git_repo / ".swarm" / WEBHOOK_FILE).read_text())
    assert hook["event"] == "pull_request_review" and hook["tasks"] == 1
