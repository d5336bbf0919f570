"""The actor's dangerous paths, through real ticks: real git worktrees, a real tmux server on a private
socket, real agent processes. Faults are injected at the outside system that fails (the forge, git, tmux,
the retry prompter) or at the moment between ``decide`` and ``act`` when the human or the world moves."""

from __future__ import annotations

import logging
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import monitor.decide as decide_module
import monitor.tick as tick_module
from monitor.act import Actor
from monitor.actions import Launch
from monitor.decide import Decision
from monitor.layout import JOB_SESSION_PREFIX, session_for
from monitor.policy import Policy
from monitor.tick import World, run_tick
from monitor.world.forge import ForgeUnavailable
from monitor.world.git import GitError
from monitor.world.tmux import Tmux, TmuxError
from orchestrator import tasks as task_ops
from registry.models import Failure, FailureKind, Status, Task
from tests.conftest import git
from tests.monitor.test_tick import CI_CHECK, events, spawn, status_of, tick_until
from tests.waiting import output_of, wait_for_output, wait_for_result
from tests.worlds import Clock, RecordingNotifier, make_world

Hook = Callable[[list[Decision]], None]


def between_decide_and_act(monkeypatch: pytest.MonkeyPatch, hook: Hook) -> None:
    """Run ``hook`` each time a tick has made its decisions (every round of them), before acting on them."""
    real = decide_module.cap_respawns

    def capped(decisions: list[Decision], policy: Policy) -> list[Decision]:
        hook(decisions)
        return real(decisions, policy)

    monkeypatch.setattr(tick_module, "cap_respawns", capped)
    monkeypatch.setattr(decide_module, "cap_respawns", capped)


def cancel_once(world: World, task_id: str) -> Hook:
    """The human runs `swarm cancel` while the tick is busy (once: later rounds see it cancelled)."""
    def hook(_decisions: list[Decision]) -> None:
        if world.registry.read().tasks[task_id].status.active:
            task_ops.cancel(world, task_id)
    return hook


def event_records(world: World, task_id: str, name: str) -> list[dict[str, Any]]:
    return [e for e in world.events.read(task_id) if e["event"] == name]


def job_sessions(world: World) -> list[str]:
    return [s for s in world.tmux.panes() or {} if s.startswith(JOB_SESSION_PREFIX)]


@pytest.fixture
def world_parts(git_repo: Path, tmux_socket: str) -> tuple[World, Clock, RecordingNotifier]:
    return make_world(git_repo, tmux_socket, ci=CI_CHECK)


# -- the forge is down ------------------------------------------------------------------------------------


class ForgeOutage:
    """The configured forge, except that ``method`` raises ForgeUnavailable (a rate limit, an outage)."""

    def __init__(self, forge: Any, method: str) -> None:
        self.forge = forge
        self.method = method
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        if name == self.method:
            def refuse(*_args: object, **_kwargs: object) -> None:
                self.calls += 1
                raise ForgeUnavailable("GitHub rate limit (secondary); waiting 60 s")
            return refuse
        return getattr(self.forge, name)


