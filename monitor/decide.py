"""The monitor's judgement, as pure functions: (task, observation, policy, now) → actions.

No I/O and no clock here: everything the decision depends on is passed in, so the whole lifecycle is
tested as tables and can be read in this one file.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from monitor.actions import (
    Action,
    AskHuman,
    Backoff,
    BackToChecking,
    Fail,
    Launch,
    LinkScreenshots,
    MarkClosed,
    MarkMerged,
    MarkReady,
    OpenPR,
    PostReviews,
    Progress,
    PushBranch,
    Respawn,
    Start,
    StartChecks,
    ToChecking,
    UpdateBranch,
)
from monitor.budget import task_over
from monitor.durations import format_duration
from monitor.layout import SCREENSHOT_DIR
from monitor.merge.stack import stack_target
from monitor.observation import Liveness, Observation, Review, RunResult
from monitor.policy import Policy
from monitor.redact import redact
from registry.models import Attempt, Failure, FailureKind, RegistryState, Status, Task

# Failures whose retry must produce new commits: the old head is the thing that failed.
HEAD_BOUND = {
    FailureKind.ci_failed,
    FailureKind.changes_requested,
    FailureKind.conflict,
    FailureKind.behind,
    FailureKind.screenshots_missing,
}
# Failures no new agent attempt can fix: the human is told at once.
TERMINAL = {FailureKind.setup_failed, FailureKind.launch_failed, FailureKind.worktree_missing}
CLOCK_SLACK = timedelta(minutes=5)
# How far the wall clock may drift from the monotonic one between two ticks before it counts as a jump.
JUMP_SLACK = timedelta(minutes=1)
ASKED = "asked:"  # keys in Task.fired of questions put to the human (not failures)


@dataclass(frozen=True)
class Decision:
    task_id: str
    actions: tuple[Action, ...] = ()
    reason: str = ""
    checks: Mapping[str, str] = field(default_factory=dict)
    passed_head: str = ""  # the head whose own checks all passed (monitor/merge/stack.py): dependents stack on it


def _failure(kind: FailureKind, summary: str, evidence: str, now: datetime) -> Failure:
    # Summaries and evidence quote agent output, CI logs and reviews: never let a token through.
    return Failure(kind=kind, summary=redact(summary), evidence=redact(evidence), at=now)


def free_api_errors(task: Task, policy: Policy, current: Failure | None = None) -> int:
    """Attempts lost to provider outages that do not count against ``max_attempts`` (at most
    ``api_error_attempts``); ``current`` is the failure of the attempt being closed, if not yet recorded."""
    seen = sum(1 for a in task.attempts if a.failure is not None and a.failure.kind is FailureKind.api_error)
    if current is not None and current.kind is FailureKind.api_error and task.attempt and task.attempt.failure is None:
        seen += 1
    return min(seen, policy.api_error_attempts)


def api_backoff(task_id: str, count: int, policy: Policy) -> timedelta:
    """The wait before the next attempt after the ``count``-th api_error: exponential, capped, with a jitter
    derived from the task and the count (so that ``decide`` stays pure and a fleet does not retry in step)."""
    base = min(policy.api_backoff_max, policy.api_backoff * 2 ** min(max(count - 1, 0), 30))
    digest = hashlib.sha256(f"{task_id}:{count}".encode()).digest()
    jitter = int.from_bytes(digest[:4], "big") / 2**32  # [0, 1)
    return timedelta(seconds=base * (0.5 + 0.5 * jitter))


def _retry_or_fail(
    task: Task,
    attempt: Attempt,
    failure: Failure,
    policy: Policy,
    *,
    result: RunResult | None = None,
    kill: bool = False,
    fired: str = "",
) -> Action:
    counted = attempt.number - free_api_errors(task, policy, failure)
    if failure.kind in TERMINAL or counted >= policy.max_attempts:
        return Fail(task.id, attempt.number, failure, result, kill)
    # The attempt that just ended is billed from its result: the record gets its tokens only when closed.
    spent = task.tokens - attempt.tokens + result.tokens if result is not None else task.tokens
    usd = task.cost_usd - attempt.cost_usd + result.cost_usd if result is not None else task.cost_usd
    limits = policy.budget
    if not limits.per_task_tokens and policy.token_budget:  # [llm] task_token_budget, the older name
        limits = replace(limits, per_task_tokens=policy.token_budget)
    over = task_over(task, limits, spent, usd)
    if over:
        return Fail(task.id, attempt.number, failure.model_copy(update={"summary": f"{failure.summary}; {over}"}),
                    result, kill)
    return Respawn(task.id, attempt.number, failure, result, kill, fired)


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


def _worktree_missing(task: Task, attempt: Attempt, now: datetime, *, kill: bool) -> Decision:
    """Flag it for the human; never re-create a worktree elsewhere or delete anything."""
    failure = _failure(
        FailureKind.worktree_missing,
        f"the worktree {task.worktree} is gone; nothing was re-created. Restore it, then `swarm retry {task.id}`",
        "",
        now,
    )
    return Decision(task.id, (Fail(task.id, attempt.number, failure, kill=kill),), failure.summary)


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


def outage_tasks(state: RegistryState, policy: Policy, now: datetime) -> list[str]:
    """Tasks hit by the provider's API errors within the last ``api_backoff_max``: waiting to retry, or
    retried after one. Several at once are a fleet-wide outage, told to the human once."""
    window = timedelta(seconds=policy.api_backoff_max) + CLOCK_SLACK
    hit = []
    for task in state.tasks.values():
        if not task.status.active or not task.attempts:
            continue
        current = task.attempts[-1]
        recent = [a.failure for a in task.attempts[-2:] if a.failure is not None]
        if (task.status is Status.running and current.retry_at is not None) or any(
            f.kind is FailureKind.api_error and now - f.at <= window for f in recent
        ):
            hit.append(task.id)
    return sorted(hit)


def _login(name: str) -> str:
    """Reviewer names compare without case and without the REST ``[bot]`` suffix."""
    name = name.strip().lower()
    return name.removesuffix("[bot]")


def _ui_files(changed: Sequence[str], globs: Sequence[str]) -> list[str]:
    return [
        path for path in changed
        if not path.startswith(f"{SCREENSHOT_DIR}/") and any(fnmatch.fnmatch(path, g) for g in globs)
    ]


def decide_checking(task: Task, obs: Observation, policy: Policy, now: datetime) -> Decision:
    """Checking or ready: walk the definition of done in order; the first unmet item decides."""
    attempt = task.attempt
    assert attempt is not None
    done = policy.done
    checks: dict[str, str] = {}
    forge = obs.forge
    if obs.merged or (forge is not None and forge.merged):
        return Decision(task.id, (MarkMerged(task.id),), "merged into the base branch")
    if forge is not None and forge.closed:
        return Decision(task.id, (MarkClosed(task.id),), "the pull request was closed without merging")
    if not obs.worktree_exists:
        return _worktree_missing(task, attempt, now, kill=False)
    head = obs.head or ""
    back = (BackToChecking(task.id),) if task.status is Status.ready else ()
    passed = ""  # set once the walk is past CI: what a stacked dependent may start on

    def unmet(reason: str, *actions: Action) -> Decision:
        return Decision(task.id, (*back, *actions), reason, checks, passed)

    def failed(kind: FailureKind, summary: str, evidence: str) -> Decision:
        key = f"{kind.value}:{head}"
        failure = _failure(kind, summary, evidence, now)
        if key in task.fired:
            # Already retried for this very head and no agent is running: escalate once instead of
            # respawning in a loop or waiting forever for commits nobody will make.
            again = failure.model_copy(update={"summary": f"{summary} again on {head[:10]} after a retry"})
            return unmet(again.summary, Fail(task.id, attempt.number, again))
        return unmet(summary, _retry_or_fail(task, attempt, failure, policy, fired=key))

    checks["commits"] = "ok" if obs.ahead > 0 else "missing"
    if done.commits and obs.ahead == 0:
        return failed(FailureKind.phantom, "the branch has no commits ahead of the base", "")
    # the forge's mergeability is about the PR's head: a newer local head (not pushed yet) is judged by git
    sync = forge.sync if forge is not None and forge.pr_head == head else ""
    if task.stacked_on and sync in ("conflict", "behind"):
        sync = ""  # against the dependency's moving branch: restacks follow it (monitor/merge/stack.py)
    if done.no_conflict:
        conflict = bool(obs.conflicts) or sync == "conflict"
        checks["conflict"] = "conflict" if conflict else "ok"
        if conflict:
            files = obs.conflicts or ("(the forge reports a conflict; fetch the base to see the files)",)
            evidence = f"rebase onto {task.base_branch}; conflicting files:\n" + "\n".join(files)
            return failed(FailureKind.conflict, f"conflicts with {task.base_branch} in "
                          f"{len(obs.conflicts) or 'some'} file(s)", evidence)
    if done.up_to_date or sync == "behind":
        behind = obs.behind or (1 if sync == "behind" else 0)
        checks["synced"] = "ok" if behind == 0 else f"behind {obs.behind or '(required by the repository)'}"
        if behind:
            what = (f"{obs.behind} commit(s) behind {task.base_branch}" if obs.behind
                    else f"behind {task.base_branch} (the repository requires up-to-date branches)")
            return unmet(f"{what}; updating the branch", UpdateBranch(task.id))
    if forge is None or forge.ci == "unknown":
        checks["ci"] = "unknown"
        return Decision(task.id, (), f"forge state unknown: {forge.unknown_reason if forge else 'not read'}", checks)
    if done.pr and forge.supports_pr:
        checks["pr"] = "ok" if forge.pr else "missing"
        if forge.pr is None or task.pr != forge.pr:
            return unmet("opening the pull request" if forge.pr is None else "adopting the pull request",
                         OpenPR(task.id, head))
        if forge.pr_head != head:
            return unmet(f"publishing {head[:10]} to the pull request", PushBranch(task.id, head))
        if done.no_conflict and sync == "unknown":
            checks["conflict"] = "unknown"
            return unmet("the forge is still computing mergeability; asking again next tick")
    if done.ci:
        checks["ci"] = forge.ci
        if forge.ci == "not_started":
            return unmet("starting CI", StartChecks(task.id, head, ("ci",)))
        if forge.ci == "pending":
            return unmet("waiting for CI")
        if forge.ci == "action_required":
            key = f"{ASKED}ci:{head}"
            ask = () if key in task.fired else (AskHuman(task.id, key, forge.ci_evidence.split(": ", 1)[0],
                                                         forge.ci_evidence),)
            return unmet(forge.ci_evidence or "CI waits for a human", *ask)
        if forge.ci == "fail":
            return failed(FailureKind.ci_failed, "CI failed", forge.ci_evidence)
    passed = head
    if forge.reviews_to_post:
        return unmet("posting the AI reviews on the pull request", PostReviews(task.id, head, forge.reviews_to_post))
    wanted = {_login(r) for r in done.reviewers}
    latest: dict[str, Review] = {}
    for review in forge.reviews:  # chronological; a later comment does not erase a verdict
        if wanted and _login(review.reviewer) not in wanted:
            continue
        if review.state in ("APPROVED", "CHANGES_REQUESTED"):
            latest[review.reviewer] = review
        elif review.state == "DISMISSED":
            latest.pop(review.reviewer, None)
    blocking = [r for r in latest.values() if r.state == "CHANGES_REQUESTED"]
    if blocking:  # changes requested stop a task even when no approval is required
        checks["reviews"] = "changes requested"
        evidence = "\n\n".join(f"review by {r.reviewer}:\n{r.body}" for r in blocking)
        names = ", ".join(r.reviewer for r in blocking)
        return failed(FailureKind.changes_requested, f"changes requested by {names}", evidence)
    if done.reviews:
        approvals = sum(1 for r in latest.values() if r.state == "APPROVED")
        checks["reviews"] = f"{approvals}/{done.reviews}"
        if approvals < done.reviews:
            if forge.reviews_not_started:
                return unmet("starting reviewers", StartChecks(task.id, head, forge.reviews_not_started))
            return unmet(f"waiting for reviews ({approvals}/{done.reviews} approvals)")
    if done.screenshots_for:
        ui = _ui_files(obs.changed_files, done.screenshots_for)
        shots = tuple(p for p in obs.changed_files if p.startswith(f"{SCREENSHOT_DIR}/"))
        shown = bool(shots) or forge.body_has_image
        checks["screenshots"] = "n/a" if not ui else ("ok" if shown else "missing")
        if ui and not shown:
            return failed(FailureKind.screenshots_missing, f"{len(ui)} UI file(s) changed without screenshots",
                          f"UI files changed (commit screenshots of them under {SCREENSHOT_DIR}/):\n"
                          + "\n".join(ui))
        if ui and shots and forge.supports_pr and forge.pr is not None and forge.screenshots_at != head:
            return unmet("linking the screenshots in the pull request", LinkScreenshots(task.id, head, shots))
    if task.status is Status.ready:
        return Decision(task.id, (), "ready for review", checks, passed)
    return Decision(task.id, (MarkReady(task.id, head),), "ready for review", checks, passed)


def decide(task: Task, obs: Observation, policy: Policy, now: datetime) -> Decision:
    if task.status is Status.running:
        return decide_running(task, obs, policy, now)
    if task.status in (Status.checking, Status.ready):
        return decide_checking(task, obs, policy, now)
    return Decision(task.id)


def rebaseline(state: RegistryState, jump: timedelta) -> RegistryState:
    """Shift the running attempts' time marks by a clock jump (``monitor/clockjump.py``), so that ages
    and idle times come out as the monotonic clock measured them: a jump or a suspend kills nobody."""
    if abs(jump) <= JUMP_SLACK:
        return state
    tasks = dict(state.tasks)
    for task_id, task in state.tasks.items():
        attempt = task.attempt
        if task.status is not Status.running or attempt is None:
            continue
        marks = {name: getattr(attempt, name) + jump
                 for name in ("started_at", "launched_at", "progress_at", "retry_at")
                 if getattr(attempt, name) is not None}
        tasks[task_id] = task.with_attempt(attempt.model_copy(update=marks))
    return state.model_copy(update={"tasks": tasks})


def plan_starts(
    state: RegistryState, policy: Policy, busy: int, held: str = ""
) -> tuple[list[Start], dict[str, str]]:
    """Queued tasks to start now (dependencies merged, capacity free), and why the others wait. ``held``:
    the day's or week's budget is spent (monitor/budget.py), so nothing starts and that is why."""
    free = policy.max_parallel - busy
    starts: list[Start] = []
    waiting: dict[str, str] = {}
    queued = sorted((t for t in state.tasks.values() if t.status is Status.queued), key=lambda t: t.created_at)
    for task in queued:
        blockers = []
        for dep in task.after:
            other = state.tasks.get(dep)
            if other is None:
                blockers.append(f"{dep} (unknown task)")
            elif other.status is not Status.merged:
                blockers.append(f"{dep} ({other.status.value})")
        onto, stack_wait = stack_target(task, state.tasks, policy.stack)  # [plan] stack: start on its branch
        if blockers and onto is None:
            waiting[task.id] = "waiting for " + ", ".join(blockers) + (f"; {stack_wait}" if stack_wait else "")
        elif held:
            waiting[task.id] = held
        elif free <= 0:
            waiting[task.id] = f"waiting for a free slot (max_parallel = {policy.max_parallel})"
        else:
            starts.append(Start(task.id, onto.id, onto.passed_head or "") if onto is not None else Start(task.id))
            free -= 1
    return starts, waiting


def cap_respawns(decisions: Sequence[Decision], policy: Policy) -> list[Decision]:
    """At most ``max_respawns_per_tick`` new agents per tick: a mass death (reboot, clock jump, a broken
    tmux) is handled over several ticks instead of as a storm."""
    budget = policy.max_respawns_per_tick
    capped = []
    for decision in decisions:
        respawns = [a for a in decision.actions if isinstance(a, Respawn)]
        if respawns and budget <= 0:
            capped.append(Decision(decision.task_id, (), f"{decision.reason} (respawn deferred: per-tick cap)",
                                   decision.checks))
            continue
        budget -= len(respawns)
        capped.append(decision)
    return capped


def hold_for_budget(decisions: Sequence[Decision], held: str) -> list[Decision]:
    """The day's or week's budget is spent (``held`` says so): no new attempt. Running agents finish; a
    failed attempt waits with its failure until the next day or a raise, when the same decision comes again."""
    if not held:
        return list(decisions)
    kept = []
    for decision in decisions:
        if any(isinstance(a, Respawn) for a in decision.actions):
            kept.append(Decision(decision.task_id, tuple(a for a in decision.actions if not isinstance(a, Respawn)),
                                 f"{decision.reason} (retry {held})", decision.checks))
        else:
            kept.append(decision)
    return kept
