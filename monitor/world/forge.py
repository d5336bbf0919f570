"""The Forge protocol: where pull requests, CI and reviews live (GitHub, or the local forge)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from monitor.observation import ForgeView
from monitor.world.tmux import Pane
from registry.models import PullRequest, Task


class ForgeUnavailable(Exception):
    """The forge cannot be asked right now (rate limit, outage): affected tasks are 'unknown', not failed."""


class MergeRefused(Exception):
    """The forge refused to merge (the head moved, a conflict, a rule of the repository); one line."""


class Forge(Protocol):
    supports_pr: bool

    def base_ref(self, base_branch: str) -> str:
        """The ref the base branch is compared with: the local branch, or the remote's copy of it."""
        ...

    def prefetch(self, tasks: Sequence[Task]) -> None:
        """One batched read for all tasks of this tick (a no-op where reads are cheap)."""
        ...

    def view(self, task: Task, head: str, panes: Mapping[str, Pane] | None) -> ForgeView:
        """The definition-of-done items at ``head``; read-only."""
        ...

    def open_pr(self, task: Task, head: str) -> PullRequest:
        """Push the branch and open (or adopt) its pull request; safe to repeat."""
        ...

    def start_checks(self, task: Task, head: str, jobs: Sequence[str]) -> None:
        """Start the checks this forge runs itself (local CI, local reviewers) at ``head``."""
        ...

    def update_branch(self, task: Task) -> bool:
        """Bring the branch up to date with its base without an agent; False on conflict."""
        ...

    def restacked(self, task: Task, head: str, expected: str, base_branch: str) -> bool:
        """Publish a branch the monitor rewrote (a restack, monitor/merge/restack.py): push ``head`` over
        ``expected`` with a lease, and point the PR at ``base_branch``. False: the remote moved; try later."""
        ...

    def approvals(self, task: Task, head: str) -> tuple[str, ...]:
        """Who approved ``head`` of the task's PR as a human (no bot, no configured AI reviewer): the merge
        train's approval; () where there are no PRs (the local forge: `swarm merge` is the approval)."""
        ...

    def still_approved(self, task: Task, head: str) -> bool:
        """Whether a human's approval of ``head`` still stands on the PR (not dismissed, not followed by a
        request for changes), also after the train moved the PR's head on; True where there are no PRs."""
        ...

    def merge_queue(self, base_branch: str) -> bool:
        """Whether the repository runs its own merge queue on ``base_branch`` (then the train enqueues)."""
        ...

    def enqueue(self, task: Task, head: str) -> None:
        """Hand the PR at ``head`` to the repository's merge queue; MergeRefused when it will not take it."""
        ...

    def merge(self, task: Task, head: str, method: str) -> None:
        """Merge exactly ``head`` into the base with ``method`` ("merge" | "squash" | "rebase");
        MergeRefused when the head moved or the forge will not merge it."""
        ...

    def publish(self, task: Task, head: str) -> None:
        """Make the PR show ``head`` (push it, or take what the forge added); a no-op without PRs."""
        ...

    def link_screenshots(self, task: Task, head: str, paths: Sequence[str]) -> None:
        """Show the screenshots committed at ``head`` in the PR; a no-op without PRs."""
        ...

    def post_reviews(self, task: Task, head: str, lenses: Sequence[str]) -> None:
        """Post swarm's AI reviews on the PR; a no-op without PRs (the verdicts are kept locally)."""
        ...
