"""The `swarm` command line as a user runs it: real processes, a real repository, a private tmux socket."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.layout import Layout
from registry.models import SCHEMA_VERSION
from tests.conftest import git
from tests.waiting import wait_for, wait_for_output
from tests.worlds import write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def swarm(repo: Path, *args: str, check: int | None = 0, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=timeout)
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def repo(git_repo: Path, tmux_socket: str) -> Path:
    write_config(git_repo, tmux_socket, ci="grep -q good value.txt")
    return git_repo


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("swarm: error: ")
    return lines[0]


def test_init_writes_a_valid_config_and_excludes_the_state_dir(git_repo: Path) -> None:
    out = swarm(git_repo, "init", "--forge", "local")
    assert "wrote" in out.stdout
    assert (git_repo / "swarm.toml").is_file()
    assert (git_repo / ".swarm").is_dir()
    assert ".swarm/" in (git_repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert git(git_repo, "status", "--porcelain", "--ignored", ".swarm") in ("", "!! .swarm/")
    again = swarm(git_repo, "init", check=2)
    assert "already exists" in one_line_error(again)
    bad = swarm(git_repo, "init", "--forge", "github", "--force", check=2)
    assert "--repo OWNER/NAME" in one_line_error(bad)


def test_init_outside_git_is_a_clear_error(tmp_path: Path) -> None:
    result = swarm(tmp_path, "init", check=2)
    assert "not inside a git repository" in one_line_error(result)


def test_unknown_key_and_bad_value_are_one_line_exit_2(repo: Path) -> None:
    config = repo / "swarm.toml"
    config.write_text(config.read_text().replace("max_attempts = 3", "max_attempts = 3\nstuck_afterr = '5m'"))
    result = swarm(repo, "status", check=2)
    line = one_line_error(result)
    assert "swarm.toml" in line and "monitor.stuck_afterr" in line
    config.write_text(config.read_text().replace("stuck_afterr = '5m'", "interval = 'soon'"))
    line = one_line_error(swarm(repo, "status", check=2))
    assert "monitor.interval" in line and "bad duration" in line


def test_no_config_says_to_run_init(tmp_path: Path) -> None:
    assert "swarm init" in one_line_error(swarm(tmp_path, "status", check=2))


def test_spawn_validates_its_input(repo: Path) -> None:
    assert "--agent 'nope'" in one_line_error(swarm(repo, "spawn", "--title", "T", "--prompt", "p", "--agent",
                                                    "nope", check=2))
    assert "exactly one of" in one_line_error(swarm(repo, "spawn", "--title", "T", check=2))
    assert "no such task" in one_line_error(swarm(repo, "spawn", "--title", "T", "--prompt", "p", "--after",
                                                  "ghost-0000", check=2))
    assert "--prompt-file" in one_line_error(swarm(repo, "spawn", "--title", "T", "--prompt-file", "missing.md",
                                                   check=2))
    assert json.loads(swarm(repo, "status", "--json").stdout) == [], "nothing half-made by a rejected spawn"


def test_spawn_status_logs_cancel_and_retry(repo: Path) -> None:
    (repo / "task.md").write_text("Make value.txt good.\nscenario: sleep\nretry: commit-good\n")
    spawned = swarm(repo, "spawn", "--title", "Add CSV export", "--prompt-file", "task.md")
    task_id = spawned.stdout.strip()
    assert task_id.startswith("add-csv-export-")
    follower = swarm(repo, "spawn", "--title", "Docs", "--prompt", "scenario: commit-good", "--after", task_id)
    follower_id = follower.stdout.strip()

    tasks = {t["id"]: t for t in json.loads(swarm(repo, "status", "--json").stdout)}
    task = tasks[task_id]
    for key in ("id", "title", "status", "attempts", "branch", "worktree", "session", "pr", "checks", "reason",
                "tokens", "cost_usd", "created_at", "updated_at"):
        assert key in task
    assert task["status"] == "running" and task["branch"] == f"swarm/{task_id}"
    assert task["session"] == f"swarm-{task_id}"
    assert not Path(task["worktree"]).is_relative_to(repo)
    assert tasks[follower_id]["status"] == "queued" and task_id in tasks[follower_id]["reason"]

    table = swarm(repo, "status").stdout
    assert task_id in table and "running" in table
    wait_for_output(Layout.for_repo(repo), task_id, "scripted agent: attempt 1")
    assert "scenario" in swarm(repo, "logs", task_id[:12], "--prompt").stdout
    assert "scripted agent: attempt 1" in swarm(repo, "logs", task_id).stdout

    retried = swarm(repo, "retry", task_id, "--note", "write good into value.txt")
    assert "attempt 2" in retried.stdout
    prompt = swarm(repo, "logs", task_id, "--prompt").stdout
    assert "write good into value.txt" in prompt and "Attempt 2" in prompt

    swarm(repo, "cancel", follower_id)
    assert json.loads(swarm(repo, "status", follower_id, "--json").stdout)["status"] == "cancelled"
    assert "already cancelled" in one_line_error(swarm(repo, "cancel", follower_id, check=2))


def test_run_once_drives_a_task_to_ready_and_prints_the_notification(repo: Path) -> None:
    task_id = swarm(repo, "spawn", "--title", "Good", "--prompt", "scenario: commit-good").stdout.strip()
    printed: list[str] = []

    def ticked_to_ready() -> bool:
        printed.append(swarm(repo, "monitor", "run-once").stdout)
        return bool(json.loads(swarm(repo, "status", task_id, "--json").stdout)["status"] == "ready")

    wait_for(ticked_to_ready, f"task {task_id} to be ready", timeout=60, interval=0.2)
    printed_text = "".join(printed)
    assert "PR ready for review" in printed_text and task_id in printed_text
    report = json.loads(swarm(repo, "monitor", "run-once", "--json").stdout)
    assert report["skipped"] is False and report["tasks"] == 1


def test_corrupt_registry_is_never_reset(repo: Path) -> None:
    swarm(repo, "spawn", "--title", "Keep me", "--prompt", "scenario: sleep")
    registry = repo / ".swarm" / "registry.json"
    good = registry.read_bytes()
    registry.write_bytes(good[: len(good) // 2])
    damaged = registry.read_bytes()

    result = swarm(repo, "monitor", "run-once", check=1)
    assert "swarm registry restore" in one_line_error(result)
    assert registry.read_bytes() == damaged, "a damaged registry is not overwritten"
    status = swarm(repo, "status", "--json")
    assert "WARNING" in status.stderr and [t["title"] for t in json.loads(status.stdout)] == ["Keep me"]

    swarm(repo, "registry", "restore")
    assert [t["title"] for t in json.loads(swarm(repo, "status", "--json").stdout)] == ["Keep me"]
    swarm(repo, "monitor", "run-once")


def test_newer_schema_refuses_to_write(repo: Path) -> None:
    swarm(repo, "spawn", "--title", "T", "--prompt", "scenario: sleep")
    registry = repo / ".swarm" / "registry.json"
    data = json.loads(registry.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    registry.write_text(json.dumps(data))
    before = registry.read_bytes()
    assert "newer" in one_line_error(swarm(repo, "monitor", "run-once", check=1))
    assert registry.read_bytes() == before


def test_cleanup_and_doctor(repo: Path) -> None:
    task_id = swarm(repo, "spawn", "--title", "Gone", "--prompt", "scenario: sleep").stdout.strip()
    worktree = Path(json.loads(swarm(repo, "status", task_id, "--json").stdout)["worktree"])
    swarm(repo, "cancel", task_id)
    dry = swarm(repo, "cleanup", "--dry-run").stdout
    assert f"would remove worktree {worktree}" in dry and worktree.exists()
    done = swarm(repo, "cleanup").stdout
    assert f"removed worktree {worktree}" in done and not worktree.exists()

    doctor = swarm(repo, "doctor")
    assert "git: git version" in doctor.stdout and "tmux:" in doctor.stdout
    assert "agent scripted (routing: default)" in doctor.stdout


def test_a_full_disk_is_a_one_line_error_and_the_registry_survives(repo: Path) -> None:
    swarm(repo, "spawn", "--title", "T", "--prompt", "scenario: sleep")
    registry = repo / ".swarm" / "registry.json"
    before = registry.read_bytes()
    # Run the CLI in a process whose fsync reports ENOSPC, as a full disk would.
    code = (
        "import errno, os\n"
        "def full(fd): raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "os.fsync = full\n"
        "from orchestrator.cli import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code, "spawn", "--title", "U", "--prompt", "x"], cwd=repo,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "No space left on device" in one_line_error(result)
    assert registry.read_bytes() == before
    assert not list((repo / ".swarm").glob(".registry.json.tmp-*"))


def test_spawn_refuses_an_agent_that_is_not_installed(repo: Path) -> None:
    config = repo / "swarm.toml"
    config.write_text(config.read_text() + '\n[agents.ghost]\ncommand = ["no-such-agent-7f3"]\n')
    line = one_line_error(swarm(repo, "spawn", "--title", "T", "--prompt", "p", "--agent", "ghost", check=2))
    assert "'no-such-agent-7f3'" in line and "not installed or not on PATH" in line
    assert json.loads(swarm(repo, "status", "--json").stdout) == []


def test_attach_without_a_live_session_says_where_the_output_is(repo: Path) -> None:
    task_id = swarm(repo, "spawn", "--title", "T", "--prompt", "scenario: sleep").stdout.strip()
    swarm(repo, "cancel", task_id)
    line = one_line_error(swarm(repo, "attach", task_id, check=1))
    assert f"swarm logs {task_id}" in line


def test_spawns_during_ticks_lose_nothing(repo: Path) -> None:
    """Reliability case 6: writes from other commands while ticks run are never lost."""
    procs = [subprocess.Popen([*SWARM, "spawn", "--title", f"T{i}", "--prompt", "scenario: sleep"], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    procs += [subprocess.Popen([*SWARM, "monitor", "run-once"], cwd=repo, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    spawned = {out.strip() for out, _ in outputs[:4]}
    tasks = {t["id"] for t in json.loads(swarm(repo, "status", "--json").stdout)}
    assert spawned == tasks and len(tasks) == 4
