"""The GitHub forge's writes: pushing a branch (with a lease), opening or adopting a pull request,
retargeting a restacked one, ``update-branch``, posting the review lenses' findings, linking screenshots
into the body, and handing merges to the merge train (``monitor/world/github_merge.py``).

A mixin of :class:`monitor.world.github.GitHubForge`, kept apart from its reads (one GraphQL query per
tick, ``monitor/world/github.py``) so that each module stays small: every write here is a REST call
(PyGithub) or a git push, made only when a decision asks for it. The reads it relies on (the PR node of a
task, the token for git) are the forge's own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from github import GithubException
from github.Repository import Repository

from monitor.redact import redact
from monitor.world.forge import ForgeUnavailable
from monitor.world.git import Git, GitError
from monitor.world.github_api import GitHubApi
from monitor.world.github_merge import GitHubMerges
from monitor.world.jobs import LensJobs
from registry.models import PullRequest, Task

log = logging.getLogger("monitor.world.github")  # the forge's logger: its writes log as its reads do
TASK_MARKER = "<!-- swarm-task: {id} -->"
SHOTS_BEGIN = "<!-- swarm-screenshots {sha} -->"
SHOTS_END = "<!-- /swarm-screenshots -->"
_SHOTS_RE = re.compile(r"<!-- swarm-screenshots ([0-9a-f]{7,40}) -->.*?<!-- /swarm-screenshots -->", re.DOTALL)


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


class GitHubWrites:
    """The write half of :class:`monitor.world.github.GitHubForge`, which provides the state and reads below."""

    api: GitHubApi
    git: Git
    remote: str
    jobs: LensJobs | None
    merges: GitHubMerges
    _open: dict[str, dict[str, Any]]

    def _git_env(self) -> dict[str, str]:
        raise NotImplementedError  # the forge's: the token for git, through GIT_ASKPASS

    def base_ref(self, base_branch: str) -> str:
        raise NotImplementedError  # the forge's

    def _node(self, task: Task) -> dict[str, Any] | None:
        raise NotImplementedError  # the forge's: the task's PR as this tick read it

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


def _post_review(repo: Repository, number: int, head: str, body: str, event: str,
                 comments: list[dict[str, Any]]) -> None:
    pull = repo.get_pull(number)
    if comments:
        pull.create_review(commit=repo.get_commit(head), body=body, event=event, comments=comments)  # type: ignore[arg-type]
    else:
        pull.create_review(commit=repo.get_commit(head), body=body, event=event)

def _message(exc: Exception) -> str:
    if isinstance(exc, GithubException):
        data = exc.data if isinstance(exc.data, dict) else {}
        errors = data.get("errors") or []
        detail = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
        return f"{exc.status} {data.get('message', '')} {detail}".strip()
    return str(exc)
