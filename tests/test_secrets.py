"""Security: plant fake tokens, run real agents in real tmux sessions, and grep everything swarm writes.

The tmux server inherits the environment of the process that starts it (here the test process, through
Runner → Tmux.launch), so the planted tokens really are in every session's environment: swarm itself has to
strip its own secrets (the ``*_env`` names of ``Settings.secret_env_names``) before an agent runs. The agent
used here (``tests/agents/env_dump.py``) prints variable names with a hash of each value, never a value, so
every file, pane and command line can be grepped for the planted values.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.redact import MASK
from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from orchestrator.config import Settings
from registry.models import FailureKind, RegistryState, Status, Task
from tests.agents.env_dump import CUT_KEEP
from tests.worlds import Clock, RecordingNotifier, make_world

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_DUMP = [sys.executable, "-m", "tests.agents.env_dump"]
SWARM_SECRETS = ("GITHUB_TOKEN", "GH_TOKEN", "SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SENTRY_AUTH_TOKEN",
                 "SENTRY_DSN")


def _letters(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def marker(value: str) -> str:
    """What env_dump prints for a value (see tests/agents/env_dump.py)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake tokens in the test process's environment, so in the tmux server's too. Name → value."""
    tokens = {
        "GITHUB_TOKEN": "ghp_" + "".join(secrets.choice(string.ascii_letters) for _ in range(36)),
        "GH_TOKEN": "gho_" + _letters(36),
        "SLACK_BOT_TOKEN": f"xoxb-{secrets.randbelow(10**12):012d}-{secrets.randbelow(10**13):013d}-{_letters(24)}",
        "SLACK_WEBHOOK_URL": f"https://hooks.slack.com/services/T{_letters(8)}/B{_letters(8)}/{_letters(24)}",
        "SENTRY_AUTH_TOKEN": "sntrys_" + _letters(64),
        "SENTRY_DSN": f"https://{secrets.token_hex(16)}@o{secrets.randbelow(10**6)}.ingest.sentry.io/"
        f"{secrets.randbelow(10**7)}",
        "ANTHROPIC_API_KEY": "sk-ant-api03-" + _letters(48),  # the agent's own key: for contrast
    }
    assert set(SWARM_SECRETS) == set(Settings().secret_env_names()), "keep this test in step with the config"
    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    return tokens


def profile_toml(name: str, leak_file: Path, *, forge_token: bool = False) -> str:
    argv = ", ".join(f'"{part}"' for part in ENV_DUMP)
    return f"""
[agents.{name}]
command = [{argv}]
prompt = "stdin"
env = {{ PYTHONPATH = "{REPO_ROOT}", SWARM_TEST_LEAK_FILE = "{leak_file}" }}
forge_token = {"true" if forge_token else "false"}
"""


@pytest.fixture
def leak_file(tmp_path: Path, planted: dict[str, str]) -> Path:
    """The tokens a careless agent prints (outside the repository and .swarm/)."""
    path = tmp_path / "tokens-the-agent-found.txt"
    path.write_text("".join(f"{value}\n" for value in planted.values()))
    return path


@pytest.fixture
def world_parts(
    git_repo: Path, tmux_socket: str, leak_file: Path, tmp_path: Path
) -> tuple[World, Clock, RecordingNotifier]:
    # What no check job may see either: CI passes only if none of swarm's secret names is in its environment.
    ci = tmp_path / "ci_no_secrets.py"
    ci.write_text(f"import os, sys\nsys.exit(any(name in os.environ for name in {SWARM_SECRETS!r}))\n")
    extra = profile_toml("envdump", leak_file) + profile_toml("forgebot", leak_file, forge_token=True)
    # the planted model key is for the agents: the monitor's retries stay on the template here (no network)
    extra += "\n[llm]\nretry_prompts = false\n"
    return make_world(git_repo, tmux_socket, ci=f"{sys.executable} {ci}", extra=extra)


# -- helpers ----------------------------------------------------------------------------------------------


def spawn(world: World, prompt: str, agent: str = "envdump") -> Task:
    return task_ops.spawn(world, title="Secrets", prompt=prompt, agent=agent, kind="default", after=[],
                          base_branch="main")


def tick_until(world: World, done: Callable[[RegistryState], bool], timeout: float = 60.0) -> RegistryState:
    deadline = time.monotonic() + timeout
    state = world.registry.read()
    while time.monotonic() < deadline:
        run_tick(world)
        state = world.registry.read()
        if done(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"condition not reached; tasks: {[(t.id, t.status, t.reason) for t in state.tasks.values()]}")


def wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True).stdout


def scrollback(socket: str, session: str) -> str:
    """The whole history of the session's pane, wrapped lines joined."""
    return tmux(socket, "capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", f"={session}:")


