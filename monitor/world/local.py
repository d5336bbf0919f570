"""A forge with no server: CI is a local command run in the worktree, reviews are local reviewer commands.

Both run as jobs in tmux through the same wrapper as agents (``agent-run``), once per head SHA, and their
``result.json`` is the verdict. Nothing here blocks a tick while a test suite runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from monitor.agent_run import LOG, RESULT
from monitor.files import read_json, read_tail
from monitor.layout import Layout, job_session_for
from monitor.observation import ForgeView, Review
from monitor.runner import Runner
from monitor.world.git import Git
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
        """("pass" | "fail" | "pending" | "not_started", output tail) of one job at ``head``."""
        job_dir = self.layout.job_dir(task.id, head, job)
        result = read_json(job_dir / RESULT)
        if result is not None:
            output = read_tail(job_dir / LOG, lines=80)
            if result.get("error"):
                output = f"{output}\n{result['error']}"
            return ("pass" if result.get("exit_code") == 0 else "fail"), output
        pane = (panes or {}).get(job_session_for(task.id, job))
        if (job_dir / "run.json").exists() and pane is not None and not pane.dead:
            return "pending", ""
        if panes is None and (job_dir / "run.json").exists():
            return "pending", ""  # tmux unreachable: do not start it twice
        return "not_started", ""

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
                state, output = self._job_state(task, head, f"review-{_slug(name)}", panes)
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
                self.runner.launch_job(task, head, f"review-{_slug(job)}", self.reviewers[job], self.ci_timeout)

    def update_branch(self, task: Task) -> bool:
        return self.git.merge_base_into(Path(task.worktree), task.base_branch)

    def publish(self, task: Task, head: str) -> None:
        return None

    def link_screenshots(self, task: Task, head: str, paths: Sequence[str]) -> None:
        return None


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:30] or "reviewer"

