"""A task driven by the real Claude Code CLI, from ``swarm spawn`` to ``ready``, through real tmux and git.

Everything here is the product as a user runs it: the ``swarm`` CLI as subprocesses, its tmux server, its
worktree, its local CI job, and the pinned ``claude`` binary executing the tool calls of a scripted model
(``tests/fakes/messages_api.py``) in the task's worktree. Only the model is fake.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.fakes.claude_cli import DEFAULT_CACHE, FAKE_API_KEY, ensure_claude_cli
from tests.fakes.messages_api import ScriptedMessagesServer, Turn, text, tool_use

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
CLI_TIMEOUT = 60  # seconds for one `swarm` command
READY_WITHIN = 120  # seconds from spawn to ready
TICK_EVERY = 1.0

TASK = "Add a function greet(name) in greet.py that returns 'Hello, <name>!'. Commit it."
GREET = "def greet(name):\n    return f'Hello, {name}!'\n"
CHECK = """\
from greet import greet

assert greet("Ada") == "Hello, Ada!", greet("Ada")
print("check passed")
"""
FOOTER_MARK = "Do not push"


@pytest.fixture(scope="module")
def claude_cli() -> Path:
    """The pinned ``claude`` executable, installed into the suite's cache on first use."""
    claude = ensure_claude_cli(DEFAULT_CACHE)
    if claude is None:
        pytest.skip("npm is not on PATH: cannot install the Claude Code CLI (@anthropic-ai/claude-code)")
    return claude


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string for these values


def _write_config(repo: Path, claude: Path, base_url: str, socket: str) -> None:
    command = [str(claude), "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
    env = {
        "IS_SANDBOX": "1",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": FAKE_API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    ci = f"{shlex.quote(sys.executable)} check.py"
    (repo / "swarm.toml").write_text(
        f"""\
[project]
base_branch = "main"
forge = "local"

[agents.claude]
command = [{", ".join(_toml(part) for part in command)}]
prompt = "stdin"
env = {{ {", ".join(f"{name} = {_toml(value)}" for name, value in env.items())} }}

[routing]
default = "claude"

[monitor]
tmux_socket = {_toml(socket)}
max_attempts = 3

[local]
ci = {_toml(ci)}
""",
        encoding="utf-8",
    )


def _clean_env(home: Path) -> dict[str, str]:
    """The user's environment (PATH, git identity) with a temporary HOME and no real Anthropic credentials."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("ANTHROPIC_", "CLAUDE", "AWS_BEARER_TOKEN_BEDROCK"))
    }
    home.mkdir(parents=True, exist_ok=True)
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost"]))
    env.update({"HOME": str(home), "NO_PROXY": no_proxy, "no_proxy": no_proxy})
    return env


@dataclass
class Run:
    """One task's journey, and everything needed to explain a failure."""

    repo: Path
    env: dict[str, str]
    socket: str
    api: ScriptedMessagesServer
    outputs: list[str] = field(default_factory=list)
    task_id: str = ""

    def swarm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*SWARM, *args], cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=CLI_TIMEOUT,
            check=False,
        )
        self.outputs.append(f"$ swarm {' '.join(args)}  -> exit {done.returncode}\n{done.stdout}{done.stderr}")
        if check:
            assert done.returncode == 0, self.outputs[-1]
        return done

    def status(self) -> dict[str, Any]:
        tasks = json.loads(self.swarm("status", "--json").stdout)
        found = [t for t in tasks if t["id"] == self.task_id]
        assert len(found) == 1, tasks
        task: dict[str, Any] = found[0]
        return task

    def run_dir(self, attempt: int) -> Path:
        return self.repo / ".swarm" / "runs" / self.task_id / str(attempt)

    def spawn(self, prompt_file: Path) -> str:
        done = self.swarm("spawn", "--title", "Add greet", "--prompt-file", str(prompt_file), "--agent", "claude")
        self.task_id = done.stdout.strip().splitlines()[-1]
        return self.task_id

    def tick_until(self, status: str, within: float = READY_WITHIN) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            self.swarm("monitor", "run-once")
            task = self.status()
            if task["status"] == status or task["status"] in ("failed", "cancelled"):
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"task not {status} within {within:g}s: {task['status']}: {task['reason']}")
            time.sleep(TICK_EVERY)

    def report(self) -> str:
        """What a human would look at: status, the attempts' logs and results, CI, tmux, the API log."""
        parts = [f"===== task {self.task_id or '(not spawned)'}"]
        status = subprocess.run([*SWARM, "status", "--json"], cwd=self.repo, env=self.env, capture_output=True,
                                text=True, timeout=CLI_TIMEOUT, check=False)
        parts.append(f"----- swarm status --json\n{status.stdout}{status.stderr}")
        runs = self.repo / ".swarm" / "runs" / self.task_id if self.task_id else None
        if runs is not None and runs.is_dir():
            for path in sorted(runs.rglob("*")):
                if path.is_file() and path.name in ("output.log", "result.json", "prompt.md", "run.json"):
                    parts.append(f"----- {path.relative_to(runs)}\n{path.read_text(errors='replace')[-6000:]}")
        events = self.repo / ".swarm" / "events.jsonl"
        if events.exists():
            parts.append(f"----- events.jsonl\n{events.read_text()[-6000:]}")
        panes = subprocess.run(["tmux", "-L", self.socket, "list-panes", "-a", "-F",
                                "#{session_name} dead=#{pane_dead} status=#{pane_dead_status}"],
                               capture_output=True, text=True, check=False)
        parts.append(f"----- tmux panes\n{panes.stdout}{panes.stderr}")
        if self.task_id:
            pane = subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-J", "-t",
                                   f"=swarm-{self.task_id}:", "-S", "-60"], capture_output=True, text=True,
                                  check=False)
            parts.append(f"----- agent pane\n{pane.stdout}{pane.stderr}")
        parts.append("----- swarm commands\n" + "\n".join(self.outputs[-12:]))
        parts.append("----- API requests\n" + "\n".join(
            f"{r.method} {r.path} tools={bool(isinstance(r.body, dict) and r.body.get('tools'))}" for r in self.api.log
        ))
        return "\n".join(parts)


