"""The dashboard as a user gets it: `swarm serve` (a real process, real tmux, the scripted agent, the local
forge) serving the board at its address, a task spawned from the CLI moving across the open board in a
real browser until it is ready, and nothing secret in what the service answers."""

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

from orchestrator.serve.health import SERVE_FILE
from tests.dashboard.conftest import PLANTED
from tests.serve.test_serve import SWARM, spawn
from tests.waiting import wait_for
from tests.worlds import REPO_ROOT, write_config


@contextmanager
def serving(repo: Path, *args: str, token: bool = False) -> Iterator[str]:
    env = {**os.environ, **PLANTED, "PYTHONPATH": str(REPO_ROOT)}
    env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:9"  # the planted model key must never reach out (discard port)
    if not token:
        env.pop("SWARM_SERVE_TOKEN")
    service = subprocess.Popen([*SWARM, "serve", "--port", "0", *args], cwd=repo, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        state = repo / ".swarm" / SERVE_FILE
        wait_for(lambda: state.exists() or service.poll() is not None, "serve to start")
        assert service.poll() is None, service.communicate()[1]
        yield f"http://127.0.0.1:{json.loads(state.read_text())['port']}"
    finally:
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)
        _out, err = service.communicate(timeout=60)
        for value in PLANTED.values():
            assert value not in err and value not in _out


def test_a_spawned_task_crosses_the_open_board_to_ready(browser: Any, git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket, ci="true")
    with serving(git_repo, "--interval", "10m") as url:
        page = browser.new_page()
        page.goto(url + "/")
        wait_for(lambda: page.evaluate("document.body.dataset.live") == "on", "the event stream to open")
        page.evaluate("window.__same_page = true")
        task = spawn(git_repo, "commit-good")
        page.wait_for_selector(f"[data-task='{task}']", timeout=10_000)
        page.wait_for_selector(f"#col-ready [data-task='{task}']", timeout=60_000)
        assert page.evaluate("window.__same_page") is True
        assert "Serve" in page.locator("section.needs").inner_text()
        header = page.locator("section.fleet").inner_text()
        assert "running (pid" in header and "never" not in header.split("last webhook")[0]
        page.goto(f"{url}/tasks/{task}")
        assert "Attempt 1" in page.content() and page.locator("#tail").count() == 0  # no live tail: it ended
        assert "scripted agent: attempt 1" in (page.locator("#tr-1 pre").text_content() or "")
        with httpx.Client(base_url=url, timeout=10) as client:
            answers = [client.get(p).text for p in ("/", f"/tasks/{task}", f"/tasks/{task}/tail", "/healthz")]
        for value in PLANTED.values():
            assert all(value not in answer for answer in answers)
        page.close()


def test_on_every_address_with_the_token_the_pages_ask_for_it(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket)
    with serving(git_repo, "--host", "0.0.0.0", "--interval", "10m", token=True) as url, \
            httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/").status_code == 401
        assert client.get("/healthz").status_code == 200
        signed = client.get("/", headers={"Authorization": f"Bearer {PLANTED['SWARM_SERVE_TOKEN']}"})
        assert signed.status_code == 200 and PLANTED["SWARM_SERVE_TOKEN"] not in signed.text
