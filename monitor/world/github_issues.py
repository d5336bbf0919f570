"""GitHub issues, their comments and who may write: the calls of issue intake, the mirrored comment and
``/swarm`` commands, through PyGithub behind the same gate as the forge (``GitHubApi.rest``: a rate limit
stops them with the rest, a refusal is a ``ForgeUnavailable`` and the caller tries again later).

Why apart from ``github.py``: that module is the pull-request side of the forge, read once per tick in
GraphQL; these are a few REST calls made only when something happened (an issue labelled, a comment, a task
that changed state). Every call is one request: PyGithub is lazy here, so ``get_issue(n).create_comment``
is one POST and an edit one PATCH, never a GET first. What comes back from GitHub is untrusted; callers
fence and redact it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from github import GithubException
from github.GithubObject import GithubObject
from github.Repository import Repository

from monitor.world.forge import Forge, ForgeUnavailable
from monitor.world.github_api import GitHubApi

T = TypeVar("T")
WRITE_ROLES = frozenset({"admin", "maintain", "write"})
MAX_ISSUES = 1000  # open labelled issues read per run: ten pages of a hundred
MAX_COMMENTS = 500  # comments read per poll


@dataclass(frozen=True)
class IssueInfo:
    number: int
    title: str
    body: str
    author: str
    labels: tuple[str, ...]
    url: str
    state: str
    updated_at: str
    is_pull: bool = False


@dataclass(frozen=True)
class CommentInfo:
    id: int
    number: int  # the issue or pull request it is on
    author: str
    body: str
    url: str
    updated_at: datetime
    is_pull: bool
    is_bot: bool = False


class IssueTracker(Protocol):
    """What swarm asks of a forge's issues; :class:`GitHubIssues` is the one implementation."""

    def open_issues(self, label: str) -> list[IssueInfo]: ...
    def can_write(self, login: str) -> bool: ...
    def comments_since(self, since: datetime | None) -> list[CommentInfo]: ...
    def comment(self, number: int, body: str) -> int: ...
    def edit_comment(self, number: int, comment_id: int, body: str) -> bool: ...
    def find_comment(self, number: int, marker: str) -> int | None: ...
    def react(self, number: int, comment_id: int, content: str) -> None: ...


def _number_of(url: str) -> int:
    match = re.search(r"/(?:issues|pull)/(\d+)", url or "")
    return int(match.group(1)) if match else 0


def _when(value: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _raw(item: GithubObject) -> dict[str, Any]:
    """The fields as the list answered them. PyGithub's ``raw_data`` would first GET the object again
    (lazy mode), one request per issue or comment listed."""
    raw: dict[str, Any] = item._rawData
    return raw


class GitHubIssues:
    def __init__(self, api: GitHubApi) -> None:
        self.api = api
        self._writers: dict[str, bool] = {}

    def open_issues(self, label: str) -> list[IssueInfo]:
        """Open issues carrying ``label``, oldest first; pull requests (which the API lists too) left out."""
        def read(repo: Repository) -> list[IssueInfo]:
            found: list[IssueInfo] = []
            for issue in _first(repo.get_issues(state="open", labels=[label], sort="created", direction="asc"),
                                MAX_ISSUES):
                raw = _raw(issue)
                found.append(IssueInfo(
                    number=int(raw["number"]), title=str(raw.get("title") or ""), body=str(raw.get("body") or ""),
                    author=str((raw.get("user") or {}).get("login") or ""),
                    labels=tuple(str(x.get("name")) for x in raw.get("labels") or [] if isinstance(x, dict)),
                    url=str(raw.get("html_url") or ""), state=str(raw.get("state") or ""),
                    updated_at=str(raw.get("updated_at") or ""), is_pull=raw.get("pull_request") is not None))
            return [i for i in found if not i.is_pull]

        return self.api.rest("list issues", read)

    def can_write(self, login: str) -> bool:
        """Whether ``login`` may push to the repository (admin, maintain or write); asked once per login
        for the life of this object. A user GitHub does not know (404) may not."""
        key = login.lower()
        if key not in self._writers:
            def ask(repo: Repository) -> bool:
                try:
                    return repo.get_collaborator_permission(login) in WRITE_ROLES
                except GithubException as exc:
                    if exc.status == 404:
                        return False
                    raise

            self._writers[key] = self.api.rest("collaborator permission", ask)
        return self._writers[key]

    def comments_since(self, since: datetime | None) -> list[CommentInfo]:
        """Comments on the repository's issues and pull requests updated since ``since`` (all of them when
        None), oldest first: one request per hundred."""
        def read(repo: Repository) -> list[CommentInfo]:
            listed = (repo.get_issues_comments(sort="updated", direction="asc", since=since.astimezone(UTC))
                      if since is not None else repo.get_issues_comments(sort="updated", direction="asc"))
            out: list[CommentInfo] = []
            for comment in _first(listed, MAX_COMMENTS):
                raw = _raw(comment)
                user = raw.get("user") or {}
                url = str(raw.get("html_url") or "")
                out.append(CommentInfo(
                    id=int(raw["id"]), number=_number_of(str(raw.get("issue_url") or url)),
                    author=str(user.get("login") or ""), body=str(raw.get("body") or ""), url=url,
                    updated_at=_when(raw.get("updated_at") or raw.get("created_at")), is_pull="/pull/" in url,
                    is_bot=str(user.get("type") or "") == "Bot"))
            return out

        return self.api.rest("list comments", read)

    def comment(self, number: int, body: str) -> int:
        return self.api.rest("comment", lambda repo: int(repo.get_issue(number).create_comment(body).id))

    def edit_comment(self, number: int, comment_id: int, body: str) -> bool:
        """Replace the comment's text; False when it is gone (deleted by a human: 404)."""
        def edit(repo: Repository) -> bool:
            try:
                repo.get_issue(number).get_comment(comment_id).edit(body)
            except GithubException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return self.api.rest("edit comment", edit)

    def find_comment(self, number: int, marker: str) -> int | None:
        """The first comment on ``number`` whose text holds ``marker`` (a hidden HTML comment swarm put
        there): how a comment posted just before a crash is found instead of posted twice."""
        def find(repo: Repository) -> int | None:
            for comment in _first(repo.get_issue(number).get_comments(), MAX_COMMENTS):
                if marker in str(_raw(comment).get("body") or ""):
                    return int(_raw(comment)["id"])
            return None

        return self.api.rest("find comment", find)

    def react(self, number: int, comment_id: int, content: str) -> None:
        self.api.rest("reaction", lambda repo: repo.get_issue(number).get_comment(comment_id)
                      .create_reaction(content))


def _first(items: Iterable[T], limit: int) -> Iterator[T]:
    """At most ``limit`` items of a PyGithub list (its pages are fetched as they are reached)."""
    for index, item in enumerate(items):
        if index >= limit:
            return
        yield item


def tracker_for(forge: Forge) -> IssueTracker | None:
    """The issues of the forge's repository, when it is GitHub (the local forge has none)."""
    from monitor.world.github import GitHubForge

    return GitHubIssues(forge.api) if isinstance(forge, GitHubForge) else None


__all__ = ["CommentInfo", "ForgeUnavailable", "GitHubIssues", "IssueInfo", "IssueTracker", "tracker_for"]
