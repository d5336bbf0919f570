"""A provider outage through real ticks: real tmux, real git, an agent CLI that prints a recorded Claude Code
API failure (then, once the outage is over, does the work)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from registry.models import FailureKind, Status, Task
from tests.conftest import FIXTURES
from tests.worlds import REPO_ROOT, make_world

OUTAGE = FIXTURES / "claude-code" / "apierror-stream-json.jsonl"


def agent_script(path: Path, outage: bool) -> None:
    """The agent's CLI: the provider fails (a recorded api_retry stream, exit 1), or the work is done."""
    work = f"exec {sys.executable} -m tests.agents.scripted"
    path.write_text(f"cat '{OUTAGE}'; exit 1\n" if outage else f"{work}\n")


def exited_all(world: World, tasks: list[Task], attempt: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all((world.layout.run_dir(t.id, attempt) / "result.json").exists() for t in tasks):
            return
        time.sleep(0.05)
    raise AssertionError(f"attempt {attempt} did not exit everywhere")


def test_a_one_minute_outage_backs_off_spends_no_attempts_and_is_told_once(
    git_repo: Path, tmux_socket: str
) -> None:
    script = git_repo.parent / "agent.sh"
    agent_script(script, outage=True)
    agent = (f'[agents.flaky]\ncommand = ["sh", "{script}"]\nprompt = "stdin"\nparser = "claude"\n'
             f'env = {{ PYTHONPATH = "{REPO_ROOT}" }}\n')
    world, clock, notifier = make_world(git_repo, tmux_socket, extra=agent)
    tasks = [task_ops.spawn(world, title=f"T{i}", prompt="scenario: commit", agent="flaky", kind="default",
                            after=[], base_branch="main") for i in range(3)]
    exited_all(world, tasks, 1)

    run_tick(world)  # every agent hit the outage: none is respawned at once
    state = world.registry.read()
    for t in tasks:
        current = state.tasks[t.id]
        assert current.status is Status.running and len(current.attempts) == 1
        retry_at = current.attempts[0].retry_at
        assert retry_at is not None and 30 <= (retry_at - clock.now).total_seconds() <= 60
        assert current.reason.endswith(f"next try at {retry_at:%H:%M:%S} UTC")
    assert [m.kind for m in notifier.sent] == ["outage"], "one fleet-wide message, not one per task"
    assert all(t.id in notifier.sent[0].text for t in tasks)

    clock.advance(seconds=61)  # still down: every task retries once, and backs off longer
    run_tick(world)
    exited_all(world, tasks, 2)
    run_tick(world)
    state = world.registry.read()
    waits = []
    for t in tasks:
        current = state.tasks[t.id]
        assert len(current.attempts) == 2 and current.attempts[0].failure is not None
        assert current.attempts[0].failure.kind is FailureKind.api_error
        retry_at = current.attempts[1].retry_at
        assert retry_at is not None
        waits.append((retry_at - clock.now).total_seconds())
    assert all(60 <= w <= 120 for w in waits) and len(set(waits)) == 3, waits

    agent_script(script, outage=False)  # the provider is back
    clock.advance(seconds=121)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run_tick(world)
        state = world.registry.read()
        if all(state.tasks[t.id].status is Status.ready for t in tasks):
            break
        time.sleep(0.1)
    state = world.registry.read()
    assert [state.tasks[t.id].status for t in tasks] == [Status.ready] * 3
    assert [m.kind for m in notifier.sent].count("outage") == 1
    assert "needs_help" not in [m.kind for m in notifier.sent]
    prompt = Path(state.tasks[tasks[0].id].attempts[2].prompt_path).read_text()
    assert "Attempt 3 of 5" in prompt, "the attempts lost to the outage are not counted"
    assert state.outage_since is not None
    clock.advance(minutes=40)  # no API error within the window (api_backoff_max): the outage is over
    run_tick(world)
    assert world.registry.read().outage_since is None
    assert json.loads(json.dumps(notifier.sent[0].data))["tasks"] == sorted(t.id for t in tasks)


def test_the_outage_keys_are_read_from_the_monitor_section(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, monitor='api_backoff = "2m"\napi_backoff_max = "1h"\n'
                                  "api_error_attempts = 2\noutage_tasks = 4")
    policy = world.policy
    assert (policy.api_backoff, policy.api_backoff_max, policy.api_error_attempts, policy.outage_tasks) == (
        120.0, 3600.0, 2, 4)