def _prepare(repo: Path, tmp_path: Path, claude: Path, api: ScriptedMessagesServer, socket: str) -> Run:
    run = Run(repo=repo, env=_clean_env(tmp_path / "home"), socket=socket, api=api)
    run.swarm("init", "--forge", "local")  # creates .swarm/ and git-excludes it
    assert ".swarm/" in (repo / ".git" / "info" / "exclude").read_text().splitlines()
    _write_config(repo, claude, api.url, socket)  # replaces the template init wrote
    exclude = repo / ".git" / "info" / "exclude"
    # this test's config (absolute paths, a port) stays out of every branch
    exclude.write_text(exclude.read_text() + "swarm.toml\n")
    (repo / "check.py").write_text(CHECK)
    git(repo, "add", "check.py")
    git(repo, "commit", "-q", "-m", "Add the CI check")
    assert git(repo, "status", "--porcelain") == ""
    return run


def _write_script() -> list[Turn]:
    """The model's side of a good attempt: write greet.py (relative to the agent's cwd), commit, report."""
    return [
        [tool_use("Write", {"file_path": "greet.py", "content": GREET})],
        [tool_use("Bash", {"command": 'git add greet.py && git commit -m "Add greet"', "description": "commit"})],
        [text("Added greet() in greet.py and committed it.")],
    ]


def _first_user_text(body: dict[str, Any]) -> str:
    """The text of the first user message of an agent request (the prompt, plus the CLI's reminders)."""
    content = body["messages"][0]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content if isinstance(block, dict))


