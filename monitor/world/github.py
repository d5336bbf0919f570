"""The GitHub forge: pull requests, CI, reviews and sync read from GitHub, with one GraphQL query per tick.

A healthy tick costs ⌈open PRs / 50⌉ GraphQL requests of 2 points each (GitHub's budget is 5,000 points an
hour), read at once from the cursors the last tick saw, and nothing else; a review's inline-comment count is
read once, when the review first appears. A tick about a few tasks (an event tick of `swarm serve`) reads only
their pull requests, by number or by head branch, when that takes fewer requests than the pages: 1 request
and 1 point for one task, however many PRs are open. REST (PyGithub) is used only for
what GraphQL cannot give cheaply or at all, and only when something happened: opening a PR, the evidence
of a failure (check output, annotations, the job log, review comments), ``update-branch``, and linking
screenshots. Git itself (fetch, push) talks to the repository's remote, with the token passed through
GIT_ASKPASS, never argv.

The forge's per-tick reads are here; a head's CI verdict and reviews, with the evidence of a failure, are
read by the mixin in ``monitor/world/github_evidence.py``, and its writes (push, open/retarget a PR,
update-branch, reviews, screenshots) are in ``monitor/world/github_writes.py``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from monitor.layout import BRANCH_PREFIX
from monitor.observation import ForgeView
from monitor.world.forge import ForgeUnavailable
from monitor.world.git import Git, GitError
from monitor.world.github_api import GitHubApi, GraphQLRefused, askpass_env
from monitor.world.github_evidence import GitHubEvidence, failing_tail
from monitor.world.github_merge import GitHubMerges, approvals_of, standing_approvals
from monitor.world.github_query import (
    OPEN_PULLS,
    PAGE_SIZE,
    REVIEW_COMMENTS,
    REVIEW_IDS,
    pulls_by_branch,
    pulls_by_number,
)
from monitor.world.github_rollup import normal_login
from monitor.world.github_writes import _SHOTS_RE, GitHubWrites, pr_body, screenshots_section
from monitor.world.jobs import LensJobs
from monitor.world.tmux import Pane
from registry.models import PullRequest, Task

__all__ = ["READERS", "GitHubForge", "failing_tail", "pr_body", "screenshots_section"]

log = logging.getLogger(__name__)
_IMAGE_RE = re.compile(r"!\[[^\]]*\]\([^)]+\)|<img\s", re.IGNORECASE)
READERS = 4
"""GraphQL reads of one tick in flight at once. GitHub's secondary limits allow 100 concurrent requests
per user but advise against bursts; four cut a tick of 20 pages to about 5 round trips."""


class GitHubForge(GitHubEvidence, GitHubWrites):
    supports_pr = True

    def __init__(
        self,
        api: GitHubApi,
        git: Git,
        state_dir: Path,
        wanted_reviewers: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
        jobs: LensJobs | None = None,
    ) -> None:
        self.jobs = jobs  # swarm's AI review lenses, run as local check jobs like on the local forge
        self.api = api
        self.git = git
        self.state_dir = state_dir
        self.wanted = tuple(wanted_reviewers)
        self.clock = clock
        self.remote = api.config.remote
        self._open: dict[str, dict[str, Any]] = {}
        self._closed: dict[int, dict[str, Any]] = {}
        self._fetched = False
        self._problem = ""
        self.merges = GitHubMerges(api, clock)  # the merge train's writes

    # -- reading -------------------------------------------------------------------------------------

    def base_ref(self, base_branch: str) -> str:
        return f"refs/remotes/{self.remote}/{base_branch}"

    def _git_env(self) -> dict[str, str]:
        return askpass_env(self.state_dir, self.api.token())  # an App's token: the current one, per push

    def prefetch(self, tasks: Sequence[Task]) -> None:
        """Fetch the bases, then every open PR of the repository (GraphQL pages of 50, read concurrently),
        the PRs recorded on tasks that are no longer open (merged or closed), and the inline-comment counts
        of reviews not seen before. When reading only these tasks' PRs takes fewer requests than the pages
        (a tick about a few tasks among many open PRs), only they are read: see :meth:`_read_tasks`."""
        self._open, self._closed, self._problem, self._fetched = {}, {}, "", True
        if not tasks:
            self.api.flush_rate()
            return
        bases = sorted({t.base_branch for t in tasks})
        try:
            self.git.fetch(self.remote, [f"+refs/heads/{b}:refs/remotes/{self.remote}/{b}" for b in bases],
                           env=self._git_env())
        except (GitError, ForgeUnavailable) as exc:  # an App token that cannot be minted: the reads say why
            log.warning("could not fetch %s from %s: %s", ", ".join(bases), self.remote, exc)
            if isinstance(exc, GitError) and len(bases) > 1:  # one gone (a stacked PR's merged base): the rest
                for base in bases:
                    with contextlib.suppress(GitError, ForgeUnavailable):
                        self.git.fetch(self.remote, [f"+refs/heads/{base}:refs/remotes/{self.remote}/{base}"],
                                       env=self._git_env())
        try:
            if self._few(tasks):
                self._read_tasks(tasks)
                self._review_details([*self._open.values(), *self._closed.values()])
                return
            for node in self._open_pulls():
                if str(node.get("headRefName", "")).startswith(BRANCH_PREFIX):
                    self._open[node["headRefName"]] = node
            gone = sorted({t.pr.number for t in tasks if t.pr is not None and t.branch not in self._open})
            repo = {"owner": self.api.config.owner, "name": self.api.config.name}
            chunks = [gone[start:start + PAGE_SIZE] for start in range(0, len(gone), PAGE_SIZE)]  # node limit
            for data in _concurrently([partial(self.api.graphql, pulls_by_number(chunk), repo) for chunk in chunks]):
                for node in (data.get("repository") or {}).values():
                    if node:
                        self._closed[int(node["number"])] = node
            self._review_details([*self._open.values(), *self._closed.values()])
        except ForgeUnavailable as exc:
            self._problem = str(exc)
            raise
        finally:
            self.api.flush_rate()  # the budget GitHub reported, for `swarm status`: one write per tick

    def _few(self, tasks: Sequence[Task]) -> bool:
        """Whether reading only these tasks' PRs (by number, or by head branch for a task without one) takes
        fewer requests than the pages of every open PR did on the last full read. Both give the same view
        of these tasks; the pages are kept whenever they cost no more (a full reconcile of a fleet whose
        PRs are most of the open ones reads exactly as before), and while the open count is unknown."""
        known = self.api.state.open_pulls
        if known is None:
            return False
        numbered = len({t.pr.number for t in tasks if t.pr is not None})
        branches = len({t.branch for t in tasks if t.pr is None})
        return _batches(numbered) + _batches(branches) < max(1, _batches(known))

    def _read_tasks(self, tasks: Sequence[Task]) -> None:
        """These tasks' PRs only: recorded ones by number (:func:`pulls_by_number`, 50 a request, 1 point
        for up to 33), the others by head branch (:func:`pulls_by_branch`, the newest open PR of the branch,
        as the pages would find it). A recorded PR that is no longer open is looked up by branch too, since
        the pages would show an open PR of the same branch before it; that costs one request, once."""
        numbers = sorted({t.pr.number for t in tasks if t.pr is not None})
        branches = sorted({t.branch for t in tasks if t.pr is None})
        self._read_numbers_and_branches(numbers, branches)
        again = sorted({t.branch for t in tasks if t.pr is not None and t.branch not in self._open
                        and t.pr.number in self._closed})
        if again:
            self._read_numbers_and_branches([], again)

    def _read_numbers_and_branches(self, numbers: Sequence[int], branches: Sequence[str]) -> None:
        repo = {"owner": self.api.config.owner, "name": self.api.config.name}
        calls = [partial(self.api.graphql, pulls_by_number(numbers[i:i + PAGE_SIZE]), repo)
                 for i in range(0, len(numbers), PAGE_SIZE)]
        for start in range(0, len(branches), PAGE_SIZE):
            chunk = branches[start:start + PAGE_SIZE]
            calls.append(partial(self.api.graphql, pulls_by_branch(len(chunk)),
                                 {**repo, **{f"b{i}": b for i, b in enumerate(chunk)}}))
        for data in _concurrently(calls):
            for alias, value in (data.get("repository") or {}).items():
                if not value:
                    continue
                if alias.startswith("b"):  # a connection: the newest open PR of the branch, if any
                    for node in value.get("nodes") or []:
                        if node:
                            self._open[str(node["headRefName"])] = node
                    continue
                node = value
                if node.get("state") == "OPEN" and str(node.get("headRefName", "")).startswith(BRANCH_PREFIX):
                    self._open[str(node["headRefName"])] = node
                else:
                    self._closed[int(node["number"])] = node

    def _open_pulls(self) -> list[dict[str, Any]]:
        """Every open pull request, in creation order. Pages are chained by opaque cursors (GitHub's
        ``pullRequests`` has no offset and no number filter), so the cursors at which the last tick's pages
        began are kept in the state file and all pages are asked for at once; the last page is followed
        while it says there is more. Newer PRs sort last and a cursor names a position, so pages read this
        way may overlap (PRs closed since) but leave no gap; should the pages hold fewer PRs than GitHub's
        ``totalCount``, they are read again one after another."""
        variables: dict[str, Any] = {"owner": self.api.config.owner, "name": self.api.config.name}
        starts: list[str | None] = [None, *self.api.state.page_cursors]
        try:
            pages = list(_concurrently([partial(self.api.graphql, OPEN_PULLS, {**variables, "cursor": c})
                                        for c in starts]))
        except GraphQLRefused as exc:
            if len(starts) == 1 or self.api.state.blocked_until > self.clock():
                raise
            log.warning("pages of open pull requests refused from the last tick's cursors (%s): reading them "
                        "in order", exc)
            self.api.state.set_page_cursors([])
            pages = [self.api.graphql(OPEN_PULLS, {**variables, "cursor": None})]
        while True:
            last = _pulls(pages[-1])
            if not (last.get("pageInfo") or {}).get("hasNextPage"):
                break
            pages.append(self.api.graphql(OPEN_PULLS, {**variables, "cursor": last["pageInfo"].get("endCursor")}))
        nodes, cursors = _ordered(pages)
        totals = [int(_pulls(p).get("totalCount") or 0) for p in pages]
        if len(pages) > 1 and len(nodes) < min(totals):
            log.warning("pages of open pull requests held %d of %d: reading them again in order",
                        len(nodes), min(totals))
            pages = [self.api.graphql(OPEN_PULLS, {**variables, "cursor": None})]
            while (_pulls(pages[-1]).get("pageInfo") or {}).get("hasNextPage"):
                cursor = _pulls(pages[-1])["pageInfo"].get("endCursor")
                pages.append(self.api.graphql(OPEN_PULLS, {**variables, "cursor": cursor}))
            nodes, cursors = _ordered(pages)
        self.api.state.set_open_pulls(len(nodes))
        starts_next = cursors[PAGE_SIZE - 1:-1:PAGE_SIZE]
        self.api.state.set_page_cursors(starts_next if all(starts_next) else [])
        return nodes

    def _review_details(self, pulls: Sequence[dict[str, Any]]) -> None:
        """Give each review node its inline-comment count (``comments.totalCount``, as the rules read it).

        The count decides a bot's COMMENTED review and whether a change request's inline comments are
        fetched, so it is needed only for those two states, on the PR's head, from a counted reviewer. A
        submitted review's comments stay as they are: each review is asked about once (100 per call, 1
        point) and the answer kept in the state file."""
        known = self.api.state.review_comments()
        needed: list[dict[str, Any]] = []
        for pull in pulls:
            head = str(pull.get("headRefOid") or "")
            for field in ("latestOpinionatedReviews", "latestReviews"):
                for review in ((pull.get(field) or {}).get("nodes") or []):
                    if not review or not review.get("id"):
                        continue
                    login = normal_login(str((review.get("author") or {}).get("login") or "ghost"))
                    if (review.get("state") in ("COMMENTED", "CHANGES_REQUESTED")
                            and (review.get("commit") or {}).get("oid") == head
                            and (not self.wanted or login in {normal_login(w) for w in self.wanted})):
                        needed.append(review)
        missing = sorted({str(r["id"]) for r in needed} - set(known))
        calls = [partial(self.api.graphql, REVIEW_COMMENTS, {"ids": missing[start:start + REVIEW_IDS]})
                 for start in range(0, len(missing), REVIEW_IDS)]
        found: dict[str, int] = {}
        for data in _concurrently(calls):
            for node in data.get("nodes") or []:
                if node and node.get("id"):
                    found[str(node["id"])] = int((node.get("comments") or {}).get("totalCount") or 0)
        self.api.state.remember_review_comments(found)
        known |= found
        for review in needed:
            review["comments"] = {"totalCount": known.get(str(review["id"]), 0)}

    def _node(self, task: Task) -> dict[str, Any] | None:
        if not self._fetched:
            self.prefetch([task])
        if self._problem:
            raise ForgeUnavailable(self._problem)
        node = self._open.get(task.branch)
        if node is None and task.pr is not None:
            node = self._closed.get(task.pr.number)
        return node

    def view(self, task: Task, head: str, panes: Mapping[str, Pane] | None) -> ForgeView:
        node = self._node(task)
        if node is None:
            return ForgeView(supports_pr=True)
        pr = PullRequest(number=int(node["number"]), url=str(node["url"]))
        if node.get("state") == "MERGED" or node.get("merged"):
            return ForgeView(supports_pr=True, pr=pr, merged=True)
        if node.get("state") == "CLOSED":
            return ForgeView(supports_pr=True, pr=pr, closed=True)
        body = str(node.get("body") or "")
        shots = _SHOTS_RE.search(body)
        view = ForgeView(
            supports_pr=True, pr=pr, pr_head=str(node.get("headRefOid") or ""), sync=_sync(node),
            screenshots_at=shots.group(1) if shots else "",
            body_has_image=bool(_IMAGE_RE.search(_SHOTS_RE.sub("", body))),
        )
        if view.pr_head != head:
            return replace(view, ci="pending")  # the PR shows another head: it is published first
        ci, evidence = self._ci(task, head, node)
        view = replace(view, ci=ci, ci_evidence=evidence, reviews=self._reviews(task, head, node, pr.number))
        if self.jobs is not None and ci in ("pass", "none"):
            lens_reviews, not_started, to_post = self.jobs.view(task, head, panes)
            view = replace(view, reviews=(*view.reviews, *lens_reviews), reviews_not_started=not_started,
                           reviews_to_post=to_post)
        return view

    def approvals(self, task: Task, head: str) -> tuple[str, ...]:
        return approvals_of(self._node(task), head, self.wanted)

    def still_approved(self, task: Task, head: str) -> bool:
        return bool(standing_approvals(self._node(task), head, self.wanted))


def _batches(count: int) -> int:
    return -(-count // PAGE_SIZE)


def _concurrently(calls: Sequence[Callable[[], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The answers of ``calls`` in order, at most :data:`READERS` in flight; the first failure is raised
    once every call has finished (none is left running behind the tick)."""
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(READERS, len(calls)), thread_name_prefix="swarm-github") as pool:
        futures = [pool.submit(call) for call in calls]
    return [future.result() for future in futures]


def _pulls(data: Mapping[str, Any]) -> dict[str, Any]:
    return ((data.get("repository") or {}).get("pullRequests")) or {}


def _ordered(pages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The distinct pull requests of pages read in order, with the cursor of each (pages may overlap)."""
    seen: set[int] = set()
    nodes: list[dict[str, Any]] = []
    cursors: list[str] = []
    for page in pages:
        pulls = _pulls(page)
        edges = pulls.get("edges") or []
        for index, node in enumerate(pulls.get("nodes") or []):
            if not node or int(node["number"]) in seen:
                continue
            seen.add(int(node["number"]))
            nodes.append(node)
            cursor = (edges[index] or {}).get("cursor") if index < len(edges) else None
            cursors.append(str(cursor or ""))
    return nodes, cursors


def _sync(node: Mapping[str, Any]) -> str:
    mergeable = node.get("mergeable")
    status = node.get("mergeStateStatus")
    if mergeable == "CONFLICTING" or status == "DIRTY":
        return "conflict"
    if mergeable == "UNKNOWN" or mergeable is None or status == "UNKNOWN":
        return "unknown"
    if status == "BEHIND":
        return "behind"
    return ""
