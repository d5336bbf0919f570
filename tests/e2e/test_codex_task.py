"""A task driven by the real Codex CLI with the built-in ``codex`` profile, from ``swarm spawn`` to ``ready``.

The product as a user runs it (the ``swarm`` CLI, its tmux server, worktree and local CI job) and the pinned
``codex`` binary, sandbox included, running the shell commands of a scripted model
(``tests/fakes/responses_api.py``) in the task's worktree. Only the model is fake; the profile's command is
the built-in one (``codex`` found on PATH, the model provider in ``$CODEX_HOME/config.toml``).

Before the built-in profile made the git directories writable, Codex's ``workspace-write`` sandbox failed
every ``git commit`` with "Read-only file system", Codex exited 0 and the task ended ``failed`` as a phantom.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.e2e.test_claude_task import CHECK, TASK, Run, _toml
from tests.fakes.codex_cli import DEFAULT_CACHE, FAKE_API_KEY, MODEL, ensure_codex_cli
from tests.fakes.responses_api import ScriptedResponsesServer, exec_command, message

COMMIT = ("printf 'def greet(name):\\n    return f\"Hello, {name}!\"\\n' > greet.py"
          " && git add greet.py && git commit -qm 'Add greet'")


@pytest.fixture(scope="module")
def codex_cli() -> Path:
    """The pinned ``codex`` executable, installed into the suite's cache on first use (never skipped in CI)."""
    codex = ensure_codex_cli(DEFAULT_CACHE)
    if codex is None:
        if os.environ.get("CI"):
            pytest.fail("npm is not on PATH: CI must install the Codex CLI (@openai/codex) for this test")
        pytest.skip("npm is not on PATH: cannot install the Codex CLI (@openai/codex)")
    return codex


def _write_config(repo: Path, base_url: str, socket: str, home: Path) -> None:
    """swarm.toml with no [agents] table (the built-in profile), and the user's ``~/.codex/config.toml``."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{MODEL}"\nmodel_provider = "local"\n\n[model_providers.local]\nname = "local"\n'
        f'base_url = {_toml(base_url)}\nenv_key = "OPENAI_API_KEY"\nwire_api = "responses"\n',
        encoding="utf-8",
    )
    (repo / "swarm.toml").write_text(
        f"""\
[project]
base_branch = "main"
forge = "local"

[routing]
default = "codex"

[monitor]
tmux_socket = {_toml(socket)}
max_attempts = 3

[local]
ci = {_toml(f"{sys.executable} check.py")}
""",
        encoding="utf-8",
    )


def _user_env(home: Path, codex: Path) -> dict[str, str]:
    """A user's shell: ``codex`` on PATH, an OpenAI key in the environment, a temporary HOME."""
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith(("OPENAI_", "CODEX"))}
    home.mkdir(parents=True, exist_ok=True)
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost"]))
    env.update({"HOME": str(home), "NO_PROXY": no_proxy, "no_proxy": no_proxy, "OPENAI_API_KEY": FAKE_API_KEY,
                "PATH": f"{codex.parent}{os.pathsep}{env.get('PATH', '')}"})
    return env


def _spawn(run: Run, prompt_file: Path) -> str:
    done = run.swarm("spawn", "--title", "Add greet", "--prompt-file", str(prompt_file), "--agent", "codex")
    run.task_id = done.stdout.strip().splitlines()[-1]
    return run.task_id


def _events(run: Run, attempt: int) -> list[dict[str, Any]]:
    log = (run.run_dir(attempt) / "output.log").read_text()
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


