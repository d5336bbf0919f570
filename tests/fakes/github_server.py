"""A stateful fake GitHub on 127.0.0.1: the REST subset PyGithub uses, and GraphQL against GitHub's real schema.

Why: the monitor carries pull requests through CI and reviews on GitHub. Its tests must run the real clients
(PyGithub, httpx) against something that answers like GitHub does (the same JSON shapes, status codes,
headers, pagination, rate limits and failures) without any network, and whose repository state is real git:
branch heads, ahead/behind counts, conflicts and merge commits come from a real bare repository that the test
pushes to as ``origin``. Recorded answers cannot do that: a monitor that updates a branch must see the merge
commit appear, and a query that GitHub would reject must be rejected here too (GraphQL documents are
validated and executed against the public schema from :mod:`tests.fakes.github_schema`).

Usage::

    with FakeGitHub() as fake:
        fake.add_repo("acme", "widgets", bare)          # bare: a real bare repository the test pushes to
        number = fake.open_pr("acme/widgets", "feature")
        fake.add_check_run("acme/widgets", sha, "tests", conclusion="failure", log="boom\\n")
        gh = Github(auth=Auth.Token(fake.token), base_url=fake.url)
        ...

What the fake models (and what it leaves out) is listed on :class:`FakeGitHub`. Every absolute URL it answers
with (``url``, ``html_url``, ``Link``, ``Location``) is built from its own ``http://127.0.0.1:PORT`` address,
because PyGithub asserts that the URLs it follows stay on the host and port of ``base_url``; the
``documentation_url`` of error bodies stays GitHub's (it is only ever shown, never fetched).

Set ``SWARM_FAKE_GITHUB_DEBUG=1`` to print every request and answer to stderr while developing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import math
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import graphql
import jwt

from tests.fakes.github_issues import IssuesMixin, issue_routes
from tests.fakes.github_schema import github_schema, node_count, pagination_errors, rate_limit_cost

DEFAULT_TOKEN = "ghp_" + "fake" * 9
"""The token the fake accepts unless it is given another (shaped like a classic personal access token)."""

RATE_LIMIT = 5000
"""Requests per hour for each rate-limit resource (``core``, ``graphql``), as for an authenticated user."""

Kind = Literal["graphql", "rest_read", "rest_write", "redirect_target"]
Resource = Literal["core", "graphql"]

_DOCS = "https://docs.github.com/rest"
_T = TypeVar("_T")


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake answered (faulted ones included)."""

    method: str
    path: str
    query: str
    """The raw query string, without the ``?``."""
    status: int
    kind: Kind
    operation: str | None
    """For GraphQL: the operation name (from ``operationName`` or the document)."""
    authorized: bool
    """Whether the request carried an ``Authorization`` header at all (valid or not): a redirect target
    that logs ``authorized=True`` was sent the token."""
    fault: str | None = None
    """``"fail"`` (from :meth:`FakeGitHub.fail_next`), ``"rate_limit"`` or None."""
    delayed: float = 0.0
    """Seconds the answer was held back by :meth:`FakeGitHub.delay_next`."""


# --------------------------------------------------------------------------------------------------- git


class GitError(RuntimeError):
    """A git command on a backing bare repository failed unexpectedly."""


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    drop = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CEILING_DIRECTORIES")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    env.update(extra or {})
    return env


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _iso(datetime.now(UTC))


@dataclass(frozen=True)
class _Commit:
    sha: str
    parents: tuple[str, ...]
    tree: str
    author_name: str
    author_email: str
    author_date: str
    committer_name: str
    committer_email: str
    committer_date: str
    message: str


_LOG_FORMAT = "%H%x1f%P%x1f%T%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%B%x1e"


