"""`swarm logs`: the readable transcript by default, the CLI's raw lines with --raw; agent text is data."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from monitor.layout import Layout
from tests.worlds import write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def swarm(repo: Path, *args: str) -> str:
    done = subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_logs_are_readable_by_default_and_raw_on_request(
    git_repo: Path, tmux_socket: str, fixtures_dir: Path
) -> None:
    write_config(git_repo, tmux_socket)
    task_id = swarm(git_repo, "spawn", "--title", "Logs", "--prompt", "scenario: commit-good").strip()
    run_dir = Layout.for_repo(git_repo).run_dir(task_id, 1)
    deadline = time.monotonic() + 30
    while not (run_dir / "result.json").exists():  # the scripted agent has finished writing its log
        assert time.monotonic() < deadline, "the scripted agent did not finish"
        time.sleep(0.05)
    recorded = (fixtures_dir / "codex" / "failing-cmd.jsonl").read_text()
    (run_dir / "output.log").write_text(recorded + '{"type":"item.completed","item":{"id":"m","type":'
                                        '"agent_message","text":"[bold red]not markup[/] \\u001b[31m"}}\n')

    text = swarm(git_repo, "logs", task_id)
    assert '{"type"' not in text
    assert "$ /bin/bash -lc \"python3 -c 'import sys; sys.exit(3)'\" (exit 3)" in text
    assert "agent: The command failed; I could not finish." in text
    assert "[bold red]not markup[/]" in text  # printed as text, never interpreted

    raw = swarm(git_repo, "logs", task_id, "--raw")
    assert raw.startswith(recorded)
