"""The monitor's judgement as tables: (task, observation, policy, now) → actions.

``decide`` is pure, so every row builds plain values with the small factories below, calls it, and compares
the actions' types and key fields (failure kind, kill, fired key) with the expected ones.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.actions import (
    Backoff,
    BackToChecking,
    Fail,
    Launch,
    LinkScreenshots,
    MarkReady,
    OpenPR,
    Progress,
    Respawn,
    Start,
    StartChecks,
    ToChecking,
)
from monitor.decide import (
    Decision,
    api_backoff,
    cap_respawns,
    classify_exit,
    decide,
    free_api_errors,
    outage_tasks,
    plan_starts,
    rebaseline,
)
from monitor.observation import ForgeView, Liveness, Observation, Review, RunResult
from monitor.policy import DonePolicy, Policy
from registry.models import Attempt, Failure, FailureKind, PullRequest, RegistryState, Status, Task

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
HEAD = "a" * 40
NEW_HEAD = "b" * 40
START_HEAD = "0" * 40
PR = PullRequest(number=7, url="https://example.invalid/pr/7")
POLICY = Policy()  # max_attempts 3, stuck_after 20m, attempt_timeout 2h, max_respawns_per_tick 4
MIN = timedelta(minutes=1)
SAME = datetime(1970, 1, 1, tzinfo=UTC)  # sentinel: "launched when started"


# -- factories ------------------------------------------------------------------------------------------


def failure(kind: FailureKind, at: datetime = NOW - 60 * MIN) -> Failure:
    return Failure(kind=kind, summary=f"earlier {kind.value}", evidence="", at=at)


def attempt(
    number: int = 1,
    *,
    started: datetime = NOW - 30 * MIN,
    launched: datetime | None = SAME,
    progress: datetime | None = None,
    log_size: int = 100,
    failed: FailureKind | None = None,
) -> Attempt:
    return Attempt(
        number=number,
        session=f"swarm-t1-{number}",
        prompt_path=f"/runs/t1/{number}/prompt.md",
        started_at=started,
        launched_at=started if launched is SAME else launched,
        progress_at=progress if progress is not None else started,
        start_head=START_HEAD,
        seen_head=HEAD,  # the monitor already saw the agent's commit at its last progress mark
        log_size=log_size,
        failure=failure(failed) if failed else None,
    )


def task(
    status: Status = Status.running,
    *,
    task_id: str = "t1",
    attempts: tuple[Attempt, ...] | None = None,
    number: int = 1,
    previous: tuple[FailureKind, ...] = (),
    fired: tuple[str, ...] = (),
    after: tuple[str, ...] = (),
    created: datetime = NOW - 2 * timedelta(hours=1),
    pr: PullRequest | None = PR,
    **current: Any,
) -> Task:
    """A task whose current attempt is ``number``; ``previous`` are the failure kinds of attempts before it."""
    if attempts is None:
        earlier = [attempt(i + 1, failed=kind) for i, kind in enumerate(previous)]
        first = len(earlier) + 1
        if number < first:
            raise ValueError("number must come after the previous attempts")
        filler = [attempt(i, failed=FailureKind.died) for i in range(first, number)]
        attempts = (*earlier, *filler, attempt(number, **current))
    return Task(
        id=task_id,
        title=f"Task {task_id}",
        prompt="Do the thing.",
        agent="claude",
        status=status,
        base_branch="main",
        branch=f"swarm/{task_id}",
        worktree=f"/srv/wt/{task_id}",
        after=after,
        attempts=attempts,
        fired=fired,
        pr=pr,
        created_at=created,
        updated_at=created,
    )


def result(**fields: Any) -> RunResult:
    base: dict[str, Any] = {"phase": "agent", "exit_code": 0, "started_at": NOW - 30 * MIN, "ended_at": NOW - MIN,
                            "tool_calls": 12, "has_result": True}
    return RunResult(**{**base, **fields})


def running_obs(**fields: Any) -> Observation:
    base: dict[str, Any] = {"liveness": Liveness.alive, "worktree_exists": True, "log_size": 100, "head": HEAD}
    return Observation(**{**base, **fields})


def finished_obs(res: RunResult | None = None, **fields: Any) -> Observation:
    """An agent that exited with a result.json and two commits, one of them new in this attempt."""
    base: dict[str, Any] = {"liveness": Liveness.exited, "worktree_exists": True, "result": res or result(),
                            "head": HEAD, "ahead": 2, "new_commits": 1, "log_tail": "all done"}
    return Observation(**{**base, **fields})


def forge(**fields: Any) -> ForgeView:
    base: dict[str, Any] = {"supports_pr": True, "pr": PR, "ci": "pass", "pr_head": HEAD}
    return ForgeView(**{**base, **fields})


def checking_obs(**fields: Any) -> Observation:
    """The forge view is read at the observed head: its PR shows that head unless a test says otherwise."""
    base: dict[str, Any] = {"liveness": Liveness.exited, "worktree_exists": True, "head": HEAD, "ahead": 2,
                            "changed_files": ("src/app.py",), "forge": forge()}
    merged = {**base, **fields}
    view = merged["forge"]
    if view is not None and view.pr_head == HEAD and merged["head"] not in (HEAD, None):
        merged["forge"] = replace(view, pr_head=merged["head"])
    return Observation(**merged)


def policy(**done: Any) -> Policy:
    return Policy(done=DonePolicy(**done)) if done else POLICY


def summary(decision: Decision) -> list[str]:
    """Each action as ``Type`` or ``Type:failure_kind``."""
    out = []
    for action in decision.actions:
        name = type(action).__name__
        if isinstance(action, Respawn | Fail):
            name += f":{action.failure.kind.value}"
        out.append(name)
    return out


def only(decision: Decision, kind: type[Any]) -> Any:
    found = [a for a in decision.actions if isinstance(a, kind)]
    assert len(found) == 1, decision
    return found[0]


# -- running: the agent exited with a result.json --------------------------------------------------------

EXIT_ROWS = [
    pytest.param(task(), finished_obs(), ["ToChecking"], id="exit-0-with-commits"),
    pytest.param(task(), finished_obs(result(exit_code=1, api_error=True, error="overloaded")),
                 ["Backoff"], id="api-error-backs-off"),
    pytest.param(task(), finished_obs(result(exit_code=1, max_turns=True)), ["Respawn:max_turns"], id="max-turns"),
    pytest.param(task(), finished_obs(result(exit_code=2, error="boom")), ["Respawn:agent_error"], id="nonzero-exit"),
    pytest.param(task(), finished_obs(result(is_error=True)), ["Respawn:agent_error"], id="is-error-with-exit-0"),
    pytest.param(task(), finished_obs(ahead=0, new_commits=0), ["Respawn:phantom"], id="phantom-no-commit"),
    pytest.param(task(), finished_obs(result(exit_code=143, killed_by="SIGTERM")), ["Respawn:died"],
                 id="killed-by-signal"),
    pytest.param(task(), finished_obs(result(phase="setup", exit_code=1, error="pip failed")),
                 ["Fail:setup_failed"], id="setup-failed-is-terminal"),
    pytest.param(task(), finished_obs(result(phase="launch", exit_code=127)), ["Fail:launch_failed"],
                 id="launch-failed-is-terminal"),
    pytest.param(task(launched=None), finished_obs(result(phase="launch", exit_code=127)), ["Fail:launch_failed"],
                 id="launch-failed-before-confirmation"),
    pytest.param(task(previous=(FailureKind.ci_failed,), number=2), finished_obs(new_commits=0),
                 ["Respawn:phantom"], id="phantom-after-ci-failed-without-new-commit"),
    pytest.param(task(previous=(FailureKind.changes_requested,), number=2), finished_obs(new_commits=0),
                 ["Respawn:phantom"], id="phantom-after-changes-requested-without-new-commit"),
    pytest.param(task(previous=(FailureKind.ci_failed,), number=2), finished_obs(new_commits=1), ["ToChecking"],
                 id="new-commit-after-ci-failed"),
    pytest.param(task(previous=(FailureKind.died,), number=2), finished_obs(new_commits=0), ["ToChecking"],
                 id="no-new-commit-needed-after-a-death"),
    pytest.param(task(number=3), finished_obs(result(exit_code=1)), ["Fail:agent_error"],
                 id="max-attempts-reached"),
    pytest.param(task(number=3), finished_obs(ahead=0), ["Fail:phantom"], id="phantom-at-max-attempts"),
    pytest.param(task(number=2), finished_obs(result(exit_code=1)), ["Respawn:agent_error"],
                 id="below-max-attempts"),
]


@pytest.mark.parametrize(("t", "obs", "expected"), EXIT_ROWS)
def test_running_with_result(t: Task, obs: Observation, expected: list[str]) -> None:
    decision = decide(t, obs, POLICY, NOW)
    assert summary(decision) == expected
    for action in decision.actions:
        if isinstance(action, Respawn | Fail):
            assert action.kill is False, "the agent already exited: nothing to kill"
            assert action.result == obs.result
            assert action.attempt == t.attempts[-1].number
            assert action.failure.at == NOW
        if isinstance(action, ToChecking):
            assert action.result == obs.result


def test_exit_evidence_and_phantom_summary() -> None:
    phantom = only(decide(task(), finished_obs(ahead=0, dirty=("src/x.py",)), POLICY, NOW), Respawn)
    assert "no commit on the branch" in phantom.failure.summary
    assert "12 tool calls" in phantom.failure.summary
    assert "src/x.py" in phantom.failure.summary
    after_ci = only(decide(task(previous=(FailureKind.ci_failed,), number=2), finished_obs(new_commits=0),
                           POLICY, NOW), Respawn)
    assert "no new commit since the last failure" in after_ci.failure.summary
    error = only(decide(task(), finished_obs(result(exit_code=2, error="boom", final_text="I give up"),
                                             log_tail="Traceback: KeyError"), POLICY, NOW), Respawn)
    assert "exit code: 2" in error.failure.evidence
    assert "error: boom" in error.failure.evidence
    assert "I give up" in error.failure.evidence
    assert "Traceback: KeyError" in error.failure.evidence
    setup = only(decide(task(), finished_obs(result(phase="setup", exit_code=1, error="pip failed")), POLICY, NOW),
                 Fail)
    assert setup.failure.summary == "pip failed"


@pytest.mark.parametrize(
    ("res", "obs_fields", "expected"),
    [
        (result(phase="launch", exit_code=1, killed_by="SIGKILL"), {}, FailureKind.launch_failed),
        (result(phase="setup", exit_code=1, api_error=True), {}, FailureKind.setup_failed),
        (result(exit_code=1, killed_by="SIGKILL", api_error=True), {}, FailureKind.died),
        (result(exit_code=1, api_error=True, max_turns=True), {}, FailureKind.api_error),
        (result(exit_code=1, max_turns=True), {}, FailureKind.max_turns),
        (result(exit_code=0, is_error=True), {"ahead": 0}, FailureKind.agent_error),
        (result(), {"ahead": 0}, FailureKind.phantom),
        (result(), {}, None),
    ],
)
def test_classify_exit_precedence(res: RunResult, obs_fields: dict[str, Any], expected: FailureKind | None) -> None:
    t = task()
    assert t.attempt is not None
    assert classify_exit(t, t.attempt, res, finished_obs(res, **obs_fields)) is expected


# -- running: no result (alive, dead, unknown, stuck, timed out, clock trouble) --------------------------

QUIET = NOW - 5 * MIN
IDLE = NOW - 21 * MIN  # > stuck_after (20m)

NO_RESULT_ROWS = [
    # (case, task, observation, now, expected, kill)
    pytest.param(task(), running_obs(liveness=Liveness.gone), NOW, ["Respawn:died"], True, id="session-gone"),
    pytest.param(task(), running_obs(liveness=Liveness.exited, pane_status=137), NOW, ["Respawn:died"], True,
                 id="pane-dead-without-result"),
    pytest.param(task(number=3), running_obs(liveness=Liveness.gone), NOW, ["Fail:died"], True,
                 id="session-gone-at-max-attempts"),
    pytest.param(task(progress=QUIET), running_obs(liveness=Liveness.unknown), NOW, [], None,
                 id="tmux-unknown-is-not-a-death"),
    pytest.param(task(started=NOW - 3 * timedelta(hours=1), progress=QUIET), running_obs(liveness=Liveness.unknown),
                 NOW, [], None, id="tmux-unknown-never-times-out"),
    pytest.param(task(progress=IDLE), running_obs(liveness=Liveness.unknown), NOW, ["Respawn:died"], True,
                 id="tmux-unknown-past-stuck-after"),
    pytest.param(task(progress=IDLE), running_obs(liveness=Liveness.unknown, log_size=150), NOW, ["Progress"], None,
                 id="tmux-unknown-but-log-grows"),
    pytest.param(task(progress=IDLE), running_obs(log_size=150), NOW, ["Progress"], None, id="log-growth"),
    pytest.param(task(progress=QUIET), running_obs(), NOW, [], None, id="quiet-but-within-stuck-after"),
    pytest.param(task(progress=IDLE), running_obs(), NOW, ["Respawn:stuck"], True, id="stuck"),
    pytest.param(task(progress=NOW - 20 * MIN), running_obs(), NOW, [], None, id="stuck-after-is-exclusive"),
    pytest.param(task(number=3, progress=IDLE), running_obs(), NOW, ["Fail:stuck"], True, id="stuck-at-max"),
    pytest.param(task(started=NOW - 121 * MIN, progress=QUIET), running_obs(), NOW, ["Respawn:timeout"], True,
                 id="timeout"),
    pytest.param(task(started=NOW - 121 * MIN, progress=IDLE), running_obs(), NOW, ["Respawn:timeout"], True,
                 id="timeout-beats-stuck"),
    pytest.param(task(started=NOW - 119 * MIN, progress=QUIET), running_obs(), NOW, [], None,
                 id="within-attempt-timeout"),
    pytest.param(task(started=NOW - 121 * MIN, progress=QUIET), running_obs(log_size=150), NOW, ["Respawn:timeout"],
                 True, id="timeout-fires-while-the-log-grows"),
    pytest.param(task(started=NOW - 121 * MIN, progress=QUIET), running_obs(head=NEW_HEAD), NOW,
                 ["Respawn:timeout"], True, id="timeout-fires-despite-a-new-commit"),
    pytest.param(task(started=NOW - 119 * MIN, progress=QUIET), running_obs(log_size=150), NOW, ["Progress"], None,
                 id="growing-log-within-attempt-timeout"),
    pytest.param(task(progress=NOW), running_obs(), NOW - 60 * MIN, ["Progress"], None, id="clock-stepped-back"),
    pytest.param(task(started=NOW - 3 * timedelta(hours=1), progress=NOW), running_obs(liveness=Liveness.unknown),
                 NOW - 60 * MIN, ["Progress"], None, id="clock-stepped-back-tmux-unknown"),
    pytest.param(task(progress=NOW), running_obs(), NOW - 3 * MIN, [], None, id="small-step-back-within-slack"),
    pytest.param(task(progress=NOW - 10 * MIN), running_obs(), NOW + timedelta(days=1), ["Respawn:timeout"], True,
                 id="clock-forward-a-day"),
    pytest.param(task(launched=None), running_obs(liveness=Liveness.gone), NOW, ["Launch"], None,
                 id="unconfirmed-attempt-is-launched"),
    # launching is idempotent (an existing session is adopted), so an unconfirmed live attempt is confirmed
    pytest.param(task(launched=None), running_obs(liveness=Liveness.alive), NOW, ["Launch"], None,
                 id="unconfirmed-but-alive"),
    pytest.param(task(launched=None), running_obs(liveness=Liveness.unknown), NOW, [], None,
                 id="unconfirmed-while-tmux-unreachable-waits"),
    # no server at all (before the first launch, after a reboot): launching starts one
    pytest.param(task(launched=None), running_obs(liveness=Liveness.no_server), NOW, ["Launch"], None,
                 id="unconfirmed-with-no-server-launches"),
    pytest.param(task(progress=NOW - 10 * MIN), running_obs(liveness=Liveness.no_server), NOW, [], None,
                 id="no-server-is-not-a-death"),
    pytest.param(task(progress=NOW - 30 * MIN), running_obs(liveness=Liveness.no_server), NOW, ["Respawn:died"],
                 True, id="no-server-past-stuck-after"),
    pytest.param(task(), running_obs(worktree_exists=False), NOW, ["Fail:worktree_missing"], True,
                 id="worktree-missing"),
    pytest.param(task(), running_obs(worktree_exists=False, liveness=Liveness.gone), NOW, ["Fail:worktree_missing"],
                 True, id="worktree-missing-and-session-gone"),
    pytest.param(task(launched=None), running_obs(worktree_exists=False, liveness=Liveness.gone), NOW,
                 ["Fail:worktree_missing"], True, id="worktree-missing-before-launch"),
    pytest.param(task(), finished_obs(worktree_exists=False), NOW, ["Fail:worktree_missing"], True,
                 id="worktree-missing-with-result"),
]


@pytest.mark.parametrize(("t", "obs", "now", "expected", "kill"), NO_RESULT_ROWS)
def test_running_without_result(t: Task, obs: Observation, now: datetime, expected: list[str],
                                kill: bool | None) -> None:
    decision = decide(t, obs, POLICY, now)
    assert summary(decision) == expected, decision.reason
    for action in decision.actions:
        if isinstance(action, Respawn | Fail):
            assert action.kill is kill
            assert action.failure.at == now
        if isinstance(action, Progress):
            assert action.at == now
            assert action.log_size == obs.log_size
        if isinstance(action, Launch):
            assert action.attempt == t.attempts[-1].number
    if not decision.actions:
        assert decision.reason, "a decision without actions still says why"


def test_tmux_unknown_reason_says_it_is_not_a_death() -> None:
    decision = decide(task(progress=QUIET), running_obs(liveness=Liveness.unknown), POLICY, NOW)
    assert "not counted as a death" in decision.reason


def test_worktree_missing_recreates_nothing() -> None:
    decision = decide(task(), running_obs(worktree_exists=False), POLICY, NOW)
    fail = only(decision, Fail)
    assert fail.failure.kind is FailureKind.worktree_missing
    assert "/srv/wt/t1" in fail.failure.summary
    assert "swarm retry t1" in fail.failure.summary
    assert not any(isinstance(a, Respawn | Launch | Start | ToChecking) for a in decision.actions)


def test_dead_pane_evidence_names_its_exit_status() -> None:
    decision = decide(task(), running_obs(liveness=Liveness.exited, pane_status=137, log_tail="Killed"), POLICY, NOW)
    evidence = only(decision, Respawn).failure.evidence
    assert "pane exit status: 137" in evidence
    assert "Killed" in evidence


def test_stuck_and_timeout_durations_in_the_summary() -> None:
    stuck = only(decide(task(progress=IDLE), running_obs(), POLICY, NOW), Respawn)
    assert stuck.failure.summary == "no output and no commit for 21m"
    timeout = only(decide(task(started=NOW - 150 * MIN, progress=QUIET), running_obs(), POLICY, NOW), Respawn)
    assert timeout.failure.summary == "the attempt ran 2h30m, over the budget of 2h"


def test_policy_thresholds_are_honoured() -> None:
    strict = Policy(stuck_after=60.0, attempt_timeout=600.0, max_attempts=1)
    assert summary(decide(task(started=NOW - 5 * MIN, progress=NOW - 2 * MIN), running_obs(), strict, NOW)) == [
        "Fail:stuck"
    ]
    assert summary(decide(task(started=NOW - 11 * MIN, progress=NOW), running_obs(), strict, NOW)) == [
        "Fail:timeout"
    ]
    lenient = Policy(stuck_after=7200.0, attempt_timeout=86400.0, max_attempts=10)
    assert summary(decide(task(number=9, progress=IDLE), running_obs(), lenient, NOW)) == []


# -- clock jumped forward: failures, but a bounded number of respawns per tick (reliability case 17) -------


def test_clock_forward_a_day_respawns_are_capped_per_tick() -> None:
    later = NOW + timedelta(days=1)
    tasks = [task(task_id=f"t{i}") for i in range(10)] + [task(task_id="last", number=3)]
    decisions = [decide(t, running_obs(), POLICY, later) for t in tasks]
    assert sum(isinstance(a, Respawn) for d in decisions for a in d.actions) == 10  # every one looks timed out
    capped = cap_respawns(decisions, POLICY)
    respawns = [a for d in capped for a in d.actions if isinstance(a, Respawn)]
    assert len(respawns) == POLICY.max_respawns_per_tick == 4
    assert [a.task_id for a in respawns] == ["t0", "t1", "t2", "t3"]
    deferred = [d for d in capped if not d.actions]
    assert len(deferred) == 6
    assert all("respawn deferred" in d.reason for d in deferred)
    # a Fail starts no agent: never deferred
    assert summary(capped[-1]) == ["Fail:timeout"]
    assert [d.task_id for d in capped] == [t.id for t in tasks]


@pytest.mark.parametrize("cap", [1, 2, 5])
def test_cap_respawns_honours_the_policy(cap: int) -> None:
    pol = Policy(max_respawns_per_tick=cap)
    decisions = [decide(task(task_id=f"t{i}"), running_obs(liveness=Liveness.gone), pol, NOW) for i in range(4)]
    capped = cap_respawns(decisions, pol)
    assert sum(isinstance(a, Respawn) for d in capped for a in d.actions) == min(cap, 4)


def test_cap_respawns_leaves_other_actions_alone() -> None:
    pol = Policy(max_respawns_per_tick=1)
    decisions = [
        decide(task(task_id="a"), running_obs(liveness=Liveness.gone), pol, NOW),
        decide(task(task_id="b"), running_obs(liveness=Liveness.gone), pol, NOW),
        decide(task(task_id="c", progress=IDLE), running_obs(log_size=999), pol, NOW),
        decide(task(Status.checking, task_id="d"), checking_obs(), pol, NOW),
    ]
    capped = cap_respawns(decisions, pol)
    assert [summary(d) for d in capped] == [["Respawn:died"], [], ["Progress"], ["MarkReady"]]


# -- checking / ready: the definition of done -----------------------------------------------------------

CHECKING_ROWS = [
    # (task, observation, policy, expected)
    pytest.param(task(Status.checking), checking_obs(merged=True), POLICY, ["MarkMerged"], id="merged"),
    pytest.param(task(Status.ready), checking_obs(merged=True, forge=forge(closed=True)), POLICY, ["MarkMerged"],
                 id="merged-wins-over-closed"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(closed=True)), POLICY, ["MarkClosed"], id="closed"),
    pytest.param(task(Status.checking), checking_obs(worktree_exists=False), POLICY, ["Fail:worktree_missing"],
                 id="worktree-missing"),
    pytest.param(task(Status.checking), checking_obs(ahead=0), POLICY, ["Respawn:phantom"], id="no-commits"),
    pytest.param(task(Status.checking), checking_obs(ahead=0), policy(commits=False), ["MarkReady"],
                 id="no-commits-not-required"),
    pytest.param(task(Status.checking), checking_obs(conflicts=("src/a.py", "src/b.py")), POLICY,
                 ["Respawn:conflict"], id="conflict"),
    pytest.param(task(Status.checking), checking_obs(conflicts=("src/a.py",)), policy(no_conflict=False),
                 ["MarkReady"], id="conflict-not-checked"),
    pytest.param(task(Status.checking), checking_obs(behind=3), policy(up_to_date=True), ["UpdateBranch"],
                 id="behind-updates-branch"),
    pytest.param(task(Status.checking), checking_obs(behind=3), POLICY, ["MarkReady"], id="behind-allowed"),
    pytest.param(task(Status.checking), checking_obs(forge=None), POLICY, [], id="forge-not-read"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(ci="unknown", unknown_reason="rate limited")),
                 POLICY, [], id="forge-unknown"),
    pytest.param(task(Status.ready), checking_obs(forge=forge(ci="unknown")), POLICY, [],
                 id="forge-unknown-keeps-ready"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(pr=None)), POLICY, ["OpenPR"], id="open-pr"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(pr=None, supports_pr=False)), POLICY, ["MarkReady"],
                 id="local-forge-has-no-pr"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(pr=None)), policy(pr=False), ["MarkReady"],
                 id="pr-not-required"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(ci="not_started")), POLICY, ["StartChecks"],
                 id="ci-not-started"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(ci="pending")), POLICY, [], id="ci-pending"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(ci="none")), POLICY, ["MarkReady"],
                 id="no-checks-is-not-waiting"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(ci="fail", ci_evidence="FAILED test_x")), POLICY,
                 ["Respawn:ci_failed"], id="ci-fail"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(ci="fail")), policy(ci=False), ["MarkReady"],
                 id="ci-not-required"),
    pytest.param(task(Status.checking, number=3), checking_obs(forge=forge(ci="fail")), POLICY, ["Fail:ci_failed"],
                 id="ci-fail-at-max-attempts"),
    # already retried for this head and no agent is running: escalate once, never loop or wait forever
    pytest.param(task(Status.checking, fired=(f"ci_failed:{HEAD}",)), checking_obs(forge=forge(ci="fail")), POLICY,
                 ["Fail:ci_failed"], id="ci-fail-fires-once-per-head"),
    pytest.param(task(Status.checking, fired=(f"ci_failed:{HEAD}",)),
                 checking_obs(head=NEW_HEAD, forge=forge(ci="fail")), POLICY, ["Respawn:ci_failed"],
                 id="ci-fail-on-new-head-fires-again"),
    pytest.param(task(Status.checking, fired=(f"phantom:{HEAD}",)), checking_obs(forge=forge(ci="fail")), POLICY,
                 ["Respawn:ci_failed"], id="fired-key-is-per-kind"),
    pytest.param(task(Status.checking), checking_obs(), POLICY, ["MarkReady"], id="all-met"),
    pytest.param(task(Status.ready), checking_obs(), POLICY, [], id="already-ready-no-second-mark"),
    pytest.param(task(Status.ready), checking_obs(head=NEW_HEAD, forge=forge(ci="pending")), POLICY,
                 ["BackToChecking"], id="ready-new-head-ci-pending"),
    pytest.param(task(Status.ready), checking_obs(head=NEW_HEAD, forge=forge(ci="not_started")), POLICY,
                 ["BackToChecking", "StartChecks"], id="ready-new-head-ci-not-started"),
    pytest.param(task(Status.ready), checking_obs(forge=forge(ci="fail")), POLICY,
                 ["BackToChecking", "Respawn:ci_failed"], id="ready-ci-fails"),
    pytest.param(task(Status.ready), checking_obs(behind=1), policy(up_to_date=True),
                 ["BackToChecking", "UpdateBranch"], id="ready-then-behind"),
]


@pytest.mark.parametrize(("t", "obs", "pol", "expected"), CHECKING_ROWS)
def test_checking(t: Task, obs: Observation, pol: Policy, expected: list[str]) -> None:
    decision = decide(t, obs, pol, NOW)
    assert summary(decision) == expected, decision.reason
    if expected and expected[0] == "BackToChecking":
        assert decision.actions[0] == BackToChecking(t.id)
    if not decision.actions:
        assert decision.reason


def test_checking_worktree_missing_is_terminal_at_attempt_one() -> None:
    fail = only(decide(task(Status.checking), checking_obs(worktree_exists=False), POLICY, NOW), Fail)
    assert fail.attempt == 1
    assert fail.failure.kind is FailureKind.worktree_missing


def test_phantom_in_checking_carries_a_fired_key() -> None:
    respawn = only(decide(task(Status.checking), checking_obs(ahead=0), POLICY, NOW), Respawn)
    assert respawn.fired == f"phantom:{HEAD}"
    decision = decide(task(Status.checking), checking_obs(ahead=0), POLICY, NOW)
    assert decision.checks["commits"] == "missing"


def test_conflict_evidence_lists_the_files() -> None:
    decision = decide(task(Status.checking), checking_obs(conflicts=("src/a.py", "src/b.py")), POLICY, NOW)
    respawn = only(decision, Respawn)
    assert respawn.failure.evidence.splitlines() == ["rebase onto main; conflicting files:", "src/a.py", "src/b.py"]
    assert "2 file(s)" in respawn.failure.summary
    assert "main" in respawn.failure.summary
    assert respawn.fired == f"conflict:{HEAD}"
    assert respawn.kill is False
    assert decision.checks["conflict"] == "conflict"


def test_behind_check_value() -> None:
    decision = decide(task(Status.checking), checking_obs(behind=3), policy(up_to_date=True), NOW)
    assert decision.checks["synced"] == "behind 3"
    assert "3 commit(s) behind main" in decision.reason


@pytest.mark.parametrize("view", [None, forge(ci="unknown", unknown_reason="HTTP 502")])
def test_forge_unknown_is_never_a_failure(view: ForgeView | None) -> None:
    for status in (Status.checking, Status.ready):
        decision = decide(task(status), checking_obs(forge=view), POLICY, NOW)
        assert decision.actions == ()
        assert decision.checks["ci"] == "unknown"
        assert "forge state unknown" in decision.reason
    if view is not None:
        assert "HTTP 502" in decide(task(Status.checking), checking_obs(forge=view), POLICY, NOW).reason


def test_open_pr_and_start_checks_carry_the_head() -> None:
    assert only(decide(task(Status.checking), checking_obs(forge=forge(pr=None)), POLICY, NOW), OpenPR) == OpenPR(
        "t1", HEAD
    )
    start = only(decide(task(Status.checking), checking_obs(forge=forge(ci="not_started")), POLICY, NOW), StartChecks)
    assert start == StartChecks("t1", HEAD, ("ci",))


def test_a_new_commit_is_progress_even_when_the_agent_prints_nothing() -> None:
    quiet = task(progress=NOW - 30 * MIN)  # 30 min without output: past stuck_after (20 min)
    assert summary(decide(quiet, running_obs(), POLICY, NOW)) == ["Respawn:stuck"]
    committed = decide(quiet, running_obs(head=NEW_HEAD), POLICY, NOW)
    mark = only(committed, Progress)
    assert mark.head == NEW_HEAD and mark.at == NOW


def test_ci_failure_fires_once_per_head() -> None:
    failing = checking_obs(forge=forge(ci="fail", ci_evidence="FAILED tests/test_x.py::test_y"))
    first = decide(task(Status.checking), failing, POLICY, NOW)
    respawn = only(first, Respawn)
    assert respawn.fired == f"ci_failed:{HEAD}"
    assert respawn.failure.evidence == "FAILED tests/test_x.py::test_y"
    assert respawn.kill is False
    assert first.checks["ci"] == "fail"
    # act records the key: the same failure at the same head is not retried again, it escalates
    again = decide(task(Status.checking, fired=(respawn.fired,)), failing, POLICY, NOW)
    assert not any(isinstance(a, Respawn) for a in again.actions)
    assert only(again, Fail).failure.summary.endswith("after a retry")
    # new commits, failing again: fires again with the new head's key
    assert failing.forge is not None
    moved = replace(failing, head=NEW_HEAD, forge=replace(failing.forge, pr_head=NEW_HEAD))
    new = decide(task(Status.checking, fired=(respawn.fired,)), moved, POLICY, NOW)
    assert only(new, Respawn).fired == f"ci_failed:{NEW_HEAD}"


def test_a_head_bound_failure_is_not_forgotten_after_an_intervening_death() -> None:
    t = task(previous=(FailureKind.ci_failed, FailureKind.died), number=3, fired=(f"ci_failed:{HEAD}",))
    running = decide(t, finished_obs(new_commits=0), Policy(max_attempts=5), NOW)
    assert summary(running) == ["Respawn:phantom"]


def test_checking_never_waits_forever_on_an_already_fired_failure() -> None:
    t = task(Status.checking, previous=(FailureKind.ci_failed, FailureKind.died), number=3,
             fired=(f"ci_failed:{HEAD}",))
    decision = decide(t, checking_obs(forge=forge(ci="fail")), POLICY, NOW)
    assert any(isinstance(a, Respawn | Fail) for a in decision.actions), decision.reason


def _reviews(*reviews: Review, not_started: tuple[str, ...] = ()) -> Observation:
    return checking_obs(forge=forge(reviews=reviews, reviews_not_started=not_started))


REVIEW_ROWS = [
    # (done.reviews, done.reviewers, observation, expected, checks["reviews"] or None when not checked)
    pytest.param(0, (), _reviews(), ["MarkReady"], None, id="zero-reviews-needed"),
    pytest.param(0, (), _reviews(Review("bot", "CHANGES_REQUESTED", "no")), ["Respawn:changes_requested"],
                 "changes requested", id="zero-reviews-needed-still-blocks-on-changes-requested"),
    pytest.param(1, (), _reviews(Review("bot", "APPROVED")), ["MarkReady"], "1/1", id="one-approval"),
    pytest.param(2, (), _reviews(Review("bot", "APPROVED")), [], "1/2", id="one-of-two-approvals"),
    pytest.param(2, (), _reviews(Review("a", "APPROVED"), Review("b", "APPROVED")), ["MarkReady"], "2/2",
                 id="two-approvals"),
    pytest.param(2, (), _reviews(Review("a", "APPROVED"), Review("a", "APPROVED")), [], "1/2",
                 id="one-reviewer-counts-once"),
    pytest.param(1, ("coderabbitai[bot]",), _reviews(Review("someone", "APPROVED")), [], "0/1",
                 id="unlisted-reviewer-does-not-count"),
    pytest.param(1, ("coderabbitai[bot]",), _reviews(Review("someone", "CHANGES_REQUESTED", "x")), [], "0/1",
                 id="unlisted-reviewer-does-not-block"),
    pytest.param(1, ("coderabbitai[bot]",), _reviews(Review("coderabbitai[bot]", "APPROVED")), ["MarkReady"],
                 "1/1", id="listed-reviewer-counts"),
    pytest.param(1, (), _reviews(Review("bot", "CHANGES_REQUESTED", "rename foo")), ["Respawn:changes_requested"],
                 "changes requested", id="changes-requested"),
    pytest.param(1, (), _reviews(Review("bot", "APPROVED"), Review("bot", "CHANGES_REQUESTED", "wait")),
                 ["Respawn:changes_requested"], "changes requested", id="latest-review-wins-blocking"),
    pytest.param(1, (), _reviews(Review("bot", "CHANGES_REQUESTED", "x"), Review("bot", "APPROVED")), ["MarkReady"],
                 "1/1", id="latest-review-wins-approved"),
    pytest.param(1, (), _reviews(not_started=("claude-review",)), ["StartChecks"], "0/1", id="reviewers-not-started"),
    pytest.param(1, (), _reviews(), [], "0/1", id="waiting-for-reviews"),
]


@pytest.mark.parametrize(("needed", "reviewers", "obs", "expected", "check"), REVIEW_ROWS)
def test_reviews(needed: int, reviewers: tuple[str, ...], obs: Observation, expected: list[str],
                 check: str | None) -> None:
    decision = decide(task(Status.checking), obs, policy(reviews=needed, reviewers=reviewers), NOW)
    assert summary(decision) == expected, decision.reason
    assert decision.checks.get("reviews") == check


def test_changes_requested_evidence_is_the_review_body() -> None:
    obs = _reviews(Review("bot", "CHANGES_REQUESTED", "Please rename foo to bar.\nAnd add a test."),
                   Review("human", "APPROVED"))
    respawn = only(decide(task(Status.checking), obs, policy(reviews=1), NOW), Respawn)
    assert "Please rename foo to bar.\nAnd add a test." in respawn.failure.evidence
    assert "bot" in respawn.failure.summary
    assert "human" not in respawn.failure.summary
    assert respawn.fired == f"changes_requested:{HEAD}"


def test_reviewers_not_started_are_started_at_the_head() -> None:
    decision = decide(task(Status.checking), _reviews(not_started=("lint-review", "sec-review")), policy(reviews=2),
                      NOW)
    assert only(decision, StartChecks) == StartChecks("t1", HEAD, ("lint-review", "sec-review"))


def test_a_later_comment_does_not_erase_an_approval() -> None:
    obs = _reviews(Review("bot", "APPROVED"), Review("bot", "COMMENTED", "nit: typo"))
    assert summary(decide(task(Status.checking), obs, policy(reviews=1), NOW)) == ["MarkReady"]


SCREENSHOT_GLOBS = ("web/**", "*.css", "*.tsx")
SCREENSHOT_ROWS = [
    pytest.param(("web/app/page.ts", "src/api.py"), ["Respawn:screenshots_missing"], "missing", id="ui-no-shot"),
    pytest.param(("styles/site.css",), ["Respawn:screenshots_missing"], "missing", id="css-no-shot"),
    pytest.param(("web/app/page.ts", ".swarm-screenshots/page.png"), ["LinkScreenshots"], "ok",
                 id="ui-with-shot-is-linked-in-the-pr"),
    pytest.param(("src/api.py",), ["MarkReady"], "n/a", id="no-ui-change"),
    pytest.param((".swarm-screenshots/a.tsx",), ["MarkReady"], "n/a", id="screenshot-dir-is-not-ui"),
]


@pytest.mark.parametrize(("changed", "expected", "check"), SCREENSHOT_ROWS)
def test_screenshots(changed: tuple[str, ...], expected: list[str], check: str) -> None:
    decision = decide(task(Status.checking), checking_obs(changed_files=changed),
                      policy(screenshots_for=SCREENSHOT_GLOBS), NOW)
    assert summary(decision) == expected
    assert decision.checks["screenshots"] == check


def test_screenshots_missing_names_the_ui_files() -> None:
    obs = checking_obs(changed_files=("web/app/page.ts", "src/api.py", "ui/button.tsx"))
    respawn = only(decide(task(Status.checking), obs, policy(screenshots_for=SCREENSHOT_GLOBS), NOW), Respawn)
    assert respawn.failure.evidence.splitlines() == [
        "UI files changed (commit screenshots of them under .swarm-screenshots/):", "web/app/page.ts", "ui/button.tsx"]
    assert "2 UI file(s)" in respawn.failure.summary
    assert respawn.fired == f"screenshots_missing:{HEAD}"


def test_all_met_marks_ready_once_with_every_check() -> None:
    pol = policy(reviews=1, screenshots_for=SCREENSHOT_GLOBS, up_to_date=True)
    obs = checking_obs(forge=forge(reviews=(Review("bot", "APPROVED"),)))
    decision = decide(task(Status.checking), obs, pol, NOW)
    assert decision.actions == (MarkReady("t1", HEAD),)
    assert dict(decision.checks) == {"commits": "ok", "conflict": "ok", "synced": "ok", "pr": "ok", "ci": "pass",
                                     "reviews": "1/1", "screenshots": "n/a"}
    assert decide(task(Status.ready), obs, pol, NOW).actions == ()


def test_ready_task_goes_back_to_checking_before_anything_else() -> None:
    decision = decide(task(Status.ready), checking_obs(head=NEW_HEAD, forge=forge(ci="pending")), POLICY, NOW)
    assert decision.actions == (BackToChecking("t1"),)
    assert decision.checks["ci"] == "pending"
    assert decision.reason == "waiting for CI"


# -- statuses decide leaves alone -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.queued, Status.merged, Status.failed, Status.cancelled])
def test_inactive_statuses_get_no_actions(status: Status) -> None:
    decision = decide(task(status), running_obs(liveness=Liveness.gone, worktree_exists=False), POLICY, NOW)
    assert decision == Decision("t1")


# -- purity ---------------------------------------------------------------------------------------------

PURITY_ROWS: list[tuple[Any, ...]] = [
    *((p.values[0], p.values[1], POLICY, NOW) for p in EXIT_ROWS),
    *((p.values[0], p.values[1], POLICY, p.values[2]) for p in NO_RESULT_ROWS),
    *((p.values[0], p.values[1], p.values[2], NOW) for p in CHECKING_ROWS),
]


@pytest.mark.parametrize(("t", "obs", "pol", "now"), PURITY_ROWS)
def test_decide_is_pure(t: Task, obs: Observation, pol: Policy, now: datetime) -> None:
    before = (t.model_dump(), repr(obs), repr(pol))
    first = decide(t, obs, pol, now)
    second = decide(t, obs, pol, now)
    assert first == second
    assert (t.model_dump(), repr(obs), repr(pol)) == before


# -- plan_starts ----------------------------------------------------------------------------------------


def queued(task_id: str, minutes_ago: int, after: tuple[str, ...] = ()) -> Task:
    return task(Status.queued, task_id=task_id, attempts=(), after=after, created=NOW - minutes_ago * MIN)


def state(*tasks: Task) -> RegistryState:
    return RegistryState(tasks={t.id: t for t in tasks})


def started(starts: list[Start]) -> list[str]:
    return [s.task_id for s in starts]


def test_plan_starts_in_creation_order_up_to_max_parallel() -> None:
    reg = state(queued("b", 10), queued("c", 30), queued("a", 20), queued("d", 5))
    starts, waiting = plan_starts(reg, Policy(max_parallel=2), busy=0)
    assert started(starts) == ["c", "a"]
    assert waiting == {"b": "waiting for a free slot (max_parallel = 2)",
                       "d": "waiting for a free slot (max_parallel = 2)"}


@pytest.mark.parametrize(("busy", "expected"), [(0, 3), (2, 2), (3, 1), (4, 0), (9, 0)])
def test_plan_starts_counts_busy_slots(busy: int, expected: int) -> None:
    reg = state(*(queued(f"q{i}", 10 - i) for i in range(3)))
    starts, waiting = plan_starts(reg, Policy(max_parallel=4), busy=busy)
    assert started(starts) == [f"q{i}" for i in range(expected)]
    assert len(waiting) == 3 - expected


def test_plan_starts_dependencies() -> None:
    reg = state(
        task(Status.running, task_id="dep-running"),
        task(Status.merged, task_id="dep-merged"),
        task(Status.failed, task_id="dep-failed"),
        queued("waits", 50, after=("dep-running",)),
        queued("waits-two", 45, after=("dep-merged", "dep-failed", "ghost")),
        queued("unknown", 40, after=("ghost",)),
        queued("free", 30, after=("dep-merged",)),
    )
    starts, waiting = plan_starts(reg, Policy(max_parallel=4), busy=1)
    assert started(starts) == ["free"]
    assert waiting == {
        "waits": "waiting for dep-running (running)",
        "waits-two": "waiting for dep-failed (failed), ghost (unknown task)",
        "unknown": "waiting for ghost (unknown task)",
    }


def test_blocked_tasks_do_not_take_slots_and_others_are_ignored() -> None:
    reg = state(
        queued("blocked", 60, after=("running",)),
        task(Status.running, task_id="running"),
        task(Status.checking, task_id="checking"),
        queued("next", 30),
    )
    starts, waiting = plan_starts(reg, Policy(max_parallel=2), busy=1)
    assert started(starts) == ["next"]
    assert set(waiting) == {"blocked"}


def test_plan_starts_with_nothing_queued() -> None:
    assert plan_starts(state(task(Status.running)), POLICY, busy=1) == ([], {})


def test_every_expected_action_name_is_a_real_action_type() -> None:
    """Guards the tables: a renamed action type or a misspelt expected name fails here, not silently."""
    import monitor.actions as actions

    expected: list[Any] = [p.values[-1] for p in (*EXIT_ROWS, *CHECKING_ROWS)]
    expected += [p.values[-2] for p in (*NO_RESULT_ROWS, *REVIEW_ROWS, *SCREENSHOT_ROWS)]
    names = {entry.split(":")[0] for row in expected for entry in row}
    assert names <= {name for name in dir(actions) if isinstance(getattr(actions, name), type)}
    kinds = {entry.split(":")[1] for row in expected for entry in row if ":" in entry}
    assert kinds <= {kind.value for kind in FailureKind}


def test_failure_summary_from_agent_output_is_redacted() -> None:
    token = "ghp_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    decision = decide(task(), finished_obs(result(exit_code=1, error=f"401 Unauthorized for {token}")), POLICY, NOW)
    respawn = only(decision, Respawn)
    assert token not in respawn.failure.summary
    assert token not in decision.reason


# -- a forge with pull requests (GitHub): publishing, adoption, sync, humans in the loop ------------------

FORGE_ROWS = [
    pytest.param(task(Status.checking, pr=None), checking_obs(forge=forge(pr=None, pr_head="")), ["OpenPR"],
                 "opening the pull request", id="no-pr-opens-one"),
    pytest.param(task(Status.checking, pr=None), checking_obs(), ["OpenPR"], "adopting the pull request",
                 id="agent-opened-pr-is-adopted"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(pr_head=NEW_HEAD)), ["PushBranch"],
                 "publishing", id="pr-shows-another-head-publish"),
    pytest.param(task(Status.ready), checking_obs(forge=forge(pr_head=NEW_HEAD)), ["BackToChecking", "PushBranch"],
                 "publishing", id="ready-with-moved-pr-rechecks"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(merged=True)), ["MarkMerged"], "merged",
                 id="merged-on-the-forge-squash"),
    pytest.param(task(Status.ready), checking_obs(forge=forge(closed=True)), ["MarkClosed"], "closed",
                 id="closed-by-a-human"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(sync="conflict")), ["Respawn:conflict"],
                 "conflicts with main", id="forge-reports-conflict"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(sync="behind")), ["UpdateBranch"],
                 "requires up-to-date", id="strict-protection-behind-updates-branch"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(sync="unknown")), [], "computing mergeability",
                 id="mergeable-null-asks-again"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(ci="action_required", ci_evidence="w: deploy")),
                 ["AskHuman"], "w", id="action-required-asks-a-human"),
    pytest.param(task(Status.checking, fired=(f"asked:ci:{HEAD}",)),
                 checking_obs(forge=forge(ci="action_required", ci_evidence="w: deploy")), [], "w",
                 id="action-required-asks-only-once-per-head"),
    pytest.param(task(Status.checking), checking_obs(forge=forge(ci="unknown", unknown_reason="rate limit")), [],
                 "unknown", id="rate-limited-is-unknown-not-failed"),
]


@pytest.mark.parametrize(("t", "obs", "expected", "reason"), FORGE_ROWS)
def test_forge_with_pull_requests(t: Task, obs: Observation, expected: list[str], reason: str) -> None:
    decision = decide(t, obs, POLICY, NOW)
    assert summary(decision) == expected
    assert reason in decision.reason


def test_ci_waits_on_the_pr_head_not_the_local_one() -> None:
    # a failing CI on the PR's old head says nothing about the new local head: publish first
    obs = replace(checking_obs(head=NEW_HEAD), forge=forge(pr_head=HEAD, ci="fail"))
    assert summary(decide(task(Status.checking), obs, POLICY, NOW)) == ["PushBranch"]


def test_screenshots_linked_or_shown_by_hand() -> None:
    pol = policy(screenshots_for=SCREENSHOT_GLOBS)
    shots = ("web/app/page.ts", ".swarm-screenshots/page.png")
    linked = checking_obs(changed_files=shots, forge=forge(screenshots_at=HEAD))
    assert summary(decide(task(Status.checking), linked, pol, NOW)) == ["MarkReady"]
    link = only(decide(task(Status.checking), checking_obs(changed_files=shots), pol, NOW), LinkScreenshots)
    assert link.paths == (".swarm-screenshots/page.png",) and link.head == HEAD
    by_hand = checking_obs(changed_files=("web/app/page.ts",), forge=forge(body_has_image=True))
    assert summary(decide(task(Status.checking), by_hand, pol, NOW)) == ["MarkReady"]
    # linked for an older head: linked again at the new one
    old = checking_obs(changed_files=shots, forge=forge(screenshots_at=NEW_HEAD))
    assert summary(decide(task(Status.checking), old, pol, NOW)) == ["LinkScreenshots"]


def test_bot_reviewer_names_match_with_or_without_the_bot_suffix() -> None:
    obs = checking_obs(forge=forge(reviews=(Review("coderabbitai", "APPROVED"),)))
    decision = decide(task(Status.checking), obs, policy(reviews=1, reviewers=("CodeRabbitAI[bot]",)), NOW)
    assert summary(decision) == ["MarkReady"] and decision.checks["reviews"] == "1/1"


def test_asked_keys_do_not_count_as_failed_heads() -> None:
    t = task(previous=(FailureKind.ci_failed,), number=2, fired=(f"ci_failed:{NEW_HEAD}", f"asked:ci:{HEAD}"))
    decision = decide(t, finished_obs(head=HEAD, new_commits=1), POLICY, NOW)
    assert summary(decision) == ["ToChecking"]


# -- the token budget: over it, a failure is final -------------------------------------------------------


def spent(t: Task, *tokens: int, llm: int = 0) -> Task:
    """``t`` with its attempts' recorded tokens set in order, and the orchestrator's own spend ``llm``."""
    attempts = tuple(a.model_copy(update={"tokens": n}) for a, n in zip(t.attempts, tokens, strict=True))
    return t.model_copy(update={"attempts": attempts, "llm_tokens": llm})


BUDGET_ROWS = [
    # running: the attempt that just ended is billed from its result.json (the record has 0 until it is closed)
    pytest.param(task(), finished_obs(result(exit_code=1, tokens=5000)), 4000, "Fail:agent_error", 5000,
                 id="result-tokens-over-budget"),
    pytest.param(task(), finished_obs(result(exit_code=1, tokens=3000)), 4000, "Respawn:agent_error", 0,
                 id="result-tokens-under-budget"),
    pytest.param(task(), finished_obs(result(exit_code=1, tokens=4000)), 4000, "Respawn:agent_error", 0,
                 id="exactly-the-budget-is-not-over"),
    pytest.param(task(), finished_obs(result(exit_code=1, tokens=10**9)), 0, "Respawn:agent_error", 0,
                 id="budget-0-means-none"),
    # earlier attempts and the orchestrator's own spend count too
    pytest.param(spent(task(previous=(FailureKind.died,), number=2), 2500, 0, llm=1000),
                 finished_obs(result(exit_code=1, tokens=600)), 4000, "Fail:agent_error", 4100,
                 id="earlier-attempts-and-llm-spend-count"),
    # killed without a result: what the records say
    pytest.param(spent(task(previous=(FailureKind.died,), number=2, progress=NOW - 30 * MIN), 4500, 0),
                 running_obs(), 4000, "Fail:stuck", 4500, id="stuck-over-budget"),
    # checking: the attempt was closed with its tokens already; not counted twice
    pytest.param(spent(task(Status.checking), 4500), checking_obs(forge=forge(ci="fail", ci_evidence="FAILED x")),
                 4000, "Fail:ci_failed", 4500, id="ci-failed-over-budget"),
    pytest.param(spent(task(Status.checking), 3500), checking_obs(forge=forge(ci="fail", ci_evidence="FAILED x")),
                 4000, "Respawn:ci_failed", 0, id="ci-failed-under-budget"),
]


@pytest.mark.parametrize(("t", "obs", "budget", "expected", "figure"), BUDGET_ROWS)
def test_token_budget_stops_retries(t: Task, obs: Observation, budget: int, expected: str, figure: int) -> None:
    decision = decide(t, obs, Policy(token_budget=budget), NOW)
    assert summary(decision) == [expected]
    [action] = decision.actions
    assert isinstance(action, Respawn | Fail)
    if figure:
        assert f"token budget exceeded: {figure:,} tokens spent, over the budget of {budget:,} per task" in (
            action.failure.summary)
        assert action.attempt == t.attempts[-1].number < Policy().max_attempts, "stopped before max_attempts"
    else:
        assert "budget" not in action.failure.summary


# -- provider outages: api_error backs off, and does not spend the task's attempts up to a bound -----------

API = result(exit_code=1, api_error=True, error="overloaded")


def waiting(t: Task, retry_at: datetime) -> Task:
    """``t`` whose current attempt already waits for a retry at ``retry_at``."""
    assert t.attempt is not None
    return t.with_attempt(t.attempt.model_copy(update={"retry_at": retry_at}))


API_ROWS = [
    # (task, now, policy, expected, reason contains)
    pytest.param(task(), NOW, POLICY, ["Backoff"], "next try at 12:00:", id="first-api-error-waits"),
    pytest.param(waiting(task(), NOW + 2 * MIN), NOW, POLICY, [], "next try at 12:02:00 UTC", id="still-waiting"),
    pytest.param(waiting(task(), NOW + 2 * MIN), NOW + 2 * MIN, POLICY, ["Respawn:api_error"], "",
                 id="due-respawns"),
    pytest.param(waiting(task(), NOW + timedelta(hours=3)), NOW, POLICY, ["Respawn:api_error"], "",
                 id="retry-time-beyond-the-cap-is-a-clock-set-back"),
    pytest.param(task(number=3, previous=(FailureKind.api_error, FailureKind.api_error)), NOW, POLICY, ["Backoff"],
                 "3 times", id="outage-attempts-are-not-counted"),
    pytest.param(waiting(task(number=3, previous=(FailureKind.api_error, FailureKind.api_error)), NOW), NOW, POLICY,
                 ["Respawn:api_error"], "", id="third-api-error-still-respawns"),
    pytest.param(task(number=5, previous=(FailureKind.api_error,) * 4), NOW, Policy(api_error_attempts=2),
                 ["Fail:api_error"], "", id="beyond-the-bound-they-count"),
    pytest.param(task(number=3), NOW, Policy(api_error_attempts=0), ["Fail:api_error"], "",
                 id="no-free-attempts-configured"),
    pytest.param(task(number=3, previous=(FailureKind.agent_error, FailureKind.died)), NOW, POLICY, ["Backoff"], "",
                 id="other-failures-plus-one-free-api-error"),
]


@pytest.mark.parametrize(("t", "now", "pol", "expected", "reason"), API_ROWS)
def test_api_errors_back_off(t: Task, now: datetime, pol: Policy, expected: list[str], reason: str) -> None:
    decision = decide(t, finished_obs(API), pol, now)
    assert summary(decision) == expected, decision.reason
    assert reason in decision.reason
    for action in decision.actions:
        if isinstance(action, Backoff):
            assert action.attempt == t.attempts[-1].number
            assert action.retry_at > now


@pytest.mark.parametrize(("count", "low", "high"), [(1, 30, 60), (2, 60, 120), (3, 120, 240), (6, 900, 1800),
                                                     (7, 900, 1800), (40, 900, 1800)])
def test_api_backoff_is_exponential_jittered_and_capped(count: int, low: float, high: float) -> None:
    waits = [api_backoff(f"t{i}", count, POLICY).total_seconds() for i in range(20)]
    assert all(low <= w <= high for w in waits), waits
    assert len(set(waits)) > 10, "a fleet does not retry in step"
    assert waits == [api_backoff(f"t{i}", count, POLICY).total_seconds() for i in range(20)], "deterministic"


def test_backoff_reason_shows_the_recorded_next_try() -> None:
    decision = decide(task(), finished_obs(API), POLICY, NOW)
    retry_at = only(decision, Backoff).retry_at
    assert retry_at == NOW + api_backoff("t1", 1, POLICY)
    assert decision.reason.endswith(f"next try at {retry_at:%H:%M:%S} UTC")
    again = decide(waiting(task(), retry_at), finished_obs(API), POLICY, NOW + MIN / 2)
    assert again.reason == decision.reason and again.actions == ()


@pytest.mark.parametrize(("previous", "pol", "expected"), [
    ((), POLICY, 1),
    ((FailureKind.api_error,) * 2, POLICY, 3),
    ((FailureKind.api_error, FailureKind.died, FailureKind.api_error), POLICY, 3),
    ((FailureKind.api_error,) * 9, POLICY, 5),
    ((FailureKind.api_error,) * 9, Policy(api_error_attempts=0), 0),
])
def test_free_api_errors(previous: tuple[FailureKind, ...], pol: Policy, expected: int) -> None:
    t = task(number=len(previous) + 1, previous=previous)
    current = Failure(kind=FailureKind.api_error, summary="x", at=NOW)
    assert free_api_errors(t, pol, current) == expected


def test_outage_tasks_counts_tasks_waiting_or_recently_retried_after_api_errors() -> None:
    recent = task(task_id="b", number=2, previous=(FailureKind.api_error,))
    recent = recent.model_copy(update={"attempts": (
        recent.attempts[0].model_copy(update={"failure": failure(FailureKind.api_error, at=NOW - 5 * MIN)}),
        recent.attempts[1])})
    old = task(task_id="c", number=2, previous=(FailureKind.api_error,))  # an hour ago: outside the window
    state = RegistryState(tasks={t.id: t for t in (
        waiting(task(task_id="a"), NOW + MIN), recent, old, task(task_id="d"),
        waiting(task(Status.failed, task_id="e"), NOW + MIN))})
    assert outage_tasks(state, POLICY, NOW) == ["a", "b"]


# -- clock jumps: the running attempts' marks move with the jump (the tick measures it) --------------------


def test_rebaseline_shifts_only_running_attempts_and_only_beyond_the_slack() -> None:
    running = waiting(task(task_id="a", progress=QUIET), NOW + MIN)
    checking = task(Status.checking, task_id="b")
    state = RegistryState(tasks={"a": running, "b": checking})
    assert rebaseline(state, timedelta(seconds=59)) is state, "drift within the slack changes nothing"
    shifted = rebaseline(state, timedelta(hours=3))
    before, after = running.attempts[-1], shifted.tasks["a"].attempts[-1]
    for name in ("started_at", "launched_at", "progress_at", "retry_at"):
        assert getattr(after, name) == getattr(before, name) + timedelta(hours=3), name
    assert shifted.tasks["b"] == checking
    assert summary(decide(shifted.tasks["a"], running_obs(), POLICY, NOW + timedelta(hours=3))) == []
    back = rebaseline(state, -timedelta(hours=3)).tasks["a"]
    assert back.attempts[-1].progress_at == before.progress_at - timedelta(hours=3)  # type: ignore[operator]


# -- a blind monitor names what it cannot see: the runtime the attempt records --------------------------------


def on_runtime(t: Task, runtime: str) -> Task:
    return t.model_copy(update={"attempts": (*t.attempts[:-1], t.attempts[-1].model_copy(update={"runtime": runtime}))})


BLIND_ROWS = [
    pytest.param("tmux", Liveness.unknown, QUIET, [],
                 "the tmux server cannot be reached; waiting (not counted as a death)", id="tmux-unreachable"),
    pytest.param("tmux", Liveness.no_server, QUIET, [], "no tmux server is running (a reboot?); waiting",
                 id="tmux-no-server"),
    pytest.param("container", Liveness.unknown, QUIET, [],
                 "the container engine cannot be reached; waiting (not counted as a death)", id="engine-unreachable"),
    pytest.param("container", Liveness.no_server, QUIET, [],
                 "the container engine cannot be reached; waiting (not counted as a death)", id="engine-lists-nothing"),
    pytest.param("container:build2", Liveness.unknown, QUIET, [],
                 "the container engine of host build2 cannot be reached; waiting (not counted as a death)",
                 id="host-engine-unreachable"),
    pytest.param("container", Liveness.unknown, IDLE, ["Respawn:died"],
                 "the container engine cannot be reached and the agent made no progress for", id="engine-past-stuck"),
    pytest.param("container:build2", Liveness.unknown, IDLE, ["Respawn:died"],
                 "the container engine of host build2 cannot be reached and the agent made no progress",
                 id="host-engine-past-stuck"),
]


@pytest.mark.parametrize(("runtime", "liveness", "progress", "expected", "reason"), BLIND_ROWS)
def test_a_blind_monitor_names_the_runtime_it_cannot_see(runtime: str, liveness: Liveness, progress: datetime,
                                                          expected: list[str], reason: str) -> None:
    decision = decide(on_runtime(task(progress=progress), runtime), running_obs(liveness=liveness), POLICY, NOW)
    assert summary(decision) == expected, decision.reason
    assert decision.reason.startswith(reason), decision.reason
    if runtime != "tmux":
        assert "tmux" not in decision.reason


@pytest.mark.parametrize(("runtime", "reason"), [
    ("tmux", "the tmux server cannot be reached; the launch waits"),
    ("container:build2", "the container engine of host build2 cannot be reached; the launch waits"),
])
def test_an_unlaunched_attempt_waits_naming_its_runtime(runtime: str, reason: str) -> None:
    unlaunched = on_runtime(task(launched=None), runtime)
    decision = decide(unlaunched, running_obs(liveness=Liveness.unknown), POLICY, NOW)
    assert summary(decision) == [] and decision.reason == reason