def found_in(text: str, values: dict[str, str]) -> list[str]:
    return [name for name, value in values.items() if value in text]


def state_files(world: World) -> list[Path]:
    return sorted(p for p in world.layout.state_dir.rglob("*") if p.is_file())


def seen_env(output_log: Path) -> dict[str, str]:
    """NAME → value marker, from the env_dump agent's output."""
    pairs = re.findall(r"^env-dump: (\S+) sha256=([0-9a-f]{16})$", output_log.read_text(), re.M)
    return dict(pairs)


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


# -- what an agent's environment holds ------------------------------------------------------------------------


def test_an_agent_gets_none_of_swarms_secrets_and_nothing_leaks(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str], tmux_socket: str
) -> None:
    world, _clock, notifier = world_parts
    # The planted tokens really reached the tmux server, so stripping them is swarm's job.
    task = spawn(world, "scenario: env\nDump the environment.")
    server_env = tmux(tmux_socket, "show-environment", "-g")
    assert f"GITHUB_TOKEN={planted['GITHUB_TOKEN']}" in server_env.splitlines()
    assert f"SLACK_BOT_TOKEN={planted['SLACK_BOT_TOKEN']}" in server_env.splitlines()

    run_dir = world.layout.run_dir(task.id, 1)
    wait_for(run_dir / "result.json")
    pane = scrollback(tmux_socket, session_for(task.id))
    assert "env-dump: PATH sha256=" in pane, "the scrollback holds the agent's output"
    assert found_in(pane, planted) == []

    seen = seen_env(run_dir / "output.log")
    assert "PYTHONPATH" in seen and "HOME" in seen
    assert [name for name in SWARM_SECRETS if name in seen] == []
    assert seen.get("ANTHROPIC_API_KEY") == marker(planted["ANTHROPIC_API_KEY"]), "the agent's own key passes"

    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    assert state.tasks[task.id].checks.get("ci") == "pass", "the CI job saw none of swarm's secrets either"
    assert [m.kind for m in notifier.sent] == ["ready"]
    files = state_files(world)
    names = {p.name for p in files}
    assert {"registry.json", "events.jsonl", "run.json", "prompt.md", "result.json", "output.log"} <= names
    leaks = {str(p.relative_to(world.layout.state_dir)): found_in(p.read_text(errors="replace"), planted)
             for p in files}
    assert {path: hit for path, hit in leaks.items() if hit} == {}
    for message in notifier.sent:
        assert found_in(message.text, planted) == []
    for session in tmux(tmux_socket, "list-sessions", "-F", "#{session_name}").split():
        assert found_in(scrollback(tmux_socket, session), planted) == []


def test_a_forge_token_profile_gets_the_github_token(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str], tmux_socket: str
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: env", agent="forgebot")
    run_dir = world.layout.run_dir(task.id, 1)
    wait_for(run_dir / "result.json")

    seen = seen_env(run_dir / "output.log")
    assert seen.get("GITHUB_TOKEN") == marker(planted["GITHUB_TOKEN"]), "forge_token = true is the opt-in"
    # Even so, nothing but the environment carries it: not the files, not the pane.
    for path in state_files(world):
        assert found_in(path.read_text(errors="replace"), planted) == [], path
    assert found_in(scrollback(tmux_socket, session_for(task.id)), planted) == []


