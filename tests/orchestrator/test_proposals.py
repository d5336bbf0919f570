"""`swarm proposals` as a user runs it: list, approve (spawns exactly that one, through `swarm spawn`'s code),
drop; an answered proposal cannot be answered again, and two approvals at once make one task."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from orchestrator import proposals
from orchestrator.config import CONFIG_NAME, load
from orchestrator.errors import UsageError
from tests.worlds import make_world

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def swarm(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=60)


def draft(title: str, quote: str) -> proposals.Proposal:
    return proposals.Proposal(id="", kind="request", title=title, description=f"{title}.", quotes=(quote,),
                              source="docs/meetings/sync.md", created_at=NOW)


def test_list_approve_and_drop_from_the_command_line(git_repo: Path, tmux_socket: str) -> None:
    world, _, _ = make_world(git_repo, tmux_socket)
    added = proposals.add(world.layout.state_dir, [draft("Export invoices as CSV", "a CSV export of invoices"),
                                                   draft("Dark mode", "and a dark mode, please")])
    assert [p.id for p in added] == ["p1", "p2"]

    listed = swarm(git_repo, "proposals")
    assert listed.returncode == 0, listed.stderr
    assert "p1  [request] Export invoices as CSV  (from docs/meetings/sync.md)" in listed.stdout
    assert "> and a dark mode, please" in listed.stdout

    approved = swarm(git_repo, "proposals", "approve", "p1")
    assert approved.returncode == 0, approved.stderr
    status = json.loads(swarm(git_repo, "status", "--json").stdout)
    assert [t["title"] for t in status] == ["Export invoices as CSV"], "exactly that one is spawned"
    assert approved.stdout.startswith(f"p1: task {status[0]['id']} spawned")

    again = swarm(git_repo, "proposals", "approve", "1")
    assert again.returncode == 2
    assert again.stderr.strip() == f"swarm: error: proposal p1 is already approved (task {status[0]['id']})"
    assert swarm(git_repo, "proposals", "drop", "p2").returncode == 0
    assert swarm(git_repo, "proposals").stdout.startswith("no proposals waiting")
    every = json.loads(swarm(git_repo, "proposals", "--all", "--json").stdout)
    assert [(p["id"], p["status"]) for p in every] == [("p1", "approved"), ("p2", "dropped")]
    missing = swarm(git_repo, "proposals", "approve", "p9")
    assert missing.returncode == 2 and "no proposal 'p9'" in missing.stderr
    assert len(json.loads(swarm(git_repo, "status", "--json").stdout)) == 1


def test_two_approvals_at_once_make_one_task(git_repo: Path, tmux_socket: str) -> None:
    world, _, _ = make_world(git_repo, tmux_socket)
    settings = load(git_repo / CONFIG_NAME)
    proposals.add(world.layout.state_dir, [draft("Export invoices as CSV", "a CSV export of invoices")])
    outcomes: list[str] = []
    go = threading.Barrier(2)

    def approve() -> None:
        go.wait()
        try:
            outcomes.append(proposals.approve(world, settings, "p1").task_id)
        except UsageError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(world.registry.read().tasks) == 1
    assert sorted(o.startswith("proposal p1 is already") for o in outcomes) == [False, True]
