"""Budgets enforced by the tick over real tmux and git: a spent day holds new starts and respawns and tells
the human once, running agents finish, the next day (or a raise) resumes; a task over its own budget gets
no more retries. The model calls of `swarm submit` stop too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.layout import session_for
from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from registry.models import Attempt, RegistryState, Spend, Status, Task
from tests.fakes.messages_api import ScriptedMessagesServer
from tests.monitor.test_tick import status_of, tick_until
from tests.waiting import wait_for_result
from tests.worlds import make_world

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
BUDGET = '\n[budget]\nper_day_usd = 10\nper_task_usd = 3\ntimezone = "UTC"\n'


def spawn(world: World, prompt: str, title: str) -> Task:
    return task_ops.spawn(world, title=title, prompt=prompt, agent="scripted", kind="default", after=[],
                          base_branch="main")


def seed_spend(world: World, usd: float) -> None:
    """An earlier task whose agent spent ``usd`` today (what a real attempt's result records)."""
    now = world.clock()
    done = Task(id="earlier-0001", title="Earlier", prompt="p", agent="scripted", base_branch="main",
                branch="swarm/earlier-0001", worktree="/nonexistent/earlier", status=Status.merged,
                created_at=now, updated_at=now,
                attempts=(Attempt(number=1, session="s", prompt_path="p", started_at=now - timedelta(minutes=30),
                                  ended_at=now, tokens=900_000, cost_usd=usd),))
    world.registry.update(lambda s: s.with_task(done))


def budget_messages(notifier: object) -> list[str]:
    return [m.key for m in notifier.sent if m.kind == "budget"]  # type: ignore[attr-defined]


def swarm(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_a_spent_day_holds_starts_and_respawns_tells_once_and_the_next_day_resumes(
    git_repo: Path, tmux_socket: str
) -> None:
    world, clock, notifier = make_world(git_repo, tmux_socket, extra=BUDGET)
    running = spawn(world, "scenario: sleep", "Long runner")
    failing = spawn(world, "scenario: fail\nretry: commit-good", "Fails once")
    assert failing.status is Status.running
    seed_spend(world, 12.0)
    waiting = spawn(world, "scenario: commit-good", "New work")
    assert waiting.status is Status.queued
    assert waiting.reason.startswith("held: today's spend $12.00 reached the day's budget of $10.00")

    wait_for_result(world.layout, failing.id)
    state = tick_until(world, lambda s: "retry held" in s.tasks[failing.id].reason)
    for _ in range(2):
        run_tick(world)
    state = world.registry.read()
    assert len(state.tasks[failing.id].attempts) == 1, "no respawn while the day is spent"
    assert state.tasks[waiting.id].status is Status.queued
    assert state.tasks[running.id].status is Status.running
    assert world.tmux.has_session(session_for(running.id)), "a running agent is not killed"
    assert budget_messages(notifier) == ["budget:day:2026-11-01:10:0"], "told once"
    text = next(m.text for m in notifier.sent if m.kind == "budget")
    assert "swarm budget --raise-day" in text and "today $12.00 of $10.00" in text

    clock.jump(days=1)  # the next day (the wall clock moved; the running agent is re-baselined, not judged)
    state = tick_until(world, lambda s: len(s.tasks[failing.id].attempts) == 2
                       and s.tasks[waiting.id].status is not Status.queued)
    assert state.tasks[running.id].status is Status.running
    tick_until(world, status_of(waiting.id, Status.ready))
    assert budget_messages(notifier) == ["budget:day:2026-11-01:10:0"]


def test_a_raise_lets_work_resume_and_status_shows_the_spend(git_repo: Path, tmux_socket: str) -> None:
    world, clock, _ = make_world(git_repo, tmux_socket, extra=BUDGET)
    clock.now = datetime.now(UTC)  # the CLI below reads the real clock: the same day
    seed_spend(world, 12.0)
    waiting = spawn(world, "scenario: commit-good", "New work")
    run_tick(world)
    assert world.registry.read().tasks[waiting.id].reason.startswith("held:")

    shown = swarm(git_repo, "budget", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["over"] == "day" and report["day"]["usd"] == 12.0 and report["limits"]["per_day_usd"] == 10.0
    status = swarm(git_repo, "status")
    assert "spend: today $12.00 of $10.00" in status.stderr
    config = (git_repo / "swarm.toml").read_text()
    raised = swarm(git_repo, "budget", "--raise-day", "20")
    assert raised.returncode == 0, raised.stderr
    assert "today $12.00 of $30.00" in raised.stdout
    assert (git_repo / "swarm.toml").read_text() == config, "swarm.toml is left as the user wrote it"

    clock.advance(seconds=5)
    tick_until(world, lambda s: s.tasks[waiting.id].status is not Status.queued)
    bad = swarm(git_repo, "budget", "set", "per_year_usd", "3")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("swarm: error: 'per_year_usd' is not a budget")


def test_a_task_over_its_budget_gets_no_more_retries_and_one_notification(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, notifier = make_world(git_repo, tmux_socket, extra=BUDGET)
    task = spawn(world, "scenario: fail\nretry: commit-good", "Costly")
    now = world.clock()

    def spend(state: RegistryState) -> RegistryState:  # its review and retry prompts cost $3.50 already
        current = state.tasks[task.id]
        return state.with_task(current.model_copy(update={
            "llm_tokens": 3500, "llm_cost_usd": 3.5, "llm_spend": (Spend(at=now, tokens=3500, cost_usd=3.5),)}))

    world.registry.update(spend)
    wait_for_result(world.layout, task.id)
    state = tick_until(world, status_of(task.id, Status.failed))
    assert len(state.tasks[task.id].attempts) == 1
    assert "budget exceeded: $3.50 spent, over the budget of $3.00 per task" in state.tasks[task.id].reason
    for _ in range(2):
        run_tick(world)
    assert [m.kind for m in notifier.sent if m.task_id == task.id] == ["needs_help"]


def test_submit_stops_before_the_model_when_the_day_is_spent(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, extra=BUDGET)
    world.clock = lambda: datetime.now(UTC)
    seed_spend(world, 11.0)
    with ScriptedMessagesServer([]) as api:
        result = swarm(git_repo, "submit", "Add a dark mode", env={"ANTHROPIC_API_KEY": "sk-ant-test-key",
                                                                  "ANTHROPIC_BASE_URL": api.url})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["swarm: error: planning not run: today's spend $11.00 reached the day's budget of $10.00; "
                     "`swarm budget --raise-day N` to go on today"]
    assert api.log == [], "no model call"
