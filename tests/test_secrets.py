"""Security: plant fake tokens, run real agents in real tmux sessions, and grep everything swarm writes.

The tokens are planted in the test process's environment, the one the monitor runs with. A tmux server
inherits the environment of the client that starts it, so swarm has to keep its own secrets (the ``*_env``
names of ``Settings.secret_env_names``) out of every tmux command, out of the wrapper and out of the agent;
a server an older swarm started with them is cleaned when the next agent launches. The agent
used here (``tests/agents/env_dump.py``) prints variable names with a hash of each value, never a value, so
every file, pane and command line can be grepped for the planted values.
"""

from __future__ import annotations

import hashlib
import os
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
from monitor.redact import MASK, clear_secret_values
from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from orchestrator.config import Settings
from registry.models import FailureKind, RegistryState, Status, Task
from tests.agents.env_dump import CUT_KEEP
from tests.worlds import Clock, RecordingNotifier, make_world

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_DUMP = [sys.executable, "-m", "tests.agents.env_dump"]
SWARM_SECRETS = ("GITHUB_TOKEN", "GH_TOKEN", "SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SENTRY_AUTH_TOKEN",
                 "SENTRY_DSN", "SWARM_GITHUB_WEBHOOK_SECRET", "SWARM_SERVE_TOKEN")


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
        "SWARM_GITHUB_WEBHOOK_SECRET": "whsec-" + _letters(40),
        "SWARM_SERVE_TOKEN": "serve-" + _letters(40),  # the dashboard's token
        "ANTHROPIC_API_KEY": "sk-ant-api03-" + _letters(48),  # the agent's own key: for contrast
    }
    assert set(SWARM_SECRETS) == set(Settings().secret_env_names()), "keep this test in step with the config"
    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    return tokens


@pytest.fixture(autouse=True)
def _forget_secret_values() -> object:
    """build_world registers the planted values process-wide: forget them after each test."""
    yield
    clear_secret_values()


def profile_toml(name: str, leak_file: Path, *, forge_token: bool = False, socket: str = "") -> str:
    argv = ", ".join(f'"{part}"' for part in ENV_DUMP)
    return f"""
[agents.{name}]
command = [{argv}]
prompt = "stdin"
env = {{ PYTHONPATH = "{REPO_ROOT}", SWARM_TEST_LEAK_FILE = "{leak_file}", SWARM_TEST_SOCKET = "{socket}" }}
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
    extra = (profile_toml("envdump", leak_file, socket=tmux_socket)
             + profile_toml("forgebot", leak_file, forge_token=True, socket=tmux_socket))
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
    # The monitor holds the planted tokens; the tmux server it started holds none of them.
    task = spawn(world, "scenario: env\nDump the environment.")
    server_env = dict(line.partition("=")[::2] for line in tmux(tmux_socket, "show-environment", "-g").splitlines())
    assert "PATH" in server_env and server_env.get("ANTHROPIC_API_KEY") == planted["ANTHROPIC_API_KEY"]
    assert [name for name in SWARM_SECRETS if name in server_env] == []

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

    # Not the webhook secret nor the serve token: random strings with no token shape, which only their values
    # could mask, and the wrapper never holds swarm's values. What keeps them out of an agent's output is that
    # no agent gets them.
    shapeless = ("SWARM_GITHUB_WEBHOOK_SECRET", "SWARM_SERVE_TOKEN")
    shaped = {name: value for name, value in planted.items() if name not in shapeless}
    assert found_in(result.read_text(), shaped) == []


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
    # The same holds for what the processes inherited: neither the wrapper nor the agent got the tokens.
    assert environ(pane_pid).get("PATH") and [name for name in SWARM_SECRETS if name in environ(pane_pid)] == []
    agent_env = environ(agent[0])
    assert agent_env.get("ANTHROPIC_API_KEY") == planted["ANTHROPIC_API_KEY"]
    assert [name for name in SWARM_SECRETS if name in agent_env] == []


# -- an agent that hunts for secrets ------------------------------------------------------------------------


def probed(output_log: Path) -> dict[str, dict[str, str]]:
    """SOURCE → NAME → value marker, from the probe scenario's output."""
    found: dict[str, dict[str, str]] = {}
    for source, name, mark in re.findall(r"^probe: (\S+) (\S+) sha256=([0-9a-f]{16})$", output_log.read_text(), re.M):
        found.setdefault(source, {})[name] = mark
    return found


def secret_hits(seen: dict[str, dict[str, str]], planted: dict[str, str]) -> list[str]:
    """Every planted swarm secret found in any source, by name or by value."""
    marks = {marker(planted[name]): name for name in SWARM_SECRETS}
    return sorted(f"{source}:{name}" for source, env in seen.items() for name, mark in env.items()
                  if name in SWARM_SECRETS or mark in marks)


@pytest.mark.parametrize("server", ["fresh", "started-by-an-older-swarm"])
def test_a_probing_agent_finds_no_secret_in_its_parent_itself_or_tmux(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str], tmux_socket: str, server: str
) -> None:
    world, _clock, _ = world_parts
    if server != "fresh":
        # What an older swarm did: start the agents' server from the monitor's environment, tokens and all.
        subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "older", "sleep", "600"],
                       env={k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}, check=True)
        held = tmux(tmux_socket, "show-environment", "-g")
        assert f"GITHUB_TOKEN={planted['GITHUB_TOKEN']}" in held.splitlines(), "the older server holds them"
    task = spawn(world, "scenario: probe\nLook for credentials.")
    log = world.layout.run_dir(task.id, 1) / "output.log"
    wait_for(world.layout.run_dir(task.id, 1) / "result.json")

    seen = probed(log)
    assert {"self", "parent", "tmux-global"} <= set(seen), log.read_text()
    assert "PATH" in seen["parent"] and "PATH" in seen["tmux-global"], "the probes really read something"
    assert seen["self"].get("ANTHROPIC_API_KEY") == marker(planted["ANTHROPIC_API_KEY"]), "the model key passes"
    assert secret_hits(seen, planted) == []
    assert "probe: TMUX unset" in log.read_text(), "the agent is not pointed at the agents' tmux server"
    server_env = tmux(tmux_socket, "show-environment", "-g")
    assert found_in(server_env, {n: planted[n] for n in SWARM_SECRETS}) == []


