"""The actions of the checking phase: pull request, checks, branch updates, and the ends of a task
(ready, merged, closed, with its cleanup). Part of ``Actor``; split out to keep each module one idea."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from monitor.actions import (
    AskHuman,
    BackToChecking,
    Fail,
    LinkScreenshots,
    MarkClosed,
    MarkMerged,
    MarkReady,
    OpenPR,
    PostReviews,
    PushBranch,
    StartChecks,
    UpdateBranch,
)
from monitor.layout import job_session_for
from monitor.messages import ready_message, waiting_message
from monitor.redact import redact
from monitor.world.git import DirtyWorktree, GitError
from registry.models import Failure, FailureKind, OutboxMessage, Status, Task

if TYPE_CHECKING:
    from datetime import datetime

    from monitor.policy import Policy
    from monitor.runner import Runner
    from monitor.world.forge import Forge
    from monitor.world.git import Git
    from monitor.world.tmux import Tmux

log = logging.getLogger(__name__)


class ActorCore(Protocol):
    """What these actions use of ``monitor.act.Actor``."""

    forge: Forge
    git: Git
    now: datetime
    policy: Policy
    runner: Runner
    tmux: Tmux

    def _current(self, task_id: str) -> Task | None: ...
    def _event(self, task_id: str, event: str, **data: object) -> None: ...
    def _update(
        self, task_id: str, fn: Callable[[Task], Task | None], message: OutboxMessage | None = None
    ) -> Task | None: ...
    def _do_Fail(self, action: Fail) -> None: ...
    def respawn(self, task_id: str, after: int, failure: Failure) -> bool: ...
    def clean_up(self, task: Task) -> None: ...


class CheckingActions:
    def _do_OpenPR(self: ActorCore, action: OpenPR) -> None:
        """Open the PR, or adopt the one the agent opened: either way it is recorded on the task."""
        task = self._current(action.task_id)
        if task is None:
            return
        pr = self.forge.open_pr(task, action.head)
        if self._update(task.id, lambda t: t.model_copy(update={"pr": pr}) if t.pr != pr else None) is not None:
            self._event(task.id, "pr_opened", number=pr.number, url=pr.url)

    def _do_PushBranch(self: ActorCore, action: PushBranch) -> None:
        task = self._current(action.task_id)
        if task is None:
            return
        self.forge.publish(task, action.head)
        self._event(task.id, "branch_published", head=action.head[:12])

    def _do_LinkScreenshots(self: ActorCore, action: LinkScreenshots) -> None:
        task = self._current(action.task_id)
        if task is None:
            return
        self.forge.link_screenshots(task, action.head, action.paths)
        self._event(task.id, "screenshots_linked", head=action.head[:12], count=len(action.paths))

    def _do_PostReviews(self: ActorCore, action: PostReviews) -> None:
        task = self._current(action.task_id)
        if task is None:
            return
        self.forge.post_reviews(task, action.head, action.lenses)
        self._event(task.id, "reviews_posted", head=action.head[:12], lenses=",".join(action.lenses))

    def _do_AskHuman(self: ActorCore, action: AskHuman) -> None:
        def mark(task: Task) -> Task | None:
            return None if action.key in task.fired else task.model_copy(update={"fired": (*task.fired, action.key)})

        task = self._current(action.task_id)
        if task is None or action.key in task.fired:
            return
        message = waiting_message(task, action.key, action.summary, action.evidence, self.now)
        if self._update(task.id, mark, message) is not None:
            self._event(task.id, "waiting_for_human", why=action.summary)

    def _do_StartChecks(self: ActorCore, action: StartChecks) -> None:
        task = self._current(action.task_id)
        if task is None:
            return
        self.forge.start_checks(task, action.head, action.jobs)
        self._event(task.id, "checks_started", head=action.head[:12], jobs=",".join(action.jobs))

    def _do_UpdateBranch(self: ActorCore, action: UpdateBranch) -> None:
        task = self._current(action.task_id)
        if task is None or task.attempt is None:
            return
        try:
            ok = self.forge.update_branch(task)
        except GitError as exc:
            # Not a conflict (that is detected and retried as one): hand the rebase to the agent.
            failure = Failure(kind=FailureKind.behind, at=self.now, evidence=redact(str(exc)),
                              summary=f"the branch is behind {task.base_branch} and could not be updated automatically")
            if task.attempt.number >= self.policy.max_attempts:
                self._do_Fail(Fail(task.id, task.attempt.number, failure))
            else:
                self.respawn(task.id, task.attempt.number, failure)
            return
        self._event(task.id, "branch_updated" if ok else "branch_update_conflict", base=task.base_branch)

    def _do_MarkReady(self: ActorCore, action: MarkReady) -> None:
        def ready(task: Task) -> Task | None:
            if task.status is not Status.checking:
                return None
            return task.model_copy(update={"status": Status.ready, "reason": "ready for review"})

        task = self._current(action.task_id)
        if task is None or task.status is not Status.checking:
            return
        message = ready_message(ready(task) or task, action.head, self.now)
        if self._update(action.task_id, ready, message) is not None:
            self._event(action.task_id, "ready", head=action.head[:12])

    def _do_BackToChecking(self: ActorCore, action: BackToChecking) -> None:
        def back(task: Task) -> Task | None:
            return task.model_copy(update={"status": Status.checking}) if task.status is Status.ready else None

        if self._update(action.task_id, back) is not None:
            self._event(action.task_id, "rechecking")

    def _do_MarkMerged(self: ActorCore, action: MarkMerged) -> None:
        def merged(task: Task) -> Task | None:
            if task.status not in (Status.checking, Status.ready):
                return None
            return task.model_copy(update={"status": Status.merged, "ended_at": self.now, "reason": "merged"})

        task = self._update(action.task_id, merged)
        if task is not None:
            self._event(task.id, "merged")
            self.clean_up(task)

    def _do_MarkClosed(self: ActorCore, action: MarkClosed) -> None:
        def closed(task: Task) -> Task | None:
            if task.status not in (Status.checking, Status.ready):
                return None
            return task.model_copy(update={"status": Status.cancelled, "ended_at": self.now,
                                           "reason": "pull request closed"})

        task = self._update(action.task_id, closed)
        if task is not None:
            self._event(task.id, "cancelled", by="pull request closed")

    def clean_up(self: ActorCore, task: Task) -> None:
        """Remove a finished task's sessions and worktree (never anything outside the worktree root, and
        never a worktree holding uncommitted or untracked work: that one stays, with an event saying so,
        for `swarm cleanup` to save to a ref and remove)."""
        self.runner.kill_agent(task)  # its tmux session or container
        prefix = job_session_for(task.id, "")
        for session in self.tmux.panes() or {}:
            if session.startswith(prefix):
                self.tmux.kill(session)
        worktree = Path(task.worktree)
        if worktree.exists():
            try:
                self.git.remove_worktree(worktree, self.runner.layout.worktree_root)
                self._event(task.id, "worktree_removed", path=str(worktree))
            except DirtyWorktree as exc:
                log.warning("task %s: worktree kept, it holds uncommitted work: %s", task.id, exc)
                self._event(task.id, "worktree_kept", path=str(worktree), reason=str(exc),
                            hint="`swarm cleanup` saves the files to a ref, then removes it")
            except GitError as exc:
                log.warning("task %s: worktree kept: %s", task.id, exc)
