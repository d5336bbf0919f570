"""The service wiring as a user runs it: `swarm discover sentry`, discovery as a scheduled chore of
`swarm monitor run-once`, and the tick's cron check-ins to Sentry (real processes, fake Sentry)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.sentry_server import FakeSentry, make_event
from tests.orchestrator.test_discovery import FRAMES
from tests.worlds import write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def swarm(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=90,
                          env={**os.environ, **env})


def configure(repo: Path, socket: str, fake: FakeSentry, every: str = "0s") -> None:
    write_config(repo, socket, extra=f"""
[sentry]
url = "{fake.url}"
org = "acme"
project = "shop"
min_events = 1
discover_every = "{every}"
monitor_slug = "shop-monitor"
""")


def test_discover_sentry_from_the_cli_dry_run_then_for_real(git_repo: Path, tmux_socket: str) -> None:
    with FakeSentry() as fake:
        configure(git_repo, tmux_socket, fake)
        fake.add_issue(41, "KeyError: 'total'", event=make_event("KeyError", "'total'", FRAMES))
        env = {"SENTRY_AUTH_TOKEN": fake.token}
        dry = swarm(git_repo, "discover", "sentry", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert "SHOP-41" in dry.stdout and not (git_repo / ".swarm" / "discovered.json").exists()
        real = swarm(git_repo, "discover", "sentry", "--json", env=env)
        report = json.loads(real.stdout)
        [created] = report["created"]
        task_id = created["task_id"]
        state = json.loads((git_repo / ".swarm" / "registry.json").read_text())
        assert "https://acme.sentry.example/issues/41/" in state["tasks"][task_id]["links"]
        assert [m["kind"] for m in state["outbox"]] == ["discovered"]
        bad = swarm(git_repo, "discover", "sentry", env={"SENTRY_AUTH_TOKEN": "sntrys_wrong"})
        assert bad.returncode == 1 and bad.stderr.startswith("swarm: error: ") and "sntrys_wrong" not in bad.stderr


def test_run_once_checks_in_and_runs_discovery_when_due(git_repo: Path, tmux_socket: str) -> None:
    with FakeSentry() as fake:
        configure(git_repo, tmux_socket, fake, every="1h")
        fake.add_issue(7, "ValueError: bad", event=make_event("ValueError", "bad", FRAMES))
        env = {"SENTRY_AUTH_TOKEN": fake.token, "SENTRY_DSN": fake.dsn}
        first = swarm(git_repo, "monitor", "run-once", env=env)
        assert first.returncode == 0, first.stderr
        assert "sentry: " in first.stdout and "SHOP-7" in first.stdout
        assert fake.wait_for(lambda f: len(f.checkins()) >= 2)
        statuses = [c["status"] for c in fake.checkins()]
        assert statuses[:2] == ["in_progress", "ok"]
        assert {c["monitor_slug"] for c in fake.checkins()} == {"shop-monitor"}
        issue_reads = len(fake.api_requests("/issues/"))
        second = swarm(git_repo, "monitor", "run-once", env=env)
        assert "sentry: " not in second.stdout  # not due again for an hour
        assert len(fake.api_requests("/issues/")) == issue_reads
        assert fake.token not in first.stdout + first.stderr
