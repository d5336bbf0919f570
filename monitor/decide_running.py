"""The walk of a running task: launch it, judge how its agent exited (real work, phantom success, an
outage, a crash), watch its progress against the attempt's budget and the stuck timer, and wait rather
than kill when the runtime cannot be seen.

Split out of ``monitor/decide.py`` (which still exports these names) to keep each module small; pure like it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.actions import Action, Backoff, Launch, Progress, Respawn, ToChecking
from monitor.decision import (
    ASKED,
    CLOCK_SLACK,
    HEAD_BOUND,
    Decision,
    _failure,
    _retry_or_fail,
    _worktree_missing,
    api_backoff,
)
from monitor.durations import format_duration
from monitor.observation import Liveness, Observation, RunResult
from monitor.policy import Policy
from monitor.redact import redact
from registry.models import Attempt, FailureKind, Task


def _exit_evidence(result: RunResult | None, obs: Observation) -> str:
    lines = []
    if result is not None:
        lines.append(f"exit code: {result.exit_code}")
        if result.error:
            lines.append(f"error: {result.error}")
        if result.final_text:
            lines.append(f"the agent's last message: {result.final_text[-1500:]}")
    elif obs.pane_status is not None:
        lines.append(f"pane exit status: {obs.pane_status}")
    if obs.log_tail:
        lines += ["last output:", obs.log_tail]
    return "\n".join(lines)


def classify_exit(task: Task, attempt: Attempt, result: RunResult, obs: Observation) -> FailureKind | None:
    """The failure kind of a finished attempt, or None when it left real work behind."""
    if result.phase == "launch":  # the agent could not even start: no signal changes that
        return FailureKind.launch_failed
    if result.killed_by:  # killed from outside (session killed, reboot), in setup or not: retry it
        return FailureKind.died
    if result.phase == "setup":
        return FailureKind.setup_failed
    if result.context_exhausted:  # a full context window needs a narrower scope, the turn-limit handling
        return FailureKind.max_turns
    if result.api_error:
        return FailureKind.api_error
    if result.max_turns:
        return FailureKind.max_turns
    if result.exit_code != 0 or result.is_error:
        return FailureKind.agent_error
    previous = task.attempts[-2].failure if len(task.attempts) > 1 else None
    needs_new = previous is not None and previous.kind in HEAD_BOUND
    # A head that already failed a check (even several attempts ago) cannot be the fix.
    failed_heads = {key.rsplit(":", 1)[-1] for key in task.fired if not key.startswith(ASKED)}
    if obs.ahead == 0 or (needs_new and obs.new_commits == 0) or (obs.head is not None and obs.head in failed_heads):
        # a command failed and nothing usable was committed: that failure is the cause, not a false claim
        return FailureKind.agent_error if result.failed_commands else FailureKind.phantom
    return None


def _exit_summary(kind: FailureKind, result: RunResult) -> str:
    """One line naming what really ended the attempt (the agent's own words go to the evidence)."""
    cause = redact(result.error)  # the reason line is shown and stored too, not only the failure
    if kind is FailureKind.max_turns and result.context_exhausted:
        return f"ran out of context (the model's context window is full): {cause or 'context limit reached'}"
    if kind is FailureKind.max_turns:
        return f"ran out of turns: {cause or 'turn limit reached'}"
    if kind is FailureKind.api_error:
        return f"the model API failed: {cause or f'exit code {result.exit_code}'}"
    if result.exit_code == 0 and not result.is_error and result.failed_commands:
        last = redact(result.failed_command.splitlines()[0]) if result.failed_command else "?"
        return f"{result.failed_commands} command(s) failed and nothing new was committed; last: {last}"
    return f"agent exited with code {result.exit_code}" + (f": {cause}" if cause else "")


def _phantom_summary(result: RunResult, obs: Observation) -> str:
    what = "no commit on the branch" if obs.ahead == 0 else "no new commit since the last failure"
    detail = f"{result.tool_calls} tool calls"
    if obs.dirty:
        detail += f"; uncommitted changes left in: {', '.join(obs.dirty[:10])}"
    return f"exited 0 claiming success, but {what} ({detail})"


def _blind_reason(runtime: str, liveness: Liveness) -> str:
    """What cannot be seen, named by the runtime the attempt records ("tmux", "container", "container:<host>")."""
    kind, _, host = runtime.partition(":")
    if kind == "tmux":
        return ("no tmux server is running (a reboot?)" if liveness is Liveness.no_server
                else "the tmux server cannot be reached")
    if kind == "container":
        return f"the container engine{f' of host {host}' if host else ''} cannot be reached"
    return f"the {runtime} runtime cannot be reached"


def decide_running(task: Task, obs: Observation, policy: Policy, now: datetime) -> Decision:
    attempt = task.attempt
    assert attempt is not None, "a running task always has an attempt"
    if not obs.worktree_exists:
        return _worktree_missing(task, attempt, now, kill=True)
    if attempt.launched_at is None and obs.result is None:
        if obs.liveness is Liveness.unknown:  # no server at all is fine: launching starts one
            return Decision(task.id, (), f"{_blind_reason(attempt.runtime, obs.liveness)}; the launch waits")
        return Decision(task.id, (Launch(task.id, attempt.number),), "launching the agent")
    result = obs.result
    if result is not None:
        kind = classify_exit(task, attempt, result, obs)
        if kind is None:
            return Decision(task.id, (ToChecking(task.id, attempt.number, result),), "agent finished; checking")
        if kind is FailureKind.phantom:
            summary = _phantom_summary(result, obs)
        elif kind in (FailureKind.setup_failed, FailureKind.launch_failed):
            summary = result.error or f"{result.phase} failed with exit code {result.exit_code}"
        else:
            summary = _exit_summary(kind, result)
        failure = _failure(kind, summary, _exit_evidence(result, obs), now)
        action = _retry_or_fail(task, attempt, failure, policy, result=result)
        if kind is FailureKind.api_error and isinstance(action, Respawn):
            return _after_api_error(task, attempt, action, policy, now)
        return Decision(task.id, (action,), summary)

    progress_at = attempt.progress_at or attempt.launched_at or attempt.started_at
    def stop(kind: FailureKind, summary: str) -> Decision:
        """The agent is (or must be) stopped without a result: kill its session, then retry or fail."""
        failure = _failure(kind, summary, _exit_evidence(None, obs), now)
        return Decision(task.id, (_retry_or_fail(task, attempt, failure, policy, kill=True),), failure.summary)

    if obs.liveness in (Liveness.gone, Liveness.exited):
        return stop(FailureKind.died, "the agent's session ended without a result (crash, kill or reboot)")

    mark = Progress(task.id, attempt.number, obs.log_size, now, obs.head)
    if now + CLOCK_SLACK < progress_at:
        # The clock went backwards: restart the progress window instead of trusting negative ages.
        return Decision(task.id, (mark,), "clock moved back")
    new_commit = obs.head is not None and obs.head != (attempt.seen_head or attempt.start_head)
    started = attempt.launched_at or attempt.started_at
    age = now - started
    # The budget holds however busy the agent looks: an agent that keeps printing is judged too. A blind
    # monitor (no tmux server seen) cannot kill anything, so it only waits.
    if not obs.liveness.blind and age.total_seconds() > policy.attempt_timeout:
        return stop(FailureKind.timeout, f"the attempt ran {format_duration(age.total_seconds())}, over the "
                    f"budget of {format_duration(policy.attempt_timeout)}")
    if obs.log_size != attempt.log_size or new_commit:
        return Decision(task.id, (mark,), "agent running")
    idle = now - progress_at

    if obs.liveness.blind:
        server = _blind_reason(attempt.runtime, obs.liveness)
        if idle.total_seconds() > policy.stuck_after:
            return stop(FailureKind.died,
                        f"{server} and the agent made no progress for {format_duration(idle.total_seconds())}")
        return Decision(task.id, (), f"{server}; waiting (not counted as a death)")
    if idle.total_seconds() > policy.stuck_after:
        return stop(FailureKind.stuck, f"no output and no commit for {format_duration(idle.total_seconds())}")
    # A stable reason: one that changed every tick would rewrite the registry on every healthy tick.
    return Decision(task.id, (), "agent running")


def _after_api_error(task: Task, attempt: Attempt, respawn: Respawn, policy: Policy, now: datetime) -> Decision:
    """The provider failed: wait out a backoff (recorded once, so the wait reason is stable) before the
    next attempt. A retry time further ahead than the cap can only come from a clock set back: it is due."""
    count = 1 + sum(1 for a in task.attempts if a.failure is not None and a.failure.kind is FailureKind.api_error)
    retry_at = attempt.retry_at
    cap = timedelta(seconds=policy.api_backoff_max) + CLOCK_SLACK
    if retry_at is not None and (now >= retry_at or retry_at - now > cap):
        return Decision(task.id, (respawn,), respawn.failure.summary)
    action: tuple[Action, ...] = ()
    if retry_at is None:
        retry_at = now + api_backoff(task.id, count, policy)
        action = (Backoff(task.id, attempt.number, retry_at),)
    reason = (f"the provider's API failed ({count} time{'s' if count > 1 else ''}); next try at "
              f"{retry_at:%H:%M:%S} UTC")
    return Decision(task.id, action, reason)
