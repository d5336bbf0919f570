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

from github import GithubException
from github.Repository import Repository

from monitor.layout import BRANCH_PREFIX
from monitor.observation import ForgeView, Review
from monitor.redact import redact
from monitor.world.forge import ForgeUnavailable
from monitor.world.git import Git, GitError
from monitor.world.github_api import GitHubApi, GraphQLRefused, askpass_env
from monitor.world.github_merge import GitHubMerges, approvals_of
from monitor.world.github_query import (
    OPEN_PULLS,
    PAGE_SIZE,
    REVIEW_COMMENTS,
    REVIEW_IDS,
    pulls_by_branch,
    pulls_by_number,
)
from monitor.world.github_rollup import (
    Check,
    ReviewNode,
    Rollup,
    check_from_context,
    normal_login,
    review_from_node,
    rollup,
    verdicts,
)
from monitor.world.jobs import LensJobs
from monitor.world.proc import tail
from monitor.world.tmux import Pane
from registry.models import PullRequest, Task

log = logging.getLogger(__name__)
TASK_MARKER = "<!-- swarm-task: {id} -->"
SHOTS_BEGIN = "<!-- swarm-screenshots {sha} -->"
SHOTS_END = "<!-- /swarm-screenshots -->"
_SHOTS_RE = re.compile(r"<!-- swarm-screenshots ([0-9a-f]{7,40}) -->.*?<!-- /swarm-screenshots -->", re.DOTALL)
_IMAGE_RE = re.compile(r"!\[[^\]]*\]\([^)]+\)|<img\s", re.IGNORECASE)
EVIDENCE_CHECKS = 3  # failing checks whose details are fetched
READERS = 4
"""GraphQL reads of one tick in flight at once. GitHub's secondary limits allow 100 concurrent requests
per user but advise against bursts; four cut a tick of 20 pages to about 5 round trips."""
LOG_LINES = 60


def pr_body(task: Task) -> str:
    """The body of a PR the monitor opens: what the task is for, how it is judged, and a hidden marker."""
    summary = task.prompt.strip().split("\n\n", 1)[0].strip()
    if len(summary) > 1200:
        summary = summary[:1200].rstrip() + " …"
    parts = [f"## Summary\n\n{summary}"]
    if task.acceptance:
        parts.append("## Acceptance criteria\n\n" + "\n".join(f"- [ ] {item}" for item in task.acceptance))
    if task.links:
        parts.append("## Links\n\n" + "\n".join(f"- {link}" for link in task.links))
    if task.source_issue is not None:  # GitHub closes the issue when this PR merges
        parts.append(f"Fixes #{task.source_issue}")
    parts.append(f"Opened by swarm for task `{task.id}` (attempt {task.attempt.number if task.attempt else 1}).")
    parts.append(TASK_MARKER.format(id=task.id))
    return redact("\n\n".join(parts))


def screenshots_section(repo_html: str, sha: str, paths: Sequence[str]) -> str:
    images = "\n".join(f"![{Path(p).name}]({repo_html}/blob/{sha}/{p}?raw=true)" for p in paths)
    return f"{SHOTS_BEGIN.format(sha=sha)}\n## Screenshots\n\n{images}\n{SHOTS_END}"


