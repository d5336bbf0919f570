"""`swarm serve` as a user runs it: a real process, a real tmux server, the scripted agent, the local forge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from monitor.wake import socket_path
from orchestrator.serve.health import SERVE_FILE
from tests.waiting import wait_for
from tests.worlds import REPO_ROOT, write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def _swarm(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=120, check=False)


def statuses(repo: Path) -> dict[str, str]:
    out = _swarm(repo, "status", "--json")
    assert out.returncode == 0, out.stderr
    return {t["id"]: t["status"] for t in json.loads(out.stdout)}


@contextmanager
def serving(repo: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    service = subprocess.Popen([*SWARM, "serve", "--port", "0", *args], cwd=repo, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (repo / ".swarm" / SERVE_FILE).exists() or service.poll() is not None, "serve to start")
        assert service.poll() is None, service.communicate()[1]
        yield service
    finally:
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)
        service.communicate(timeout=60)


def spawn(repo: Path, scenario: str) -> str:
    out = _swarm(repo, "spawn", "--title", "Serve", "--prompt", f"scenario: {scenario}")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_an_agent_exit_reaches_ready_in_seconds_with_a_ten_minute_interval(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket, ci="true")
    state_dir = git_repo / ".swarm"
    with serving(git_repo, "--interval", "10m") as service:
        info = json.loads((state_dir / SERVE_FILE).read_text())
        assert info["pid"] == service.pid and info["interval"] == 600
        assert httpx.get(f"http://127.0.0.1:{info['port']}/healthz").json()["ok"] is True
        task = spawn(git_repo, "commit-good")
        # no timer tick comes for ten minutes: only the wrapper's and the CI job's wakes can get it there
        wait_for(lambda: statuses(git_repo)[task] == "ready", "the task to be ready", timeout=60, interval=0.3)
        shown = _swarm(git_repo, "status")
        assert "serve: running" in shown.stdout, shown.stdout
        service.send_signal(signal.SIGTERM)
        _out, err = service.communicate(timeout=60)
        assert service.returncode == 0, err
    assert "finishing the current tick" in err
    assert not (state_dir / SERVE_FILE).exists() and not socket_path(state_dir).exists()
    assert "serve: running" not in _swarm(git_repo, "status").stdout


def test_a_restart_catches_what_happened_while_it_was_down(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket, ci="true")
    task = spawn(git_repo, "commit-good")  # no service: nothing listens to the agent's exit
    wait_for(lambda: (git_repo / ".swarm" / "runs" / task / "1" / "result.json").exists(), "the agent to exit")
    assert statuses(git_repo)[task] == "running"
    with serving(git_repo, "--interval", "10m"):
        wait_for(lambda: statuses(git_repo)[task] == "ready", "the first tick and the CI job's wake", timeout=60,
                 interval=0.3)


def test_a_port_in_use_is_one_line_and_exit_1(git_repo: Path, tmux_socket: str) -> None:
    import socket

    write_config(git_repo, tmux_socket)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        out = _swarm(git_repo, "serve", "--port", str(taken.getsockname()[1]))
    assert out.returncode == 1
    assert "cannot listen on 127.0.0.1" in out.stderr and "Traceback" not in out.stderr


def test_spawn_retry_and_cancel_wake_a_listening_service(git_repo: Path, tmux_socket: str) -> None:
    from orchestrator.serve.events import EventSocket

    write_config(git_repo, tmux_socket)
    (git_repo / ".swarm").mkdir(exist_ok=True)
    woken: list[set[str]] = []
    events = EventSocket(git_repo / ".swarm", woken.append)
    events.open()
    try:
        task = spawn(git_repo, "sleep")
        wait_for(lambda: {task} in woken, "spawn's wake")
        woken.clear()
        assert _swarm(git_repo, "cancel", task).returncode == 0
        wait_for(lambda: {task} in woken, "cancel's wake")
        woken.clear()
        assert _swarm(git_repo, "retry", task, "--note", "again").returncode == 0
        wait_for(lambda: {task} in woken, "retry's wake")
    finally:
        events.close()


def test_the_http_socket_sends_small_answers_at_once() -> None:
    import socket

    from orchestrator.serve.command import bind_http

    sock = bind_http("127.0.0.1", 0)
    try:  # accepted connections inherit TCP_NODELAY: no 40 ms Nagle wait on a refusal's JSON body
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def test_a_second_service_for_the_same_repository_is_refused(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket)
    with serving(git_repo, "--interval", "10m") as first:
        second = _swarm(git_repo, "serve", "--port", "0")
        assert second.returncode == 1
        assert f"swarm serve already runs for this repository (pid {first.pid}" in second.stderr
        assert first.poll() is None
