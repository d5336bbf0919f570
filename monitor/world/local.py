"""A forge with no server: CI is a local command run in the worktree, reviews are local reviewer commands.

Both run as jobs in tmux through the same wrapper as agents (``agent-run``), once per head SHA, and their
``result.json`` is the verdict. Nothing here blocks a tick while a test suite runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from monitor.layout import Layout
from monitor.observation import ForgeView, Review
from monitor.runner import Runner
from monitor.world.forge import MergeRefused
from monitor.world.git import Git, GitError
from monitor.world.jobs import fill, job_name, job_state
from monitor.world.tmux import Pane
from registry.models import PullRequest, Task


class LocalForge:
    supports_pr = False

    def __init__(
        self,
        layout: Layout,
        runner: Runner,
        git: Git,
        *,
        ci: str,
        ci_timeout: float,
        reviewers: Mapping[str, str],
        wanted_reviewers: Sequence[str],
    ) -> None:
        self.layout = layout
        self.runner = runner
        self.git = git
        self.ci = ci.strip()
        self.ci_timeout = ci_timeout
        self.reviewers = dict(reviewers)
        # reviewers that count: the configured ones that have a local command (all of them when none named)
        self.active_reviewers = [r for r in wanted_reviewers if r in self.reviewers] or (
            list(self.reviewers) if not wanted_reviewers else []
        )

    def base_ref(self, base_branch: str) -> str:
        return base_branch

    def prefetch(self, tasks: Sequence[Task]) -> None:
        return None

    def _job_state(self, task: Task, head: str, job: str, panes: Mapping[str, Pane] | None) -> tuple[str, str]:
        return job_state(self.layout, task.id, head, job, panes)

    def view(self, task: Task, head: str, panes: Mapping[str, Pane] | None) -> ForgeView:
        ci, ci_evidence = "none", ""
        if self.ci:
            ci, ci_output = self._job_state(task, head, "ci", panes)
            if ci == "fail":
                ci_evidence = f"$ {self.ci}\n{ci_output}"
        reviews: list[Review] = []
        not_started: list[str] = []
        if ci in ("none", "pass"):
            for name in self.active_reviewers:
                state, output = self._job_state(task, head, job_name(name), panes)
                if state == "pass":
                    reviews.append(Review(name, "APPROVED", output))
                elif state == "fail":
                    reviews.append(Review(name, "CHANGES_REQUESTED", output))
                elif state == "not_started":
                    not_started.append(name)
        return ForgeView(
            supports_pr=False, ci=ci, ci_evidence=ci_evidence, reviews=tuple(reviews),
            reviews_not_started=tuple(not_started),
        )

    def open_pr(self, task: Task, head: str) -> PullRequest:
        raise NotImplementedError("the local forge has no pull requests")

    def start_checks(self, task: Task, head: str, jobs: Sequence[str]) -> None:
        for job in jobs:
            if job == "ci":
                self.runner.launch_job(task, head, "ci", self.ci, self.ci_timeout)
            elif job in self.reviewers:
                self.runner.launch_job(task, head, job_name(job), fill(self.reviewers[job], task.id, head),
                                       self.ci_timeout)

    def update_branch(self, task: Task) -> bool:
        return self.git.merge_base_into(Path(task.worktree), task.base_branch)

    def approvals(self, task: Task, head: str) -> tuple[str, ...]:
        return ()

    def still_approved(self, task: Task, head: str) -> bool:
        return True

    def merge_queue(self, base_branch: str) -> bool:
        return False

    def enqueue(self, task: Task, head: str) -> None:
        raise MergeRefused("the local forge has no merge queue")

    def merge(self, task: Task, head: str, method: str) -> None:
        """A real git merge into the local base branch (the branch is up to date with it: the train made it so)."""
        from monitor.merge.gitops import land_locally

        if self.git.head(task.branch) != head:
            raise MergeRefused(f"{task.branch} moved from {head[:10]}; not merging a head CI did not pass")
        try:
            land_locally(self.git, task.base_branch, head, method, f"{task.title} (swarm task {task.id})")
        except GitError as exc:
            raise MergeRefused(str(exc)) from None

    def publish(self, task: Task, head: str) -> None:
        return None

    def restacked(self, task: Task, head: str, expected: str, base_branch: str) -> bool:
        return True  # local branches only: moving the task's branch is all there is

    def link_screenshots(self, task: Task, head: str, paths: Sequence[str]) -> None:
        return None

    def post_reviews(self, task: Task, head: str, lenses: Sequence[str]) -> None:
        return None

