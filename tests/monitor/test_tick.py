"""The monitor's lifecycle over real git worktrees and a real tmux server, with a scripted agent."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.tick import World, run_tick, tick_lock
from monitor.world.tmux import Tmux
from orchestrator import tasks as task_ops
from registry.models import FailureKind, RegistryState, Status, Task
from tests.conftest import git
from tests.waiting import wait_for, wait_for_output, wait_for_result
from tests.worlds import Clock, RecordingNotifier, make_world

CI_CHECK = "grep -q good value.txt"


def spawn(world: World, prompt: str, title: str = "Task", after: tuple[str, ...] = ()) -> Task:
    return task_ops.spawn(world, title=title, prompt=prompt, agent="scripted", kind="default", after=list(after),
                          base_branch="main")


def tick_until(world: World, done: Callable[[RegistryState], bool], timeout: float = 30.0) -> RegistryState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_tick(world)
        state = world.registry.read()
        if done(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"condition not reached; tasks: {[(t.id, t.status, t.reason) for t in state.tasks.values()]}")


def status_of(task_id: str, *wanted: Status) -> Callable[[RegistryState], bool]:
    return lambda state: state.tasks[task_id].status in wanted


def events(world: World, task_id: str) -> list[str]:
    return [e["event"] for e in world.events.read(task_id)]


@pytest.fixture
def world_parts(git_repo: Path, tmux_socket: str) -> tuple[World, Clock, RecordingNotifier]:
    return make_world(git_repo, tmux_socket, ci=CI_CHECK)


def test_clean_run_goes_to_ready_and_notifies_once(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, _clock, notifier = world_parts
    task = spawn(world, "scenario: commit-good")
    assert task.status is Status.running
    assert world.tmux.has_session(session_for(task.id))

    state = tick_until(world, status_of(task.id, Status.ready))
    final = state.tasks[task.id]
    assert len(final.attempts) == 1
    assert final.checks == {"commits": "ok", "conflict": "ok", "ci": "pass"}
    assert [m.kind for m in notifier.sent] == ["ready"]
    for _ in range(2):
        run_tick(world)
    assert len(notifier.sent) == 1, "a ready task is announced once"
    assert git(Path(world.layout.repo), "log", "--format=%s", f"swarm/{task.id}", "-1") == "add value.txt"


def test_ci_failure_respawns_with_the_ci_output_and_then_passes(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: commit-bad\nretry: commit-good")

    state = tick_until(world, status_of(task.id, Status.ready))
    final = state.tasks[task.id]
    assert [a.failure.kind for a in final.attempts if a.failure] == [FailureKind.ci_failed]
    retry_prompt = Path(final.attempts[1].prompt_path).read_text()
    assert "$ grep -q good value.txt" in retry_prompt
    assert "Attempt 2 of 3" in retry_prompt
    assert "UNTRUSTED-" in retry_prompt


def test_attempts_exhausted_fail_with_one_needs_help_message(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, notifier = world_parts
    task = spawn(world, "scenario: fail")

    state = tick_until(world, status_of(task.id, Status.failed))
    final = state.tasks[task.id]
    assert [a.failure.kind for a in final.attempts if a.failure] == [FailureKind.agent_error] * 3
    assert "the agent broke down" in final.attempts[-1].failure.evidence  # type: ignore[union-attr]
    run_tick(world)
    [message] = notifier.sent
    assert message.kind == "needs_help"
    assert f"swarm retry {task.id}" in message.text
    assert "attempt 3: agent_error" in message.text


def test_phantom_success_is_caught_and_retried(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: phantom\nretry: commit-good")

    state = tick_until(world, status_of(task.id, Status.ready))
    kinds = [a.failure.kind for a in state.tasks[task.id].attempts if a.failure]
    assert kinds == [FailureKind.phantom]
    assert "no commit" in Path(state.tasks[task.id].attempts[1].prompt_path).read_text()


def test_killed_session_is_died_and_respawned(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: sleep\nretry: commit-good")
    run_tick(world)
    assert world.registry.read().tasks[task.id].status is Status.running
    world.tmux.kill(session_for(task.id))

    state = tick_until(world, status_of(task.id, Status.ready))
    assert [a.failure.kind for a in state.tasks[task.id].attempts if a.failure] == [FailureKind.died]


def test_stuck_agent_is_killed_and_respawned(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, clock, _ = world_parts
    task = spawn(world, "scenario: sleep\nretry: commit-good")
    wait_for_output(world.layout, task.id, "scripted agent: attempt 1")  # then it prints nothing more
    run_tick(world)
    clock.advance(minutes=11)  # stuck_after is 10m; the sleeping agent prints nothing more
    run_tick(world)

    current = world.registry.read().tasks[task.id]
    assert current.attempts[0].failure is not None
    assert current.attempts[0].failure.kind is FailureKind.stuck
    state = tick_until(world, status_of(task.id, Status.ready))
    assert len(state.tasks[task.id].attempts) == 2


def test_timeout_kills_a_chatty_agent(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, clock, _ = world_parts
    task = spawn(world, "scenario: chatty\nretry: commit-good")
    run_tick(world)
    clock.advance(minutes=61)  # attempt_timeout is 1h; output keeps growing, so it is not stuck
    state = tick_until(world, lambda s: len(s.tasks[task.id].attempts) == 2)
    assert state.tasks[task.id].attempts[0].failure.kind is FailureKind.timeout  # type: ignore[union-attr]


def test_max_parallel_and_dependencies_hold_tasks_in_queued(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, ci=CI_CHECK, monitor="max_parallel = 1")
    first = spawn(world, "scenario: commit-good", title="First")
    second = spawn(world, "scenario: commit-good", title="Second")
    dependent = spawn(world, "scenario: commit-good", title="Dependent", after=(first.id,))
    state = world.registry.read()
    assert state.tasks[first.id].status is Status.running
    assert state.tasks[second.id].status is Status.queued
    assert "free slot" in state.tasks[second.id].reason

    state = tick_until(world, lambda s: s.tasks[first.id].status is Status.ready
                       and s.tasks[second.id].status is Status.ready)
    assert state.tasks[dependent.id].status is Status.queued
    assert first.id in state.tasks[dependent.id].reason

    git(git_repo, "merge", "-q", "--no-ff", "-m", "merge first", f"swarm/{first.id}")
    state = tick_until(world, status_of(dependent.id, Status.running, Status.checking, Status.ready))
    assert state.tasks[first.id].status is Status.merged
    assert not Path(state.tasks[first.id].worktree).exists(), "a merged task's worktree is cleaned up"
    assert "worktree_removed" in events(world, first.id)


def test_tmux_server_down_is_not_a_mass_death(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, clock, _ = world_parts
    tasks = [spawn(world, "scenario: sleep", title=f"T{i}") for i in range(3)]
    for task in tasks:
        wait_for_output(world.layout, task.id, "scripted agent: attempt 1")
    run_tick(world)
    # The agents live on, but the monitor cannot see their server (a hidden socket, as PrivateTmp does).
    hidden = Tmux(f"{world.tmux.socket}-hidden")
    world.tmux = world.runner.tmux = hidden
    try:
        clock.advance(minutes=5)
        report = run_tick(world)

        state = world.registry.read()
        assert all(state.tasks[t.id].status is Status.running for t in tasks)
        assert all(len(state.tasks[t.id].attempts) == 1 for t in tasks)
        assert not any("respawn" in line for line in report.actions)
        assert "not counted as a death" in state.tasks[tasks[0].id].reason
        # Past stuck_after with no progress at all, they count as dead, but at most
        # max_respawns_per_tick per tick.
        clock.advance(minutes=20)
        report = run_tick(world)
        assert sum("respawn" in line for line in report.actions) == 3
    finally:
        hidden.kill_server()


def test_respawns_per_tick_are_capped(git_repo: Path, tmux_socket: str) -> None:
    world, clock, _ = make_world(git_repo, tmux_socket, monitor="max_respawns_per_tick = 2\nmax_parallel = 5")
    tasks = [spawn(world, "scenario: sleep", title=f"T{i}") for i in range(4)]
    for task in tasks:  # every agent prints its first line, then stays silent
        wait_for_output(world.layout, task.id, "scripted agent: attempt 1")
    run_tick(world)
    clock.advance(days=1)  # the clock jumps: every agent looks stuck at once
    report = run_tick(world)
    assert sum("respawn" in line for line in report.actions) == 2
    report = run_tick(world)
    assert sum("respawn" in line for line in report.actions) == 2
    state = world.registry.read()
    assert all(len(state.tasks[t.id].attempts) == 2 for t in tasks)


def test_deleted_worktree_is_flagged_and_not_recreated(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, _clock, notifier = world_parts
    task = spawn(world, "scenario: sleep")
    worktree = Path(task.worktree)
    subprocess.run(["rm", "-rf", str(worktree)], check=True)
    run_tick(world)

    current = world.registry.read().tasks[task.id]
    assert current.status is Status.failed
    assert current.attempts[-1].failure.kind is FailureKind.worktree_missing  # type: ignore[union-attr]
    assert not worktree.exists()
    assert [m.kind for m in notifier.sent] == ["needs_help"]


def test_a_tick_killed_between_intent_and_launch_launches_exactly_once(
    world_parts: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: sleep\nretry: sleep")
    world.tmux.kill(session_for(task.id))

    class Killed(BaseException):
        pass

    def dies(*_args: object, **_kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(world.runner, "launch", dies)
    with pytest.raises(Killed):
        run_tick(world)  # the respawn is recorded, then the process "dies" before tmux starts it
    recorded = world.registry.read().tasks[task.id]
    assert len(recorded.attempts) == 2 and recorded.attempts[1].launched_at is None
    monkeypatch.undo()

    run_tick(world)
    run_tick(world)
    state = world.registry.read().tasks[task.id]
    assert len(state.attempts) == 2, "the repair tick launches the recorded attempt; it does not add one"
    assert state.attempts[1].launched_at is not None
    assert world.tmux.has_session(session_for(task.id))
    assert events(world, task.id).count("respawn") == 1


def test_a_second_tick_exits_at_once_while_one_runs(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    world, _clock, _ = world_parts
    with tick_lock(world.layout) as acquired:
        assert acquired
        report = run_tick(world)
    assert report.skipped


def test_concurrent_run_once_processes_never_start_twice(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, monitor="max_parallel = 1")
    first = spawn(world, "scenario: sleep", title="Busy")
    queued = spawn(world, "scenario: sleep", title="Waiting")
    world.tmux.kill(session_for(first.id))  # the next tick respawns it: both processes race for that
    cmd = [*_swarm(), "monitor", "run-once", "--json"]
    procs = [subprocess.Popen(cmd, cwd=git_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert events(world, first.id).count("respawn") == 1
    assert world.registry.read().tasks[queued.id].status is Status.queued


def _swarm() -> list[str]:
    import sys

    return [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def test_stop_request_finishes_between_tasks_and_releases_the_lock(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    import threading

    world, _clock, _ = world_parts
    task = spawn(world, "scenario: commit-good")
    wait_for_result(world.layout, task.id)  # the agent is done: the tick has work it must not half-do
    stop = threading.Event()
    stop.set()
    report = run_tick(world, stop)
    assert report.stopped_early
    assert world.registry.read().tasks[task.id].status is Status.running  # nothing half-done
    with tick_lock(world.layout) as acquired:
        assert acquired, "the lock is released after a stopped tick"
    state = tick_until(world, status_of(task.id, Status.ready))
    assert state.tasks[task.id].status is Status.ready


def test_conflict_with_the_base_respawns_with_the_conflicting_files(git_repo: Path, tmux_socket: str) -> None:
    (git_repo / "shared.txt").write_text("original\n")
    git(git_repo, "add", "shared.txt")
    git(git_repo, "commit", "-q", "-m", "shared")
    world, _clock, _ = make_world(git_repo, tmux_socket)
    task = spawn(world, "scenario: edit-shared\nretry: merge-main")
    (git_repo / "shared.txt").write_text("main moved on\n")
    git(git_repo, "commit", "-q", "-am", "main edits shared")

    state = tick_until(world, status_of(task.id, Status.ready))
    final = state.tasks[task.id]
    failure = final.attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.conflict
    assert "shared.txt" in failure.evidence
    assert "shared.txt" in Path(final.attempts[1].prompt_path).read_text()
    assert final.checks["conflict"] == "ok"


def test_behind_base_is_updated_without_an_agent(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, ci=CI_CHECK, extra="[done]\nup_to_date = true")
    task = spawn(world, "scenario: commit-good")
    (git_repo / "other.txt").write_text("unrelated\n")
    git(git_repo, "add", "other.txt")
    git(git_repo, "commit", "-q", "-m", "main moves")

    state = tick_until(world, status_of(task.id, Status.ready))
    final = state.tasks[task.id]
    assert len(final.attempts) == 1, "bringing a branch up to date needs no agent"
    assert final.checks["synced"] == "ok"
    assert "branch_updated" in events(world, task.id)
    assert git(git_repo, "merge-base", "--is-ancestor", "main", final.branch) == ""


def test_local_reviewer_requests_changes_then_approves(git_repo: Path, tmux_socket: str) -> None:
    reviewer = "sh -c 'grep -q good value.txt || { echo \"value.txt must say good\"; exit 1; }'"
    world, _clock, _ = make_world(
        git_repo, tmux_socket,
        extra=f'reviewers = {{ strict = "{reviewer.replace(chr(34), chr(92) + chr(34))}" }}\n'
              '[done]\nreviews = 1\nreviewers = ["strict"]',
    )
    task = spawn(world, "scenario: commit-bad\nretry: commit-good")

    state = tick_until(world, status_of(task.id, Status.ready))
    final = state.tasks[task.id]
    failure = final.attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.changes_requested
    assert "value.txt must say good" in failure.evidence
    assert final.checks["reviews"] == "1/1"


def test_ui_change_without_a_screenshot_is_sent_back(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, extra='[done]\nscreenshots_for = ["ui/**"]')
    task = spawn(world, "scenario: commit-ui\nretry: add-screenshot")

    state = tick_until(world, status_of(task.id, Status.ready))
    final = state.tasks[task.id]
    failure = final.attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.screenshots_missing
    assert "ui/page.tsx" in failure.evidence
    assert final.checks["screenshots"] == "ok"


def test_an_agent_that_commits_then_hangs_is_still_caught_as_stuck(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, clock, _ = world_parts
    task = spawn(world, "scenario: commit-then-hang\nretry: commit-good")
    wait_for(lambda: world.git.head(task.branch) != world.git.head("main"), "the agent's commit")
    run_tick(world)  # sees the commit: progress
    assert world.registry.read().tasks[task.id].attempts[0].seen_head == world.git.head(task.branch)
    clock.advance(minutes=11)
    run_tick(world)  # same head, same output for longer than stuck_after
    failure = world.registry.read().tasks[task.id].attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.stuck


def test_delivered_notifications_are_pruned_after_a_week(world_parts: tuple[World, Clock, RecordingNotifier]) -> None:
    from monitor.tick import flush_outbox
    from registry.models import OutboxMessage

    world, clock, notifier = world_parts
    old = OutboxMessage(key="old", task_id="x", kind="ready", text="old news", created_at=clock.now)
    world.registry.update(lambda s: s.enqueue(old))
    assert flush_outbox(world) == 1
    assert [m.key for m in world.registry.read().outbox] == ["old"]
    clock.advance(days=8)
    world.registry.update(lambda s: s.enqueue(old.model_copy(update={"key": "new", "created_at": clock.now})))
    assert flush_outbox(world) == 1
    assert [m.key for m in world.registry.read().outbox] == ["new"]
    assert [m.key for m in notifier.sent] == ["old", "new"]


def test_a_failing_notifier_keeps_the_message_and_never_fails_the_tick(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, notifier = world_parts
    notifier.fail_with = ConnectionError("chat service down")
    task = spawn(world, "scenario: fail")
    tick_until(world, status_of(task.id, Status.failed))
    [queued] = world.registry.read().outbox
    assert queued.sent_at is None and queued.tries >= 1 and "chat service down" in queued.last_error
    notifier.fail_with = None
    run_tick(world)
    assert [m.kind for m in notifier.sent] == ["needs_help"]
    assert world.registry.read().outbox[0].sent_at is not None


def test_the_human_can_retry_a_failed_task_past_max_attempts(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: fail")
    tick_until(world, status_of(task.id, Status.failed))

    retried = task_ops.retry(world, task.id, "retry: commit-good")
    assert retried.status is Status.running and len(retried.attempts) == 4
    prompt = Path(retried.attempts[3].prompt_path).read_text()
    assert "Attempt 4 of 4" in prompt and "- retry: commit-good" in prompt
    state = tick_until(world, status_of(task.id, Status.ready))
    assert len(state.tasks[task.id].attempts) == 4
    assert [e["by"] for e in world.events.read(task.id) if e["event"] == "respawn"][-1] == "human"


def test_a_human_retry_of_a_ready_task_must_bring_new_commits(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: commit-good\nretry: phantom")
    tick_until(world, status_of(task.id, Status.ready))

    task_ops.retry(world, task.id, "rename the file")
    state = tick_until(world, status_of(task.id, Status.failed))
    kinds = [a.failure.kind for a in state.tasks[task.id].attempts if a.failure]
    # the head the human rejected never counts as done again, however many attempts later
    assert kinds == [FailureKind.changes_requested, FailureKind.phantom, FailureKind.phantom]


def test_setup_runs_once_per_worktree_and_again_for_a_recreated_one(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket)
    from monitor.runner import SetupSpec

    counter = git_repo.parent / "setup-runs"
    world.runner.setup = SetupSpec(f"sh -c 'echo run >> {counter}'", 60)
    task = spawn(world, "scenario: fail")
    tick_until(world, status_of(task.id, Status.failed))
    assert counter.read_text().count("run") == 1, "three attempts in one worktree: setup ran once"

    subprocess.run(["git", "worktree", "remove", "--force", task.worktree], cwd=git_repo, check=True)
    task_ops.retry(world, task.id, "")
    tick_until(world, lambda s: s.tasks[task.id].status is Status.failed and len(s.tasks[task.id].attempts) == 4)
    assert counter.read_text().count("run") == 2, "the re-created worktree got its setup"


def test_a_failing_setup_fails_the_task_with_its_output(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, notifier = make_world(git_repo, tmux_socket)
    from monitor.runner import SetupSpec

    world.runner.setup = SetupSpec("sh -c 'echo cannot install dependencies; exit 4'", 60)
    task = spawn(world, "scenario: commit-good")
    state = tick_until(world, status_of(task.id, Status.failed))
    failure = state.tasks[task.id].attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.setup_failed
    assert "cannot install dependencies" in failure.evidence
    assert len(state.tasks[task.id].attempts) == 1, "no agent can fix a broken setup: no respawn"
    run_tick(world)
    assert [m.kind for m in notifier.sent] == ["needs_help"]


def test_an_unreachable_tmux_at_launch_defers_the_launch_instead_of_failing(
    world_parts: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.world.tmux import TmuxUnavailable

    world, _clock, notifier = world_parts

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise TmuxUnavailable("error connecting to the tmux socket")

    monkeypatch.setattr(world.runner, "launch", unreachable)
    task = spawn(world, "scenario: commit-good")
    recorded = world.registry.read().tasks[task.id]
    assert recorded.status is Status.running and recorded.attempts[0].launched_at is None
    assert "launch_deferred" in events(world, task.id)
    monkeypatch.undo()

    state = tick_until(world, status_of(task.id, Status.ready))
    assert len(state.tasks[task.id].attempts) == 1
    assert [m.kind for m in notifier.sent] == ["ready"]


def test_a_branch_that_cannot_be_updated_is_sent_back_as_behind(git_repo: Path, tmux_socket: str) -> None:
    world, _clock, _ = make_world(git_repo, tmux_socket, extra="[done]\nup_to_date = true")
    task = spawn(world, "scenario: commit-good\nretry: merge-main")
    tick_until(world, status_of(task.id, Status.ready))
    (git_repo / "other.txt").write_text("unrelated\n")
    git(git_repo, "add", "other.txt")
    git(git_repo, "commit", "-q", "-m", "main moves")
    (Path(task.worktree) / "value.txt").write_text("an uncommitted edit blocks the automatic merge\n")

    state = tick_until(world, lambda s: len(s.tasks[task.id].attempts) == 2)
    failure = state.tasks[task.id].attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.behind
    assert "could not be updated automatically" in failure.summary


def test_a_task_waiting_for_review_costs_no_git_work_until_a_head_moves(
    world_parts: tuple[World, Clock, RecordingNotifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, _clock, _ = world_parts
    task = spawn(world, "scenario: commit-good")
    tick_until(world, status_of(task.id, Status.ready))
    calls: list[str] = []
    for name in ("is_merged", "divergence", "conflicts", "changed_files"):
        real = getattr(world.git, name)

        def counted(*args: object, _real: Callable[..., object] = real, _name: str = name, **kw: object) -> object:
            calls.append(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(world.git, name, counted)
    for _ in range(3):
        run_tick(world)
    assert calls == [], "nothing moved: the stored branch facts are reused"
    assert world.registry.read().tasks[task.id].status is Status.ready

    (Path(world.layout.repo) / "other.txt").write_text("main moves on\n")
    git(Path(world.layout.repo), "add", "other.txt")
    git(Path(world.layout.repo), "commit", "-q", "-m", "main moves")
    run_tick(world)
    assert sorted(set(calls)) == ["changed_files", "conflicts", "divergence", "is_merged"]
    facts = world.registry.read().tasks[task.id].branch_facts
    assert facts is not None and facts.behind == 1 and facts.key.startswith(world.git.head("main") or "?")


def test_a_launched_agent_reads_running_at_once_not_launching(
    world_parts: tuple[World, Clock, RecordingNotifier],
) -> None:
    world, _clock, _notifier = world_parts
    task = spawn(world, "scenario: sleep")
    current = world.registry.read().tasks[task.id]
    assert current.attempt is not None and current.attempt.launched_at is not None
    assert current.reason == "agent running", "the reason said 'launching' until the next tick"
