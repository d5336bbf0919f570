"""The long-running monitor (APScheduler loop, SIGTERM) and `swarm demo`, as a user runs them."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from monitor.layout import Layout
from monitor.tick import tick_lock
from orchestrator.demo import run_demo
from tests.worlds import write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def _status(repo: Path) -> list[dict[str, object]]:
    out = subprocess.run([*SWARM, "status", "--json"], cwd=repo, capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def test_daemon_ticks_at_once_and_stops_cleanly_on_sigterm(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket, ci="grep -q good value.txt")
    subprocess.run([*SWARM, "spawn", "--title", "Good", "--prompt", "scenario: commit-good"], cwd=git_repo,
                   check=True, capture_output=True)
    # `ready` takes several ticks (agent exit, CI job, verdict): a short interval keeps the test quick.
    daemon = subprocess.Popen([*SWARM, "monitor", "daemon", "--interval", "1s"], cwd=git_repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _status(git_repo)[0]["status"] != "ready":
            time.sleep(0.5)
        assert _status(git_repo)[0]["status"] == "ready"
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "ticking every 1s" in err
    assert "PR ready for review" in out
    with tick_lock(Layout.for_repo(git_repo)) as acquired:
        assert acquired, "the daemon released the tick lock"


def test_daemon_first_tick_is_immediate(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket)
    subprocess.run([*SWARM, "spawn", "--title", "Sleepy", "--prompt", "scenario: sleep"], cwd=git_repo,
                   check=True, capture_output=True)
    events = git_repo / ".swarm" / "events.jsonl"
    before = events.read_text().count("\n")
    registry = git_repo / ".swarm" / "registry.json"
    serial = json.loads(registry.read_text())["serial"]
    daemon = subprocess.Popen([*SWARM, "monitor", "daemon", "--interval", "1h"], cwd=git_repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and json.loads(registry.read_text())["serial"] == serial:
            time.sleep(0.2)
        assert json.loads(registry.read_text())["serial"] > serial, "no tick within 20 s of an hourly daemon"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
    assert daemon.returncode == 0
    assert events.read_text().count("\n") >= before


def test_demo_shows_the_whole_lifecycle_and_checks_its_claims() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    started = time.monotonic()
    code = run_demo(console)
    elapsed = time.monotonic() - started
    out = buffer.getvalue()
    assert code == 0, out
    assert elapsed < 60, f"the demo took {elapsed:.1f}s"
    for claim in ("all four tasks ended ready", "three agents ran in parallel", "killed agent was seen as died",
                  "failed CI", "retry prompt carried the CI output", "phantom success was caught"):
        assert f"✓ {claim}" in out or any(claim in line and "✓" in line for line in out.splitlines()), claim
    assert out.count("PR ready for review") == 4
    assert "demo passed" in out
