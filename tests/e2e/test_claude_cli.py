"""The real Claude Code CLI, driven by a scripted Messages API, really changes a repository.

This is the ground the end-to-end tests stand on: the pinned CLI installs from npm, talks only to the
local fake (``tests/fakes/messages_api.py``), executes the scripted tool calls, and reports in stream-json
what ``tests/fixtures/claude-code`` recorded.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.fakes.claude_cli import DEFAULT_CACHE, claude_env, ensure_claude_cli
from tests.fakes.messages_api import ScriptedMessagesServer, Turn, api_error, text, tool_use

CLI_TIMEOUT = 120  # seconds for one CLI run; a healthy run takes a second or two


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    """The pinned ``claude`` executable, installed into the suite's cache on first use."""
    claude = ensure_claude_cli(DEFAULT_CACHE)
    if claude is None:
        pytest.skip("npm is not on PATH: cannot install the Claude Code CLI (@anthropic-ai/claude-code)")
    return claude


def _run_claude(claude: Path, repo: Path, home: Path, base_url: str, prompt: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(claude), "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"],
        input=prompt,
        cwd=repo,
        env=claude_env(base_url, home),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip().startswith("{")]


@pytest.mark.timeout(300)
def test_real_claude_writes_and_commits_a_file(claude_cli: Path, git_repo: Path, tmp_path: Path) -> None:
    script = [
        [tool_use("Write", {"file_path": str(git_repo / "greet.py"), "content": GREET})],
        [tool_use("Bash", {"command": 'git add greet.py && git commit -m "Add greet"', "description": "commit"})],
        [text("Added greet() in greet.py and committed it.")],
    ]
    head_before = git(git_repo, "rev-parse", "HEAD")

    with ScriptedMessagesServer(script) as api:
        done = _run_claude(claude_cli, git_repo, tmp_path / "claude-home", api.url, "Add greet.py and commit it.")

    report = f"exit {done.returncode}\nstdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode == 0, report

    assert git(git_repo, "rev-parse", "HEAD~1") == head_before
    assert git(git_repo, "log", "-1", "--format=%s") == "Add greet"
    assert git(git_repo, "show", "--name-only", "--format=", "HEAD").splitlines() == ["greet.py"]
    assert (git_repo / "greet.py").read_text() == GREET
    assert git(git_repo, "status", "--porcelain") == ""

    events = _events(done.stdout)
    assert events[0]["type"] == "system" and events[0]["subtype"] == "init", report
    result = events[-1]
    assert result["type"] == "result", report
    assert result["is_error"] is False, report
    assert result["subtype"] == "success"
    assert result["num_turns"] == 3
    assert result["result"] == "Added greet() in greet.py and committed it."
    tool_calls = [
        block["name"]
        for event in events
        if event["type"] == "assistant"
        for block in event["message"]["content"]
        if block["type"] == "tool_use"
    ]
    assert tool_calls == ["Write", "Bash"]

    assert len(api.agent_requests) == 3, [r.path for r in api.log]
    assert api.turns_left == 0
    assert all(body.get("stream") is True for body in api.agent_requests)
    # each turn after the first carries the result of the tool the previous turn called
    last = api.agent_requests[-1]["messages"][-1]
    assert last["role"] == "user"
    assert any(block.get("type") == "tool_result" for block in last["content"])


GREET = "def greet(name):\n    return f'Hello, {name}!'\n"


@pytest.mark.timeout(300)
def test_real_claude_reports_an_api_that_keeps_answering_400(claude_cli: Path, git_repo: Path, tmp_path: Path) -> None:
    """As recorded in apierror400-stream-json.jsonl: exit 1, ``subtype=success`` but ``is_error=true``."""
    with ScriptedMessagesServer([api_error(400, "scripted failure", times=None)]) as api:
        done = _run_claude(claude_cli, git_repo, tmp_path / "claude-home", api.url, "Do something.")

    report = f"exit {done.returncode}\nstdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode == 1, report
    result = _events(done.stdout)[-1]
    assert result["type"] == "result", report
    assert result["is_error"] is True
    assert result["api_error_status"] == 400
    assert result["result"] == "API Error: 400 scripted failure"
    assert len(api.agent_requests) >= 2  # the CLI retries a 400 by itself before it gives up


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def test_scripted_server_wire_format() -> None:
    """The fake's own contract, without the CLI: JSON and SSE answers, side requests, scripted errors."""
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    agent = {"model": "m", "max_tokens": 10, "tools": tools, "messages": [{"role": "user", "content": "hi"}]}
    script: list[Turn] = [[tool_use("Bash", {"command": "true"})], api_error(529, "busy", times=2), [text("hello")]]
    with ScriptedMessagesServer(script) as api:
        status, _, raw = _post(f"{api.url}/v1/messages", agent)
        assert status == 200
        message = json.loads(raw)
        assert message["stop_reason"] == "tool_use"
        assert message["content"][0]["input"] == {"command": "true"}

        side = {**agent, "tools": [], "output_config": {"format": {"type": "json_schema", "schema": TITLE}}}
        status, _, raw = _post(f"{api.url}/v1/messages?beta=true", side)
        assert status == 200
        assert json.loads(json.loads(raw)["content"][0]["text"]) == {"title": "ok"}

        status, _, raw = _post(f"{api.url}/v1/messages/count_tokens", agent)
        assert status == 200 and json.loads(raw)["input_tokens"] > 0

        for _ in range(2):
            status, _, raw = _post(f"{api.url}/v1/messages", agent)
            assert status == 529
            assert json.loads(raw) == {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}

        status, headers, raw = _post(f"{api.url}/v1/messages?beta=true", {**agent, "stream": True})
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
        frames = raw.decode().split("\n\n")
        assert frames[-1] == ""
        names = [frame.split("\n")[0].removeprefix("event: ") for frame in frames[:-1]]
        assert names == [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        datas = [json.loads(frame.split("\n")[1].removeprefix("data: ")) for frame in frames[:-1]]
        assert [d["type"] for d in datas] == names
        assert datas[3]["delta"] == {"type": "text_delta", "text": "hello"}
        assert datas[5]["delta"]["stop_reason"] == "end_turn"

        status, _, raw = _post(f"{api.url}/v1/messages", agent)  # script exhausted
        assert json.loads(raw)["content"] == [{"type": "text", "text": "done"}]

    assert len(api.agent_requests) == 5
    assert len(api.requests) == 6
    assert [r.path for r in api.log][2] == "/v1/messages/count_tokens"

    with ScriptedMessagesServer([api_error(500, times=None)]) as api:
        for _ in range(3):
            assert _post(f"{api.url}/v1/messages", agent)[0] == 500
        assert api.turns_left == 1


TITLE = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
