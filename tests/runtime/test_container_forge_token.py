"""A ``forge_token = true`` profile in a container (a real podman): the agent gets the token, through a
one-shot file its entry takes, and the token is in no field the engine shows (``docker inspect``), in no
argv on the host, not in PID 1's environment, not for the setup command, and not left on disk."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.runner import SetupSpec
from monitor.runtime.container import ContainerRuntime
from monitor.runtime.entry import SECRET_ENV_FILE
from monitor.runtime.secretfile import env_lines
from monitor.tick import World
from orchestrator import tasks as task_ops
from registry.models import Status
from tests.fakes.podman import Podman
from tests.runtime.test_container_lifecycle import container_config, tick_until
from tests.runtime.test_placement import hosts_config
from tests.waiting import wait_for
from tests.worlds import make_world, write_config

# Prints a digest of the token it got (never the token), whether PID 1's environment holds it, then waits
# for the test to look at the container, then commits.
AGENT = """
import hashlib, os, subprocess, sys, time
sys.stdin.read()
token = os.environ.get("GITHUB_TOKEN", "")
print("token-sha", hashlib.sha256(token.encode()).hexdigest(), flush=True)
print("pid1-holds-it", bool(token) and token.encode() in open("/proc/1/environ", "rb").read(), flush=True)
while not os.path.exists("looked"):
    time.sleep(0.1)
open("w.txt", "w").write("x")
subprocess.run(["git", "add", "w.txt"], check=True)
subprocess.run(["git", "commit", "-qm", "with a token"], check=True)
"""

PROFILE = f"""
[agents.gh]
command = ["python3", "-c", '''{AGENT}''']
prompt = "stdin"
runtime = "container"
forge_token = true
"""


def shared(engine: Podman) -> str:
    return container_config(engine) + PROFILE


def remote(engine: Podman) -> str:
    return hosts_config(engine.image, [("far", engine.url, 2)]) + "shares_worktree = false\n" + PROFILE


@pytest.fixture(params=["shared", "remote"])
def world(request: pytest.FixtureRequest, git_repo: Path, tmux_socket: str, podman: Podman) -> Iterator[World]:
    config = shared(podman) if request.param == "shared" else remote(podman)
    made, _, _ = make_world(git_repo, tmux_socket, extra=config)
    made.runner.setup = SetupSpec("echo setup-sees:${GITHUB_TOKEN:-nothing}", 60)
    yield made
    for runtime in made.runner.runtimes.values():
        if isinstance(runtime, ContainerRuntime):
            for name in runtime.panes() or {}:
                runtime.kill(name)


def host_argv() -> bytes:
    seen = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            seen.append(cmdline.read_bytes())
        except OSError:
            continue
    return b"\n".join(seen)


def test_a_forge_token_profile_runs_in_a_container_and_the_token_shows_nowhere_but_in_the_agent(
    world: World, podman: Podman, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = f"ghp_planted{secrets.token_hex(12)}"
    monkeypatch.setenv("GITHUB_TOKEN", token)
    task = task_ops.spawn(world, title="Gh", prompt="use gh", agent="gh", kind="default", after=[],
                          base_branch="main")
    assert task.attempt is not None and task.attempt.runtime != "tmux"
    run_dir = world.layout.run_dir(task.id, 1)
    log = run_dir / "output.log"
    tick_until(world, lambda s: log.exists() and "pid1-holds-it" in log.read_text())

    text = log.read_text()
    assert f"token-sha {hashlib.sha256(token.encode()).hexdigest()}" in text, "the agent got the token: " + text
    assert "pid1-holds-it False" in text
    assert "setup-sees:nothing" in text and token not in text
    attrs = podman.cli("inspect", session_for(task.id))
    assert token not in attrs, "the token is in the container's configuration"
    config = json.loads(attrs)[0]["Config"]
    assert any(item.endswith(SECRET_ENV_FILE) for item in config["Env"]), "only the file's path is there"
    assert token.encode() not in host_argv(), "the token is in some process's argv on the host"
    assert not (run_dir / SECRET_ENV_FILE).exists(), "the one-shot file was taken"
    assert token.encode() not in b"".join(p.read_bytes() for p in run_dir.rglob("*") if p.is_file())

    podman.cli("exec", session_for(task.id), "touch", str(Path(task.worktree) / "looked"))
    state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    assert state.tasks[task.id].attempts[-1].exit_code == 0


def test_a_token_line_cannot_smuggle_another_variable_in() -> None:
    assert env_lines({"GH_TOKEN": "a=b c", "A": "1"}) == b"A=1\nGH_TOKEN=a=b c\n"
    with pytest.raises(ValueError, match="line break"):
        env_lines({"GH_TOKEN": "x\nLD_PRELOAD=/tmp/evil.so"})
    with pytest.raises(ValueError, match="invalid environment variable name"):
        env_lines({"BAD-NAME": "x"})


def test_an_entry_that_was_not_handed_the_file_says_so(git_repo: Path, tmux_socket: str, podman: Podman) -> None:
    write_config(git_repo, tmux_socket, extra=shared(podman))
    runtime = ContainerRuntime(podman.url, image=podman.image, owner=str(git_repo), network="none")
    from monitor.runtime.entry import entry_argv, exit_record

    run_dir = git_repo.parent / "run-1"
    run_dir.mkdir()
    (run_dir / "prompt.md").write_text("x")
    name = f"swarm-test-{secrets.token_hex(4)}"
    argv = entry_argv(run_dir, "stdin", ["sh", "-c", "echo agent ran"])
    # the file is gone before the entry looks (as when the monitor removed it after its wait)
    runtime._await_handover = lambda path: path.unlink(missing_ok=True)  # type: ignore[method-assign]
    runtime._write_handover = lambda path, values: None  # type: ignore[method-assign]
    try:
        runtime.launch_attempt(name, argv, git_repo, {}, mounts=[(run_dir, False)], task="t", handover={"A": "b"})
        wait_for(lambda: (runtime.panes() or {}).get(name) is not None and (runtime.panes() or {})[name].dead,
                 what="the entry to stop")
        pane = (runtime.panes() or {})[name]
        from datetime import UTC, datetime

        record = exit_record(run_dir, pane, "plain", datetime.now(UTC))  # type: ignore[arg-type]
        assert record["phase"] == "launch" and record["exit_code"] == 125
        assert "not handed over" in record["error"]
        assert "agent ran" not in (run_dir / "output.log").read_text() if (run_dir / "output.log").exists() else True
    finally:
        runtime.kill(name)