def _conversation_starts(requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first request of each CLI run: no assistant turn in it yet."""
    return [body for body in requests if not any(m.get("role") == "assistant" for m in body.get("messages", []))]


def _assert_branch_has_greet(run: Run, attempt: int) -> None:
    branch = f"swarm/{run.task_id}"
    log = git(run.repo, "log", "--format=%s", f"main..{branch}").splitlines()
    assert log == ["Add greet"], log
    assert git(run.repo, "show", "--name-only", "--format=", branch).splitlines() == ["greet.py"]
    assert git(run.repo, "show", f"{branch}:greet.py") + "\n" == GREET
    worktree = Path(run.status()["worktree"])
    assert worktree.is_dir() and worktree != run.repo
    assert git(worktree, "status", "--porcelain") == "", "the agent left the worktree dirty"
    assert not (run.repo / "greet.py").exists(), "the agent wrote into the main checkout, not its worktree"

    # the CLI itself says where it ran: in the task's worktree
    events = [json.loads(line) for line in (run.run_dir(attempt) / "output.log").read_text().splitlines()
              if line.startswith("{")]
    init = next(e for e in events if e.get("type") == "system" and e.get("subtype") == "init")
    assert Path(init["cwd"]).resolve() == worktree.resolve(), init["cwd"]

    result = json.loads((run.run_dir(attempt) / "result.json").read_text())
    assert result["phase"] == "agent"
    assert result["exit_code"] == 0
    report = result["report"]
    assert report["parser"] == "claude"
    assert report["tool_calls"] >= 2
    assert report["is_error"] is False
    assert report["has_result"] is True


def _assert_ready(run: Run, task: dict[str, Any], attempts: int) -> None:
    assert task["status"] == "ready", task
    assert task["attempts"] == attempts
    assert task["reason"] == "ready for review"
    assert task["checks"].get("commits") == "ok", task["checks"]
    assert task["checks"].get("ci") == "pass", task["checks"]
    assert task["tokens"] > 0
    assert task["pr"] is None  # the local forge has no pull requests
    ticks = "\n".join(run.outputs)
    assert "[swarm:ready] PR ready for review" in ticks
    assert f"[{run.task_id}]" in ticks
    # the CI job really ran check.py in the worktree, at the branch head
    head = git(run.repo, "rev-parse", f"swarm/{run.task_id}")
    ci_dir = run.repo / ".swarm" / "runs" / run.task_id / "checks" / head[:12] / "ci"
    ci_result = json.loads((ci_dir / "result.json").read_text())
    assert ci_result["exit_code"] == 0
    assert "check passed" in (ci_dir / "output.log").read_text()


@pytest.mark.timeout(400)
def test_claude_task_from_spawn_to_ready(
    claude_cli: Path, git_repo: Path, tmux_socket: str, tmp_path: Path
) -> None:
    prompt_file = tmp_path / "task.md"
    prompt_file.write_text(TASK + "\n")
    started = time.monotonic()
    with ScriptedMessagesServer(_write_script()) as api:
        run = _prepare(git_repo, tmp_path, claude_cli, api, tmux_socket)
        try:
            task_id = run.spawn(prompt_file)
            assert task_id.startswith("add-greet-")
            task = run.tick_until("ready")

            _assert_ready(run, task, attempts=1)
            _assert_branch_has_greet(run, attempt=1)

            assert api.turns_left == 0
            assert len(api.agent_requests) == 3, [r.path for r in api.log]
            starts = _conversation_starts(api.agent_requests)
            assert len(starts) == 1
            prompt = _first_user_text(starts[0])
            assert TASK in prompt
            assert FOOTER_MARK in prompt
            # each later turn carries the result of the tool the previous turn called
            last = api.agent_requests[-1]["messages"][-1]
            assert any(block.get("type") == "tool_result" for block in last["content"])
        except BaseException:
            print(run.report())
            raise
    print(f"spawn to ready: {time.monotonic() - started:.1f}s")


@pytest.mark.timeout(400)
def test_phantom_attempt_is_respawned_then_ready(
    claude_cli: Path, git_repo: Path, tmux_socket: str, tmp_path: Path
) -> None:
    prompt_file = tmp_path / "task.md"
    prompt_file.write_text(TASK + "\n")
    script: list[Turn] = [[text("Done: greet.py is added and committed.")], *_write_script()]
    started = time.monotonic()
    with ScriptedMessagesServer(script) as api:
        run = _prepare(git_repo, tmp_path, claude_cli, api, tmux_socket)
        try:
            task_id = run.spawn(prompt_file)
            task = run.tick_until("ready")

            _assert_ready(run, task, attempts=2)
            _assert_branch_has_greet(run, attempt=2)
            failures = task["failures"]
            assert [f["kind"] for f in failures] == ["phantom"], failures
            assert "no commit" in failures[0]["summary"]
            events = [json.loads(line) for line in (git_repo / ".swarm" / "events.jsonl").read_text().splitlines()]
            respawns = [e for e in events if e["task"] == task_id and e["event"] == "respawn"]
            assert [(e["attempt"], e["failure"]) for e in respawns] == [(2, "phantom")], respawns

            first = json.loads((run.run_dir(1) / "result.json").read_text())
            assert first["exit_code"] == 0
            assert first["report"]["tool_calls"] == 0
            assert first["report"]["is_error"] is False

            assert api.turns_left == 0
            assert len(api.agent_requests) == 4, [r.path for r in api.log]
            starts = _conversation_starts(api.agent_requests)
            assert len(starts) == 2
            first_prompt, retry_prompt = (_first_user_text(body) for body in starts)
            assert TASK in first_prompt and "phantom" not in first_prompt
            assert TASK in retry_prompt
            assert "Attempt 2 of 3" in retry_prompt
            assert "phantom" in retry_prompt
            assert "no commit" in retry_prompt
            assert FOOTER_MARK in retry_prompt
            assert (run.run_dir(2) / "prompt.md").read_text().strip() in retry_prompt
        except BaseException:
            print(run.report())
            raise
    print(f"spawn to ready (phantom, then a good attempt): {time.monotonic() - started:.1f}s")
