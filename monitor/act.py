"""Carry out the actions ``decide`` asked for, idempotently and crash-safely.

The rule: the registry records what is about to happen (a new attempt with ``launched_at = None``, an
outbox message) *before* the side effect, in the same atomic update as the state change; the side
effect checks the world before acting (a session that already exists is not launched twice); and a
confirmation is written after. A tick killed anywhere in between is repaired by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from monitor.act_checks import CheckingActions
from monitor.actions import (
    Action,
    Backoff,
    Fail,
    Launch,
    Progress,
    Respawn,
    Start,
    ToChecking,
)
from monitor.decide import HEAD_BOUND, Decision, free_api_errors
from monitor.layout import session_for
from monitor.merge.fixer import GUARDRAILS, check_fix, plan_fix, rejection
from monitor.merge.gitops import keep_and_reset
from monitor.merge.restack import RestackActions
from monitor.messages import EVENT_TEXT, event_message, needs_help_message, stuck_message
from monitor.observation import RunResult
from monitor.policy import Policy
from monitor.redact import redact
from monitor.retry import RetryPrompter, TemplateRetryPrompter, notes_section
from monitor.runner import DiskFull, LaunchError, Runner
from monitor.runtime.base import TMUX
from monitor.world.forge import Forge, ForgeUnavailable
from monitor.world.git import Git, GitError
from monitor.world.tmux import Tmux, TmuxError, TmuxUnavailable
from registry.events import EventLog
from registry.models import Attempt, Failure, FailureKind, OutboxMessage, RegistryState, Status, Task
from registry.store import Registry

log = logging.getLogger(__name__)

TaskFn = Callable[[Task], Task | None]


class Actor(CheckingActions, RestackActions):
    def __init__(
        self,
        registry: Registry,
        events: EventLog,
        runner: Runner,
        forge: Forge,
        tmux: Tmux,
        git: Git,
        policy: Policy,
        prompter: RetryPrompter,
        now: datetime,
        thread_events: bool = False,
    ) -> None:
        self.thread_events = thread_events  # the notifier keeps a thread per task: send it every event
        self.registry = registry
        self.events = events
        self.runner = runner
        self.forge = forge
        self.tmux = tmux
        self.git = git
        self.policy = policy
        self.prompter = prompter
        self.now = now
        self.done: list[str] = []

    # -- plumbing -------------------------------------------------------------------------------------

    def _update(self, task_id: str, fn: TaskFn, message: OutboxMessage | None = None) -> Task | None:
        """Apply ``fn`` to the task's current record; None from ``fn`` means "no longer applies"."""
        changed: list[Task] = []

        def apply(state: RegistryState) -> RegistryState:
            task = state.tasks.get(task_id)
            if task is None:
                return state
            new = fn(task)
            if new is None:
                return state
            new = new.model_copy(update={"updated_at": self.now})
            changed.append(new)
            out = state.with_task(new)
            return out.enqueue(message) if message is not None else out

        self.registry.update(apply)
        return changed[0] if changed else None

    def _event(self, task_id: str, event: str, **data: object) -> None:
        self.events.append(self.now, task_id, event, **data)
        if self.thread_events and event in EVENT_TEXT:
            task = self._current(task_id)
            message = event_message(task, event, data, self.now) if task is not None else None
            if message is not None:
                self.registry.update(lambda state: state.enqueue(message))
        self.done.append(f"{task_id}: {event}")
        log.info("task %s: %s %s", task_id, event, " ".join(f"{k}={v}" for k, v in data.items() if v != ""))

    def _current(self, task_id: str) -> Task | None:
        return self.registry.read().tasks.get(task_id)

    @staticmethod
    def _at_attempt(task: Task, number: int, *statuses: Status) -> bool:
        attempt = task.attempt
        return attempt is not None and attempt.number == number and task.status in statuses

    # -- dispatch -------------------------------------------------------------------------------------

    def apply(self, decision: Decision) -> None:
        for action in decision.actions:
            try:
                self.run(action)
            except ForgeUnavailable as exc:  # a rate limit or an outage: the next tick tries again
                log.warning("task %s: %s deferred: %s", decision.task_id, type(action).__name__, exc)
                self._event(decision.task_id, "action_deferred", action=type(action).__name__, error=str(exc))
            except (GitError, TmuxError, LaunchError) as exc:
                log.error("task %s: %s failed: %s", decision.task_id, type(action).__name__, exc)
                self._event(decision.task_id, "action_error", action=type(action).__name__, error=str(exc))

    def run(self, action: Action) -> None:
        current = self._current(action.task_id)
        if current is None or not current.status.active:
            return  # it ended since decide (the human cancelled it, say): nothing more is done for it
        handler = getattr(self, f"_do_{type(action).__name__}")
        handler(action)

    # -- starting and launching -------------------------------------------------------------------------

    def _do_Start(self, action: Start) -> None:
        task = self._current(action.task_id)
        if task is None or task.status is not Status.queued:
            return
        number = len(task.attempts) + 1  # a task re-queued by the human keeps its history
        stack: dict[str, object] = {}
        if action.stack_on and action.onto:  # a stacked start: the branch is made from the dependency's checked head
            dep = self._current(action.stack_on)
            if dep is None:
                return
            stack = {"base_branch": dep.branch, "stacked_on": dep.id, "stack_base_sha": action.onto,
                     "stack_home": task.stack_home or task.base_branch}
        try:
            start_head = self.runner.ensure_worktree(
                task.model_copy(update={"base_branch": action.onto}) if stack else task)
            body = task.prompt + notes_section(task.notes)
            prompt_path = self.runner.write_attempt(task, number, body)
        except DiskFull as exc:  # transient: the task stays queued, no attempt is counted
            self._wait_for_disk(task.id, "start_deferred", exc, attempt=number)
            return
        except GitError as exc:
            self._fail_now(task, FailureKind.launch_failed, f"could not create the worktree: {exc}")
            return
        except LaunchError as exc:  # e.g. its agent profile was renamed in swarm.toml since it was queued
            self._fail_now(task, FailureKind.launch_failed, f"could not start the agent: {exc}")
            return
        attempt = Attempt(
            number=number, session=session_for(task.id), prompt_path=str(prompt_path), started_at=self.now,
            start_head=start_head, progress_at=self.now, runtime=self.runner.runtime_name(task),
        )

        def start(current: Task) -> Task | None:
            if current.status is not Status.queued or len(current.attempts) + 1 != number:
                return None
            return current.model_copy(update={
                "status": Status.running, "attempts": (*current.attempts, attempt), "reason": "launching the agent",
                **stack,
            })

        if self._update(task.id, start) is not None:
            if stack:
                self._event(task.id, "stacked", on=action.stack_on, onto=action.onto[:12])
            self._event(task.id, "started", attempt=number, agent=task.agent)
            self._launch(task.id, number)

    def _wait_for_disk(self, task_id: str, event: str, exc: DiskFull, *, attempt: int) -> None:
        """Say (once per cause) that the task waits for disk space; the registry and event log may be on
        the full disk too, so failing to say it changes nothing: the next tick simply tries again."""
        reason = f"waiting for disk space: {exc}; retrying on the next tick"
        log.warning("task %s: %s", task_id, reason)

        def note(current: Task) -> Task | None:
            return current.model_copy(update={"reason": reason}) if current.reason != reason else None

        try:
            if self._update(task_id, note) is not None:
                self._event(task_id, event, attempt=attempt, path=exc.path, error=str(exc))
        except OSError as write_error:
            log.warning("task %s: could not record the wait either: %s", task_id, write_error)

    def _do_Launch(self, action: Launch) -> None:
        self._launch(action.task_id, action.attempt)

    def _launch(self, task_id: str, number: int) -> None:
        task = self._current(task_id)
        if task is None or not self._at_attempt(task, number, Status.running):
            return
        attempt = task.attempt
        assert attempt is not None
        if attempt.launched_at is not None:
            return
        try:
            if attempt.runtime == TMUX:  # a container that exited is judged by the next tick, never relaunched
                self._clear_dead_session(attempt.session)
            self.runner.launch(task, attempt)
        except TmuxUnavailable as exc:
            # Transient: the attempt stays recorded and unlaunched; a later tick launches it.
            log.warning("task %s: launch deferred, tmux or the container engine is unreachable: %s", task_id, exc)
            self._event(task_id, "launch_deferred", attempt=number, error=str(exc))
            return
        except (LaunchError, TmuxError) as exc:
            self._fail_now(task, FailureKind.launch_failed, f"could not start the agent: {exc}")
            return

        def confirm(current: Task) -> Task | None:
            if not self._at_attempt(current, number, Status.running):
                return None
            now_attempt = current.attempt
            assert now_attempt is not None
            launched = current.with_attempt(now_attempt.model_copy(update={"launched_at": self.now,
                                                                            "progress_at": self.now}))
            # the reason the tick's decide gives a healthy agent, at once (not "launching" until the next tick)
            return launched.model_copy(update={"reason": "agent running"}) if current.reason == "launching the agent" \
                else launched

        self._update(task_id, confirm)
        self._event(task_id, "launched", attempt=number, session=attempt.session)

    def _clear_dead_session(self, session: str) -> None:
        """A dead pane kept by remain-on-exit would make the (idempotent) launch a no-op."""
        panes = self.tmux.panes()
        pane = panes.get(session) if panes else None
        if pane is not None and pane.dead:
            self.tmux.kill(session)

    # -- running-phase outcomes -------------------------------------------------------------------------

    def _do_Progress(self, action: Progress) -> None:
        """Progress marks are written for the whole tick in one update (see tick._soft_updates)."""

    def _closed_attempt(self, attempt: Attempt, result: RunResult | None, failure: Failure | None) -> Attempt:
        update: dict[str, object] = {"ended_at": attempt.ended_at or self.now, "failure": failure}
        if result is not None:
            update.update(exit_code=result.exit_code, tokens=result.tokens, cost_usd=result.cost_usd,
                          cost_known=result.cost_known, ended_at=result.ended_at)
        return attempt.model_copy(update=update)

    def _do_ToChecking(self, action: ToChecking) -> None:
        if self._fix_rejected(action):
            return

        def to_checking(task: Task) -> Task | None:
            if not self._at_attempt(task, action.attempt, Status.running):
                return None
            attempt = task.attempt
            assert attempt is not None
            return task.with_attempt(self._closed_attempt(attempt, action.result, None)).model_copy(
                update={"status": Status.checking, "reason": "agent finished; checking"}
            )

        task = self._update(action.task_id, to_checking)
        if task is not None:
            self.runner.kill_agent(task)
            self._event(task.id, "agent_finished", attempt=action.attempt,
                        exit_code=action.result.exit_code if action.result else "")

    def _fix_rejected(self, action: ToChecking) -> bool:
        """A fixer's result that breaks the guardrails is not judged: its commits are kept under a ref, the
        branch goes back to its pre-fix head, and the next attempt (within max_attempts) gets the evidence."""
        task = self._current(action.task_id)
        attempt = task.attempt if task is not None else None
        if task is None or attempt is None or attempt.fix is None or not self._at_attempt(
                task, action.attempt, Status.running):
            return False
        head = self.git.head(task.branch)
        violations = check_fix(self.git, attempt, head) if head else []
        if not violations or head is None:
            return False
        self.runner.kill_agent(task)
        ref = keep_and_reset(self.git, Path(task.worktree), task.id, attempt.number, head, attempt.fix.head)
        summary, evidence = rejection(violations, attempt, ref)
        failure = Failure(kind=FailureKind.fix_rejected, summary=redact(summary), evidence=redact(evidence),
                          at=self.now)
        self._event(task.id, "fix_rejected", attempt=attempt.number, ref=ref, problems=len(violations))
        if attempt.number - free_api_errors(task, self.policy, failure) >= self.policy.max_attempts:
            self._do_Fail(Fail(task.id, attempt.number, failure, action.result))
        else:
            self.respawn(task.id, attempt.number, failure, result=action.result)
        return True

    def _do_Backoff(self, action: Backoff) -> None:
        """Record when the next attempt may start; the attempt stays open (its agent already exited)."""
        def hold(task: Task) -> Task | None:
            attempt = task.attempt
            if not self._at_attempt(task, action.attempt, Status.running) or attempt is None:
                return None
            return task.with_attempt(attempt.model_copy(update={"retry_at": action.retry_at}))

        if self._update(action.task_id, hold) is not None:
            self._event(action.task_id, "api_backoff", attempt=action.attempt, retry_at=action.retry_at.isoformat())

    def _do_Respawn(self, action: Respawn) -> None:
        self.respawn(action.task_id, action.attempt, action.failure, result=action.result, fired=action.fired)

    def respawn(
        self,
        task_id: str,
        after: int,
        failure: Failure,
        *,
        result: RunResult | None = None,
        fired: str = "",
        notes: tuple[str, ...] | None = None,
        by_human: bool = False,
    ) -> bool:
        """Close attempt ``after`` with ``failure`` and launch the next one with a retry prompt.

        The monitor respawns only live tasks; the human (``by_human``) may also revive a failed or
        cancelled one, past max_attempts. Returns whether the new attempt was recorded.
        """
        statuses: tuple[Status, ...] = (Status.running, Status.checking, Status.ready)
        if by_human:
            statuses += (Status.failed, Status.cancelled)
        task = self._current(task_id)
        if task is None or not self._at_attempt(task, after, *statuses):
            return False
        if notes is not None:
            task = task.model_copy(update={"notes": notes})
        if not by_human:  # the human's retry stops the running agent only once its prompt is written
            self.runner.kill_agent(task)  # the old attempt's session or container, alive or a dead pane
        number = after + 1
        failed_task = task.with_attempt(self._closed_attempt(task.attempts[-1], result, failure))
        # attempts lost to a provider outage are not counted: the budget grows by them
        budget = max(number, self.policy.max_attempts + free_api_errors(failed_task, self.policy))
        try:  # a conflict, red CI or review on a finished task: a fixer, with the evidence and the guardrails
            fix = plan_fix(self.git, task, failure, self.forge.base_ref(task.base_branch))
        except GitError as exc:
            log.warning("task %s: no fixer evidence (%s); an ordinary retry", task.id, exc)
            fix = None
        told = failure if fix is None else failure.model_copy(update={"evidence": redact(fix[1])})
        try:
            body = self.prompter.retry_prompt(failed_task, told, number, budget)
        except Exception as exc:  # an injected (LLM) prompter must never stop a respawn
            log.warning("task %s: retry prompter failed (%s); using the template", task.id, exc)
            body = TemplateRetryPrompter().retry_prompt(failed_task, told, number, budget)
        body += GUARDRAILS if fix is not None else ""
        try:
            prompt_path = self.runner.write_attempt(task, number, body)
        except DiskFull as exc:  # transient: attempt ``after`` stays the last one; a later tick respawns
            if by_human:
                raise  # the human is told at once, in one line; nothing was recorded
            self._wait_for_disk(task.id, "respawn_deferred", exc, attempt=number)
            return False
        except LaunchError as exc:  # e.g. its agent profile is gone from swarm.toml: no retry can start
            if by_human:
                raise
            self._do_Fail(Fail(task.id, after, failure.model_copy(update={
                "kind": FailureKind.launch_failed, "summary": f"could not start attempt {number}: {exc}",
                "evidence": f"attempt {after} ended with {failure.kind.value}: {failure.summary}",
            }), result=result))
            return False
        if by_human:
            self.runner.kill_agent(task)
        head = self.git.head(task.branch)
        if not fired and head and failure.kind in HEAD_BOUND:
            fired = f"{failure.kind.value}:{head}"  # this head was rejected: it can never count as the fix
        new_attempt = Attempt(
            number=number, session=session_for(task.id), prompt_path=str(prompt_path), started_at=self.now,
            start_head=head, progress_at=self.now, runtime=self.runner.runtime_name(task),
            fix=fix[0] if fix is not None else None,
        )
        who = "the human" if by_human else failure.kind.value

        def record(current: Task) -> Task | None:
            if not self._at_attempt(current, after, *statuses):
                return None
            closed = self._closed_attempt(current.attempts[-1], result, failure)
            return current.model_copy(update={
                "attempts": (*current.attempts[:-1], closed, new_attempt), "status": Status.running,
                "fired": (*current.fired, fired) if fired else current.fired, "notes": task.notes,
                "ended_at": None, "reason": f"retrying after {who}: {failure.summary}",
            })

        # a stuck agent killed and restarted is worth telling (once per attempt); other retries are routine
        escalation = stuck_message(task, self.now, failure.evidence) if failure.kind is FailureKind.stuck else None
        if self._update(task.id, record, escalation) is None:
            return False
        self._event(task.id, "respawn", attempt=number, failure=failure.kind.value, summary=failure.summary,
                    by="human" if by_human else "monitor")
        self._launch(task.id, number)
        return True

    def _do_Fail(self, action: Fail) -> None:
        task = self._current(action.task_id)
        if task is None or not self._at_attempt(task, action.attempt, Status.running, Status.checking, Status.ready):
            return
        if action.kill:
            self.runner.kill_agent(task)

        def fail(current: Task) -> Task | None:
            if not self._at_attempt(current, action.attempt, Status.running, Status.checking, Status.ready):
                return None
            closed = self._closed_attempt(current.attempts[-1], action.result, action.failure)
            return current.with_attempt(closed).model_copy(update={
                "status": Status.failed, "ended_at": self.now,
                "reason": f"{action.failure.kind.value}: {action.failure.summary}",
            })

        final = fail(task)
        assert final is not None
        message = needs_help_message(final, self.now)
        if self._update(task.id, fail, message) is not None:
            self._event(task.id, "failed", failure=action.failure.kind.value, summary=action.failure.summary)

    def _fail_now(self, task: Task, kind: FailureKind, summary: str) -> None:
        failure = Failure(kind=kind, summary=summary, at=self.now)
        if task.attempt is None:
            task_with = task.model_copy(update={"status": Status.running, "attempts": (Attempt(
                number=1, session=session_for(task.id), prompt_path="", started_at=self.now),)})

            def promote(current: Task) -> Task | None:
                return task_with if current.status is Status.queued else None

            if self._update(task.id, promote) is None:
                return
            task = task_with
        assert task.attempt is not None
        self._do_Fail(Fail(task.id, task.attempt.number, failure))