class _Git:
    """Reads and writes one bare repository with the git CLI; facts about immutable commits are cached."""

    def __init__(self, bare: Path) -> None:
        self.bare = bare.resolve()
        self._merge_trees: dict[tuple[str, str], str | None] = {}
        self._ancestors: dict[tuple[str, str], bool] = {}
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}
        self._diffstats: dict[tuple[str, str], tuple[int, int, int]] = {}
        self._commits: dict[str, _Commit] = {}

    def run(self, *args: str, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["git", f"--git-dir={self.bare}", *args],
            capture_output=True, text=True, env=_git_env(env), check=False,
        )
        if done.returncode not in ok:
            raise GitError(f"git {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout if done.returncode == 0 else ""

    def branches(self) -> dict[str, str]:
        out = self.run("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
        heads: dict[str, str] = {}
        for line in out.splitlines():
            sha, ref = line.split(" ", 1)
            heads[ref.removeprefix("refs/heads/")] = sha
        return heads

    def resolve(self, ref: str) -> str | None:
        out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", ok=(0, 1, 128))
        return out.strip() or None

    def merge_tree(self, ours: str, theirs: str) -> str | None:
        """The tree of merging ``theirs`` into ``ours``, or None when they conflict."""
        key = (ours, theirs)
        if key not in self._merge_trees:
            out = self.run("merge-tree", "--write-tree", "--no-messages", ours, theirs, ok=(0, 1))
            self._merge_trees[key] = out.split("\n", 1)[0].strip() or None
        return self._merge_trees[key]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        key = (ancestor, descendant)
        if key not in self._ancestors:
            done = subprocess.run(
                ["git", f"--git-dir={self.bare}", "merge-base", "--is-ancestor", ancestor, descendant],
                capture_output=True, text=True, env=_git_env(), check=False,
            )
            if done.returncode not in (0, 1):
                raise GitError(f"git merge-base --is-ancestor failed: {done.stderr.strip()}")
            self._ancestors[key] = done.returncode == 0
        return self._ancestors[key]

    def ahead_behind(self, base: str, head: str) -> tuple[int, int]:
        """(commits in ``head`` not in ``base``, commits in ``base`` not in ``head``)."""
        key = (base, head)
        if key not in self._counts:
            behind, ahead = self.run("rev-list", "--left-right", "--count", f"{base}...{head}").split()
            self._counts[key] = (int(ahead), int(behind))
        return self._counts[key]

    def merge_base(self, one: str, other: str) -> str | None:
        return self.run("merge-base", one, other, ok=(0, 1)).strip() or None

    def diffstat(self, base: str, head: str) -> tuple[int, int, int]:
        """(additions, deletions, changed files) of ``head`` against its merge base with ``base``."""
        key = (base, head)
        if key not in self._diffstats:
            additions = deletions = files = 0
            for line in self.run("diff", "--numstat", f"{base}...{head}").splitlines():
                added, deleted, _ = line.split("\t", 2)
                additions += int(added) if added.isdigit() else 0
                deletions += int(deleted) if deleted.isdigit() else 0
                files += 1
            self._diffstats[key] = (additions, deletions, files)
        return self._diffstats[key]

    def _parse_log(self, out: str) -> list[_Commit]:
        commits = []
        for record in out.split("\x1e"):
            record = record.lstrip("\n")
            if not record:
                continue
            sha, parents, tree, an, ae, ad, cn, ce, cd, message = record.split("\x1f")
            commit = _Commit(sha, tuple(parents.split()), tree, an, ae, _iso(datetime.fromisoformat(ad)), cn, ce,
                             _iso(datetime.fromisoformat(cd)), message)
            self._commits[sha] = commit
            commits.append(commit)
        return commits

    def commit(self, sha: str) -> _Commit:
        if sha not in self._commits:
            self._parse_log(self.run("log", "-1", f"--format={_LOG_FORMAT}", sha))
        return self._commits[sha]

    def commits_between(self, base: str, head: str) -> list[_Commit]:
        """The commits of ``base..head``, oldest first (as GitHub lists a comparison's commits)."""
        return self._parse_log(self.run("log", "--reverse", f"--format={_LOG_FORMAT}", f"{base}..{head}"))

    def commit_tree(self, tree: str, parents: Sequence[str], message: str, author: tuple[str, str]) -> str:
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        env = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
               "GIT_COMMITTER_NAME": "GitHub", "GIT_COMMITTER_EMAIL": "noreply@github.com"}
        return self.run(*args, "-m", message, env=env).strip()

    def update_ref(self, branch: str, new: str, old: str) -> bool:
        """Move ``branch`` from ``old`` to ``new``; False when it no longer points at ``old``."""
        done = subprocess.run(
            ["git", f"--git-dir={self.bare}", "update-ref", f"refs/heads/{branch}", new, old],
            capture_output=True, text=True, env=_git_env(), check=False,
        )
        return done.returncode == 0


# ------------------------------------------------------------------------------------------------ state


@dataclass
class _Pull:
    number: int
    id: int
    title: str
    body: str
    head: str
    base: str
    draft: bool
    user: str
    user_bot: bool
    head_sha: str
    base_sha: str
    created_at: str
    updated_at: str
    updated_seq: int
    state: str = "open"
    merged: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    closed_at: str | None = None
    merge_commit_sha: str | None = None
    unknown_reads: int = 0


@dataclass
class _Review:
    id: int
    number: int
    login: str
    bot: bool
    state: str
    body: str
    commit_id: str
    submitted_at: str | None


@dataclass
class _ReviewComment:
    id: int
    review_id: int
    number: int
    path: str
    line: int
    body: str
    commit_id: str
    login: str
    bot: bool
    created_at: str


@dataclass
class _IssueComment:
    id: int
    number: int
    login: str
    bot: bool
    body: str
    created_at: str


@dataclass
class _CheckRun:
    id: int
    sha: str
    name: str
    status: str
    conclusion: str | None
    title: str
    summary: str
    text: str
    annotations: list[tuple[str, int, str, str, str]]
    log: str | None
    app_slug: str
    details_url: str | None
    started_at: str
    completed_at: str | None
    run_id: int
    suite_id: int


@dataclass
class _Status:
    id: int
    sha: str
    context: str
    state: str
    description: str
    target_url: str
    created_at: str
    creator: str


@dataclass
class _Hook:
    """A repository webhook (``POST /repos/{o}/{r}/hooks``) and the deliveries made to it, newest last."""

    id: int
    config: dict[str, str]
    events: list[str]
    active: bool
    created_at: str
    updated_at: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _App:
    """A GitHub App: its id, public key (JWTs are verified with it), installation and what tokens may do."""

    app_id: int
    slug: str
    public_key: str
    installation_id: int
    permissions: dict[str, str]
    token_ttl: float


@dataclass
class _InstallationToken:
    installation_id: int
    expires_at: float
    permissions: dict[str, str]


@dataclass
class _Repo:
    owner: str
    name: str
    git: _Git
    default_branch: str
    strict: bool
    required_approvals: int
    id: int
    created_at: str
    pulls: dict[int, _Pull] = field(default_factory=dict)
    reviews: dict[int, _Review] = field(default_factory=dict)
    review_comments: dict[int, _ReviewComment] = field(default_factory=dict)
    issue_comments: dict[int, _IssueComment] = field(default_factory=dict)
    check_runs: dict[int, _CheckRun] = field(default_factory=dict)
    statuses: list[_Status] = field(default_factory=list)
    hooks: dict[int, _Hook] = field(default_factory=dict)
    next_number: int = 1
    merge_queue: bool = False  # GitHub's merge queue runs on the default branch (enqueuePullRequest)
    queued: list[int] = field(default_factory=list)  # pull requests enqueued there, in order

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class _RateFault:
    until: float
    status: int
    retry_after: int | None
    resources: tuple[Resource, ...]


@dataclass
class _Countdown:
    left: int
    value: float
    path_prefix: str
    method: str = ""


@dataclass
class _Request:
    method: str
    path: str
    query_string: str
    query: dict[str, str]
    body: bytes
    authorization: str | None
    if_none_match: str | None
    operation: str | None = None

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise _HttpError(400, {"message": "Problems parsing JSON", "documentation_url": _DOCS}) from exc


@dataclass
class _Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"
    counted: bool = False
    fault: str | None = None

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode()


class _HttpError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _validation_failed(*errors: dict[str, Any], doc: str = "pulls/pulls") -> _HttpError:
    return _HttpError(422, {"message": "Validation Failed", "errors": list(errors),
                            "documentation_url": f"{_DOCS}/{doc}", "status": "422"})


def _not_found() -> _HttpError:
    return _HttpError(404, {"message": "Not Found", "documentation_url": _DOCS, "status": "404"})


def _node_id(prefix: str, number: int) -> str:
    return f"{prefix}_kw" + base64.urlsafe_b64encode(f"{prefix}:{number}".encode()).decode().rstrip("=")


_REVIEW_STATES = {
    "APPROVE": "APPROVED", "APPROVED": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "CHANGES_REQUESTED": "CHANGES_REQUESTED", "COMMENT": "COMMENTED", "COMMENTED": "COMMENTED",
    "DISMISSED": "DISMISSED", "PENDING": "PENDING",
}
_FAILED_CONCLUSIONS = {"failure", "timed_out", "cancelled", "action_required", "startup_failure", "stale"}
_STATUS_STATES = {"error", "failure", "pending", "success"}


def _annotation(given: Sequence[Any]) -> tuple[str, int, str, str, str]:
    """``(path, line, level, message[, title])`` with the title defaulting to empty."""
    path, line, level, message, *rest = given
    return str(path), int(line), str(level), str(message), str(rest[0]) if rest else ""


def _split_login(login: str, bot: bool) -> tuple[str, bool]:
    """(login without a ``[bot]`` suffix, whether it is a bot)."""
    if login.endswith("[bot]"):
        return login.removesuffix("[bot]"), True
    return login, bot


# ------------------------------------------------------------------------------------------ the server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeGitHub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client that timed out and hung up: expected with delay_next
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Headers and body go out as two small writes: with Nagle's algorithm on, every answer would wait
    # ~40 ms for the client's delayed ACK (GitHub itself answers without that stall).
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    timeout = 30

    def version_string(self) -> str:
        return self.server_version

    def _serve(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake keeps its own request log."""


class FakeGitHub(IssuesMixin):
    """A fake GitHub API server backed by real bare git repositories.

    Serves, under ``/repos/{owner}/{name}``: the repository, pull requests (list with ``state``/``head``/
    ``base`` filters, create, get, edit, update-branch, merge), reviews (create, dismiss) and review comments,
    issue comments on pull requests, commits, check runs and their annotations, commit statuses (combined and
    listed),
    workflow jobs and their logs (a 302 to an unauthenticated blob URL), comparisons; plus ``/rate_limit``,
    ``/user`` and ``POST /graphql``. Lists paginate with ``per_page``/``page`` and a ``Link`` header.

    Every API request needs ``Authorization: token|Bearer <token>`` (401 otherwise), every API answer carries
    the ``x-ratelimit-*`` headers of its resource, and GET answers an ``ETag`` that ``If-None-Match`` turns
    into a 304 that costs nothing. Faults: :meth:`rate_limit`, :meth:`fail_next`, :meth:`delay_next`.

    GitHub Apps (:meth:`add_app`): ``GET /app`` and ``POST /app/installations/{id}/access_tokens`` take a JWT
    verified with the app's public key (RS256, ``iss`` the app id, ``exp`` at most 10 minutes ahead); the
    installation tokens they hand out (:attr:`tokens_minted`) work on REST and GraphQL until they expire (401
    after, noted in :attr:`refused_tokens`), get 403 from ``/user``, and reach the hooks API only with the
    ``repository_hooks`` permission. Webhooks: ``GET``/``POST /repos/{o}/{r}/hooks``, ``GET``/``PATCH``
    ``.../hooks/{id}`` (a second hook for the same URL is a 422), ``GET .../hooks/{id}/deliveries``;
    :meth:`deliver` POSTs a signed event to the hooks over real HTTP and records each answer as a delivery.

    GraphQL documents are validated against GitHub's schema and its node limit (every connection bounded by
    ``first``/``last`` up to 100, totalCount-only ones too; at most 500,000 nodes) before they run, and are
    charged GitHub's points, not one per request: the requests needed to fill each connection (the product of
    the bounds of the connections above it), summed, divided by 100 and rounded, at least 1
    (:func:`tests.fakes.github_schema.rate_limit_cost`). The cost is in ``rateLimit { cost }``, taken from the
    ``graphql`` budget the ``x-ratelimit-*`` headers report, and a call costing more than is left is refused
    whole (RATE_LIMITED). :attr:`graphql_points` lists what each call cost; :meth:`most_in_flight` says how
    many requests were answered at once. ``nodes(ids:)`` resolves pull request reviews.
    ``latestReviews`` is each reviewer's latest submitted review; ``latestOpinionatedReviews`` each reviewer's
    latest APPROVED or CHANGES_REQUESTED one, nothing for a reviewer whose latest such review was dismissed.

    Not modelled: required status checks and BLOCKED (branch protection is only ``strict`` and
    ``required_approvals``), forks, labels of pull requests, rebase merges, stale-review
    dismissal, write access (``writersOnly`` keeps every reviewer), diff positions of review comments
    (``position`` is the line).
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, login: str = "agent") -> None:
        self.token = token
        self.login = login
        self.internal_errors: list[str] = []
        """Tracebacks of exceptions inside the fake (answered with 500); a test may assert it is empty."""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._repos: dict[str, _Repo] = {}
        self._ids = itertools.count(1001)
        self._seq = itertools.count(1)
        self._user_ids: dict[str, int] = {}
        self._log: list[RequestRecord] = []
        self._blob_sigs: dict[int, set[str]] = {}
        self._rate_faults: list[_RateFault] = []
        self._failures: list[_Countdown] = []
        self._lost: list[_Countdown] = []
        self._delays: list[_Countdown] = []
        reset = int(time.time()) + 3600
        self._remaining: dict[Resource, int] = {"core": RATE_LIMIT, "graphql": RATE_LIMIT}
        self._points: list[tuple[str | None, int]] = []
        self._in_flight: Counter[Kind] = Counter()
        self._most_in_flight: Counter[Kind] = Counter()
        self._reset: dict[Resource, int] = {"core": reset, "graphql": reset}
        self._apps: dict[str, _App] = {}
        self._installation_tokens: dict[str, _InstallationToken] = {}
        self.tokens_minted: list[str] = []
        """Installation tokens handed out by ``POST /app/installations/{id}/access_tokens``, in order."""
        self.refused_tokens: list[str] = []
        """Why each JWT or installation token was refused (expired, bad signature, ...), in order."""
        self.hooks_forbidden = False
        """Answer 403 to the hooks API whatever the token (a token without the webhooks permission)."""

    # ---------------------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash): PyGithub's ``base_url``."""
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    def start(self) -> FakeGitHub:
        if self._server is None:
            # GitHub's schema is installed (npm, first run only) and built before the first request, not
            # while a client waits on it with a timeout.
            github_schema()
            self._stopping.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="fake-github", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes delayed answers
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ world set-up

    def add_repo(self, owner: str, name: str, bare: Path, default_branch: str = "main", strict: bool = False,
                 *, required_approvals: int = 0, merge_queue: bool = False) -> str:
        """Serve ``owner/name`` from the bare repository ``bare``; returns ``"owner/name"``.

        ``strict``: branch protection requires branches to be up to date (mergeStateStatus BEHIND).
        ``required_approvals``: approving reviews branch protection requires (0, the default: no review rule,
        so reviewDecision is null as on GitHub).
        """
        git = _Git(bare)
        if git.run("rev-parse", "--is-bare-repository").strip() != "true":
            raise ValueError(f"{bare} is not a bare git repository")
        with self._lock:
            repo = _Repo(owner, name, git, default_branch, strict, required_approvals, next(self._ids), _now(),
                         merge_queue=merge_queue)
            self._repos[repo.full_name.lower()] = repo
        return repo.full_name

    def add_app(self, app_id: int, public_key: str, installation_id: int, *, slug: str = "swarm-bot",
                permissions: dict[str, str] | None = None, token_ttl: float = 3600.0) -> None:
        """Register a GitHub App: ``GET /app`` and ``POST /app/installations/{installation_id}/access_tokens``
        answer a JWT signed (RS256) by its private key with ``iss`` = ``app_id`` and ``exp`` at most 10 minutes
        ahead. Installation tokens then work on REST and GraphQL for ``token_ttl`` seconds (401 after)."""
        granted = permissions if permissions is not None else {
            "metadata": "read", "contents": "write", "pull_requests": "write", "checks": "read",
            "statuses": "read", "actions": "read", "repository_hooks": "write"}
        with self._lock:
            self._apps[str(app_id)] = _App(app_id, slug, public_key, installation_id, dict(granted), token_ttl)

    def revoke_installation_tokens(self) -> None:
        """Every installation token handed out so far stops working (401), as after ``DELETE
        /installation/token`` or a key rotation."""
        with self._lock:
            self._installation_tokens.clear()

    def hooks(self, repo: str) -> list[dict[str, Any]]:
        """The repository's webhooks as the API shows them (secret masked), plus ``secret`` in clear."""
        with self._lock:
            r = self._repo(repo)
            return [{**self._hook_json(r, h), "secret": h.config.get("secret", "")} for h in r.hooks.values()]

    def deliver(self, repo: str, event: str, payload: dict[str, Any], timeout: float = 5.0) -> list[int]:
        """Deliver ``event`` to every active hook of ``repo`` subscribed to it, as GitHub does: a JSON POST
        signed with the hook's secret (``X-Hub-Signature-256``), the answer recorded as a delivery
        (``status_code`` 0 and "failed to connect" when nothing answers). Returns the status codes."""
        import hmac
        import urllib.error
        import urllib.request
        import uuid

        with self._lock:
            r = self._repo(repo)
            targets = [h for h in r.hooks.values() if h.active and (event in h.events or "*" in h.events)]
        codes = []
        for hook in targets:
            body = json.dumps(payload).encode()
            guid = str(uuid.uuid4())
            headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": guid,
                       "X-GitHub-Hook-ID": str(hook.id), "User-Agent": "GitHub-Hookshot/fake"}
            secret = hook.config.get("secret", "")
            if secret:
                headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body,
                                                                       hashlib.sha256).hexdigest()
            started = time.monotonic()
            request = urllib.request.Request(hook.config.get("url", ""), data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=timeout) as answer:
                    code, status = answer.status, "OK"
            except urllib.error.HTTPError as exc:
                code, status = exc.code, f"Invalid HTTP Response: {exc.code}"
            except (OSError, ValueError):
                code, status = 0, "failed to connect"
            with self._lock:
                hook.deliveries.append({
                    "id": next(self._ids), "guid": guid, "delivered_at": _now(), "redelivery": False,
                    "duration": round(time.monotonic() - started, 3), "status": status, "status_code": code,
                    "event": event, "action": payload.get("action"), "installation_id": None,
                    "repository_id": r.id, "throttled_at": None,
                })
            codes.append(code)
        return codes

    def open_pr(self, repo: str, head: str, base: str = "main", title: str | None = None, body: str = "",
                draft: bool = False, user: str = "agent") -> int:
        """Open a pull request as ``user`` (as if an agent or a human did); returns its number.

        Raises ValueError where GitHub would answer 422 (no such branch, nothing ahead, a duplicate).
        """
        with self._lock:
            try:
                pull = self._create_pull(self._repo(repo), head, base, title or head, body, draft, user)
            except _HttpError as exc:
                raise ValueError(json.dumps(exc.body)) from exc
            return pull.number

    def merge_pr(self, repo: str, number: int, squash: bool = False) -> str:
        """Really merge (or squash) the head into the base in the bare repository; returns the new commit."""
        with self._lock:
            r = self._repo(repo)
            try:
                return self._merge(r, self._pull(r, number), squash=squash, by=self.login)
            except _HttpError as exc:
                raise ValueError(json.dumps(exc.body)) from exc

    def close_pr(self, repo: str, number: int) -> None:
        with self._lock:
            r = self._repo(repo)
            self._close(r, self._pull(r, number))

    def add_check_run(
        self,
        repo: str,
        sha: str,
        name: str,
        status: str = "completed",
        conclusion: str | None = "success",
        title: str = "",
        summary: str = "",
        text: str = "",
        annotations: Iterable[tuple[str, int, str, str] | tuple[str, int, str, str, str]] = (),
        log: str | None = None,
        app_slug: str = "github-actions",
        details_url: str | None = None,
    ) -> int:
        """Add a check run on commit ``sha``; returns its id.

        ``annotations``: ``(path, line, level, message)`` or ``(path, line, level, message, title)`` with
        level ``notice``/``warning``/``failure``. With ``log`` the run is a GitHub Actions job of the same
        id whose logs ``GET /actions/jobs/{id}/logs`` serves.
        """
        if status != "completed":
            conclusion = None
        with self._lock:
            r = self._repo(repo)
            run_id = next(self._ids)
            now = _now()
            run = _CheckRun(
                id=next(self._ids), sha=sha, name=name, status=status, conclusion=conclusion, title=title,
                summary=summary, text=text,
                annotations=[_annotation(a) for a in annotations],
                log=log, app_slug=app_slug, details_url=details_url, started_at=now,
                completed_at=now if status == "completed" else None, run_id=run_id, suite_id=next(self._ids),
            )
            r.check_runs[run.id] = run
            self._touch_pulls_with_head(r, sha)
            return run.id

    def update_check_run(self, check_id: int, *, status: str | None = None, conclusion: str | None = None,
                         title: str | None = None, summary: str | None = None, text: str | None = None,
                         log: str | None = None) -> None:
        """Move a check run on (e.g. from in_progress to completed with a conclusion)."""
        with self._lock:
            run, r = self._check_run(check_id)
            if status is not None:
                run.status = status
                run.completed_at = _now() if status == "completed" else None
                if status != "completed":
                    run.conclusion = None
            if conclusion is not None:
                run.conclusion = conclusion
            run.title = run.title if title is None else title
            run.summary = run.summary if summary is None else summary
            run.text = run.text if text is None else text
            run.log = run.log if log is None else log
            self._touch_pulls_with_head(r, run.sha)

    def add_status(self, repo: str, sha: str, context: str, state: str, description: str = "",
                   target_url: str = "") -> int:
        """Add a commit status (``error``/``failure``/``pending``/``success``); returns its id."""
        if state not in _STATUS_STATES:
            raise ValueError(f"state must be one of {sorted(_STATUS_STATES)}")
        with self._lock:
            r = self._repo(repo)
            status = _Status(next(self._ids), sha, context, state, description, target_url, _now(), self.login)
            r.statuses.append(status)
            self._touch_pulls_with_head(r, sha)
            return status.id

    def add_review(self, repo: str, number: int, login: str, state: str, body: str = "",
                   commit_id: str | None = None, comments: Iterable[tuple[str, int, str]] = (),
                   bot: bool = False) -> int:
        """Add a submitted review (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING); returns its id.

        ``comments``: ``(path, line, body)`` review comments. A bot (``bot=True`` or a login ending in
        ``[bot]``) has the REST login ``name[bot]`` and type Bot, and in GraphQL ``Bot`` with login ``name``.
        """
        if state.upper() not in _REVIEW_STATES:
            raise ValueError(f"unknown review state {state!r}")
        with self._lock:
            r = self._repo(repo)
            pull = self._pull(r, number)
            base_login, is_bot = _split_login(login, bot)
            review = self._store_review(r, pull, base_login, is_bot, _REVIEW_STATES[state.upper()], body,
                                        commit_id or self._head_sha(r, pull, r.git.branches()), comments)
            return review.id

    def dismiss_review(self, repo: str, number: int, review_id: int) -> None:
        """Dismiss an APPROVED or CHANGES_REQUESTED review (its state becomes DISMISSED, as on GitHub).

        Raises ValueError where GitHub answers 422 (a commented, pending or already dismissed review)."""
        with self._lock:
            r = self._repo(repo)
            pull = self._pull(r, number)
            review = r.reviews.get(review_id)
            if review is None or review.number != number:
                raise KeyError(f"no review {review_id} on pull request #{number}")
            try:
                self._dismiss(r, pull, review)
            except _HttpError as exc:
                raise ValueError(json.dumps(exc.body)) from exc

    def set_mergeable_unknown(self, repo: str, number: int, reads: int = 1) -> None:
        """The next ``reads`` reads of the pull request report mergeable null / UNKNOWN (GitHub computing)."""
        with self._lock:
            r = self._repo(repo)
            self._pull(r, number).unknown_reads = reads

    # ------------------------------------------------------------------------------------- faults

    def rate_limit(self, seconds: float, status: int = 403, retry_after: int | None = None,
                   resource: Literal["core", "graphql", "all"] = "core") -> None:
        """For ``seconds``, requests of ``resource`` are refused as rate-limited.

        The answer has ``status`` (403 or 429; for GraphQL also 200, GitHub's own way: an ``errors`` entry of
        type RATE_LIMITED), ``x-ratelimit-remaining: 0``, ``x-ratelimit-reset`` the end of the window and
        ``retry-after`` when given. The remaining counts are left as they were for after the window.
        """
        resources: tuple[Resource, ...] = ("core", "graphql") if resource == "all" else (resource,)
        with self._lock:
            self._rate_faults.append(_RateFault(time.time() + seconds, status, retry_after, resources))

    def lose_answer_next(self, n: int, method: str, path_prefix: str = "", status: int = 502) -> None:
        """The next ``n`` ``method`` requests under ``path_prefix`` are carried out, then answered ``status``
        as if the answer were lost on the way back: a client must check before writing again."""
        with self._lock:
            self._lost.append(_Countdown(n, status, path_prefix, method))

    def fail_next(self, n: int, status: int = 502, path_prefix: str = "") -> None:
        """The next ``n`` requests whose path starts with ``path_prefix`` answer ``status`` (GitHub's error body)."""
        with self._lock:
            self._failures.append(_Countdown(n, status, path_prefix))

    def delay_next(self, n: int, seconds: float, path_prefix: str = "") -> None:
        """The next ``n`` requests whose path starts with ``path_prefix`` are answered ``seconds`` late."""
        with self._lock:
            self._delays.append(_Countdown(n, seconds, path_prefix))

    def rate_remaining(self, resource: Resource = "core") -> int:
        with self._lock:
            self._roll_window(resource)
            return self._remaining[resource]

    def set_rate_remaining(self, resource: Resource, remaining: int) -> None:
        """Set what is left of ``resource``'s hourly budget (at 0 requests are refused as GitHub does)."""
        with self._lock:
            self._remaining[resource] = remaining

    # --------------------------------------------------------------------------------- inspection

    def pr(self, repo: str, number: int) -> dict[str, Any]:
        """The stored state of a pull request: number, title, body, head, base, head_sha, state, merged,
        draft, user, merge_commit_sha, commits (how many the base lacks), comments (issue comment bodies) and
        reviews ((login, state) pairs)."""
        with self._lock:
            r = self._repo(repo)
            return self._pr_state(r, self._pull(r, number), r.git.branches())

    def pulls(self, repo: str) -> list[dict[str, Any]]:
        """:meth:`pr` of every pull request of ``repo`` (open or not), by number."""
        with self._lock:
            r = self._repo(repo)
            refs = r.git.branches()
            return [self._pr_state(r, pull, refs) for _, pull in sorted(r.pulls.items())]

    def _pr_state(self, r: _Repo, pull: _Pull, refs: dict[str, str]) -> dict[str, Any]:
        number = pull.number
        return {
            "number": pull.number, "title": pull.title, "body": pull.body, "head": pull.head, "base": pull.base,
            "head_sha": self._head_sha(r, pull, refs), "state": pull.state, "merged": pull.merged,
            "draft": pull.draft, "user": self._rest_login(pull.user, pull.user_bot),
            "merge_commit_sha": pull.merge_commit_sha,
            # what the PR's Commits tab lists: the head's commits its base lacks (live while open)
            "commits": r.git.ahead_behind(self._base_sha(r, pull, refs), self._head_sha(r, pull, refs))[0],
            "comments": [c.body for c in r.issue_comments.values() if c.number == number],
            "reviews": [(self._rest_login(v.login, v.bot), v.state) for v in r.reviews.values() if v.number == number],
        }

    def queued(self, repo: str) -> list[int]:
        """The pull requests enqueued in the repository's merge queue (``add_repo(merge_queue=True)``)."""
        with self._lock:
            return list(self._repo(repo).queued)

    def branch_sha(self, repo: str, branch: str) -> str | None:
        with self._lock:
            return self._repo(repo).git.branches().get(branch)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def count(self, kind: Kind | None = None, *, path_prefix: str = "") -> int:
        """How many logged requests are of ``kind`` (any when None) with a path starting with ``path_prefix``."""
        with self._lock:
            return sum(1 for r in self._log if (kind is None or r.kind == kind) and r.path.startswith(path_prefix))

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()
            self._points.clear()
            self._most_in_flight.clear()

    def most_in_flight(self, kind: Kind) -> int:
        """The most requests of ``kind`` the fake was answering at once since the last :meth:`reset_log`."""
        with self._lock:
            return self._most_in_flight[kind]

    @property
    def graphql_points(self) -> list[tuple[str | None, int]]:
        """(operation, points) of every GraphQL call that ran since the last :meth:`reset_log`, oldest first."""
        with self._lock:
            return list(self._points)

    # ---------------------------------------------------------------------------- request handling

    def _serve(self, handler: _Handler) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        req = _Request(
            method=handler.command, path=parsed.path, query_string=parsed.query,
            query=dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)), body=body,
            authorization=handler.headers.get("Authorization"), if_none_match=handler.headers.get("If-None-Match"),
        )
        kind = self._kind(req)
        with self._lock:
            self._in_flight[kind] += 1
            self._most_in_flight[kind] = max(self._most_in_flight[kind], self._in_flight[kind])
        try:
            self._answer(handler, req, kind)
        finally:
            with self._lock:
                self._in_flight[kind] -= 1

    def _answer(self, handler: _Handler, req: _Request, kind: Kind) -> None:
        delayed = self._take(self._delays, req.path)
        if delayed:
            self._stopping.wait(delayed)
        try:
            resp = self._respond(req, kind)
        except Exception:
            error = traceback.format_exc()
            with self._lock:
                self.internal_errors.append(error)
            print(f"fake GitHub: internal error on {req.method} {req.path}:\n{error}", file=sys.stderr)
            resp = _Response(500, {"message": "Server Error (fake GitHub bug, see stderr)"})
        if os.environ.get("SWARM_FAKE_GITHUB_DEBUG"):
            print(f"fake GitHub: {req.method} {handler.path} {req.body[:2000]!r} -> {resp.status} "
                  f"{resp.payload()[:4000]!r}", file=sys.stderr)
        with self._lock:  # logged before the answer goes out, so a client that has it sees the record
            self._log.append(RequestRecord(
                req.method, req.path, req.query_string, resp.status, kind, req.operation,
                req.authorization is not None, resp.fault, delayed or 0.0,
            ))
        self._write(handler, req, resp)

    @staticmethod
    def _kind(req: _Request) -> Kind:
        if req.path.startswith("/_blobs/"):
            return "redirect_target"
        if req.path == "/graphql":
            return "graphql"
        return "rest_read" if req.method in ("GET", "HEAD") else "rest_write"

    def _take(self, countdowns: list[_Countdown], path: str, method: str = "") -> float:
        with self._lock:
            for countdown in countdowns:
                if countdown.method and countdown.method != method:
                    continue
                if countdown.left > 0 and path.startswith(countdown.path_prefix):
                    countdown.left -= 1
                    return countdown.value
        return 0.0

    def _respond(self, req: _Request, kind: Kind) -> _Response:
        failed = self._take(self._failures, req.path)
        if failed:
            resp = self._failure(int(failed))
            if kind != "redirect_target":
                resp.headers.update(self._rate_headers("graphql" if kind == "graphql" else "core"))
            return resp
        if kind == "redirect_target":
            return self._blob(req)
        resource: Resource = "graphql" if kind == "graphql" else "core"
        if req.path == "/app" or req.path.startswith("/app/"):
            resp = self._app_endpoint(req)
        elif not self._authorized(req):
            message = "Bad credentials" if req.authorization else "Requires authentication"
            resp = _Response(401, {"message": message, "documentation_url": _DOCS, "status": "401"})
        else:
            with self._lock:
                refused = self._rate_refusal(resource)
            if refused is not None:
                return refused
            resp = self._graphql(req) if kind == "graphql" else self._rest(req)
        lost = self._take(self._lost, req.path, req.method)
        if lost:  # the write happened; the answer is lost on the way back (a proxy's 502)
            return self._failure(int(lost))
        with self._lock:
            if (req.method in ("GET", "HEAD") and resp.status == 200 and resp.raw is None
                    and resp.body is not None):
                etag = 'W/"' + hashlib.sha256(resp.payload()).hexdigest()[:32] + '"'
                resp.headers["ETag"] = etag
                resp.headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
                resp.headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
                if req.if_none_match and _etag_matches(req.if_none_match, etag):
                    resp = _Response(304, headers={"ETag": etag, "Cache-Control": resp.headers["Cache-Control"]})
            if resp.counted and kind != "graphql":  # GraphQL is charged its points when it runs
                self._spend(resource)
            resp.headers.update(self._rate_headers(resource))
        resp.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        resp.headers.setdefault("X-GitHub-Request-Id", secrets.token_hex(8).upper())
        return resp

    def _authorized(self, req: _Request) -> bool:
        if not req.authorization:
            return False
        scheme, _, value = req.authorization.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return False
        if secrets.compare_digest(value.strip(), self.token):
            return True
        with self._lock:
            granted = self._installation_tokens.get(value.strip())
            if granted is None:
                return False
            if granted.expires_at <= time.time():
                self.refused_tokens.append("installation token expired")
                return False
            return True

    def _installation_permissions(self, req: _Request) -> dict[str, str] | None:
        """What the installation token of ``req`` may do, or None when it is not an installation token."""
        _, _, value = (req.authorization or "").partition(" ")
        granted = self._installation_tokens.get(value.strip())
        return None if granted is None else granted.permissions

    # ---------------------------------------------------------------------------------- GitHub Apps

    def _app_endpoint(self, req: _Request) -> _Response:
        """``GET /app`` and ``POST /app/installations/{id}/access_tokens``, authenticated by the app's JWT."""
        with self._lock:
            app = self._app_from_jwt(req)
            if isinstance(app, _Response):
                return app
            if req.method == "GET" and req.path == "/app":
                body = {**self._app_json(app.slug), "id": app.app_id, "permissions": app.permissions,
                        "events": [], "installations_count": 1}
                return _Response(200, body, counted=True)
            found = re.fullmatch(r"/app/installations/(\d+)/access_tokens", req.path)
            if req.method != "POST" or found is None:
                return _Response(404, {"message": "Not Found", "documentation_url": _DOCS, "status": "404"})
            if int(found.group(1)) != app.installation_id:
                return _Response(404, {"message": "Not Found", "documentation_url": _DOCS, "status": "404"})
            token = "ghs_" + secrets.token_hex(18)
            expires = time.time() + app.token_ttl
            self._installation_tokens[token] = _InstallationToken(app.installation_id, expires, app.permissions)
            self.tokens_minted.append(token)
            return _Response(201, {
                "token": token, "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
                .replace("+00:00", "Z"), "permissions": app.permissions, "repository_selection": "selected",
            }, counted=True)

    def _app_from_jwt(self, req: _Request) -> _App | _Response:
        """The app whose private key signed the bearer JWT (RS256, ``iss`` its id, ``exp`` ≤ 10 minutes
        ahead, ``iat`` not in the future), or GitHub's 401."""
        def refused(why: str, message: str) -> _Response:
            self.refused_tokens.append(why)
            return _Response(401, {"message": message, "documentation_url": _DOCS, "status": "401"})

        scheme, _, value = (req.authorization or "").partition(" ")
        if scheme.lower() != "bearer" or value.count(".") != 2:
            return refused("not a JWT", "A JSON web token could not be decoded")
        try:
            unverified = jwt.decode(value, options={"verify_signature": False})
            header = jwt.get_unverified_header(value)
        except jwt.PyJWTError:
            return refused("not a JWT", "A JSON web token could not be decoded")
        app = self._apps.get(str(unverified.get("iss", "")))
        if app is None:
            return refused("unknown iss", "Integration not found")
        if header.get("alg") != "RS256":
            return refused("not RS256", "A JSON web token could not be decoded")
        now = time.time()
        try:
            claims = jwt.decode(value, app.public_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]})
        except jwt.ExpiredSignatureError:
            return refused("JWT expired", "'Expiration time' claim ('exp') must be a numeric value representing "
                                          "the future time at which the assertion expires")
        except jwt.PyJWTError as exc:
            return refused(f"bad JWT: {type(exc).__name__}", "A JSON web token could not be decoded")
        if float(claims["exp"]) > now + 600 + 5:
            return refused("exp too far", "'Expiration time' claim ('exp') is too far in the future")
        if float(claims["iat"]) > now + 5:
            return refused("iat in the future", "'Issued at' claim ('iat') must be an Integer representing the "
                                                "time that the assertion was issued")
        return app

    def _write(self, handler: _Handler, req: _Request, resp: _Response) -> None:
        payload = resp.payload()
        try:
            handler.send_response(resp.status)
            if resp.status != 304:
                if payload or resp.status not in (204, 302):
                    handler.send_header("Content-Type", resp.content_type)
                handler.send_header("Content-Length", str(len(payload)))
            for name, value in resp.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if req.method != "HEAD" and resp.status != 304 and payload:
                handler.wfile.write(payload)
            handler.wfile.flush()
        except (ConnectionError, TimeoutError):
            handler.close_connection = True

    # --------------------------------------------------------------------------------- rate limits

    def _roll_window(self, resource: Resource) -> None:
        now = int(time.time())
        if now >= self._reset[resource]:
            self._remaining[resource] = RATE_LIMIT
            self._reset[resource] = now + 3600

    def _spend(self, resource: Resource, points: int = 1) -> None:
        self._roll_window(resource)
        self._remaining[resource] = max(0, self._remaining[resource] - points)

    def _rate_headers(self, resource: Resource, *, reset: int | None = None,
                      remaining: int | None = None) -> dict[str, str]:
        self._roll_window(resource)
        left = self._remaining[resource] if remaining is None else remaining
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(left),
            "x-ratelimit-reset": str(self._reset[resource] if reset is None else reset),
            "x-ratelimit-used": str(RATE_LIMIT - left),
            "x-ratelimit-resource": resource,
        }

    def _rate_refusal(self, resource: Resource) -> _Response | None:
        now = time.time()
        self._rate_faults = [f for f in self._rate_faults if f.until > now]
        fault = next((f for f in self._rate_faults if resource in f.resources), None)
        self._roll_window(resource)
        if fault is None and self._remaining[resource] > 0:
            return None
        status = fault.status if fault is not None else (200 if resource == "graphql" else 403)
        reset = math.ceil(fault.until) if fault is not None else self._reset[resource]
        user_id = self._user_id(self.login)
        message = f"API rate limit exceeded for user ID {user_id}."
        if status == 200:
            body: Any = {"errors": [{"type": "RATE_LIMITED", "message": message}]}
        else:
            message += (" If you reach out to GitHub Support for help, please include the request ID "
                        f"{secrets.token_hex(8).upper()}.")
            body = {"message": message, "documentation_url": f"{_DOCS}/using-the-rest-api/rate-limits-for-the-rest-api",
                    "status": str(status)}
        headers = self._rate_headers(resource, reset=reset, remaining=0)
        if fault is not None and fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        return _Response(status, body, headers=headers, fault="rate_limit")

    @staticmethod
    def _failure(status: int) -> _Response:
        if status == 503:
            html = ("<!DOCTYPE html>\n<html>\n  <head><title>Unicorn! &middot; GitHub</title></head>\n"
                    "  <body><p><strong>No server is currently available to service your request.</strong></p>"
                    "<p>Sorry about that. Please try refreshing and contact us if the problem persists.</p>"
                    "</body>\n</html>\n")
            return _Response(503, raw=html.encode(), content_type="text/html; charset=utf-8", fault="fail")
        if status == 504:
            message = ("We couldn't respond to your request in time. Sorry about that. Please try resubmitting "
                       "your request and contact us if the problem persists.")
        elif status >= 500:
            message = "Server Error"
        else:
            message = HTTPStatus(status).phrase
        return _Response(status, {"message": message}, fault="fail")

    # -------------------------------------------------------------------------------------- helpers

    def _repo(self, full_name: str) -> _Repo:
        repo = self._repos.get(full_name.lower())
        if repo is None:
            raise KeyError(f"no repository {full_name!r}; add_repo it first")
        return repo

    def _pull(self, repo: _Repo, number: int) -> _Pull:
        pull = repo.pulls.get(number)
        if pull is None:
            raise KeyError(f"{repo.full_name} has no pull request #{number}")
        return pull

    def _check_run(self, check_id: int) -> tuple[_CheckRun, _Repo]:
        for repo in self._repos.values():
            if check_id in repo.check_runs:
                return repo.check_runs[check_id], repo
        raise KeyError(f"no check run {check_id}")

    def _user_id(self, login: str) -> int:
        if login not in self._user_ids:
            self._user_ids[login] = next(self._ids)
        return self._user_ids[login]

    @staticmethod
    def _rest_login(login: str, bot: bool) -> str:
        return f"{login}[bot]" if bot else login

    def _api(self, repo: _Repo) -> str:
        return f"{self.url}/repos/{repo.full_name}"

    def _web(self, repo: _Repo) -> str:
        return f"{self.url}/{repo.full_name}"

    def _head_sha(self, repo: _Repo, pull: _Pull, refs: dict[str, str]) -> str:
        """The head commit: live from the branch while open, the last one seen once closed."""
        if pull.state == "open" and pull.head in refs:
            pull.head_sha = refs[pull.head]
        return pull.head_sha

    def _base_sha(self, repo: _Repo, pull: _Pull, refs: dict[str, str]) -> str:
        if pull.state == "open" and pull.base in refs:
            pull.base_sha = refs[pull.base]
        return pull.base_sha

    def _touch_pulls_with_head(self, repo: _Repo, sha: str) -> None:
        for pull in repo.pulls.values():
            if pull.head_sha == sha:
                self._touch(pull)

    def _touch(self, pull: _Pull) -> None:
        pull.updated_at = _now()
        pull.updated_seq = next(self._seq)

    def _author_association(self, repo: _Repo, login: str, bot: bool) -> str:
        if bot:
            return "NONE"
        return "OWNER" if login.lower() == repo.owner.lower() else "CONTRIBUTOR"

    # ------------------------------------------------------------------------------ pull requests

    def _create_pull(self, repo: _Repo, head: str, base: str, title: str, body: str, draft: bool,
                     user: str) -> _Pull:
        owner, sep, branch = head.partition(":")
        if sep:
            if owner.lower() != repo.owner.lower():
                raise _validation_failed({"resource": "PullRequest", "field": "head", "code": "invalid"})
            head = branch
        refs = repo.git.branches()
        if head not in refs:
            raise _validation_failed({"resource": "PullRequest", "field": "head", "code": "invalid"})
        if base not in refs:
            raise _validation_failed({"resource": "PullRequest", "field": "base", "code": "invalid"})
        for other in repo.pulls.values():
            if other.state == "open" and other.head == head and other.base == base:
                raise _validation_failed({"resource": "PullRequest", "code": "custom",
                                          "message": f"A pull request already exists for {repo.owner}:{head}."})
        ahead, _ = repo.git.ahead_behind(refs[base], refs[head])
        if ahead == 0:
            raise _validation_failed({"resource": "PullRequest", "code": "custom",
                                      "message": f"No commits between {base} and {head}"})
        login, bot = _split_login(user, False)
        now = _now()
        pull = _Pull(
            number=repo.next_number, id=next(self._ids), title=title, body=body, head=head, base=base, draft=draft,
            user=login, user_bot=bot, head_sha=refs[head], base_sha=refs[base], created_at=now, updated_at=now,
            updated_seq=next(self._seq),
        )
        repo.next_number += 1
        repo.pulls[pull.number] = pull
        return pull

    def _close(self, repo: _Repo, pull: _Pull) -> None:
        refs = repo.git.branches()
        self._head_sha(repo, pull, refs)
        self._base_sha(repo, pull, refs)
        pull.state = "closed"
        pull.closed_at = _now()
        self._touch(pull)

    def _merge(self, repo: _Repo, pull: _Pull, *, squash: bool, by: str, expected_sha: str | None = None,
               title: str | None = None, message: str | None = None) -> str:
        if pull.state != "open":
            raise _HttpError(405, {"message": "Pull Request is not mergeable", "documentation_url": _DOCS})
        refs = repo.git.branches()
        head = self._head_sha(repo, pull, refs)
        base = self._base_sha(repo, pull, refs)
        if expected_sha is not None and expected_sha != head:
            raise _HttpError(409, {"message": "Head branch was modified. Review and try the merge again.",
                                   "documentation_url": _DOCS})
        tree = repo.git.merge_tree(base, head)
        if tree is None:
            raise _HttpError(405, {"message": "Pull Request is not mergeable", "documentation_url": _DOCS})
        author = (by, f"{self._user_id(by)}+{by}@users.noreply.github.com")
        if squash:
            headline = title or f"{pull.title} (#{pull.number})"
            sha = repo.git.commit_tree(tree, [base], f"{headline}\n\n{message or pull.body}".rstrip() + "\n", author)
        else:
            headline = title or f"Merge pull request #{pull.number} from {repo.owner}/{pull.head}"
            sha = repo.git.commit_tree(tree, [base, head], f"{headline}\n\n{message or pull.title}\n", author)
        if not repo.git.update_ref(pull.base, sha, base):
            raise _HttpError(409, {"message": "Base branch was modified. Review and try the merge again.",
                                   "documentation_url": _DOCS})
        self._close(repo, pull)
        pull.merged = True
        pull.merged_at = pull.closed_at
        pull.merged_by = by
        pull.merge_commit_sha = sha
        return sha

    def _merge_state(self, repo: _Repo, pull: _Pull, refs: dict[str, str], *, read: bool) -> tuple[str, str]:
        """(mergeable, mergeStateStatus) as GraphQL spells them; ``read`` consumes a set_mergeable_unknown."""
        if pull.state != "open":
            return "UNKNOWN", "UNKNOWN"
        if read and pull.unknown_reads > 0:
            pull.unknown_reads -= 1
            return "UNKNOWN", "UNKNOWN"
        head = self._head_sha(repo, pull, refs)
        base = self._base_sha(repo, pull, refs)
        if repo.git.merge_tree(base, head) is None:
            return "CONFLICTING", "DIRTY"
        if pull.draft:
            return "MERGEABLE", "DRAFT"
        if repo.strict and not repo.git.is_ancestor(base, head):
            return "MERGEABLE", "BEHIND"
        rollup = self._rollup(repo, head)
        if rollup is not None and rollup[0] in ("FAILURE", "ERROR"):
            return "MERGEABLE", "UNSTABLE"
        return "MERGEABLE", "CLEAN"

    def _review_decision(self, repo: _Repo, pull: _Pull) -> str | None:
        if repo.required_approvals <= 0:
            return None
        latest: dict[tuple[str, bool], str] = {}
        for review in sorted(repo.reviews.values(), key=lambda v: v.id):
            if review.number == pull.number and review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[(review.login, review.bot)] = review.state
        if "CHANGES_REQUESTED" in latest.values():
            return "CHANGES_REQUESTED"
        if sum(1 for state in latest.values() if state == "APPROVED") >= repo.required_approvals:
            return "APPROVED"
        return "REVIEW_REQUIRED"

    def _latest_reviews(self, repo: _Repo, pull: _Pull) -> list[_Review]:
        latest: dict[tuple[str, bool], _Review] = {}
        for review in sorted(repo.reviews.values(), key=lambda v: v.id):
            if review.number == pull.number and review.state != "PENDING":
                latest[(review.login, review.bot)] = review
        return sorted(latest.values(), key=lambda v: v.id)

    def _latest_opinionated_reviews(self, repo: _Repo, pull: _Pull) -> list[_Review]:
        """GitHub's ``latestOpinionatedReviews``: per reviewer, the latest review that is an opinion (APPROVED
        or CHANGES_REQUESTED); COMMENTED reviews are skipped, and a reviewer whose latest such review was
        dismissed has no opinion (the dismissal is not undone by an older approval showing through)."""
        latest: dict[tuple[str, bool], _Review] = {}
        for review in sorted(repo.reviews.values(), key=lambda v: v.id):
            if review.number == pull.number and review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[(review.login, review.bot)] = review
        return sorted((v for v in latest.values() if v.state != "DISMISSED"), key=lambda v: v.id)

    def _dismiss(self, repo: _Repo, pull: _Pull, review: _Review) -> _Review:
        if review.state not in ("APPROVED", "CHANGES_REQUESTED"):
            word = {"PENDING": "pending", "COMMENTED": "commented", "DISMISSED": "dismissed"}.get(review.state, "")
            raise _HttpError(422, {"message": f"Can not dismiss a {word} pull request review".replace("  ", " "),
                                   "documentation_url": f"{_DOCS}/pulls/reviews#dismiss-a-review-for-a-pull-request",
                                   "status": "422"})
        review.state = "DISMISSED"
        self._touch(pull)
        return review

    def _store_review(self, repo: _Repo, pull: _Pull, login: str, bot: bool, state: str, body: str,
                      commit_id: str, comments: Iterable[tuple[str, int, str]]) -> _Review:
        now = _now()
        review = _Review(next(self._ids), pull.number, login, bot, state, body, commit_id,
                         None if state == "PENDING" else now)
        repo.reviews[review.id] = review
        for path, line, text in comments:
            comment = _ReviewComment(next(self._ids), review.id, pull.number, path, int(line), text, commit_id,
                                     login, bot, now)
            repo.review_comments[comment.id] = comment
        self._touch(pull)
        return review

    # ------------------------------------------------------------------------------ JSON builders

    def _user_json(self, login: str, *, bot: bool = False) -> dict[str, Any]:
        rest_login = self._rest_login(login, bot)
        uid = self._user_id(rest_login)
        api = f"{self.url}/users/{urllib.parse.quote(rest_login)}"
        return {
            "login": rest_login, "id": uid, "node_id": _node_id("BOT" if bot else "U", uid),
            "avatar_url": f"{self.url}/avatars/u/{uid}?v=4", "gravatar_id": "", "url": api,
            "html_url": f"{self.url}/apps/{login}" if bot else f"{self.url}/{login}",
            "followers_url": f"{api}/followers", "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}", "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions", "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events", "type": "Bot" if bot else "User",
            "user_view_type": "public", "site_admin": False,
        }

    def _repo_json(self, repo: _Repo) -> dict[str, Any]:
        api, web = self._api(repo), self._web(repo)
        return {
            "id": repo.id, "node_id": _node_id("R", repo.id), "name": repo.name, "full_name": repo.full_name,
            "private": False, "owner": self._user_json(repo.owner), "html_url": web, "description": None,
            "fork": False, "url": api, "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "branches_url": f"{api}/branches{{/branch}}", "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}", "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}", "git_refs_url": f"{api}/git/refs{{/sha}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}", "issues_url": f"{api}/issues{{/number}}",
            "merges_url": f"{api}/merges", "pulls_url": f"{api}/pulls{{/number}}",
            "statuses_url": f"{api}/statuses/{{sha}}", "git_url": f"{web}.git", "clone_url": f"{web}.git",
            "ssh_url": f"{web}.git", "svn_url": web, "homepage": None, "size": 0, "language": None,
            "created_at": repo.created_at, "updated_at": repo.created_at, "pushed_at": repo.created_at,
            "has_issues": True, "has_projects": False, "has_downloads": True, "has_wiki": False,
            "has_pages": False, "has_discussions": False, "forks_count": 0, "forks": 0, "archived": False,
            "disabled": False, "open_issues_count": sum(1 for p in repo.pulls.values() if p.state == "open"),
            "open_issues": sum(1 for p in repo.pulls.values() if p.state == "open"), "license": None,
            "allow_forking": True, "is_template": False, "web_commit_signoff_required": False, "topics": [],
            "visibility": "public", "watchers": 0, "watchers_count": 0, "stargazers_count": 0,
            "default_branch": repo.default_branch, "allow_merge_commit": True, "allow_squash_merge": True,
            "allow_rebase_merge": True, "allow_auto_merge": False, "allow_update_branch": True,
            "delete_branch_on_merge": False, "use_squash_pr_title_as_default": False,
            "permissions": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
            "network_count": 0, "subscribers_count": 0,
        }

    def _pull_json(self, repo: _Repo, pull: _Pull, refs: dict[str, str], *, full: bool,
                   computing: bool = False) -> dict[str, Any]:
        api, web, n = self._api(repo), self._web(repo), pull.number
        head = self._head_sha(repo, pull, refs)
        base = self._base_sha(repo, pull, refs)

        def part(ref: str, sha: str) -> dict[str, Any]:
            return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": sha, "user": self._user_json(repo.owner),
                    "repo": self._repo_json(repo)}

        data: dict[str, Any] = {
            "url": f"{api}/pulls/{n}", "id": pull.id, "node_id": _node_id("PR", pull.id),
            "html_url": f"{web}/pull/{n}", "diff_url": f"{web}/pull/{n}.diff", "patch_url": f"{web}/pull/{n}.patch",
            "issue_url": f"{api}/issues/{n}", "number": n, "state": pull.state, "locked": False,
            "title": pull.title, "user": self._user_json(pull.user, bot=pull.user_bot), "body": pull.body or None,
            "labels": [], "milestone": None, "active_lock_reason": None, "created_at": pull.created_at,
            "updated_at": pull.updated_at, "closed_at": pull.closed_at, "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha, "assignee": None, "assignees": [],
            "requested_reviewers": [], "requested_teams": [], "draft": pull.draft,
            "commits_url": f"{api}/pulls/{n}/commits", "review_comments_url": f"{api}/pulls/{n}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}", "comments_url": f"{api}/issues/{n}/comments",
            "statuses_url": f"{api}/statuses/{head}", "head": part(pull.head, head), "base": part(pull.base, base),
            "_links": {
                "self": {"href": f"{api}/pulls/{n}"}, "html": {"href": f"{web}/pull/{n}"},
                "issue": {"href": f"{api}/issues/{n}"}, "comments": {"href": f"{api}/issues/{n}/comments"},
                "review_comments": {"href": f"{api}/pulls/{n}/comments"},
                "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/pulls/{n}/commits"}, "statuses": {"href": f"{api}/statuses/{head}"},
            },
            "author_association": self._author_association(repo, pull.user, pull.user_bot), "auto_merge": None,
        }
        if full:
            if computing:
                mergeable, state = "UNKNOWN", "UNKNOWN"
            else:
                mergeable, state = self._merge_state(repo, pull, refs, read=True)
            ahead, _ = repo.git.ahead_behind(base, head)
            additions, deletions, files = repo.git.diffstat(base, head)
            data.update({
                "merged": pull.merged, "mergeable": None if mergeable == "UNKNOWN" else mergeable == "MERGEABLE",
                "rebaseable": None if mergeable == "UNKNOWN" else mergeable == "MERGEABLE",
                "mergeable_state": state.lower(),
                "merged_by": self._user_json(pull.merged_by) if pull.merged_by else None,
                "comments": sum(1 for c in repo.issue_comments.values() if c.number == n),
                "review_comments": sum(1 for c in repo.review_comments.values() if c.number == n),
                "maintainer_can_modify": False, "commits": ahead, "additions": additions,
                "deletions": deletions, "changed_files": files,
            })
        return data

    def _review_json(self, repo: _Repo, review: _Review) -> dict[str, Any]:
        api, web = self._api(repo), self._web(repo)
        data: dict[str, Any] = {
            "id": review.id, "node_id": _node_id("PRR", review.id),
            "user": self._user_json(review.login, bot=review.bot), "body": review.body, "state": review.state,
            "html_url": f"{web}/pull/{review.number}#pullrequestreview-{review.id}",
            "pull_request_url": f"{api}/pulls/{review.number}",
            "author_association": self._author_association(repo, review.login, review.bot),
            "_links": {"html": {"href": f"{web}/pull/{review.number}#pullrequestreview-{review.id}"},
                       "pull_request": {"href": f"{api}/pulls/{review.number}"}},
            "commit_id": review.commit_id,
        }
        if review.submitted_at is not None:
            data["submitted_at"] = review.submitted_at
        return data

    def _review_comment_json(self, repo: _Repo, comment: _ReviewComment) -> dict[str, Any]:
        api, web = self._api(repo), self._web(repo)
        html = f"{web}/pull/{comment.number}#discussion_r{comment.id}"
        return {
            "url": f"{api}/pulls/comments/{comment.id}", "pull_request_review_id": comment.review_id,
            "id": comment.id, "node_id": _node_id("PRRC", comment.id),
            "diff_hunk": f"@@ -{comment.line},1 +{comment.line},1 @@", "path": comment.path,
            "position": comment.line, "original_position": comment.line, "commit_id": comment.commit_id,
            "original_commit_id": comment.commit_id, "user": self._user_json(comment.login, bot=comment.bot),
            "body": comment.body, "created_at": comment.created_at, "updated_at": comment.created_at,
            "html_url": html, "pull_request_url": f"{api}/pulls/{comment.number}",
            "author_association": self._author_association(repo, comment.login, comment.bot),
            "_links": {"self": {"href": f"{api}/pulls/comments/{comment.id}"}, "html": {"href": html},
                       "pull_request": {"href": f"{api}/pulls/{comment.number}"}},
            "start_line": None, "original_start_line": None, "start_side": None, "line": comment.line,
            "original_line": comment.line, "side": "RIGHT", "subject_type": "line",
        }

    def _issue_comment_json(self, repo: _Repo, comment: _IssueComment) -> dict[str, Any]:
        api, web = self._api(repo), self._web(repo)
        return {
            "url": f"{api}/issues/comments/{comment.id}",
            "html_url": f"{web}/pull/{comment.number}#issuecomment-{comment.id}",
            "issue_url": f"{api}/issues/{comment.number}", "id": comment.id,
            "node_id": _node_id("IC", comment.id), "user": self._user_json(comment.login, bot=comment.bot),
            "created_at": comment.created_at, "updated_at": comment.created_at,
            "author_association": self._author_association(repo, comment.login, comment.bot),
            "body": comment.body, "performed_via_github_app": None,
        }

    def _app_json(self, slug: str) -> dict[str, Any]:
        app_id = self._user_id(f"app:{slug}")
        name = "GitHub Actions" if slug == "github-actions" else slug.replace("-", " ").title()
        return {
            "id": app_id, "slug": slug, "client_id": f"Iv1.{app_id:016x}", "node_id": _node_id("A", app_id),
            "owner": self._user_json("github"), "name": name, "description": "",
            "external_url": f"{self.url}/apps/{slug}", "html_url": f"{self.url}/apps/{slug}",
            "created_at": "2018-07-30T09:30:17Z", "updated_at": "2024-04-10T20:33:16Z",
            "permissions": {"checks": "write", "statuses": "write", "pull_requests": "write"},
            "events": ["check_run", "pull_request", "push"],
        }

    def _check_run_urls(self, repo: _Repo, run: _CheckRun) -> tuple[str, str]:
        """(html_url, details_url) of a check run: an Actions job page, or the run's page on GitHub."""
        web = self._web(repo)
        if run.app_slug == "github-actions":
            html = f"{web}/actions/runs/{run.run_id}/job/{run.id}"
            return html, run.details_url or html
        html = f"{web}/runs/{run.id}"
        return html, run.details_url or html

    def _check_run_json(self, repo: _Repo, run: _CheckRun) -> dict[str, Any]:
        api = self._api(repo)
        html, details = self._check_run_urls(repo, run)
        refs = repo.git.branches()
        pulls = [
            {"url": f"{api}/pulls/{p.number}", "id": p.id, "number": p.number,
             "head": {"ref": p.head, "sha": p.head_sha, "repo": {"id": repo.id, "url": api, "name": repo.name}},
             "base": {"ref": p.base, "sha": p.base_sha, "repo": {"id": repo.id, "url": api, "name": repo.name}}}
            for p in repo.pulls.values()
            if p.state == "open" and self._head_sha(repo, p, refs) == run.sha
        ]
        return {
            "id": run.id, "name": run.name, "node_id": _node_id("CR", run.id), "head_sha": run.sha,
            "external_id": "", "url": f"{api}/check-runs/{run.id}", "html_url": html, "details_url": details,
            "status": run.status, "conclusion": run.conclusion, "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {"title": run.title or None, "summary": run.summary or None, "text": run.text or None,
                       "annotations_count": len(run.annotations),
                       "annotations_url": f"{api}/check-runs/{run.id}/annotations"},
            "check_suite": {"id": run.suite_id}, "app": self._app_json(run.app_slug), "pull_requests": pulls,
        }

    def _status_json(self, repo: _Repo, status: _Status) -> dict[str, Any]:
        creator = self._user_json(status.creator)
        return {
            "url": f"{self._api(repo)}/statuses/{status.sha}", "avatar_url": creator["avatar_url"],
            "id": status.id, "node_id": _node_id("SC", status.id), "state": status.state,
            "description": status.description or None, "target_url": status.target_url or None,
            "context": status.context, "created_at": status.created_at, "updated_at": status.created_at,
            "creator": creator,
        }

    def _commit_json(self, repo: _Repo, commit: _Commit) -> dict[str, Any]:
        api, web = self._api(repo), self._web(repo)
        return {
            "sha": commit.sha, "node_id": _node_id("C", int(commit.sha[:12], 16)),
            "url": f"{api}/commits/{commit.sha}", "html_url": f"{web}/commit/{commit.sha}",
            "comments_url": f"{api}/commits/{commit.sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{commit.sha}",
                "author": {"name": commit.author_name, "email": commit.author_email, "date": commit.author_date},
                "committer": {"name": commit.committer_name, "email": commit.committer_email,
                              "date": commit.committer_date},
                "message": commit.message.rstrip("\n"), "comment_count": 0,
                "tree": {"sha": commit.tree, "url": f"{api}/git/trees/{commit.tree}"},
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                                 "verified_at": None},
            },
            "author": None, "committer": None,
            "parents": [{"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{web}/commit/{p}"}
                        for p in commit.parents],
        }

    def _latest_check_runs(self, repo: _Repo, sha: str) -> list[_CheckRun]:
        latest: dict[tuple[str, str], _CheckRun] = {}
        for run in sorted(repo.check_runs.values(), key=lambda r: r.id):
            if run.sha == sha:
                latest[(run.app_slug, run.name)] = run
        return sorted(latest.values(), key=lambda r: r.id)

    def _latest_statuses(self, repo: _Repo, sha: str) -> list[_Status]:
        latest: dict[str, _Status] = {}
        for status in repo.statuses:
            if status.sha == sha:
                latest[status.context] = status
        return sorted(latest.values(), key=lambda s: s.id)

    def _rollup(self, repo: _Repo, sha: str) -> tuple[str, list[_CheckRun], list[_Status]] | None:
        """GitHub's statusCheckRollup of a commit: (state, latest check runs, latest statuses) or None."""
        runs = self._latest_check_runs(repo, sha)
        statuses = self._latest_statuses(repo, sha)
        if not runs and not statuses:
            return None
        states = set()
        for run in runs:
            if run.status != "completed":
                states.add("PENDING")
            elif run.conclusion in _FAILED_CONCLUSIONS:
                states.add("FAILURE")
            else:
                states.add("SUCCESS")
        for status in statuses:
            states.add(status.state.upper())
        state = next(s for s in ("FAILURE", "ERROR", "PENDING", "SUCCESS") if s in states)
        return state, runs, statuses

    def _resolve(self, repo: _Repo, ref: str) -> str:
        """A commit SHA from a SHA or branch name; 422 like GitHub when there is none."""
        if re.fullmatch(r"[0-9a-f]{40}", ref):
            return ref
        sha = repo.git.resolve(ref)
        if sha is None:
            raise _HttpError(422, {"message": f"No commit found for SHA: {ref}", "documentation_url": _DOCS,
                                   "status": "422"})
        return sha

    def _paginate(self, req: _Request, items: Sequence[_T], *, per_page: int = 30,
                  max_per_page: int = 100) -> tuple[list[_T], dict[str, str]]:
        """One page of ``items`` for ``per_page``/``page`` and the ``Link`` header GitHub would send."""
        try:
            size = min(max(int(req.query.get("per_page", per_page)), 1), max_per_page)
        except ValueError:
            size = per_page
        try:
            page = max(int(req.query.get("page", 1)), 1)
        except ValueError:
            page = 1
        last = max(1, math.ceil(len(items) / size))
        chunk = list(items[(page - 1) * size: page * size])

        def link(number: int, rel: str) -> str:
            params = dict(req.query)
            params["page"] = str(number)
            return f'<{self.url}{req.path}?{urllib.parse.urlencode(params)}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        return chunk, ({"Link": ", ".join(links)} if links else {})

    # ------------------------------------------------------------------------------------- REST

    def _rest(self, req: _Request) -> _Response:
        method = "GET" if req.method == "HEAD" else req.method
        for verb, pattern, handler in _ROUTES:
            if verb != method:
                continue
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            with self._lock:
                try:
                    if "owner" in params:
                        repo = self._repos.get(f"{params.pop('owner')}/{params.pop('name')}".lower())
                        if repo is None:
                            raise _not_found()
                        resp = handler(self, req, repo, params)
                    else:
                        resp = handler(self, req, None, params)
                except _HttpError as exc:
                    resp = _Response(exc.status, exc.body)
            resp.counted = req.path != "/rate_limit"
            return resp
        return _Response(404, {"message": "Not Found", "documentation_url": _DOCS, "status": "404"}, counted=True)

    def _number(self, repo: _Repo, params: dict[str, str]) -> _Pull:
        pull = repo.pulls.get(int(params["number"]))
        if pull is None:
            raise _not_found()
        return pull

    def _h_repo(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        return _Response(200, self._repo_json(repo))

    def _h_list_pulls(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        state = req.query.get("state", "open")
        pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
        if "head" in req.query:
            owner, sep, branch = req.query["head"].partition(":")
            if not sep:
                owner, branch = repo.owner, owner
            pulls = [p for p in pulls if owner.lower() == repo.owner.lower() and p.head == branch]
        if "base" in req.query:
            pulls = [p for p in pulls if p.base == req.query["base"]]
        sort = req.query.get("sort", "created")
        direction = req.query.get("direction", "desc" if sort == "created" else "asc")
        if sort == "updated":
            pulls.sort(key=lambda p: p.updated_seq)
        else:
            pulls.sort(key=lambda p: p.number)
        if direction == "desc":
            pulls.reverse()
        page, headers = self._paginate(req, pulls)
        refs = repo.git.branches()
        return _Response(200, [self._pull_json(repo, p, refs, full=False) for p in page], headers=headers)

    def _h_create_pull(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        data = req.json()
        for name in ("head", "base"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise _validation_failed({"resource": "PullRequest", "code": "missing_field", "field": name})
        title = data.get("title")
        if not isinstance(title, str) or not title:
            raise _validation_failed({"resource": "PullRequest", "code": "missing_field", "field": "title"})
        pull = self._create_pull(repo, data["head"], data["base"], title, data.get("body") or "",
                                 bool(data.get("draft", False)), self.login)
        body = self._pull_json(repo, pull, repo.git.branches(), full=True, computing=True)
        return _Response(201, body, headers={"Location": body["url"]})

    def _h_get_pull(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        return _Response(200, self._pull_json(repo, self._number(repo, params), repo.git.branches(), full=True))

    def _h_edit_pull(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        pull = self._number(repo, params)
        data = req.json()
        if "title" in data:
            pull.title = str(data["title"])
        if "body" in data:
            pull.body = data["body"] or ""
        if "base" in data:
            if repo.git.resolve(str(data["base"])) is None:
                raise _validation_failed({"resource": "PullRequest", "field": "base", "code": "invalid"})
            pull.base = str(data["base"])
        if "state" in data:
            if data["state"] not in ("open", "closed"):
                raise _validation_failed({"resource": "PullRequest", "field": "state", "code": "invalid"})
            if data["state"] == "closed" and pull.state == "open":
                self._close(repo, pull)
            elif data["state"] == "open" and pull.state == "closed":
                if pull.merged:
                    raise _validation_failed({"resource": "PullRequest", "code": "custom",
                                              "message": "state cannot be changed. The pull request is merged."})
                pull.state, pull.closed_at = "open", None
        self._touch(pull)
        return _Response(200, self._pull_json(repo, pull, repo.git.branches(), full=True))

    def _h_update_branch(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        pull = self._number(repo, params)
        data = req.json()
        if pull.state != "open":
            raise _HttpError(422, {"message": "Pull request is closed.", "documentation_url": _DOCS})
        refs = repo.git.branches()
        head = self._head_sha(repo, pull, refs)
        base = self._base_sha(repo, pull, refs)
        expected = data.get("expected_head_sha")
        if expected is not None and expected != head:
            raise _HttpError(422, {"message": "expected head sha didn't match current head ref.",
                                   "documentation_url": _DOCS, "status": "422"})
        if repo.git.is_ancestor(base, head):
            raise _HttpError(422, {"message": "There are no new commits on the base branch.",
                                   "documentation_url": _DOCS, "status": "422"})
        tree = repo.git.merge_tree(head, base)
        if tree is None:
            raise _HttpError(422, {"message": "merge conflict between base and head", "documentation_url": _DOCS,
                                   "status": "422"})
        author = (self.login, f"{self._user_id(self.login)}+{self.login}@users.noreply.github.com")
        sha = repo.git.commit_tree(tree, [head, base], f"Merge branch '{pull.base}' into {pull.head}\n", author)
        if not repo.git.update_ref(pull.head, sha, head):
            raise _HttpError(422, {"message": "expected head sha didn't match current head ref.",
                                   "documentation_url": _DOCS, "status": "422"})
        pull.head_sha = sha
        self._touch(pull)
        return _Response(202, {"message": "Updating pull request branch.",
                               "url": f"{self._web(repo)}/pull/{pull.number}"})

    def _h_merge_pull(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        pull = self._number(repo, params)
        data = req.json()
        method = data.get("merge_method", "merge")
        if method not in ("merge", "squash"):
            raise _validation_failed({"resource": "PullRequest", "field": "merge_method", "code": "invalid"})
        sha = self._merge(repo, pull, squash=method == "squash", by=self.login, expected_sha=data.get("sha"),
                          title=data.get("commit_title"), message=data.get("commit_message"))
        return _Response(200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"})

    def _h_is_merged(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        if self._number(repo, params).merged:
            return _Response(204)
        raise _not_found()

    def _h_list_reviews(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        pull = self._number(repo, params)
        reviews = sorted((v for v in repo.reviews.values() if v.number == pull.number), key=lambda v: v.id)
        page, headers = self._paginate(req, reviews)
        return _Response(200, [self._review_json(repo, v) for v in page], headers=headers)

    def _review(self, repo: _Repo, params: dict[str, str]) -> _Review:
        pull = self._number(repo, params)
        review = repo.reviews.get(int(params["review"]))
        if review is None or review.number != pull.number:
            raise _not_found()
        return review

    def _h_get_review(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        return _Response(200, self._review_json(repo, self._review(repo, params)))

    def _h_dismiss_review(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        review = self._review(repo, params)
        message = (req.json() or {}).get("message")
        if not isinstance(message, str) or not message:
            raise _validation_failed({"resource": "PullRequestReview", "field": "message", "code": "missing_field"},
                                     doc="pulls/reviews")
        return _Response(200, self._review_json(repo, self._dismiss(repo, self._number(repo, params), review)))

    def _h_review_comments(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        review = self._review(repo, params)
        comments = sorted((c for c in repo.review_comments.values() if c.review_id == review.id), key=lambda c: c.id)
        page, headers = self._paginate(req, comments)
        return _Response(200, [self._review_comment_json(repo, c) for c in page], headers=headers)

    def _h_pull_comments(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        pull = self._number(repo, params)
        comments = sorted(
            (c for c in repo.review_comments.values()
             if c.number == pull.number and repo.reviews[c.review_id].state != "PENDING"),
            key=lambda c: c.id,
        )
        page, headers = self._paginate(req, comments)
        return _Response(200, [self._review_comment_json(repo, c) for c in page], headers=headers)

    def _h_create_review(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        pull = self._number(repo, params)
        data = req.json()
        event = data.get("event")
        states = {None: "PENDING", "APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
                  "COMMENT": "COMMENTED"}
        if event not in states:
            raise _validation_failed({"resource": "PullRequestReview", "field": "event", "code": "invalid"},
                                     doc="pulls/reviews")
        state = states[event]
        if pull.user == self.login and not pull.user_bot and state in ("APPROVED", "CHANGES_REQUESTED"):
            what = "approve" if state == "APPROVED" else "request changes on"
            raise _HttpError(422, {"message": "Unprocessable Entity",
                                   "errors": [f"Review Can not {what} your own pull request"],
                                   "documentation_url": f"{_DOCS}/pulls/reviews", "status": "422"})
        comments = []
        for comment in data.get("comments") or []:
            line = comment.get("line", comment.get("position"))
            if not isinstance(comment.get("path"), str) or not isinstance(line, int):
                raise _validation_failed({"resource": "PullRequestReviewComment", "field": "line", "code": "invalid"},
                                         doc="pulls/reviews")
            comments.append((comment["path"], line, str(comment.get("body", ""))))
        head = self._head_sha(repo, pull, repo.git.branches())
        review = self._store_review(repo, pull, self.login, False, state, data.get("body") or "",
                                    data.get("commit_id") or head, comments)
        return _Response(200, self._review_json(repo, review))

    def _h_list_issue_comments(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        pull = self._number(repo, params)
        comments = sorted((c for c in repo.issue_comments.values() if c.number == pull.number), key=lambda c: c.id)
        page, headers = self._paginate(req, comments)
        return _Response(200, [self._issue_comment_json(repo, c) for c in page], headers=headers)

    def _h_create_issue_comment(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        pull = self._number(repo, params)
        body = req.json().get("body")
        if not isinstance(body, str) or not body:
            raise _validation_failed({"resource": "IssueComment", "code": "missing_field", "field": "body"},
                                     doc="issues/comments")
        comment = _IssueComment(next(self._ids), pull.number, self.login, False, body, _now())
        repo.issue_comments[comment.id] = comment
        self._touch(pull)
        data = self._issue_comment_json(repo, comment)
        return _Response(201, data, headers={"Location": data["url"]})

    def _h_commit(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        sha = self._resolve(repo, params["ref"])
        try:
            commit = repo.git.commit(sha)
        except GitError as exc:
            raise _HttpError(422, {"message": f"No commit found for SHA: {params['ref']}",
                                   "documentation_url": _DOCS, "status": "422"}) from exc
        return _Response(200, {**self._commit_json(repo, commit), "files": []})

    def _h_check_runs_for_ref(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        sha = self._resolve(repo, params["ref"])
        if req.query.get("filter", "latest") == "all":
            runs = sorted((r for r in repo.check_runs.values() if r.sha == sha), key=lambda r: r.id)
        else:
            runs = self._latest_check_runs(repo, sha)
        if "check_name" in req.query:
            runs = [r for r in runs if r.name == req.query["check_name"]]
        if "status" in req.query:
            runs = [r for r in runs if r.status == req.query["status"]]
        page, headers = self._paginate(req, runs)
        return _Response(200, {"total_count": len(runs), "check_runs": [self._check_run_json(repo, r) for r in page]},
                         headers=headers)

    def _run_in(self, repo: _Repo, params: dict[str, str]) -> _CheckRun:
        run = repo.check_runs.get(int(params["id"]))
        if run is None:
            raise _not_found()
        return run

    def _h_check_run(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        return _Response(200, self._check_run_json(repo, self._run_in(repo, params)))

    def _h_annotations(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        run = self._run_in(repo, params)
        web = self._web(repo)
        page, headers = self._paginate(req, run.annotations)
        body = [
            {"path": path, "blob_href": f"{web}/blob/{run.sha}/{path}", "start_line": line, "end_line": line,
             "start_column": None, "end_column": None, "annotation_level": level, "title": title,
             "message": message, "raw_details": ""}
            for path, line, level, message, title in page
        ]
        return _Response(200, body, headers=headers)

    def _h_combined_status(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        sha = self._resolve(repo, params["ref"])
        statuses = self._latest_statuses(repo, sha)
        states = {s.state for s in statuses}
        if states & {"error", "failure"}:
            state = "failure"
        elif not statuses or "pending" in states:
            state = "pending"
        else:
            state = "success"
        page, headers = self._paginate(req, statuses)
        api = self._api(repo)
        body = {
            "state": state, "statuses": [self._status_json(repo, s) for s in page], "sha": sha,
            "total_count": len(statuses), "repository": self._repo_json(repo),
            "commit_url": f"{api}/commits/{sha}", "url": f"{api}/commits/{sha}/status",
        }
        return _Response(200, body, headers=headers)

    def _h_statuses(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        sha = self._resolve(repo, params["ref"])
        statuses = sorted((s for s in repo.statuses if s.sha == sha), key=lambda s: s.id, reverse=True)
        page, headers = self._paginate(req, statuses)
        return _Response(200, [self._status_json(repo, s) for s in page], headers=headers)

    def _h_create_status(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        sha = self._resolve(repo, params["ref"])
        data = req.json()
        if data.get("state") not in _STATUS_STATES:
            raise _validation_failed({"resource": "Status", "field": "state", "code": "custom",
                                      "message": "state is not included in the list"}, doc="commits/statuses")
        status = _Status(next(self._ids), sha, str(data.get("context") or "default"), data["state"],
                         str(data.get("description") or ""), str(data.get("target_url") or ""), _now(), self.login)
        repo.statuses.append(status)
        self._touch_pulls_with_head(repo, sha)
        return _Response(201, self._status_json(repo, status))

    def _job(self, repo: _Repo, params: dict[str, str]) -> _CheckRun:
        run = repo.check_runs.get(int(params["id"]))
        if run is None or run.log is None:
            raise _not_found()
        return run

    def _h_job(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        run = self._job(repo, params)
        api = self._api(repo)
        html, _ = self._check_run_urls(repo, run)
        branch = next((b for b, sha in repo.git.branches().items() if sha == run.sha), None)
        body = {
            "id": run.id, "run_id": run.run_id, "workflow_name": "CI", "head_branch": branch,
            "run_url": f"{api}/actions/runs/{run.run_id}", "run_attempt": 1, "node_id": _node_id("CR", run.id),
            "head_sha": run.sha, "url": f"{api}/actions/jobs/{run.id}", "html_url": html, "status": run.status,
            "conclusion": run.conclusion, "created_at": run.started_at, "started_at": run.started_at,
            "completed_at": run.completed_at, "name": run.name,
            "steps": [{"name": run.name, "status": run.status, "conclusion": run.conclusion, "number": 1,
                       "started_at": run.started_at, "completed_at": run.completed_at}],
            "check_run_url": f"{api}/check-runs/{run.id}", "labels": ["ubuntu-latest"], "runner_id": 1,
            "runner_name": "GitHub Actions 1", "runner_group_id": 0, "runner_group_name": "GitHub Actions",
        }
        return _Response(200, body)

    def _h_job_logs(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        run = self._job(repo, params)
        sig = secrets.token_urlsafe(24)
        self._blob_sigs.setdefault(run.id, set()).add(sig)
        location = f"{self.url}/_blobs/job-logs/{run.id}?{urllib.parse.urlencode({'sig': sig})}"
        return _Response(302, headers={"Location": location})

    def _blob(self, req: _Request) -> _Response:
        match = re.fullmatch(r"/_blobs/job-logs/(\d+)", req.path)
        with self._lock:
            run = None
            if match is not None:
                found = [repo.check_runs.get(int(match.group(1))) for repo in self._repos.values()]
                run = next((r for r in found if r is not None), None)
            if run is None or run.log is None:
                return _Response(404, raw=b"The specified blob does not exist.", content_type="text/plain")
            if req.query.get("sig") not in self._blob_sigs.get(run.id, set()):
                return _Response(403, raw=b"AuthenticationFailed: Server failed to authenticate the request.",
                                 content_type="text/plain")
            return _Response(200, raw=run.log.encode(), content_type="text/plain")

    def _h_compare(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        base_ref, sep, head_ref = params["basehead"].partition("...")
        if not sep:
            raise _not_found()
        base, head = self._resolve(repo, base_ref), self._resolve(repo, head_ref)
        ahead, behind = repo.git.ahead_behind(base, head)
        status = ("identical" if ahead == behind == 0 else "ahead" if behind == 0 else "behind" if ahead == 0
                  else "diverged")
        merge_base = repo.git.merge_base(base, head)
        commits = repo.git.commits_between(base, head)
        page, headers = self._paginate(req, commits, per_page=250, max_per_page=1000)
        api, web = self._api(repo), self._web(repo)
        body = {
            "url": f"{api}/compare/{params['basehead']}", "html_url": f"{web}/compare/{params['basehead']}",
            "permalink_url": f"{web}/compare/{repo.owner}:{base[:7]}...{repo.owner}:{head[:7]}",
            "diff_url": f"{web}/compare/{params['basehead']}.diff",
            "patch_url": f"{web}/compare/{params['basehead']}.patch",
            "base_commit": self._commit_json(repo, repo.git.commit(base)),
            "merge_base_commit": self._commit_json(repo, repo.git.commit(merge_base)) if merge_base else None,
            "status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": ahead,
            "commits": [self._commit_json(repo, c) for c in page], "files": [],
        }
        return _Response(200, body, headers=headers)

    def _h_rate_limit(self, req: _Request, repo: None, params: dict[str, str]) -> _Response:
        def rate(resource: Resource) -> dict[str, Any]:
            self._roll_window(resource)
            left = self._remaining[resource]
            return {"limit": RATE_LIMIT, "remaining": left, "reset": self._reset[resource],
                    "used": RATE_LIMIT - left, "resource": resource}

        reset = int(time.time()) + 60
        search = {"limit": 30, "remaining": 30, "reset": reset, "used": 0, "resource": "search"}
        resources = {"core": rate("core"), "graphql": rate("graphql"), "search": search,
                     "integration_manifest": {"limit": 5000, "remaining": 5000, "reset": reset, "used": 0,
                                              "resource": "integration_manifest"}}
        return _Response(200, {"resources": resources, "rate": resources["core"]})

    def _h_user(self, req: _Request, repo: None, params: dict[str, str]) -> _Response:
        if self._installation_permissions(req) is not None:
            return _Response(403, {"message": "Resource not accessible by integration", "documentation_url":
                                   f"{_DOCS}/users/users#get-the-authenticated-user", "status": "403"})
        return _Response(200, {**self._user_json(self.login), "name": self.login, "email": None})

    # ------------------------------------------------------------------------------------ hooks

    def _hook_json(self, repo: _Repo, hook: _Hook) -> dict[str, Any]:
        api = f"{self._api(repo)}/hooks/{hook.id}"
        config = {k: ("********" if k == "secret" else v) for k, v in hook.config.items()}
        last = hook.deliveries[-1] if hook.deliveries else None
        return {
            "type": "Repository", "id": hook.id, "name": "web", "active": hook.active, "events": list(hook.events),
            "config": config, "updated_at": hook.updated_at, "created_at": hook.created_at, "url": api,
            "test_url": f"{api}/test", "ping_url": f"{api}/pings", "deliveries_url": f"{api}/deliveries",
            "last_response": ({"code": last["status_code"], "status": "active" if 200 <= last["status_code"] < 300
                               else "failed", "message": last["status"]} if last else
                              {"code": None, "status": "unused", "message": None}),
        }

    def _hooks_allowed(self, req: _Request, write: bool) -> None:
        granted = self._installation_permissions(req)
        level = None if granted is None else granted.get("repository_hooks")
        if self.hooks_forbidden or (granted is not None and level not in (("write",) if write else ("read", "write"))):
            raise _HttpError(403, {"message": "Resource not accessible by integration" if granted is not None
                                   else "Must have admin rights to Repository.",
                                   "documentation_url": f"{_DOCS}/repos/webhooks", "status": "403"})

    def _hook(self, repo: _Repo, params: dict[str, str]) -> _Hook:
        hook = repo.hooks.get(int(params["hook"]))
        if hook is None:
            raise _not_found()
        return hook

    @staticmethod
    def _hook_fields(body: Any, hook: _Hook | None) -> tuple[dict[str, str], list[str], bool]:
        if not isinstance(body, dict):
            raise _validation_failed({"resource": "Hook", "code": "invalid"}, doc="repos/webhooks")
        config = body.get("config", hook.config if hook else None)
        if not isinstance(config, dict) or not str(config.get("url", "")).strip():
            raise _validation_failed({"resource": "Hook", "code": "custom", "field": "url",
                                      "message": "url cannot be blank"}, doc="repos/webhooks")
        events = list(body.get("events", hook.events if hook else ["push"]))
        events += [e for e in body.get("add_events", []) if e not in events]
        events = [e for e in events if e not in body.get("remove_events", [])]
        active = bool(body.get("active", hook.active if hook else True))
        return {str(k): str(v) for k, v in config.items()}, events, active

    def _h_list_hooks(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        self._hooks_allowed(req, write=False)
        chunk, headers = self._paginate(req, list(repo.hooks.values()))
        return _Response(200, [self._hook_json(repo, h) for h in chunk], headers=headers)

    def _h_create_hook(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        self._hooks_allowed(req, write=True)
        config, events, active = self._hook_fields(req.json(), None)
        if any(h.config.get("url") == config["url"] for h in repo.hooks.values()):
            raise _validation_failed({"resource": "Hook", "code": "custom",
                                      "message": "Hook already exists on this repository"}, doc="repos/webhooks")
        hook = _Hook(next(self._ids), config, events, active, _now(), _now())
        repo.hooks[hook.id] = hook
        return _Response(201, self._hook_json(repo, hook), headers={"Location": f"{self._api(repo)}/hooks/{hook.id}"})

    def _h_get_hook(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        self._hooks_allowed(req, write=False)
        return _Response(200, self._hook_json(repo, self._hook(repo, params)))

    def _h_edit_hook(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        self._hooks_allowed(req, write=True)
        hook = self._hook(repo, params)
        hook.config, hook.events, hook.active = self._hook_fields(req.json(), hook)
        hook.updated_at = _now()
        return _Response(200, self._hook_json(repo, hook))

    def _h_hook_deliveries(self, req: _Request, repo: _Repo, params: dict[str, str]) -> _Response:
        self._hooks_allowed(req, write=False)
        hook = self._hook(repo, params)
        chunk, headers = self._paginate(req, list(reversed(hook.deliveries)))
        return _Response(200, chunk, headers=headers)

    # ------------------------------------------------------------------------------------ GraphQL

    def _graphql(self, req: _Request) -> _Response:
        if req.method != "POST":
            return _Response(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/graphql"})
        try:
            payload = json.loads(req.body or b"null")
        except ValueError:
            return _Response(400, {"message": "Problems parsing JSON",
                                   "documentation_url": "https://docs.github.com/graphql"})
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            message = "A query attribute must be specified and must be a string."
            return _Response(200, {"errors": [{"message": message}]})
        operation = payload.get("operationName") or None
        try:
            document = graphql.parse(payload["query"])
        except graphql.GraphQLError as exc:
            return _Response(200, {"errors": [_format_error(exc)]})
        if operation is None:
            names = [d.name.value for d in document.definitions
                     if isinstance(d, graphql.OperationDefinitionNode) and d.name is not None]
            operation = names[0] if len(names) == 1 else None
        req.operation = operation
        schema = github_schema()
        errors = graphql.validate(schema, document)
        if errors:
            return _Response(200, {"errors": [_format_error(e) for e in errors]})
        variables = payload.get("variables") or {}
        if isinstance(variables, str):
            variables = json.loads(variables or "{}")
        limits = pagination_errors(document, variables, operation)  # GitHub's node limit, before running
        if limits:
            return _Response(200, {"errors": limits})
        _requests, cost = rate_limit_cost(document, variables, operation)
        nodes = node_count(document, variables, operation)
        with self._lock:
            refused = self._points_refusal(cost)
            if refused is not None:
                return refused
            self._spend("graphql", cost)
            self._points.append((operation, cost))
            result = graphql.execute_sync(schema, document, root_value=_GqlRoot(self, cost, nodes),
                                          variable_values=variables,
                                          operation_name=payload.get("operationName") or None)
        body: dict[str, Any] = {}
        if result.errors:
            for error in result.errors:
                original = error.original_error
                if original is not None and not isinstance(original, _GqlTypedError | graphql.GraphQLError):
                    detail = "".join(traceback.format_exception(original))
                    self.internal_errors.append(detail)
                    print(f"fake GitHub: resolver error:\n{detail}", file=sys.stderr)
            body["errors"] = [_format_error(e) for e in result.errors]
        body["data"] = result.data
        return _Response(200, body)

    def _gql_rate_limit(self, cost: int, nodes: int) -> dict[str, Any]:
        """``rateLimit`` as GitHub answers it: this call's cost in points (already taken from what remains)."""
        self._roll_window("graphql")
        left = self._remaining["graphql"]
        return {"cost": cost, "limit": RATE_LIMIT, "remaining": left, "used": RATE_LIMIT - left, "nodeCount": nodes,
                "resetAt": _iso(datetime.fromtimestamp(self._reset["graphql"], UTC))}

    def _points_refusal(self, cost: int) -> _Response | None:
        """A call that costs more points than are left is refused whole (GraphQL's RATE_LIMITED, 200)."""
        self._roll_window("graphql")
        if cost <= self._remaining["graphql"]:
            return None
        message = f"API rate limit exceeded for user ID {self._user_id(self.login)}."
        headers = self._rate_headers("graphql")
        return _Response(200, {"errors": [{"type": "RATE_LIMITED", "message": message}]}, headers=headers,
                         fault="rate_limit")

    def _gql_actor(self, login: str, bot: bool) -> dict[str, Any]:
        uid = self._user_id(self._rest_login(login, bot))
        return {"__typename": "Bot" if bot else "User", "login": login,
                "url": f"{self.url}/apps/{login}" if bot else f"{self.url}/{login}",
                "avatarUrl": _no_arg_value(f"{self.url}/avatars/u/{uid}?v=4"),
                "resourcePath": f"/apps/{login}" if bot else f"/{login}", "id": _node_id("BOT" if bot else "U", uid),
                "databaseId": uid}


# ------------------------------------------------------------------------------------------ GraphQL


class _GqlTypedError(Exception):
    """A resolver error answered with GitHub's top-level ``type`` (NOT_FOUND, INVALID_CURSOR_ARGUMENTS, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_UNDEFINED_FIELD = re.compile(r"Cannot query field '([^']+)' on type '([^']+)'\..*", re.S)


def _format_error(error: graphql.GraphQLError) -> dict[str, Any]:
    """A GraphQL error as GitHub formats it (its wording for unknown fields, ``type`` for resolver errors)."""
    formatted: dict[str, Any] = dict(error.formatted)
    match = _UNDEFINED_FIELD.fullmatch(error.message)
    if match is not None:
        formatted["message"] = f"Field '{match.group(1)}' doesn't exist on type '{match.group(2)}'"
        formatted["extensions"] = {"code": "undefinedField", "typeName": match.group(2),
                                   "fieldName": match.group(1)}
    if isinstance(error.original_error, _GqlTypedError):
        formatted = {"type": error.original_error.kind, **formatted}
    return formatted


def _etag_matches(header: str, etag: str) -> bool:
    def bare(tag: str) -> str:
        return tag.strip().removeprefix("W/")

    return any(bare(candidate) == bare(etag) or candidate.strip() == "*" for candidate in header.split(","))


def _no_arg_value(value: Any) -> Callable[..., Any]:
    """A field value for a field with optional arguments (e.g. ``avatarUrl(size:)``)."""

    def resolve(_info: graphql.GraphQLResolveInfo, **_args: Any) -> Any:
        return value

    return resolve


def _encode_cursor(key: list[Any]) -> str:
    return base64.b64encode(b"cursor:v2:" + json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.b64decode(cursor.encode(), validate=True)
        if not raw.startswith(b"cursor:v2:"):
            raise ValueError(cursor)
        key = json.loads(raw.removeprefix(b"cursor:v2:"))
        if not isinstance(key, list):
            raise ValueError(cursor)
        return key
    except ValueError as exc:
        raise _GqlTypedError("INVALID_CURSOR_ARGUMENTS", f"`{cursor}` does not appear to be a valid cursor.") from exc


def _connection(
    items: Sequence[_T],
    key: Callable[[_T], list[Any]],
    node: Callable[[_T], Any],
    *,
    name: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    descending: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Relay connection over ``items`` (already in order), paginated as GitHub does, with opaque cursors.

    A document with a connection lacking ``first``/``last`` is refused before it runs (see
    :func:`tests.fakes.github_schema.pagination_errors`); the check below stays for safety.
    """
    if first is None and last is None:

        def unbounded(_info: graphql.GraphQLResolveInfo, **_args: Any) -> Any:
            raise _GqlTypedError(
                "MISSING_PAGINATION_BOUNDARIES",
                f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.",
            )

        return {"nodes": unbounded, "edges": unbounded, "pageInfo": unbounded, "totalCount": len(items),
                **(extra or {})}
    for argument, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= 100:
            raise _GqlTypedError("EXCESSIVE_PAGINATION",
                                 f"Requesting {value} records on the `{name}` connection exceeds the `{argument}` "
                                 "limit of 100 records.")

    def past(item: _T, cursor: list[Any]) -> bool:
        return key(item) < cursor if descending else key(item) > cursor

    window = list(items)
    has_previous = has_next = False
    if after is not None:
        mark = _decode_cursor(after)
        has_previous = any(not past(i, mark) for i in window)
        window = [i for i in window if past(i, mark)]
    if before is not None:
        mark = _decode_cursor(before)
        has_next = any(not (key(i) > mark if descending else key(i) < mark) for i in window)
        window = [i for i in window if (key(i) > mark if descending else key(i) < mark)]
    if first is not None:
        has_next = has_next or len(window) > first
        window = window[:first]
    if last is not None:
        has_previous = has_previous or len(window) > last
        window = window[len(window) - last:] if last else []
    nodes = [node(i) for i in window]
    cursors = [_encode_cursor(key(i)) for i in window]
    return {
        "nodes": nodes,
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "pageInfo": {"hasNextPage": has_next, "hasPreviousPage": has_previous,
                     "startCursor": cursors[0] if cursors else None, "endCursor": cursors[-1] if cursors else None},
        "totalCount": len(items),
        **(extra or {}),
    }


def _never_required(_info: graphql.GraphQLResolveInfo, **_args: Any) -> bool:
    return False


class _GqlRoot:
    """The Query root: field names are GitHub's (camelCase); methods take the field's arguments."""

    def __init__(self, fake: FakeGitHub, cost: int = 1, nodes: int = 0) -> None:
        self._fake = fake
        self._cost = cost
        self._nodes = nodes

    def rateLimit(self, info: graphql.GraphQLResolveInfo, **_: Any) -> dict[str, Any]:
        return self._fake._gql_rate_limit(self._cost, self._nodes)

    def nodes(self, info: graphql.GraphQLResolveInfo, ids: list[str], **_: Any) -> list[Any]:
        """``nodes(ids:)``: pull request reviews by node id (null for an id that names nothing, as GitHub
        answers beside a NOT_FOUND error; the fake leaves the error out)."""
        if len(ids) > 100:
            raise _GqlTypedError("EXCESSIVE_PAGINATION", "You may not request more than 100 node ids at once.")
        fake = self._fake
        found: list[Any] = []
        for node_id in ids:
            found.append(None)
            prefix, _sep, rest = node_id.partition("_kw")
            try:
                decoded = base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4)).decode()
                kind, _sep, number = decoded.partition(":")
                wanted = int(number)
            except (ValueError, UnicodeDecodeError):
                continue
            if prefix != "PRR" or kind != "PRR":
                continue
            for repo in fake._repos.values():
                review = repo.reviews.get(wanted)
                if review is not None:
                    pull = repo.pulls[review.number]
                    found[-1] = {"__typename": "PullRequestReview",
                                 **_GqlPull(fake, repo, pull, repo.git.branches())._review_node(review)}
                    break
        return found

    def enqueuePullRequest(self, info: graphql.GraphQLResolveInfo, input: dict[str, Any], **_: Any) -> dict[str, Any]:
        """The mutation: the pull request (by node id) joins its repository's merge queue, if it has one and
        the head is still ``expectedHeadOid``; enqueued twice is refused as GitHub does."""
        for repo in self._fake._repos.values():
            for pull in repo.pulls.values():
                if _node_id("PR", pull.id) != input.get("pullRequestId"):
                    continue
                if not repo.merge_queue or pull.base != repo.default_branch:
                    raise _GqlTypedError("UNPROCESSABLE", "Merge queue is not enabled for this branch")
                head = self._fake._head_sha(repo, pull, repo.git.branches())
                expected = input.get("expectedHeadOid")
                if expected and expected != head:
                    raise _GqlTypedError("UNPROCESSABLE", "The expected head OID does not match the head")
                if pull.number in repo.queued:
                    raise _GqlTypedError("UNPROCESSABLE", "Pull request is already in the merge queue")
                repo.queued.append(pull.number)
                entry = {"id": _node_id("MQE", pull.id), "position": len(repo.queued), "state": "QUEUED"}
                return {"clientMutationId": input.get("clientMutationId"), "mergeQueueEntry": entry}
        raise _GqlTypedError("NOT_FOUND", f"Could not resolve to a node with the global id of "
                                          f"'{input.get('pullRequestId')}'")

    def repository(self, info: graphql.GraphQLResolveInfo, owner: str, name: str, **_: Any) -> _GqlRepository:
        repo = self._fake._repos.get(f"{owner}/{name}".lower())
        if repo is None:
            raise _GqlTypedError("NOT_FOUND", f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return _GqlRepository(self._fake, repo)

    @property
    def viewer(self) -> dict[str, Any]:
        return self._fake._gql_actor(self._fake.login, False)


class _GqlRepository:
    def __init__(self, fake: FakeGitHub, repo: _Repo) -> None:
        self._fake = fake
        self._repo = repo
        self.name = repo.name
        self.nameWithOwner = repo.full_name
        self.url = fake._web(repo)
        self.id = _node_id("R", repo.id)
        self.databaseId = repo.id
        self.isPrivate = False
        self.owner = fake._gql_actor(repo.owner, False)

    @functools.cached_property
    def _refs(self) -> dict[str, str]:
        return self._repo.git.branches()

    @property
    def defaultBranchRef(self) -> dict[str, Any] | None:
        sha = self._refs.get(self._repo.default_branch)
        if sha is None:
            return None
        return {"name": self._repo.default_branch, "prefix": "refs/heads/",
                "target": _GqlCommit(self._fake, self._repo, sha)}

    def pullRequests(
        self,
        info: graphql.GraphQLResolveInfo,
        states: list[str] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        orderBy: dict[str, str] | None = None,
        headRefName: str | None = None,
        baseRefName: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        pulls = [p for p in self._repo.pulls.values() if not states or _gql_pull_state(p) in states]
        if headRefName is not None:
            pulls = [p for p in pulls if p.head == headRefName]
        if baseRefName is not None:
            pulls = [p for p in pulls if p.base == baseRefName]
        order = orderBy or {}
        descending = order.get("direction") == "DESC"

        def key(pull: _Pull) -> list[Any]:
            return [pull.updated_seq, pull.number] if order.get("field") == "UPDATED_AT" else [pull.number]

        pulls.sort(key=key, reverse=descending)
        return _connection(pulls, key, self._node, name="pullRequests", first=first, after=after, last=last,
                           before=before, descending=descending)

    def mergeQueue(self, info: graphql.GraphQLResolveInfo, branch: str | None = None, **_: Any) -> Any:
        """Null unless the repository runs a merge queue on that branch (its default branch here)."""
        if not self._repo.merge_queue or (branch or self._repo.default_branch) != self._repo.default_branch:
            return None
        return {"id": _node_id("MQ", self._repo.id), "entries": {"totalCount": len(self._repo.queued)}}

    def pullRequest(self, info: graphql.GraphQLResolveInfo, number: int, **_: Any) -> _GqlPull:
        pull = self._repo.pulls.get(number)
        if pull is None:
            raise _GqlTypedError("NOT_FOUND", f"Could not resolve to a PullRequest with the number of {number}.")
        return self._node(pull)

    def _node(self, pull: _Pull) -> _GqlPull:
        return _GqlPull(self._fake, self._repo, pull, self._refs)


def _gql_pull_state(pull: _Pull) -> str:
    return "MERGED" if pull.merged else pull.state.upper()


class _GqlCommit:
    __typename = "Commit"  # how graphql-core tells the GitObject interface's concrete type

    def __init__(self, fake: FakeGitHub, repo: _Repo, sha: str) -> None:
        self._fake = fake
        self._repo = repo
        self.oid = sha
        self.abbreviatedOid = sha[:7]
        self.url = f"{fake._web(repo)}/commit/{sha}"
        self.commitUrl = self.url
        self.id = _node_id("C", int(sha[:12], 16))

    @functools.cached_property
    def _commit(self) -> _Commit:
        return self._repo.git.commit(self.oid)

    @property
    def message(self) -> str:
        return self._commit.message.rstrip("\n")

    @property
    def messageHeadline(self) -> str:
        return self.message.split("\n", 1)[0]

    @property
    def committedDate(self) -> str:
        return self._commit.committer_date

    @property
    def authoredDate(self) -> str:
        return self._commit.author_date

    @property
    def statusCheckRollup(self) -> dict[str, Any] | None:
        return _gql_rollup(self._fake, self._repo, self.oid)


def _gql_rollup(fake: FakeGitHub, repo: _Repo, sha: str) -> dict[str, Any] | None:
    rollup = fake._rollup(repo, sha)
    if rollup is None:
        return None
    state, runs, statuses = rollup
    contexts: list[Any] = [*runs, *statuses]

    def node(item: Any) -> dict[str, Any]:
        if isinstance(item, _CheckRun):
            html, details = fake._check_run_urls(repo, item)
            return {
                "__typename": "CheckRun", "id": _node_id("CR", item.id), "databaseId": item.id, "name": item.name,
                "status": item.status.upper(), "conclusion": item.conclusion.upper() if item.conclusion else None,
                "startedAt": item.started_at, "completedAt": item.completed_at, "detailsUrl": details,
                "title": item.title or None, "summary": item.summary or None, "text": item.text or None,
                "url": html, "permalink": html, "externalId": "", "isRequired": _never_required,
                "resourcePath": html.removeprefix(fake.url),
            }
        creator = fake._gql_actor(item.creator, False)
        return {
            "__typename": "StatusContext", "id": _node_id("SC", item.id), "context": item.context,
            "state": item.state.upper(), "description": item.description or None,
            "targetUrl": item.target_url or None, "createdAt": item.created_at, "creator": creator,
            "avatarUrl": creator["avatarUrl"], "isRequired": _never_required,
        }

    def key(item: Any) -> list[Any]:
        return [0 if isinstance(item, _CheckRun) else 1, item.id]

    def by_state(states: Iterable[str]) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for value in states:
            counts[value] = counts.get(value, 0) + 1
        return [{"state": s, "count": c} for s, c in counts.items()]

    def contexts_field(_info: graphql.GraphQLResolveInfo, first: int | None = None, after: str | None = None,
                       last: int | None = None, before: str | None = None, **_: Any) -> dict[str, Any]:
        extra = {
            "checkRunCount": len(runs), "statusContextCount": len(statuses),
            "checkRunCountsByState": by_state((r.conclusion or r.status).upper() for r in runs),
            "statusContextCountsByState": by_state(s.state.upper() for s in statuses),
        }
        return _connection(contexts, key, node, name="contexts", first=first, after=after, last=last,
                           before=before, extra=extra)

    return {"id": _node_id("SCR", int(sha[:12], 16)), "state": state, "contexts": contexts_field,
            "commit": _GqlCommit(fake, repo, sha)}


class _GqlPull:
    def __init__(self, fake: FakeGitHub, repo: _Repo, pull: _Pull, refs: dict[str, str]) -> None:
        self._fake = fake
        self._repo = repo
        self._pull = pull
        self._refs = refs
        web = fake._web(repo)
        self.number = pull.number
        self.title = pull.title
        self.body = pull.body
        self.url = f"{web}/pull/{pull.number}"
        self.permalink = self.url
        self.resourcePath = f"/{repo.full_name}/pull/{pull.number}"
        self.id = _node_id("PR", pull.id)
        self.databaseId = pull.id
        self.fullDatabaseId = str(pull.id)
        self.state = _gql_pull_state(pull)
        self.closed = pull.state != "open"
        self.merged = pull.merged
        self.isDraft = pull.draft
        self.headRefName = pull.head
        self.baseRefName = pull.base
        self.headRefOid = fake._head_sha(repo, pull, refs)
        self.baseRefOid = fake._base_sha(repo, pull, refs)
        self.createdAt = pull.created_at
        self.updatedAt = pull.updated_at
        self.closedAt = pull.closed_at
        self.mergedAt = pull.merged_at
        self.author = fake._gql_actor(pull.user, pull.user_bot)
        self.authorAssociation = fake._author_association(repo, pull.user, pull.user_bot)
        self.mergedBy = fake._gql_actor(pull.merged_by, False) if pull.merged_by else None
        self.mergeCommit = _GqlCommit(fake, repo, pull.merge_commit_sha) if pull.merge_commit_sha else None
        self.headRepository = _GqlRepository(fake, repo)
        self.baseRepository = self.headRepository
        self.repository = self.headRepository

    @functools.cached_property
    def _merge_state(self) -> tuple[str, str]:
        return self._fake._merge_state(self._repo, self._pull, self._refs, read=True)

    @property
    def mergeable(self) -> str:
        return self._merge_state[0]

    @property
    def mergeStateStatus(self) -> str:
        return self._merge_state[1]

    @property
    def reviewDecision(self) -> str | None:
        return self._fake._review_decision(self._repo, self._pull)

    @property
    def statusCheckRollup(self) -> dict[str, Any] | None:
        return _gql_rollup(self._fake, self._repo, self.headRefOid)

    @property
    def headRef(self) -> dict[str, Any] | None:
        if self._pull.state != "open" or self._pull.head not in self._refs:
            return None
        return {"name": self._pull.head, "prefix": "refs/heads/",
                "target": _GqlCommit(self._fake, self._repo, self.headRefOid)}

    def _review_node(self, review: _Review) -> dict[str, Any]:
        web = self._fake._web(self._repo)
        comments = sorted((c for c in self._repo.review_comments.values() if c.review_id == review.id),
                          key=lambda c: c.id)

        def comment_node(comment: _ReviewComment) -> dict[str, Any]:
            return {
                "id": _node_id("PRRC", comment.id), "databaseId": comment.id, "fullDatabaseId": str(comment.id),
                "body": comment.body, "path": comment.path, "line": comment.line, "originalLine": comment.line,
                "createdAt": comment.created_at, "author": self._fake._gql_actor(comment.login, comment.bot),
                "url": f"{web}/pull/{comment.number}#discussion_r{comment.id}",
                "commit": _GqlCommit(self._fake, self._repo, comment.commit_id),
            }

        def comments_field(_info: graphql.GraphQLResolveInfo, first: int | None = None, after: str | None = None,
                           last: int | None = None, before: str | None = None, **_: Any) -> dict[str, Any]:
            return _connection(comments, lambda c: [c.id], comment_node, name="comments", first=first,
                               after=after, last=last, before=before)

        return {
            "comments": comments_field,
            "id": _node_id("PRR", review.id), "databaseId": review.id, "fullDatabaseId": str(review.id),
            "state": review.state, "submittedAt": review.submitted_at,
            "createdAt": review.submitted_at or self._pull.created_at, "body": review.body,
            "author": self._fake._gql_actor(review.login, review.bot),
            "authorAssociation": self._fake._author_association(self._repo, review.login, review.bot),
            "commit": _GqlCommit(self._fake, self._repo, review.commit_id),
            "url": f"{web}/pull/{review.number}#pullrequestreview-{review.id}",
        }

    def latestReviews(self, info: graphql.GraphQLResolveInfo, first: int | None = None, after: str | None = None,
                      last: int | None = None, before: str | None = None, **_: Any) -> dict[str, Any]:
        reviews = self._fake._latest_reviews(self._repo, self._pull)
        return _connection(reviews, lambda v: [v.id], self._review_node, name="latestReviews", first=first,
                           after=after, last=last, before=before)

    def latestOpinionatedReviews(self, info: graphql.GraphQLResolveInfo, first: int | None = None,
                                 after: str | None = None, last: int | None = None, before: str | None = None,
                                 writersOnly: bool = False, **_: Any) -> dict[str, Any]:
        # writersOnly: the fake has no collaborators; every reviewer counts as one with write access
        reviews = self._fake._latest_opinionated_reviews(self._repo, self._pull)
        return _connection(reviews, lambda v: [v.id], self._review_node, name="latestOpinionatedReviews",
                           first=first, after=after, last=last, before=before)

    def reviews(self, info: graphql.GraphQLResolveInfo, first: int | None = None, after: str | None = None,
                last: int | None = None, before: str | None = None, states: list[str] | None = None,
                author: str | None = None, **_: Any) -> dict[str, Any]:
        reviews = sorted((v for v in self._repo.reviews.values() if v.number == self._pull.number),
                         key=lambda v: v.id)
        if states:
            reviews = [v for v in reviews if v.state in states]
        if author is not None:
            reviews = [v for v in reviews if v.login == author]
        return _connection(reviews, lambda v: [v.id], self._review_node, name="reviews", first=first, after=after,
                           last=last, before=before)

    def comments(self, info: graphql.GraphQLResolveInfo, first: int | None = None, after: str | None = None,
                 last: int | None = None, before: str | None = None, **_: Any) -> dict[str, Any]:
        comments = sorted((c for c in self._repo.issue_comments.values() if c.number == self._pull.number),
                          key=lambda c: c.id)

        def node(comment: _IssueComment) -> dict[str, Any]:
            return {"id": _node_id("IC", comment.id), "databaseId": comment.id, "fullDatabaseId": str(comment.id),
                    "body": comment.body, "createdAt": comment.created_at,
                    "author": self._fake._gql_actor(comment.login, comment.bot)}

        return _connection(comments, lambda c: [c.id], node, name="comments", first=first, after=after, last=last,
                           before=before)

    def commits(self, info: graphql.GraphQLResolveInfo, first: int | None = None, after: str | None = None,
                last: int | None = None, before: str | None = None, **_: Any) -> dict[str, Any]:
        listed = self._repo.git.commits_between(self.baseRefOid, self.headRefOid)
        indexed = list(enumerate(listed))

        def node(item: tuple[int, _Commit]) -> dict[str, Any]:
            return {"commit": _GqlCommit(self._fake, self._repo, item[1].sha),
                    "url": f"{self.url}/commits/{item[1].sha}"}

        return _connection(indexed, lambda i: [i[0]], node, name="commits", first=first, after=after, last=last,
                           before=before)


# ------------------------------------------------------------------------------------------- routes

_RouteHandler = Callable[[FakeGitHub, _Request, Any, dict[str, str]], _Response]
_R = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_P = _R + r"/pulls/(?P<number>\d+)"
_ROUTE_TABLE: list[tuple[str, str, _RouteHandler]] = [
    ("GET", "/rate_limit", FakeGitHub._h_rate_limit),
    ("GET", "/user", FakeGitHub._h_user),
    ("GET", _R, FakeGitHub._h_repo),
    ("GET", _R + "/pulls", FakeGitHub._h_list_pulls),
    ("POST", _R + "/pulls", FakeGitHub._h_create_pull),
    ("GET", _P, FakeGitHub._h_get_pull),
    ("PATCH", _P, FakeGitHub._h_edit_pull),
    ("PUT", _P + "/update-branch", FakeGitHub._h_update_branch),
    ("PUT", _P + "/merge", FakeGitHub._h_merge_pull),
    ("GET", _P + "/merge", FakeGitHub._h_is_merged),
    ("GET", _P + "/reviews", FakeGitHub._h_list_reviews),
    ("POST", _P + "/reviews", FakeGitHub._h_create_review),
    ("GET", _P + r"/reviews/(?P<review>\d+)", FakeGitHub._h_get_review),
    ("GET", _P + r"/reviews/(?P<review>\d+)/comments", FakeGitHub._h_review_comments),
    ("PUT", _P + r"/reviews/(?P<review>\d+)/dismissals", FakeGitHub._h_dismiss_review),
    ("GET", _P + "/comments", FakeGitHub._h_pull_comments),
    ("GET", _R + r"/issues/(?P<number>\d+)/comments", FakeGitHub._h_list_issue_comments),
    ("POST", _R + r"/issues/(?P<number>\d+)/comments", FakeGitHub._h_create_issue_comment),
    ("GET", _R + "/commits/(?P<ref>[^/]+)", FakeGitHub._h_commit),
    ("GET", _R + "/commits/(?P<ref>[^/]+)/check-runs", FakeGitHub._h_check_runs_for_ref),
    ("GET", _R + "/commits/(?P<ref>[^/]+)/status", FakeGitHub._h_combined_status),
    ("GET", _R + "/commits/(?P<ref>[^/]+)/statuses", FakeGitHub._h_statuses),
    ("GET", _R + "/statuses/(?P<ref>[^/]+)", FakeGitHub._h_statuses),
    ("POST", _R + "/statuses/(?P<ref>[^/]+)", FakeGitHub._h_create_status),
    ("GET", _R + r"/check-runs/(?P<id>\d+)", FakeGitHub._h_check_run),
    ("GET", _R + r"/check-runs/(?P<id>\d+)/annotations", FakeGitHub._h_annotations),
    ("GET", _R + r"/actions/jobs/(?P<id>\d+)", FakeGitHub._h_job),
    ("GET", _R + r"/actions/jobs/(?P<id>\d+)/logs", FakeGitHub._h_job_logs),
    ("GET", _R + "/compare/(?P<basehead>.+)", FakeGitHub._h_compare),
    ("GET", _R + "/hooks", FakeGitHub._h_list_hooks),
    ("POST", _R + "/hooks", FakeGitHub._h_create_hook),
    ("GET", _R + r"/hooks/(?P<hook>\d+)", FakeGitHub._h_get_hook),
    ("PATCH", _R + r"/hooks/(?P<hook>\d+)", FakeGitHub._h_edit_hook),
    ("GET", _R + r"/hooks/(?P<hook>\d+)/deliveries", FakeGitHub._h_hook_deliveries),
]
_ROUTE_TABLE[:0] = issue_routes(_R)  # issues, their comments (pull requests' too), permissions: github_issues.py
_ROUTES = [(verb, re.compile(pattern), handler) for verb, pattern, handler in _ROUTE_TABLE]


__all__ = ["DEFAULT_TOKEN", "RATE_LIMIT", "FakeGitHub", "GitError", "Kind", "RequestRecord", "Resource"]
