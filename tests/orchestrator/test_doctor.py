"""`swarm doctor` on the tokens it checks against a local server (the model key here; GitHub, Slack and
Sentry where their fakes live)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.messages_api import ScriptedMessagesServer
from tests.worlds import write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
KEY = "sk-ant-api03-doctortest0123456789"


def doctor(repo: Path, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    result = subprocess.run([*SWARM, "doctor"], cwd=repo, capture_output=True, text=True, timeout=60,
                            env={**environ, **env})
    return result.stdout + result.stderr


def test_the_model_key_is_checked_only_when_present(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket)
    assert "anthropic: no key in $ANTHROPIC_API_KEY" in doctor(git_repo)
    server = ScriptedMessagesServer([], api_key=KEY)
    server.start()
    try:
        good = doctor(git_repo, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=server.url)
        assert "anthropic: key accepted, model claude-sonnet-5-5 available" in good
        bad = doctor(git_repo, ANTHROPIC_API_KEY="sk-ant-api03-wrong", ANTHROPIC_BASE_URL=server.url)
        assert "was rejected (401)" in bad and "sk-ant-api03-wrong" not in bad
    finally:
        server.stop()
    assert [r.path for r in server.log if r.method == "GET"] == ["/v1/models/claude-sonnet-5-5"] * 2


def test_every_configured_profile_is_listed_and_only_routed_ones_must_exist(git_repo: Path, tmux_socket: str) -> None:
    write_config(git_repo, tmux_socket, extra='[agents.spare]\ncommand = ["no-such-agent-cli"]\n')
    out = doctor(git_repo)
    assert "agent spare (not routed): `no-such-agent-cli` not on PATH" in out
    assert "agent scripted (routing: default)" in out
