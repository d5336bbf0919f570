"""GitHub webhooks: ``POST /webhooks/github`` checks, deduplicates and maps a delivery to the tasks it
concerns, then wakes the reconcile loop for them. It never changes a task itself (ticks are the only
writers), so a forged, replayed or lost delivery costs at most one tick, never a wrong state.

Order of checks, cheapest first and nothing trusted before the signature: the body size (413), the
``X-Hub-Signature-256`` HMAC-SHA256 of the raw body under the secret, compared in constant time (401 and
one log line without the body), then ``X-GitHub-Delivery`` against the deliveries already seen (kept in
``.swarm/webhook-deliveries``, bounded, so a replay after a restart is still ignored), then the event.
The answer goes out at once (GitHub gives up after 10 s); parsing the payload and reading the registry
happen after it, in a background task.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from registry.models import RegistryState, Status

log = logging.getLogger(__name__)

MAX_BODY = 5 * 1024 * 1024  # GitHub caps payloads at 25 MB; the events swarm reads are far below this
EVENTS = frozenset({"check_run", "check_suite", "status", "pull_request", "pull_request_review", "issue_comment",
                    "push", "issues"})
DELIVERIES_FILE = "webhook-deliveries"
KEEP_DELIVERIES = 2000
_DELIVERY_RE = re.compile(r"^[A-Za-z0-9-]{1,100}$")


def signature(secret: bytes, body: bytes) -> str:
    """What GitHub puts in ``X-Hub-Signature-256`` for this body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode("ascii", errors="replace"))


class DeliveryLog:
    """The last ``KEEP_DELIVERIES`` delivery ids, in memory and appended to a file (compacted when it has
    grown to twice that), so a delivery GitHub sends again, or an attacker replays, is ignored across
    restarts. Only ids of correctly signed deliveries are recorded."""

    def __init__(self, path: Path, keep: int = KEEP_DELIVERIES) -> None:
        self.path = path
        self.keep = keep
        self.lock = threading.Lock()
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.lines = 0
        with contextlib.suppress(OSError):
            for line in path.read_text(encoding="ascii", errors="replace").splitlines():
                if _DELIVERY_RE.fullmatch(line):
                    self._remember(line)
                    self.lines += 1

    def _remember(self, delivery: str) -> None:
        self.seen[delivery] = None
        self.seen.move_to_end(delivery)
        while len(self.seen) > self.keep:
            self.seen.popitem(last=False)

    def first_time(self, delivery: str) -> bool:
        """Record ``delivery``; False when it was seen before (or is not a delivery id)."""
        if not _DELIVERY_RE.fullmatch(delivery):
            return False
        with self.lock:
            if delivery in self.seen:
                return False
            self._remember(delivery)
            try:
                if self.lines >= 2 * self.keep:
                    tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
                    tmp.write_text("".join(f"{d}\n" for d in self.seen), encoding="ascii")
                    os.replace(tmp, self.path)
                    self.lines = len(self.seen)
                else:
                    with self.path.open("a", encoding="ascii") as out:
                        out.write(delivery + "\n")
                    self.lines += 1
            except OSError as exc:  # a full disk: the id is still remembered until the service restarts
                log.warning("could not record webhook delivery %s (%s): %s", delivery, self.path, exc.strerror)
        return True


