"""The evidence the GitHub forge reads when something failed: the CI verdict of a head (GitHub's check
rollup, a grace period for checks to register, checks waiting for a human), the failing checks' output,
annotations and job log, and the counted reviews with a change request's inline comments.

A mixin of :class:`monitor.world.github.GitHubForge`, kept apart from its per-tick GraphQL reads so that
each module stays small; the REST calls here (PyGithub) are made only for a head that failed, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from github import GithubException
from github.Repository import Repository

from monitor.observation import Review
from monitor.redact import redact
from monitor.world.forge import ForgeUnavailable
from monitor.world.github_api import GitHubApi
from monitor.world.github_rollup import (
    Check,
    ReviewNode,
    Rollup,
    check_from_context,
    review_from_node,
    rollup,
    verdicts,
)
from monitor.world.proc import tail
from registry.models import Task

EVIDENCE_CHECKS = 3  # failing checks whose details are fetched
LOG_LINES = 60


class GitHubEvidence:
    """CI and reviews of a PR node, for :class:`monitor.world.github.GitHubForge` (which provides the state)."""

    api: GitHubApi
    clock: Callable[[], float]
    wanted: tuple[str, ...]

    def _ci(self, task: Task, head: str, node: Mapping[str, Any]) -> tuple[str, str]:
        roll = node.get("statusCheckRollup") or {}
        contexts = roll.get("contexts") or {}
        checks = [c for c in (check_from_context(n) for n in contexts.get("nodes") or [] if n) if c]
        result = rollup(checks)
        if (contexts.get("pageInfo") or {}).get("hasNextPage"):
            # More than a page of checks: GitHub's own rollup state covers the ones not read.
            github_state = str(roll.get("state") or "")
            if github_state in ("FAILURE", "ERROR") and result.state != "fail":
                result = Rollup("fail", result.checks)
            elif github_state in ("PENDING", "EXPECTED") and result.state == "pass":
                result = Rollup("pending", result.checks)
        if result.state == "none":
            first = self.api.state.first_seen(head)  # before reading the clock: never a negative wait
            waited = self.clock() - first
            if waited < self.api.config.ci_grace:
                return "pending", ""  # checks take a few seconds to register after a push
            return "none", ""
        if result.state == "action_required":
            waiting = result.named("action_required")
            stale = ", ".join(c.name for c in waiting if c.conclusion == "STALE")
            asked = ", ".join(c.name for c in waiting if c.conclusion != "STALE")
            if not asked:
                return "action_required", f"waiting for a human on GitHub (stale checks, re-run them): {stale}"
            also = f"; stale checks to re-run: {stale}" if stale else ""
            return "action_required", f"waiting for a human on GitHub (action required): {asked}{also}"
        if result.state != "fail":
            return result.state, ""
        if f"ci_failed:{head}" in task.fired:
            return "fail", ""  # this head was already retried: no evidence is needed to escalate
        return "fail", self._ci_evidence(result.named("fail"))

    def _ci_evidence(self, failing: Sequence[Check]) -> str:
        """Names, outputs, annotations (path:line: message) and the job log's tail of the failing checks."""
        parts: list[str] = []
        for check in failing[:EVIDENCE_CHECKS]:
            lines = [f"## {check.name}: {check.conclusion.lower()}"]
            if check.kind == "status":
                lines += [s for s in (check.description, check.url) if s]
                parts.append("\n".join(lines))
                continue
            try:
                lines += self.api.rest("check run details", partial(_check_run_details, check_id=check.id))
                log_text = self.api.job_log(check.id)
            except (GithubException, ForgeUnavailable) as exc:
                lines.append(f"(details unavailable: {exc})")
                log_text = ""
            if log_text:
                lines.append("log (tail around the failure):\n" + failing_tail(log_text))
            parts.append("\n".join(lines))
        if len(failing) > EVIDENCE_CHECKS:
            parts.append("also failing: " + ", ".join(c.name for c in failing[EVIDENCE_CHECKS:]))
        return redact("\n\n".join(parts))

    def _reviews(self, task: Task, head: str, node: Mapping[str, Any], number: int) -> tuple[Review, ...]:
        def listed(field: str) -> list[ReviewNode]:
            return [review_from_node(n) for n in ((node.get(field) or {}).get("nodes") or []) if n]

        counted = verdicts(listed("latestOpinionatedReviews"), listed("latestReviews"), head, self.wanted)
        if f"changes_requested:{head}" in task.fired:
            return tuple(review for review, _ in counted)  # already retried once for this head
        reviews = []
        for review, source in counted:
            if review.state == "CHANGES_REQUESTED" and source.comments and source.id.isdigit():
                try:
                    comments = self.api.rest(
                        "review comments", partial(_review_comments, number=number, review_id=int(source.id)))
                except (GithubException, ForgeUnavailable) as exc:
                    comments = [f"(inline comments unavailable: {exc})"]
                if comments:
                    review = Review(review.reviewer, review.state,
                                    f"{review.body}\n\ninline comments:\n" + "\n".join(comments))
            reviews.append(review)
        return tuple(reviews)


def _check_run_details(repo: Repository, check_id: int) -> list[str]:
    run = repo.get_check_run(check_id)
    lines: list[str] = []
    output = run.output
    for text in (output.title, output.summary, output.text):
        if text:
            lines.append(tail(str(text), lines=40, chars=4000))
    annotations = [
        f"{a.path}:{a.start_line}: {a.annotation_level}: {a.message}"
        for a in list(run.get_annotations())[:30]
    ]
    if annotations:
        lines.append("annotations:\n" + "\n".join(annotations))
    return lines


def _review_comments(repo: Repository, number: int, review_id: int) -> list[str]:
    pull = repo.get_pull(number)
    comments = list(pull.get_single_review_comments(review_id))[:40]
    return [f"{c.path}:{c.line or c.original_line}: {c.body}" for c in comments]


def failing_tail(log_text: str, lines: int = LOG_LINES) -> str:
    """The part of an Actions log that explains the failure: the lines before the first ``##[error]``
    (the failing step's output), else the end of the log. Timestamps are dropped."""
    rows = [re.sub(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ", "", row) for row in log_text.splitlines()]
    for index, row in enumerate(rows):
        if "##[error]" in row:
            return "\n".join(rows[max(0, index - lines + 5): index + 5])
    return "\n".join(rows[-lines:])