def test_a_forge_outage_defers_the_action_and_changes_nothing(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: commit-good")
    wait_for_result(world.layout, task.id)  # this tick moves it to checking, then starts its checks
    real_forge = world.forge
    world.forge = ForgeOutage(real_forge, "start_checks")

    report = run_tick(world)

    assert world.forge.calls >= 1
    deferred = event_records(world, task.id, "action_deferred")
    assert deferred and all(d["action"] == "StartChecks" and "rate limit" in d["error"] for d in deferred)
    assert f"{task.id}: action_deferred" in report.actions
    after = world.registry.read().tasks[task.id]
    assert after.status is Status.checking and len(after.attempts) == 1
    assert (after.pr, after.fired, after.attempts[0].failure) == (None, (), None), "nothing recorded"
    assert "checks_started" not in events(world, task.id)
    assert job_sessions(world) == []

    world.forge = real_forge  # the outage ends: the next ticks do what was deferred
    state = tick_until(world, status_of(task.id, Status.ready))
    assert len(state.tasks[task.id].attempts) == 1


def test_a_github_rate_limit_defers_opening_the_pr_and_opens_it_once_later(
    git_repo: Path, tmux_socket: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestrator.config import CONFIG_NAME, load
    from orchestrator.wiring import build_world
    from tests.fakes.github_server import FakeGitHub
    from tests.github.test_scenarios import REPO, TOKEN, stage_for

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with FakeGitHub(token=TOKEN) as fake:
        stage_for(git_repo, tmux_socket, fake)
        world = build_world(git_repo, load(git_repo / CONFIG_NAME), RecordingNotifier())
        task = spawn(world, "scenario: commit")
        wait_for_result(world.layout, task.id)
        limited: list[str] = []

        def limit_before_the_pr_is_opened(decisions: list[Decision]) -> None:
            if not limited and any(type(a).__name__ == "OpenPR" for d in decisions for a in d.actions):
                fake.rate_limit(1, status=429, retry_after=1, resource="all")  # GitHub's secondary limit
                limited.append("yes")

        between_decide_and_act(monkeypatch, limit_before_the_pr_is_opened)

        run_tick(world)

        assert limited, "the tick decided to open the pull request"
        deferred = event_records(world, task.id, "action_deferred")
        assert deferred and all(d["action"] == "OpenPR" and "rate limit" in d["error"] for d in deferred)
        current = world.registry.read().tasks[task.id]
        assert current.pr is None and current.status is Status.checking and len(current.attempts) == 1
        assert "pr_opened" not in events(world, task.id)

        state = tick_until(world, lambda s: s.tasks[task.id].pr is not None)  # the window passes
        assert state.tasks[task.id].status in (Status.checking, Status.ready)
        opened = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/pulls")]
        assert len(opened) == 1, "one pull request, opened after the limit"
        assert fake.pr(REPO, state.tasks[task.id].pr.number)["title"] == "Task"  # type: ignore[union-attr]


# -- git or tmux fails inside an action -------------------------------------------------------------------


def fail_git_head(world: World, monkeypatch: pytest.MonkeyPatch, task: Task) -> None:
    real = world.git.head

    def head(ref: str) -> str | None:
        if ref == task.branch:
            raise GitError(f"git rev-parse {ref}: fatal: cannot lock ref (disk trouble)")
        return real(ref)

    monkeypatch.setattr(world.git, "head", head)


def fail_tmux_kill(world: World, monkeypatch: pytest.MonkeyPatch, task: Task) -> None:
    real = world.tmux.kill

    def kill(name: str) -> None:
        if name == session_for(task.id):
            raise TmuxError(f"`tmux kill-session -t ={name}` failed: server busy")
        real(name)

    monkeypatch.setattr(world.tmux, "kill", kill)


@pytest.mark.parametrize("fault", [fail_git_head, fail_tmux_kill], ids=["GitError", "TmuxError"])
def test_a_git_or_tmux_error_in_one_task_is_an_action_error_and_the_tick_goes_on(
    world_parts: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[World, pytest.MonkeyPatch, Task], None],
) -> None:
    world, _clock, _ = world_parts
    broken = spawn(world, "scenario: fail\nretry: sleep", title="Broken")
    healthy = spawn(world, "scenario: fail\nretry: sleep", title="Healthy")
    for task in (broken, healthy):
        wait_for_result(world.layout, task.id)
    between_decide_and_act(monkeypatch, lambda _decisions: fault(world, monkeypatch, broken))

    report = run_tick(world)

    [error] = event_records(world, broken.id, "action_error")
    assert error["action"] == "Respawn"
    assert ("cannot lock ref" if fault is fail_git_head else "server busy") in error["error"]
    state = world.registry.read()
    assert state.tasks[broken.id].status is Status.running
    assert len(state.tasks[broken.id].attempts) == 1, "nothing half-recorded for the task that failed"
    assert len(state.tasks[healthy.id].attempts) == 2, "the other task was still acted on"
    assert f"{healthy.id}: respawn" in report.actions
    wait_for_output(world.layout, healthy.id, "scripted agent: attempt 2", attempt=2)

    monkeypatch.undo()  # the fault passes: the next tick does the respawn it could not do
    run_tick(world)
    assert len(world.registry.read().tasks[broken.id].attempts) == 2
    assert events(world, broken.id).count("respawn") == 1


# -- a worktree that cannot be created, an unknown profile --------------------------------------------------


def queued_behind_a_busy_slot(git_repo: Path, tmux_socket: str) -> tuple[World, RecordingNotifier, Task, Task]:
    world, _clock, notifier = make_world(git_repo, tmux_socket, ci=CI_CHECK, monitor="max_parallel = 1")
    busy = spawn(world, "scenario: sleep", title="Busy")
    queued = spawn(world, "scenario: commit-good", title="Queued")
    assert world.registry.read().tasks[queued.id].status is Status.queued
    return world, notifier, busy, queued


def branch_checked_out_elsewhere(repo: Path, task: Task) -> Callable[[], object]:
    elsewhere = repo.parent / "elsewhere"
    git(repo, "worktree", "add", "-q", "-b", task.branch, str(elsewhere), "main")
    (elsewhere / "mine.txt").write_text("the human's own work\n")
    return lambda: ((elsewhere / "mine.txt").read_text(), git(elsewhere, "branch", "--show-current"))


def path_is_a_file(repo: Path, task: Task) -> Callable[[], object]:
    path = Path(task.worktree)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a directory\n")
    return lambda: path.read_text()


@pytest.mark.parametrize(("obstacle", "reason"), [
    (branch_checked_out_elsewhere, "is already checked out at"),
    (path_is_a_file, "exists and is not a worktree"),
], ids=["branch-elsewhere", "path-is-a-file"])
def test_a_worktree_that_cannot_be_created_fails_the_queued_task_with_the_reason(
    git_repo: Path, tmux_socket: str, obstacle: Callable[[Path, Task], Callable[[], object]], reason: str,
) -> None:
    world, notifier, busy, queued = queued_behind_a_busy_slot(git_repo, tmux_socket)
    untouched = obstacle(git_repo, queued)
    before = untouched()
    task_ops.cancel(world, busy.id)  # frees the slot: this tick starts the queued task

    run_tick(world)

    task = world.registry.read().tasks[queued.id]
    assert task.status is Status.failed
    [attempt] = task.attempts
    assert attempt.failure is not None and attempt.failure.kind is FailureKind.launch_failed
    assert "could not create the worktree" in attempt.failure.summary and reason in attempt.failure.summary
    assert untouched() == before, "what stood in the way is left exactly as it was"
    assert not world.tmux.has_session(session_for(queued.id))
    [message] = [m for m in notifier.sent if m.task_id == queued.id]
    assert message.kind == "needs_help" and reason in message.text
    assert events(world, queued.id).count("failed") == 1


def test_an_unknown_agent_profile_fails_the_queued_task_instead_of_the_tick(git_repo: Path, tmux_socket: str) -> None:
    world, notifier, busy, queued = queued_behind_a_busy_slot(git_repo, tmux_socket)
    # The human renamed the profile in swarm.toml after queueing the task.
    world.runner.profiles = {f"{name}-renamed": p for name, p in world.runner.profiles.items()}
    task_ops.cancel(world, busy.id)

    report = run_tick(world)  # before the fix, LaunchError escaped here and every later tick died the same way

    assert not report.skipped
    task = world.registry.read().tasks[queued.id]
    assert task.status is Status.failed
    failure = task.attempts[-1].failure
    assert failure is not None and failure.kind is FailureKind.launch_failed
    assert "unknown agent profile 'scripted'" in failure.summary
    assert [m.kind for m in notifier.sent if m.task_id == queued.id] == ["needs_help"], "the outbox was flushed"
    assert not world.tmux.has_session(session_for(queued.id))


def test_an_unknown_agent_profile_at_respawn_fails_the_task_instead_of_erring_every_tick(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, notifier = world_parts
    task = spawn(world, "scenario: fail\nretry: commit-good")
    wait_for_result(world.layout, task.id)
    world.runner.profiles = {f"{name}-renamed": p for name, p in world.runner.profiles.items()}

    run_tick(world)
    run_tick(world)

    current = world.registry.read().tasks[task.id]
    assert current.status is Status.failed, "before the fix: running for good, an action_error every tick"
    [attempt] = current.attempts
    assert attempt.failure is not None and attempt.failure.kind is FailureKind.launch_failed
    assert "unknown agent profile 'scripted'" in attempt.failure.summary
    assert "agent_error" in attempt.failure.evidence, "the failure that led to the retry is kept"
    assert attempt.exit_code == 3
    assert "action_error" not in events(world, task.id)
    assert [m.kind for m in notifier.sent] == ["needs_help"]


def test_a_worktree_gone_at_launch_time_is_a_launch_failure(
    world_parts: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, clock, notifier = world_parts
    from monitor.world.tmux import TmuxUnavailable

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise TmuxUnavailable("error connecting to the tmux socket")

    monkeypatch.setattr(world.runner, "launch", unreachable)
    task = spawn(world, "scenario: commit-good")  # recorded, launch deferred
    monkeypatch.undo()
    subprocess.run(["rm", "-rf", task.worktree], check=True)  # gone between decide and act
    actor = Actor(world.registry, world.events, world.runner, world.forge, world.tmux, world.git, world.policy,
                  world.prompter, clock.now)

    actor.run(Launch(task.id, 1))

    current = world.registry.read().tasks[task.id]
    assert current.status is Status.failed and len(current.attempts) == 1
    failure = current.attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.launch_failed
    assert "could not start the agent" in failure.summary and "does not exist" in failure.summary
    assert not world.tmux.has_session(session_for(task.id))
    run_tick(world)
    assert [m.kind for m in notifier.sent] == ["needs_help"]


# -- tmux cannot be reached -------------------------------------------------------------------------------


@pytest.fixture
def hung_tmux(tmp_path: Path) -> Iterator[Tmux]:
    """A tmux socket that accepts connections and never answers (a wedged server): every call times out."""
    path = tmp_path / "hung.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(64)
    try:
        yield Tmux(str(path), timeout=1.0)
    finally:
        listener.close()


def test_an_unreachable_tmux_defers_the_launch_without_burning_the_attempt(
    world_parts: tuple[World, Clock, RecordingNotifier], hung_tmux: Tmux,
) -> None:
    world, _clock, notifier = world_parts
    real_tmux = world.tmux
    world.tmux = world.runner.tmux = hung_tmux

    task = spawn(world, "scenario: commit-good")

    recorded = world.registry.read().tasks[task.id]
    assert recorded.status is Status.running
    [attempt] = recorded.attempts
    assert attempt.launched_at is None and attempt.failure is None
    [deferred] = event_records(world, task.id, "launch_deferred")
    assert deferred["attempt"] == 1 and "timed out" in deferred["error"].lower()
    run_tick(world)  # still unreachable: the launch waits, nothing is counted
    waiting = world.registry.read().tasks[task.id]
    assert waiting.attempts == recorded.attempts and waiting.status is Status.running
    assert output_of(world.layout, task.id) == "", "no agent ran while tmux was unreachable"

    world.tmux = world.runner.tmux = real_tmux
    state = tick_until(world, status_of(task.id, Status.ready))
    final = state.tasks[task.id]
    assert len(final.attempts) == 1 and final.attempts[0].failure is None
    assert output_of(world.layout, task.id).count("scripted agent: attempt 1") == 1
    assert events(world, task.id).count("launched") == 1
    assert [m.kind for m in notifier.sent] == ["ready"]


# -- the retry prompter raises ----------------------------------------------------------------------------


class BrokenPrompter:
    """An injected (LLM) prompter whose service is down."""

    def __init__(self) -> None:
        self.calls = 0

    def retry_prompt(self, task: Task, failure: Failure, attempt: int, max_attempts: int) -> str:
        self.calls += 1
        raise ConnectionError("the model API is unreachable")


def test_a_retry_prompter_that_raises_falls_back_to_the_template_and_respawns(
    world_parts: tuple[World, Clock, RecordingNotifier], caplog: pytest.LogCaptureFixture,
) -> None:
    world, _clock, _ = world_parts
    prompter = BrokenPrompter()
    world.prompter = prompter
    task = spawn(world, "scenario: fail\nretry: commit-good")

    with caplog.at_level(logging.WARNING, logger="monitor.act"):
        state = tick_until(world, status_of(task.id, Status.ready))

    assert prompter.calls == 1
    final = state.tasks[task.id]
    assert [a.failure.kind for a in final.attempts if a.failure] == [FailureKind.agent_error]
    prompt = Path(final.attempts[1].prompt_path).read_text()
    assert "Attempt 2 of 3" in prompt and "the agent broke down" in prompt, "the template prompt, with evidence"
    assert "retry prompter failed" in caplog.text and "unreachable" in caplog.text


# -- the human moved between decide and act --------------------------------------------------------------


def test_a_queued_task_cancelled_before_its_start_is_not_started(
    git_repo: Path, tmux_socket: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, _notifier, busy, queued = queued_behind_a_busy_slot(git_repo, tmux_socket)
    task_ops.cancel(world, busy.id)
    between_decide_and_act(monkeypatch, cancel_once(world, queued.id))

    run_tick(world)

    task = world.registry.read().tasks[queued.id]
    assert task.status is Status.cancelled and task.attempts == ()
    assert not Path(task.worktree).exists()
    assert not world.tmux.has_session(session_for(queued.id))
    assert "started" not in events(world, queued.id)


def test_an_agent_that_finished_as_its_task_was_cancelled_stays_cancelled(
    world_parts: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: fail\nretry: sleep")
    wait_for_result(world.layout, task.id)
    between_decide_and_act(monkeypatch, cancel_once(world, task.id))

    run_tick(world)  # decided: respawn; acted: nothing, the human cancelled it meanwhile

    current = world.registry.read().tasks[task.id]
    assert current.status is Status.cancelled and len(current.attempts) == 1
    assert not world.tmux.has_session(session_for(task.id))
    assert "respawn" not in events(world, task.id)


def test_checks_are_not_started_for_a_task_cancelled_meanwhile(
    world_parts: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: commit-good")
    wait_for_result(world.layout, task.id)
    decided: list[str] = []

    def cancel(decisions: list[Decision]) -> None:
        names = [type(a).__name__ for d in decisions for a in d.actions]
        decided.extend(names)
        if "StartChecks" in names:  # the checks are decided; the human cancels before they start
            task_ops.cancel(world, task.id)

    between_decide_and_act(monkeypatch, cancel)

    run_tick(world)

    assert "StartChecks" in decided
    assert world.registry.read().tasks[task.id].status is Status.cancelled
    assert job_sessions(world) == [], "no CI job runs for a cancelled task"
    assert "checks_started" not in events(world, task.id)


def test_fail_now_leaves_a_task_the_human_cancelled_alone(git_repo: Path, tmux_socket: str) -> None:
    world, _notifier, busy, queued = queued_behind_a_busy_slot(git_repo, tmux_socket)
    stale = world.registry.read().tasks[queued.id]  # what the actor read before the human acted
    task_ops.cancel(world, queued.id)
    actor = Actor(world.registry, world.events, world.runner, world.forge, world.tmux, world.git, world.policy,
                  world.prompter, world.clock())

    actor._fail_now(stale, FailureKind.launch_failed, "could not create the worktree: disk trouble")

    task = world.registry.read().tasks[queued.id]
    assert task.status is Status.cancelled and task.attempts == ()
    assert "failed" not in events(world, queued.id)
    assert world.registry.read().outbox == ()
    assert world.registry.read().tasks[busy.id].status is Status.running