def test_a_forge_token_reaches_only_the_agent_through_a_file_that_is_gone_at_once(
    world_parts: tuple[World, Clock, RecordingNotifier], planted: dict[str, str], tmux_socket: str
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: probe", agent="forgebot")
    run_dir = world.layout.run_dir(task.id, 1)
    assert not (run_dir / ".secret-env.json").exists(), "the wrapper took the hand-over file before launch returned"
    wait_for(run_dir / "result.json")

    seen = probed(run_dir / "output.log")
    forge = {"GITHUB_TOKEN": marker(planted["GITHUB_TOKEN"]), "GH_TOKEN": marker(planted["GH_TOKEN"])}
    assert {name: seen["self"].get(name) for name in SWARM_SECRETS if name in seen["self"]} == forge
    assert secret_hits({k: v for k, v in seen.items() if k != "self"}, planted) == [], "not the wrapper, not tmux"
    spec = (run_dir / "run.json").read_text()
    assert found_in(spec, planted) == [] and '"secret_file": ".secret-env.json"' in spec
    assert sorted(p.name for p in run_dir.iterdir()) == ["output.log", "prompt.md", "result.json", "run.json"]


def test_a_hand_over_file_the_wrapper_never_took_is_removed_and_the_attempt_fails_clearly(
    world_parts: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor import runner as runner_module

    world, _clock, _ = world_parts
    monkeypatch.setattr(runner_module, "HANDOVER_TIMEOUT", 0.0)  # the wrapper is too slow to take it in time
    task = spawn(world, "scenario: probe", agent="forgebot")
    run_dir = world.layout.run_dir(task.id, 1)
    assert not (run_dir / ".secret-env.json").exists()
    wait_for(run_dir / "result.json")
    result = (run_dir / "result.json").read_text()
    assert '"phase": "launch"' in result and "forge token was not handed over" in result


# -- secrets without a known shape ----------------------------------------------------------------------------


def test_secret_values_without_a_token_shape_never_reach_the_registry_a_prompt_or_a_notification(
    git_repo: Path, tmux_socket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unshaped = {
        "SENTRY_AUTH_TOKEN": "a1" + secrets.token_hex(5),  # 12 characters: no known token shape
        "SLACK_WEBHOOK_URL": f"https://chat.example.net/hooks/{_letters(10)}",  # not a hooks.slack.com URL
    }
    for name, value in unshaped.items():
        monkeypatch.setenv(name, value)
    leak = tmp_path / "found.txt"
    leak.write_text("".join(f"{value}\n" for value in unshaped.values()))
    ci = tmp_path / "ci_prints.py"  # CI that quotes the secrets in its failure output
    ci.write_text(f"import sys\nprint(open({str(leak)!r}).read())\nsys.exit(1)\n")
    extra = profile_toml("envdump", leak, socket=tmux_socket) + "\n[llm]\nretry_prompts = false\n"
    world, _clock, notifier = make_world(git_repo, tmux_socket, ci=f"{sys.executable} {ci}", extra=extra)

    leaky = spawn(world, "scenario: leak\nPush the branch.")
    committed = task_ops.spawn(world, title="Second", prompt="scenario: env", agent="envdump", kind="default",
                               after=[], base_branch="main")
    state = tick_until(world, lambda s: s.tasks[leaky.id].status is Status.failed
                       and len(s.tasks[committed.id].attempts) >= 2)
    run_tick(world)  # flush the outbox
    raw = (world.layout.run_dir(leaky.id, 1) / "output.log").read_text()
    assert found_in(raw, unshaped) == list(unshaped), "the agent really printed both"

    ci_failure = state.tasks[committed.id].attempts[0].failure
    assert ci_failure is not None and MASK in ci_failure.evidence, "the CI output is the evidence"
    registry_text = (world.layout.state_dir / "registry.json").read_text()
    assert MASK in registry_text and found_in(registry_text, unshaped) == []
    for task_id in (leaky.id, committed.id):
        retry_prompt = (world.layout.run_dir(task_id, 2) / "prompt.md").read_text()
        assert MASK in retry_prompt and found_in(retry_prompt, unshaped) == []
    assert notifier.sent and all(found_in(m.text, unshaped) == [] for m in notifier.sent)
    for path in state_files(world):
        if path.name not in ("output.log", "result.json"):
            assert found_in(path.read_text(errors="replace"), unshaped) == [], path


# -- file modes ------------------------------------------------------------------------------------------------


def test_run_files_are_readable_by_their_owner_only(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: env")
    run_dir = world.layout.run_dir(task.id, 1)
    wait_for(run_dir / "result.json")
    tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)  # the CI job ran too

    runs = world.layout.state_dir / "runs"
    checked = [runs, *runs.rglob("*")]
    assert {"prompt.md", "run.json", "output.log", "result.json"} <= {p.name for p in checked}
    assert any(p.parent.parent.name == "checks" or "checks" in p.parts for p in checked), "a CI job dir too"
    loose = {str(p.relative_to(runs)): oct(p.stat().st_mode & 0o777) for p in checked
             if p.stat().st_mode & 0o077}
    assert loose == {}
