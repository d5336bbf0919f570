"""`swarm doctor` flags an agent profile that could run but never commit (Codex's sandbox)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.worlds import write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def test_a_codex_profile_that_cannot_commit_is_flagged_with_the_fix(git_repo: Path, tmux_socket: str) -> None:
    old = '["codex", "exec", "--json", "--sandbox", "workspace-write", "-"]'
    write_config(git_repo, tmux_socket, extra=f"[agents.codex]\ncommand = {old}\n[agents.codex-ok]\n"
                 'command = ["codex", "exec", "--json", "--sandbox", "danger-full-access", "-"]\nparser = "codex"\n')
    done = subprocess.run([*SWARM, "doctor"], cwd=git_repo, capture_output=True, text=True, timeout=60, check=False)
    lines = (done.stdout + done.stderr).splitlines()
    flagged = [line for line in lines if "agent codex (" in line and "git commit" in line]
    assert len(flagged) == 1, lines
    assert "keeps the worktree's git directory read-only" in flagged[0]
    assert "drop `command` from the profile" in flagged[0]
    assert not any("agent codex-ok (" in line and "commit" in line for line in lines), lines