@pytest.mark.timeout(400)
def test_codex_task_with_the_builtin_profile_reaches_ready(
    codex_cli: Path, git_repo: Path, tmux_socket: str, tmp_path: Path
) -> None:
    prompt_file = tmp_path / "task.md"
    prompt_file.write_text(TASK + "\n")
    script = [[exec_command(COMMIT)], [message("Added greet() in greet.py and committed it.")]]
    started = time.monotonic()
    with ScriptedResponsesServer(script) as api:
        run = Run(repo=git_repo, env=_user_env(tmp_path / "home", codex_cli), socket=tmux_socket, api=api)  # type: ignore[arg-type]
        try:
            run.swarm("init", "--forge", "local")
            _write_config(git_repo, api.url, tmux_socket, tmp_path / "home")
            exclude = git_repo / ".git" / "info" / "exclude"
            exclude.write_text(exclude.read_text() + "swarm.toml\n")
            (git_repo / "check.py").write_text(CHECK)
            git(git_repo, "add", "check.py")
            git(git_repo, "commit", "-q", "-m", "Add the CI check")

            _spawn(run, prompt_file)
            task = run.tick_until("ready")
            assert task["status"] == "ready", task
            assert task["attempts"] == 1 and task["failures"] == []
            assert task["checks"].get("ci") == "pass", task["checks"]
            assert task["tokens"] == 4200  # two model turns of 2000 input + 100 output tokens
            # priced from the model in ~/.codex/config.toml (gpt-5: $1.25 input, $10 output per million)
            assert task["cost_known"] is True and task["cost_usd"] == pytest.approx(0.007)

            branch = f"swarm/{run.task_id}"
            assert git(git_repo, "log", "--format=%s", f"main..{branch}").splitlines() == ["Add greet"]
            assert "return f\"Hello, {name}!\"" in git(git_repo, "show", f"{branch}:greet.py")

            # the built-in profile ran, sandboxed, with the worktree's git dirs rendered in
            spec = json.loads((run.run_dir(1) / "run.json").read_text())
            argv = spec["argv"]
            assert argv[:5] == ["codex", "exec", "--json", "--sandbox", "workspace-write"], argv
            common = (git_repo / ".git").resolve()
            assert str(common / "worktrees") in argv[argv.index("--add-dir") + 1], argv
            commands = [e["item"] for e in _events(run, 1)
                        if e.get("type") == "item.completed" and e["item"].get("type") == "command_execution"]
            assert [c["exit_code"] for c in commands] == [0], commands
            result = json.loads((run.run_dir(1) / "result.json").read_text())
            assert result["exit_code"] == 0 and result["report"]["failed_commands"] == 0
            assert api.turns_left == 0
            assert TASK in json.dumps(api.turns[0].get("input"))
        except BaseException:
            print(run.report())
            raise
    print(f"spawn to ready with codex: {time.monotonic() - started:.1f}s")


@pytest.mark.timeout(400)
def test_a_failing_command_is_reported_with_its_output_then_fixed(
    codex_cli: Path, git_repo: Path, tmux_socket: str, tmp_path: Path
) -> None:
    """Codex exits 0 after a failed command: the failure is an agent_error naming the command, and the next
    attempt's prompt carries the command's real output."""
    prompt_file = tmp_path / "task.md"
    prompt_file.write_text(TASK + "\n")
    script = [
        [exec_command("echo 'ModuleNotFoundError: no module named greet_helpers' >&2; exit 3")],
        [message("I could not finish.")],
        [exec_command(COMMIT)],
        [message("Added greet() in greet.py and committed it.")],
    ]
    with ScriptedResponsesServer(script) as api:
        run = Run(repo=git_repo, env=_user_env(tmp_path / "home", codex_cli), socket=tmux_socket, api=api)  # type: ignore[arg-type]
        try:
            run.swarm("init", "--forge", "local")
            _write_config(git_repo, api.url, tmux_socket, tmp_path / "home")
            exclude = git_repo / ".git" / "info" / "exclude"
            exclude.write_text(exclude.read_text() + "swarm.toml\n")
            (git_repo / "check.py").write_text(CHECK)
            git(git_repo, "add", "check.py")
            git(git_repo, "commit", "-q", "-m", "Add the CI check")

            _spawn(run, prompt_file)
            task = run.tick_until("ready")
            assert task["status"] == "ready", task
            [failure] = task["failures"]
            assert failure["kind"] == "agent_error", failure
            assert "1 command(s) failed" in failure["summary"] and "(exit 3)" in failure["summary"]
            retry_prompt = (run.run_dir(2) / "prompt.md").read_text()
            assert "ModuleNotFoundError: no module named greet_helpers" in retry_prompt
            logs = run.swarm("logs", run.task_id, "--attempt", "1").stdout
            assert "ModuleNotFoundError" in logs and '{"type"' not in logs
        except BaseException:
            print(run.report())
            raise