def test_a_forge_token_profile_gets_only_the_forge_token(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str]
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: env", agent="forgebot")
    run_dir = world.layout.run_dir(task.id, 1)
    wait_for(run_dir / "result.json")

    seen = seen_env(run_dir / "output.log")
    assert "GITHUB_TOKEN" in seen
    assert [n for n in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SENTRY_AUTH_TOKEN", "SENTRY_DSN") if n in seen] == []


# -- an agent that prints a token ---------------------------------------------------------------------------


def test_tokens_an_agent_prints_are_redacted_wherever_swarm_copies_them(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str]
) -> None:
    world, _clock, notifier = world_parts
    task = spawn(world, "scenario: leak\nPush the branch.")

    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.failed)
    run_tick(world)  # flush the outbox
    final = state.tasks[task.id]
    assert [a.failure.kind for a in final.attempts if a.failure] == [FailureKind.agent_error] * 3
    raw_log = (world.layout.run_dir(task.id, 1) / "output.log").read_text()
    assert found_in(raw_log, planted) == list(planted), "the agent really printed every token"

    evidence = final.attempts[0].failure.evidence  # type: ignore[union-attr]
    assert MASK in evidence and "debug: found credential" in evidence
    assert found_in(evidence, planted) == []
    for number in (2, 3):
        retry_prompt = (world.layout.run_dir(task.id, number) / "prompt.md").read_text()
        assert "debug: found credential [REDACTED]" in retry_prompt
        assert found_in(retry_prompt, planted) == []
    [message] = notifier.sent
    assert message.kind == "needs_help"
    assert MASK in message.text and found_in(message.text, planted) == []
    registry_text = (world.layout.state_dir / "registry.json").read_text()
    assert MASK in registry_text and found_in(registry_text, planted) == []
    # Only the raw logs (what the agent printed, as it printed it) and result.json may quote the agent.
    for path in state_files(world):
        if path.name not in ("output.log", "result.json"):
            assert found_in(path.read_text(errors="replace"), planted) == [], path


def test_result_json_does_not_copy_a_printed_token(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str]
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: leak")
    result = world.layout.run_dir(task.id, 1) / "result.json"
    wait_for(result)

    assert found_in(result.read_text(), planted) == []


def test_a_token_cut_by_the_evidence_window_is_still_hidden(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str]
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: leak-cut")
    state = tick_until(world, lambda s: len(s.tasks[task.id].attempts) >= 2)

    tail = planted["GITHUB_TOKEN"][-CUT_KEEP:]  # first line of the leak file: the GitHub token
    evidence = state.tasks[task.id].attempts[0].failure.evidence  # type: ignore[union-attr]
    retry_prompt = (world.layout.run_dir(task.id, 2) / "prompt.md").read_text()
    assert tail not in evidence
    assert tail not in retry_prompt


# -- process command lines ------------------------------------------------------------------------------------


def test_command_lines_hold_no_token_or_prompt_text(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str], tmux_socket: str
) -> None:
    world, _clock, _ = world_parts
    canary = f"PROMPT-CANARY-{secrets.token_hex(8)}"
    task = spawn(world, f"scenario: sleep\n{canary}: do not show this text in ps\n")
    session = session_for(task.id)
    [pane_pid] = [int(line) for line in tmux(tmux_socket, "list-panes", "-t", f"={session}:",
                                             "-F", "#{pane_pid}").split()]
    server_pid = int(tmux(tmux_socket, "display-message", "-p", "-t", f"={session}:", "#{pid}").strip())

    deadline = time.monotonic() + 30
    lines: dict[int, str] = {}
    while time.monotonic() < deadline:
        lines = {pid: cmdline(pid) for pid in descendants(pane_pid)}
        if any("tests.agents.env_dump" in line for line in lines.values()):
            break
        time.sleep(0.1)
    wrapper = [pid for pid, line in lines.items() if "monitor.agent_run" in line]
    agent = [pid for pid, line in lines.items() if "tests.agents.env_dump" in line]
    assert wrapper == [pane_pid] and len(agent) == 1, lines
    lines[server_pid] = cmdline(server_pid)
    assert "tmux" in lines[server_pid]
    for pid, line in lines.items():
        assert canary not in line, f"pid {pid}: {line}"
        assert found_in(line, planted) == [], f"pid {pid}: {line}"
    # The same holds for what the processes inherited: the wrapper got the tokens, the agent did not.
    assert environ(pane_pid).get("GITHUB_TOKEN") == planted["GITHUB_TOKEN"]
    agent_env = environ(agent[0])
    assert agent_env.get("ANTHROPIC_API_KEY") == planted["ANTHROPIC_API_KEY"]
    assert [name for name in SWARM_SECRETS if name in agent_env] == []
