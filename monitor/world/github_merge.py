"""GitHub's side of the merge train: who approved a head as a human, whether the repository runs its own
merge queue, enqueueing there, and merging a pull request at exactly the head CI passed (PyGithub's
``merge(sha=...)``, which GitHub refuses when the head moved)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from github import GithubException
from github.Repository import Repository

from monitor.redact import redact
from monitor.world.forge import ForgeUnavailable, MergeRefused
from monitor.world.github_api import GitHubApi, GraphQLRefused
from monitor.world.github_query import ENQUEUE, MERGE_QUEUE
from monitor.world.github_rollup import ReviewNode, normal_login, review_from_node
from registry.models import Task

QUEUE_TTL = 600.0  # seconds a repository's "has a merge queue" answer is kept


def human_approvals(reviews: Sequence[ReviewNode], head: str, ai_reviewers: Sequence[str]) -> tuple[str, ...]:
    """Logins whose latest opinion is an approval of exactly ``head``, by a human: never a bot (GraphQL type
    Bot or a ``[bot]`` login) and never one of the configured AI reviewers (``[done] reviewers``)."""
    ai = {normal_login(name) for name in ai_reviewers}
    latest: dict[str, ReviewNode] = {}
    for review in sorted(reviews, key=lambda r: r.at):
        latest[normal_login(review.login)] = review
    return tuple(sorted(
        review.login for login, review in latest.items()
        if review.state == "APPROVED" and review.commit == head and not review.bot
        and not review.login.lower().endswith("[bot]") and login not in ai
    ))


def approvals_of(node: Mapping[str, Any] | None, head: str, ai_reviewers: Sequence[str]) -> tuple[str, ...]:
    """``human_approvals`` of a pull request node as the tick's GraphQL read returned it."""
    if node is None or str(node.get("headRefOid") or "") != head:
        return ()
    reviews = [review_from_node(n) for n in ((node.get("latestOpinionatedReviews") or {}).get("nodes") or []) if n]
    return human_approvals(reviews, head, ai_reviewers)


def standing_approvals(node: Mapping[str, Any] | None, head: str, ai_reviewers: Sequence[str]) -> tuple[str, ...]:
    """``human_approvals`` of ``head`` whatever the PR's head is now (the train may have merged the base in
    since): a dismissed approval, or a later request for changes, is no longer among them."""
    if node is None:
        return ()
    reviews = [review_from_node(n) for n in ((node.get("latestOpinionatedReviews") or {}).get("nodes") or []) if n]
    return human_approvals(reviews, head, ai_reviewers)


def _queue_info(api: GitHubApi, base_branch: str, number: int) -> tuple[bool, str, str]:
    data = api.graphql(MERGE_QUEUE, {"owner": api.config.owner, "name": api.config.name, "branch": base_branch,
                                     "number": number})
    repo = data.get("repository") or {}
    pull = repo.get("pullRequest") or {}
    return repo.get("mergeQueue") is not None, str(pull.get("id") or ""), str(pull.get("headRefOid") or "")


class GitHubMerges:
    """The train's writes on GitHub, with the merge-queue answer cached per base branch for QUEUE_TTL."""

    def __init__(self, api: GitHubApi, clock: Any) -> None:
        self.api = api
        self.clock = clock
        self._queues: dict[str, tuple[bool, float]] = {}

    def merge_queue(self, base_branch: str, number: int) -> bool:
        known = self._queues.get(base_branch)
        if known is not None and self.clock() - known[1] < QUEUE_TTL:
            return known[0]
        try:
            enabled, _, _ = _queue_info(self.api, base_branch, number)
        except GraphQLRefused:  # an old GitHub Enterprise without the field: no merge queue
            enabled = False
        self._queues[base_branch] = (enabled, self.clock())
        return enabled

    def enqueue(self, task: Task, head: str) -> None:
        if task.pr is None:
            raise MergeRefused(f"task {task.id} has no pull request to enqueue")
        _, node_id, pr_head = _queue_info(self.api, task.base_branch, task.pr.number)
        if pr_head != head:
            raise MergeRefused(f"the pull request shows {pr_head[:10]}, not {head[:10]}; not enqueued")
        try:
            self.api.graphql(ENQUEUE, {"pr": node_id, "head": head})
        except GraphQLRefused as exc:
            if "already" in str(exc).lower():
                return
            raise MergeRefused(str(exc)) from None

    def merge(self, task: Task, head: str, method: str) -> None:
        if task.pr is None:
            raise MergeRefused(f"task {task.id} has no pull request to merge")
        number = task.pr.number

        def merge(repo: Repository) -> bool:
            pull = repo.get_pull(number)
            return bool(pull.merge(merge_method=method, sha=head,
                                   commit_title=f"{task.title[:200]} (#{number})").merged)

        try:
            merged = self.api.rest("merge pull request", merge)
        except GithubException as exc:
            if exc.status in (405, 409, 422):
                message = exc.data.get("message") if isinstance(exc.data, dict) else str(exc.data)
                raise MergeRefused(f"GitHub refused to merge #{number}: {redact(str(message))[:300]}") from None
            raise ForgeUnavailable(f"merging #{number} failed: {redact(str(exc))[:300]}") from exc
        if not merged:
            raise MergeRefused(f"GitHub did not merge #{number}")
