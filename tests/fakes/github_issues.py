"""Issues, comments and permissions for the fake GitHub: what issue intake and ``/swarm`` commands talk to.

Why a module of its own: :mod:`tests.fakes.github_server` is already the pull-request world; issues add their
own state (issues that share the repository's numbers with pull requests, labels, comments that may be edited,
each user's permission) and their webhook payloads. :class:`IssuesMixin` is a base class of ``FakeGitHub`` and
its handlers are routed there; GitHub's shapes are kept where swarm reads them: the issues list holds pull
requests too (with a ``pull_request`` key), filters ``state``/``labels``/``since`` and paginates;
``GET /repos/{o}/{r}/issues/comments`` lists every comment of the repository (``since``, ``sort``,
``direction``); a comment is edited only by its author; ``GET .../collaborators/{user}/permission`` answers
``permission`` (admin/write/read/none, maintain reads as write) and ``role_name``.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tests.fakes.github_server import _IssueComment, _Repo, _Request, _Response

_T = TypeVar("_T")
WRITE = frozenset({"admin", "maintain", "write"})


def _gs() -> ModuleType:
    """The server module (it imports this one: loaded at call time, never at import time)."""
    from tests.fakes import github_server

    return github_server


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> _Response:
    from tests.fakes.github_server import _Response

    return _Response(status, body, headers=headers or {})


@dataclass
class FakeIssue:
    number: int
    id: int
    title: str
    body: str
    user: str
    labels: list[str]
    created_at: str
    updated_at: str
    state: str = "open"
    closed_at: str | None = None


@dataclass
class _IssueWorld:
    issues: dict[int, FakeIssue] = field(default_factory=dict)
    edited: dict[int, str] = field(default_factory=dict)  # comment id -> updated_at
    reactions: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # comment id -> (login, content)
    permissions: dict[str, str] = field(default_factory=dict)  # login (lower case) -> role


class IssuesMixin:
    if TYPE_CHECKING:
        _lock: threading.RLock
        _ids: Iterator[int]
        login: str

        @property
        def url(self) -> str: ...
        def _repo(self, full_name: str) -> _Repo: ...
        def _user_json(self, login: str, *, bot: bool = False) -> dict[str, Any]: ...
        def _repo_json(self, repo: _Repo) -> dict[str, Any]: ...
        def _api(self, repo: _Repo) -> str: ...
        def _web(self, repo: _Repo) -> str: ...
        def _paginate(self, req: _Request, items: Sequence[_T], *, per_page: int = 30,
                      max_per_page: int = 100) -> tuple[list[_T], dict[str, str]]: ...

    _issue_worlds: dict[str, _IssueWorld]

    def _world(self, repo: _Repo) -> _IssueWorld:
        worlds: dict[str, _IssueWorld] = self.__dict__.setdefault("_issue_worlds", {})
        return worlds.setdefault(repo.full_name.lower(), _IssueWorld())

    # ---------------------------------------------------------------------------- test set-up

    def add_issue(self, repo: str, title: str, body: str = "", *, user: str = "octocat",
                  labels: Sequence[str] = ("swarm",)) -> int:
        """Open an issue as ``user``; returns its number (shared with pull requests, as on GitHub)."""
        with self._lock:
            r = self._repo(repo)
            now = _gs()._now()
            issue = FakeIssue(r.next_number, next(self._ids), title, body, user, list(labels), now, now)
            r.next_number += 1
            self._world(r).issues[issue.number] = issue
            return issue.number

    def edit_issue(self, repo: str, number: int, *, labels: Sequence[str] | None = None, state: str | None = None,
                   body: str | None = None) -> None:
        with self._lock:
            issue = self._world(self._repo(repo)).issues[number]
            if labels is not None:
                issue.labels = list(labels)
            if body is not None:
                issue.body = body
            if state is not None:
                issue.state = state
                issue.closed_at = _gs()._now() if state == "closed" else None
            issue.updated_at = _gs()._now()

    def set_permission(self, repo: str, login: str, role: str) -> None:
        """``login``'s role on ``repo``: admin, maintain, write, triage, read or none (default: read)."""
        with self._lock:
            self._world(self._repo(repo)).permissions[login.lower()] = role

    def comment(self, repo: str, number: int, body: str, *, user: str) -> int:
        """``user`` comments on issue or pull request ``number``; returns the comment id."""
        with self._lock:
            r = self._repo(repo)
            if number not in r.pulls and number not in self._world(r).issues:
                raise KeyError(f"{repo} has no issue or pull request #{number}")
            return self._add_comment(r, number, user, body).id

    def issue_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """The comments of issue or pull request ``number`` as the API shows them, oldest first."""
        with self._lock:
            r = self._repo(repo)
            return [self._comment_json(r, c) for c in sorted(r.issue_comments.values(), key=lambda c: c.id)
                    if c.number == number]

    def reactions(self, repo: str, comment_id: int) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._world(self._repo(repo)).reactions.get(comment_id, []))

    def issue_payload(self, repo: str, number: int, action: str, label: str = "") -> dict[str, Any]:
        """An ``issues`` webhook payload, as GitHub sends it for ``action`` on issue ``number``."""
        with self._lock:
            r = self._repo(repo)
            issue = self._world(r).issues[number]
            data: dict[str, Any] = {"action": action, "issue": self._issue_json(r, issue),
                                    "repository": self._repo_json(r), "sender": self._user_json(issue.user)}
            if label:
                data["label"] = {"name": label, "color": "ededed", "default": False}
            return data

    def comment_payload(self, repo: str, comment_id: int, action: str = "created") -> dict[str, Any]:
        """An ``issue_comment`` webhook payload for the comment (on an issue or a pull request)."""
        with self._lock:
            r = self._repo(repo)
            comment = r.issue_comments[comment_id]
            if comment.number in r.pulls:
                pull = r.pulls[comment.number]
                issue = {"number": pull.number, "title": pull.title, "state": pull.state,
                         "user": self._user_json(pull.user), "labels": [],
                         "pull_request": {"url": f"{self._api(r)}/pulls/{pull.number}"}}
            else:
                issue = self._issue_json(r, self._world(r).issues[comment.number])
            return {"action": action, "issue": issue, "comment": self._comment_json(r, comment),
                    "repository": self._repo_json(r), "sender": self._user_json(comment.login)}

    # ------------------------------------------------------------------------------ JSON shapes

    def _role(self, repo: _Repo, login: str) -> str:
        if login.lower() in (repo.owner.lower(), self.login.lower()):
            return "admin"
        return self._world(repo).permissions.get(login.lower(), "read")

    def _association(self, repo: _Repo, login: str) -> str:
        if login.lower() == repo.owner.lower():
            return "OWNER"
        return "COLLABORATOR" if self._role(repo, login) in WRITE else "NONE"

    def _issue_json(self, repo: _Repo, issue: FakeIssue) -> dict[str, Any]:
        api, web = self._api(repo), self._web(repo)
        comments = sum(1 for c in repo.issue_comments.values() if c.number == issue.number)
        return {
            "url": f"{api}/issues/{issue.number}", "repository_url": api,
            "comments_url": f"{api}/issues/{issue.number}/comments", "html_url": f"{web}/issues/{issue.number}",
            "id": issue.id, "node_id": f"I_{issue.id}", "number": issue.number, "title": issue.title,
            "user": self._user_json(issue.user), "state": issue.state, "locked": False,
            "labels": [{"id": abs(hash(name)) % 10**8, "name": name, "color": "ededed", "default": False,
                        "url": f"{api}/labels/{urllib.parse.quote(name)}"} for name in issue.labels],
            "assignee": None, "assignees": [], "milestone": None, "comments": comments,
            "created_at": issue.created_at, "updated_at": issue.updated_at, "closed_at": issue.closed_at,
            "author_association": self._association(repo, issue.user), "body": issue.body or None,
            "state_reason": None,
        }

    def _pull_as_issue(self, repo: _Repo, number: int) -> dict[str, Any]:
        pull = repo.pulls[number]
        api, web = self._api(repo), self._web(repo)
        return {
            "url": f"{api}/issues/{number}", "html_url": f"{web}/pull/{number}", "id": pull.id, "number": number,
            "title": pull.title, "user": self._user_json(pull.user, bot=pull.user_bot), "state": pull.state,
            "labels": [], "comments": 0, "created_at": pull.created_at, "updated_at": pull.updated_at,
            "closed_at": pull.closed_at, "body": pull.body or None, "author_association": "NONE",
            "pull_request": {"url": f"{api}/pulls/{number}", "html_url": f"{web}/pull/{number}"},
        }

    def _comment_json(self, repo: _Repo, comment: _IssueComment) -> dict[str, Any]:
        api, web = self._api(repo), self._web(repo)
        kind = "pull" if comment.number in repo.pulls else "issues"
        return {
            "url": f"{api}/issues/comments/{comment.id}",
            "html_url": f"{web}/{kind}/{comment.number}#issuecomment-{comment.id}",
            "issue_url": f"{api}/issues/{comment.number}", "id": comment.id, "node_id": f"IC_{comment.id}",
            "user": self._user_json(comment.login, bot=comment.bot), "created_at": comment.created_at,
            "updated_at": self._world(repo).edited.get(comment.id, comment.created_at),
            "author_association": "NONE" if comment.bot else self._association(repo, comment.login),
            "body": comment.body, "performed_via_github_app": None,
        }

    def _add_comment(self, repo: _Repo, number: int, login: str, body: str) -> _IssueComment:
        from tests.fakes.github_server import _IssueComment

        comment = _IssueComment(next(self._ids), number, login, False, body, _gs()._now())
        repo.issue_comments[comment.id] = comment
        issue = self._world(repo).issues.get(number)
        if issue is not None:
            issue.updated_at = comment.created_at
        return comment

    def _issue_number(self, repo: _Repo, params: dict[str, str]) -> int:
        number = int(params["number"])
        if number not in repo.pulls and number not in self._world(repo).issues:
            raise _gs()._not_found()
        return number

    def _comment_of(self, repo: _Repo, params: dict[str, str]) -> _IssueComment:
        comment = repo.issue_comments.get(int(params["comment"]))
        if comment is None:
            raise _gs()._not_found()
        return comment

    # ---------------------------------------------------------------------------------- handlers

    def _h_list_issues(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        state = req.query.get("state", "open")
        wanted = [name for name in req.query.get("labels", "").split(",") if name]
        since = req.query.get("since", "")
        items: list[tuple[str, dict[str, Any]]] = []
        for issue in self._world(repo).issues.values():
            if (state == "all" or issue.state == state) and all(w in issue.labels for w in wanted) \
                    and issue.updated_at >= since:
                items.append((issue.created_at + f"{issue.number:08d}", self._issue_json(repo, issue)))
        if not wanted:  # the issues API lists pull requests too (they carry no label here)
            for pull in repo.pulls.values():
                if (state == "all" or pull.state == state) and pull.updated_at >= since:
                    items.append((pull.created_at + f"{pull.number:08d}", self._pull_as_issue(repo, pull.number)))
        items.sort(key=lambda item: item[0], reverse=req.query.get("direction", "desc") == "desc")
        page, headers = self._paginate(req, [data for _, data in items])
        return _answer(200, page, headers=headers)

    def _h_get_issue(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        number = self._issue_number(repo, params)
        if number in repo.pulls:
            return _answer(200, self._pull_as_issue(repo, number))
        return _answer(200, self._issue_json(repo, self._world(repo).issues[number]))

    def _h_list_comments(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        number = self._issue_number(repo, params)
        comments = sorted((c for c in repo.issue_comments.values() if c.number == number), key=lambda c: c.id)
        page, headers = self._paginate(req, comments)
        return _answer(200, [self._comment_json(repo, c) for c in page], headers=headers)

    def _h_create_comment(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        gs = _gs()
        number = self._issue_number(repo, params)
        body = req.json().get("body")
        if not isinstance(body, str) or not body:
            raise gs._validation_failed({"resource": "IssueComment", "code": "missing_field", "field": "body"},
                                        doc="issues/comments")
        comment = self._add_comment(repo, number, self.login, body)
        if number in repo.pulls:
            pull = repo.pulls[number]
            pull.updated_at = gs._now()
        data = self._comment_json(repo, comment)
        return _answer(201, data, headers={"Location": data["url"]})

    def _h_repo_comments(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        since = req.query.get("since", "")
        world = self._world(repo)
        comments = [c for c in repo.issue_comments.values() if world.edited.get(c.id, c.created_at) >= since]
        key = (lambda c: (world.edited.get(c.id, c.created_at), c.id)) if req.query.get("sort") == "updated" \
            else (lambda c: (c.created_at, c.id))
        comments.sort(key=key, reverse=req.query.get("direction", "asc") == "desc")
        page, headers = self._paginate(req, comments)
        return _answer(200, [self._comment_json(repo, c) for c in page], headers=headers)

    def _h_get_comment(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        return _answer(200, self._comment_json(repo, self._comment_of(repo, params)))

    def _h_edit_comment(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        gs = _gs()
        comment = self._comment_of(repo, params)
        if comment.login != self.login:
            return _answer(403, {"message": "Must have admin rights to Repository.", "status": "403"})
        body = req.json().get("body")
        if not isinstance(body, str) or not body:
            raise gs._validation_failed({"resource": "IssueComment", "code": "missing_field", "field": "body"},
                                        doc="issues/comments")
        comment.body = body
        self._world(repo).edited[comment.id] = gs._now()
        return _answer(200, self._comment_json(repo, comment))

    def _h_react(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        comment = self._comment_of(repo, params)
        content = str(req.json().get("content", ""))
        if content not in ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"):
            raise _gs()._validation_failed({"resource": "Reaction", "code": "invalid", "field": "content"},
                                           doc="reactions/reactions")
        self._world(repo).reactions.setdefault(comment.id, []).append((self.login, content))
        return _answer(201, {"id": next(self._ids), "node_id": "REA_x", "content": content,
                                     "user": self._user_json(self.login), "created_at": _gs()._now()})

    def _h_permission(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        login = params["user"]
        role = self._role(repo, login)
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        return _answer(200, {"permission": legacy, "role_name": role, "user": self._user_json(login)})


def issue_routes(prefix: str) -> list[tuple[str, str, Any]]:
    """The routes of :class:`IssuesMixin` under ``/repos/{owner}/{name}`` (``prefix``)."""
    comment = prefix + r"/issues/comments/(?P<comment>\d+)"
    return [
        ("GET", prefix + "/issues", IssuesMixin._h_list_issues),
        ("GET", prefix + "/issues/comments", IssuesMixin._h_repo_comments),
        ("GET", comment, IssuesMixin._h_get_comment),
        ("PATCH", comment, IssuesMixin._h_edit_comment),
        ("POST", comment + "/reactions", IssuesMixin._h_react),
        ("GET", prefix + r"/issues/(?P<number>\d+)", IssuesMixin._h_get_issue),
        ("GET", prefix + r"/issues/(?P<number>\d+)/comments", IssuesMixin._h_list_comments),
        ("POST", prefix + r"/issues/(?P<number>\d+)/comments", IssuesMixin._h_create_comment),
        ("GET", prefix + r"/collaborators/(?P<user>[^/]+)/permission", IssuesMixin._h_permission),
    ]


__all__ = ["WRITE", "FakeIssue", "IssuesMixin", "issue_routes"]