class GitHubForge:
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

    # -- writing -------------------------------------------------------------------------------------

    def _remote_head(self, branch: str) -> str | None:
        tracking = f"refs/remotes/{self.remote}/{branch}"
        try:
            self.git.fetch(self.remote, [f"+refs/heads/{branch}:{tracking}"], env=self._git_env())
        except GitError as exc:
            if "couldn't find remote ref" not in str(exc).lower():
                raise
            return None
        return self.git.head(tracking)

    def publish(self, task: Task, head: str) -> None:
        """Make the remote branch hold ``head``: push what the agent committed, or fast-forward the
        worktree to what GitHub added (``update-branch``). An agent's rebase is pushed with a lease."""
        remote = self._remote_head(task.branch)
        if remote == head:
            return
        if remote is not None and self.git.is_ancestor(head, remote):
            self.git.fast_forward(Path(task.worktree), remote)
            return
        if remote is not None and not self.git.is_ancestor(remote, head):
            log.warning("task %s: %s was rewritten (rebase?); pushing with a lease", task.id, task.branch)
        self.git.push(self.remote, head, task.branch, expect=remote, env=self._git_env())

    def restacked(self, task: Task, head: str, expected: str, base_branch: str) -> bool:
        """Push a restacked head over the remote branch with a lease on what was read
        (``--force-with-lease=<branch>:<sha>``), when that is ``expected`` (the head that was rebased) or older
        than it (not pushed yet); a branch never pushed is left to the PR step. Then retarget the PR to
        ``base_branch`` (PyGithub ``edit(base=...)``). False when the remote holds commits ``expected`` lacks."""
        remote = self._remote_head(task.branch)
        if remote is not None and remote != head:
            if remote != expected and not self.git.is_ancestor(remote, expected):
                return False  # someone else's commits are there (update-branch, a push): never pushed over
            self.git.push(self.remote, head, task.branch, expect=remote, env=self._git_env())
        node = self._node(task) if task.pr is not None else None
        if task.pr is not None and (node is None or str(node.get("baseRefName") or "") != base_branch):
            number = task.pr.number
            try:
                self.api.rest("retarget pull request", lambda r: r.get_pull(number).edit(base=base_branch))
            except GithubException as exc:
                raise ForgeUnavailable(f"could not retarget PR #{number} to {base_branch}: {_message(exc)}") from exc
            log.info("task %s: PR #%d now targets %s", task.id, number, base_branch)
        return True

    def _find_pr(self, task: Task) -> PullRequest | None:
        owner = self.api.config.owner

        def find(repo: Repository) -> PullRequest | None:
            for pull in repo.get_pulls(state="open", head=f"{owner}:{task.branch}"):
                if pull.head.ref == task.branch:
                    return PullRequest(number=pull.number, url=pull.html_url)
            return None

        return self.api.rest("find pull request", find)

    def open_pr(self, task: Task, head: str) -> PullRequest:
        """Push, then adopt the open PR of the branch or open one. A create that failed in transit is
        repeated only after checking that it did not happen."""
        self.publish(task, head)
        existing = self._find_pr(task)
        if existing is not None:
            return existing
        title = task.title[:250]
        try:
            pull = self.api.rest("create pull request", lambda r: r.create_pull(
                base=task.base_branch, head=task.branch, title=title, body=pr_body(task), draft=False))
            return PullRequest(number=pull.number, url=pull.html_url)
        except (GithubException, ForgeUnavailable) as exc:
            found = self._find_pr(task)  # did it happen anyway (a 502 after the write, a 422 "already exists")?
            if found is not None:
                return found
            if isinstance(exc, GithubException) and exc.status == 422:
                raise GitError(f"GitHub refused to open a pull request for {task.branch}: {_message(exc)}") from exc
            raise ForgeUnavailable(f"could not open the pull request for {task.branch}: {_message(exc)}") from exc

    def start_checks(self, task: Task, head: str, jobs: Sequence[str]) -> None:
        """GitHub runs CI and its reviewers itself; swarm's own lenses run here as check jobs."""
        if self.jobs is not None:
            self.jobs.start(task, head, jobs)

    def post_reviews(self, task: Task, head: str, lenses: Sequence[str]) -> None:
        """Post the lenses' findings on the PR as reviews (inline comments at path:line). GitHub refuses an
        approval or a change request on one's own PR (the monitor opened it): then it is a comment."""
        if self.jobs is None or task.pr is None:
            return
        number = task.pr.number
        for lens in lenses:
            review = self.jobs.review(task, head, lens)
            if review is None:
                continue
            body, event, comments = review
            try:
                self.api.rest("post review", partial(_post_review, number=number, head=head, body=body,
                                                     event=event, comments=comments))
            except GithubException as exc:
                if exc.status != 422:
                    raise ForgeUnavailable(f"could not post the {lens} review: {_message(exc)}") from exc
                try:  # our own PR, or a comment outside the diff: the verdict goes in the text
                    self.api.rest("post review", partial(_post_review, number=number, head=head, body=body,
                                                         event="COMMENT", comments=[]))
                except GithubException as again:
                    raise ForgeUnavailable(f"could not post the {lens} review: {_message(again)}") from again
            self.jobs.mark_posted(task, head, lens)

    def update_branch(self, task: Task) -> bool:
        """Merge the base into the branch without an agent: GitHub's ``update-branch`` when there is a PR
        (the worktree is fast-forwarded on the next tick), a local merge and push otherwise."""
        node = self._node(task)
        if task.pr is None or node is None:
            ok = self.git.merge_base_into(Path(task.worktree), self.base_ref(task.base_branch))
            return ok
        expected = str(node.get("headRefOid") or "")

        def update(repo: Repository) -> bool:
            return repo.get_pull(task.pr.number).update_branch(expected_head_sha=expected)  # type: ignore[union-attr]

        try:
            return self.api.rest("update branch", update)
        except GithubException as exc:
            if exc.status == 422:
                return False  # a conflict, or the head moved: the next tick looks again
            raise ForgeUnavailable(f"update-branch failed: {_message(exc)}") from exc

    def approvals(self, task: Task, head: str) -> tuple[str, ...]:
        return approvals_of(self._node(task), head, self.wanted)

    def merge_queue(self, base_branch: str) -> bool:
        numbers = [int(n["number"]) for n in self._open.values() if n.get("baseRefName") == base_branch]
        return bool(numbers) and self.merges.merge_queue(base_branch, numbers[0])

    def enqueue(self, task: Task, head: str) -> None:
        self.merges.enqueue(task, head)

    def merge(self, task: Task, head: str, method: str) -> None:
        self.merges.merge(task, head, method)

    def link_screenshots(self, task: Task, head: str, paths: Sequence[str]) -> None:
        """Put the committed screenshots (at ``head``) into the PR body, replacing an older section."""
        node = self._node(task)
        if node is None or task.pr is None:
            return
        repo_html = str(node["url"]).rsplit("/pull/", 1)[0]
        section = screenshots_section(repo_html, head, paths)
        body = str(node.get("body") or "")
        body = _SHOTS_RE.sub(section, body) if _SHOTS_RE.search(body) else f"{body.rstrip()}\n\n{section}"
        number = task.pr.number
        try:
            self.api.rest("edit pull request", lambda r: r.get_pull(number).edit(body=body))
        except GithubException as exc:
            raise ForgeUnavailable(f"could not edit the body of PR #{number}: {_message(exc)}") from exc
        node["body"] = body


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


def _post_review(repo: Repository, number: int, head: str, body: str, event: str,
                 comments: list[dict[str, Any]]) -> None:
    pull = repo.get_pull(number)
    if comments:
        pull.create_review(commit=repo.get_commit(head), body=body, event=event, comments=comments)  # type: ignore[arg-type]
    else:
        pull.create_review(commit=repo.get_commit(head), body=body, event=event)


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


def _message(exc: Exception) -> str:
    if isinstance(exc, GithubException):
        data = exc.data if isinstance(exc.data, dict) else {}
        errors = data.get("errors") or []
        detail = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
        return f"{exc.status} {data.get('message', '')} {detail}".strip()
    return str(exc)
