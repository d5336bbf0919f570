"""The Forge protocol: where pull requests, CI and reviews live (GitHub, or the local forge)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from monitor.observation import ForgeView
from monitor.world.tmux import Pane
from registry.models import PullRequest, Task


class ForgeUnavailable(Exception):
    """The forge cannot be asked right now (rate limit, outage): affected tasks are 'unknown', not failed."""


class Forge(Protocol):
    supports_pr: bool

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