def payload_of(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The JSON payload (a hook may be set to ``application/x-www-form-urlencoded``: ``payload=...``)."""
    try:
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            values = parse_qs(body.decode("utf-8"), max_num_fields=10).get("payload", [])
            if not values:
                return None
            body = values[0].encode("utf-8")
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class Refs:
    """What a delivery names: branches, pull request numbers, commit shas (and a base-branch push)."""

    branches: frozenset[str] = frozenset()
    numbers: frozenset[int] = frozenset()
    shas: frozenset[str] = frozenset()
    base_push: str = ""


def _get(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _strs(values: Iterable[object]) -> frozenset[str]:
    return frozenset(v for v in values if isinstance(v, str) and v)


def _ints(values: Iterable[object]) -> frozenset[int]:
    return frozenset(v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0)


def _prs(items: object) -> tuple[list[object], list[object], list[object]]:
    """Numbers, head branches and head shas of a ``pull_requests`` list (check runs and suites)."""
    numbers, branches, shas = [], [], []
    for pr in items if isinstance(items, list) else []:
        numbers.append(_get(pr, "number"))
        branches.append(_get(pr, "head", "ref"))
        shas.append(_get(pr, "head", "sha"))
    return numbers, branches, shas


def refs_of(event: str, payload: dict[str, Any]) -> Refs:
    """Read the references of a delivery of one of ``EVENTS`` (missing fields are simply absent)."""
    if event in ("check_run", "check_suite"):
        item = payload.get(event)
        numbers, branches, shas = _prs(_get(item, "pull_requests"))
        suite = _get(item, "check_suite") if event == "check_run" else item
        branches.append(_get(suite, "head_branch"))
        shas += [_get(item, "head_sha"), _get(suite, "head_sha")]
        return Refs(_strs(branches), _ints(numbers), _strs(shas))
    if event == "status":
        branch_list = payload.get("branches")
        names = [_get(b, "name") for b in branch_list] if isinstance(branch_list, list) else []
        return Refs(_strs(names), frozenset(), _strs([payload.get("sha")]))
    if event in ("pull_request", "pull_request_review"):
        pr = payload.get("pull_request")
        return Refs(_strs([_get(pr, "head", "ref")]), _ints([_get(pr, "number"), payload.get("number")]),
                    _strs([_get(pr, "head", "sha")]))
    if event == "issue_comment":
        issue = payload.get("issue")
        if _get(issue, "pull_request") is None:
            return Refs()  # a comment on an issue, not on a pull request
        return Refs(numbers=_ints([_get(issue, "number")]))
    if event == "push":
        ref = payload.get("ref")
        if not isinstance(ref, str) or not ref.startswith("refs/heads/"):
            return Refs()
        branch = ref.removeprefix("refs/heads/")
        return Refs(branches=_strs([branch]), shas=_strs([payload.get("after")]), base_push=branch)
    return Refs()


# The actions after which a tick may decide something new. A check run created or in progress, a pending
# status, a PR labelled or assigned leave every task where it was (still waiting for CI, still open), and a CI
# run sends many of them: answering each with a tick would cost the GitHub budget for nothing.
_ACTIONS: dict[str, frozenset[str]] = {
    "check_run": frozenset({"completed"}),
    "check_suite": frozenset({"completed"}),
    "pull_request": frozenset({"closed", "reopened", "synchronize", "edited", "ready_for_review",
                               "converted_to_draft"}),
    "pull_request_review": frozenset({"submitted", "edited", "dismissed"}),
    "issue_comment": frozenset({"created", "edited"}),
}


def changes_something(event: str, payload: dict[str, Any]) -> bool:
    """Whether a delivery of one of ``EVENTS`` can change what a tick decides."""
    if event == "status":
        return payload.get("state") != "pending"
    wanted = _ACTIONS.get(event)
    return wanted is None or payload.get("action") in wanted


def concerned_tasks(state: RegistryState, refs: Refs) -> set[str]:
    """The tasks a delivery concerns: by branch ``swarm/<id>``, pull request number or head sha, and for a
    push to a base branch every task in flight on that base (it may now be behind or in conflict)."""
    found: set[str] = set()
    for task_id, task in state.tasks.items():
        if task.status not in (Status.running, Status.checking, Status.ready):
            continue  # queued tasks start from the registry; finished ones need nothing
        heads = {task.attempt.seen_head if task.attempt else None,
                 task.branch_facts.key.partition(":")[2] if task.branch_facts else None}
        named = (task.branch in refs.branches or (task.pr is not None and task.pr.number in refs.numbers)
                 or bool(refs.shas & {h for h in heads if h}))
        on_base = bool(refs.base_push) and task.base_branch == refs.base_push and task.status is not Status.running
        if named or on_base:
            found.add(task_id)
    return found


def belongs(payload: dict[str, Any], repo: str) -> bool:
    """A delivery for another repository (a shared secret, an organisation hook) is not ours."""
    name = _get(payload, "repository", "full_name")
    return not repo or (isinstance(name, str) and name.lower() == repo.lower())


@dataclass
class WebhookHandler:
    """The pieces the endpoint needs, without the web framework: testable and reused by the benchmark."""

    secret: Callable[[], bytes]
    deliveries: DeliveryLog
    read_state: Callable[[], RegistryState]
    wake: Callable[[set[str]], None]
    on_accepted: Callable[[str, str, int], None]
    repo: str = ""
    max_body: int = MAX_BODY
    # issue intake and `/swarm` comment commands (orchestrator/discovery): the tasks they made or touched
    on_issue_event: Callable[[str, dict[str, Any]], set[str]] | None = None

    def check(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """(HTTP status, reason) for a delivery whose body is ``body``: 202 means "do the work next"."""
        event = headers.get("x-github-event", "")
        delivery = headers.get("x-github-delivery", "")
        safe_delivery = delivery if _DELIVERY_RE.fullmatch(delivery) else "(invalid)"
        secret = self.secret()
        if not secret:
            log.warning("webhook %s refused: no secret (set the variable named by [github] webhook_secret_env)",
                        safe_delivery)
            return 401, "no webhook secret configured"
        if not verify(secret, body, headers.get("x-hub-signature-256")):
            log.warning("webhook %s refused: %s X-Hub-Signature-256", safe_delivery,
                        "bad" if headers.get("x-hub-signature-256") else "no")
            return 401, "bad signature"
        if not self.deliveries.first_time(delivery):
            return 204, "repeated delivery" if _DELIVERY_RE.fullmatch(delivery) else "no delivery id"
        if event not in EVENTS:
            return 204, "event not used"
        return 202, "accepted"

    def handle(self, event: str, delivery: str, body: bytes, content_type: str) -> set[str]:
        """After the answer: read the payload and wake a tick for the tasks it concerns (never raises: the
        answer is gone, and a delivery that could not be mapped is caught by the next reconcile)."""
        try:
            return self._handle(event, delivery, body, content_type)
        except Exception as exc:  # a damaged registry, a full disk: one line, the service goes on
            log.warning("webhook %s (%s) not handled: %s: %s", delivery, event, type(exc).__name__,
                        " ".join(str(exc).split())[:300])
            return set()

    def _handle(self, event: str, delivery: str, body: bytes, content_type: str) -> set[str]:
        payload = payload_of(body, content_type)
        if payload is None:
            log.warning("webhook %s (%s): the body is not a JSON payload; ignored", delivery, event)
            return set()
        if not belongs(payload, self.repo):
            log.info("webhook %s (%s) is for another repository; ignored", delivery, event)
            return set()
        if self.on_issue_event is not None and event in ("issues", "issue_comment"):
            touched = self.on_issue_event(event, payload)
            if touched:
                self.wake(touched)
            if event == "issues":
                self.on_accepted(event, delivery, len(touched))
                return touched
        if not changes_something(event, payload):
            self.on_accepted(event, delivery, 0)
            return set()
        tasks = concerned_tasks(self.read_state(), refs_of(event, payload))
        self.on_accepted(event, delivery, len(tasks))
        if tasks:
            self.wake(tasks)
        return tasks
