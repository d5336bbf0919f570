"""Pure rules that turn GitHub's answers into definition-of-done verdicts: the CI rollup and the reviews.

Apart from the client so that each rule is a table test: GitHub has two CI systems (check runs and commit
statuses), reruns that leave stale results behind, bots that review by comment, and reviews left on an
older head. Getting any of these wrong either ships a red PR or waits forever.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.observation import Review

PASS = {"SUCCESS"}
SKIP = {"SKIPPED", "NEUTRAL"}
FAIL = {"FAILURE", "ERROR", "CANCELLED", "TIMED_OUT", "STARTUP_FAILURE"}
HUMAN = {"ACTION_REQUIRED", "STALE"}
"""Conclusions only a person can move on. ACTION_REQUIRED: the check asks for a human (an approval to run a
workflow, a deployment gate). STALE: only GitHub sets it, on a check run left incomplete for 14 days. It says
nothing about the code (nothing ran to completion, so there is no evidence to give an agent, and a retry
would burn an attempt on something code cannot fix), it never completes by itself (as "pending", the way
``gh pr checks`` buckets it, the task would wait silently forever), and it is not a pass (ignoring it would
mark ready a PR whose CI never finished). What it needs is a re-run: the human is asked, once per head. A
failing check beside either still fails (see :func:`rollup`)."""

# Words with which review bots mark findings that must be fixed (CodeRabbit, Copilot, custom bots).
BLOCKING = re.compile(
    r"actionable comments posted:\s*[1-9]|\bchanges requested\b|\brequest(?:ing)? changes\b|\bmust fix\b|"
    r"\bblocking\b|\bcritical\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Check:
    """One CI result at a commit, from either system."""

    name: str
    kind: str  # "check_run" | "status"
    verdict: str  # "pass" | "skip" | "fail" | "pending" | "action_required"
    conclusion: str  # GitHub's own word (FAILURE, TIMED_OUT, PENDING, ...)
    at: str  # ISO time used to keep the newest of reruns
    id: int = 0  # check run id (an Actions check run's id is its job id)
    url: str = ""
    description: str = ""


@dataclass(frozen=True)
class Rollup:
    state: str  # "none" | "pending" | "pass" | "fail" | "action_required"
    checks: tuple[Check, ...] = ()

    def named(self, verdict: str) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.verdict == verdict)


def check_from_context(node: Mapping[str, Any]) -> Check | None:
    """A ``statusCheckRollup`` context node (CheckRun or StatusContext) as a :class:`Check`."""
    if node.get("__typename") == "CheckRun":
        status = str(node.get("status") or "")
        conclusion = str(node.get("conclusion") or "")
        if status != "COMPLETED":
            verdict = "pending"
        elif conclusion in PASS:
            verdict = "pass"
        elif conclusion in SKIP:
            verdict = "skip"
        elif conclusion in HUMAN:
            verdict = "action_required"
        elif conclusion in FAIL:
            verdict = "fail"
        else:
            verdict = "pending"
        return Check(
            name=str(node.get("name") or ""), kind="check_run", verdict=verdict, conclusion=conclusion or status,
            at=str(node.get("completedAt") or node.get("startedAt") or ""), id=int(node.get("databaseId") or 0),
            url=str(node.get("detailsUrl") or ""), description=str(node.get("title") or ""),
        )
    if node.get("__typename") == "StatusContext":
        state = str(node.get("state") or "")
        verdict = {"SUCCESS": "pass", "FAILURE": "fail", "ERROR": "fail"}.get(state, "pending")
        return Check(
            name=str(node.get("context") or ""), kind="status", verdict=verdict, conclusion=state,
            at=str(node.get("createdAt") or ""), url=str(node.get("targetUrl") or ""),
            description=str(node.get("description") or ""),
        )
    return None


def rollup(checks: Iterable[Check]) -> Rollup:
    """The rule of ``gh pr checks``: reruns deduplicated by name (newest wins); any failure fails (a red
    check is retried even when another one waits for a human); else a check waiting for a human asks one;
    else anything pending is pending; else at least one pass passes; zero checks is "no CI" so that a
    repository without CI is not waited on forever."""
    newest: dict[tuple[str, str], Check] = {}
    for check in checks:
        key = (check.kind, check.name)
        old = newest.get(key)
        if old is None or (check.at, check.id) >= (old.at, old.id):
            newest[key] = check
    kept = tuple(sorted(newest.values(), key=lambda c: c.name))
    verdicts = {c.verdict for c in kept}
    if not kept:
        return Rollup("none")
    if "fail" in verdicts:
        return Rollup("fail", kept)
    if "action_required" in verdicts:
        return Rollup("action_required", kept)
    if "pending" in verdicts:
        return Rollup("pending", kept)
    return Rollup("pass" if "pass" in verdicts else "none", kept)


def normal_login(login: str) -> str:
    """REST says ``coderabbitai[bot]``, GraphQL says ``coderabbitai``: compare without the suffix."""
    login = login.strip().lower()
    return login[: -len("[bot]")] if login.endswith("[bot]") else login


@dataclass(frozen=True)
class ReviewNode:
    id: str
    login: str
    bot: bool
    state: str
    commit: str
    at: str
    body: str
    comments: int


def review_from_node(node: Mapping[str, Any]) -> ReviewNode:
    author = node.get("author") or {}
    return ReviewNode(
        id=str(node.get("fullDatabaseId") or ""),
        login=str(author.get("login") or "ghost"),
        bot=author.get("__typename") == "Bot",
        state=str(node.get("state") or ""),
        commit=str((node.get("commit") or {}).get("oid") or ""),
        at=str(node.get("submittedAt") or ""),
        body=str(node.get("body") or ""),
        comments=int((node.get("comments") or {}).get("totalCount") or 0),
    )


OPINIONS = ("APPROVED", "CHANGES_REQUESTED")


def verdicts(opinionated: Sequence[ReviewNode], latest: Sequence[ReviewNode], head: str,
             wanted: Sequence[str]) -> tuple[tuple[Review, ReviewNode], ...]:
    """The reviews that count at ``head``, each with the node it came from.

    ``opinionated`` is GitHub's ``latestOpinionatedReviews``: each reviewer's latest APPROVED or
    CHANGES_REQUESTED review, so an approval followed by a plain comment still approves, and a dismissed
    review is no opinion (a DISMISSED node, should GitHub send one, counts for nothing). ``latest`` is
    ``latestReviews`` (each reviewer's latest review of any kind): from it only a bot's COMMENTED review
    newer than the bot's opinion is taken, and it is a verdict: blocking when it has inline comments or says
    so in words, an approval otherwise. A human's comment is never a verdict.

    Only a verdict on the current head counts (one on an older commit is about code that is gone). With
    ``wanted`` reviewers configured only they count; otherwise everyone does.
    """
    names = {normal_login(w) for w in wanted}
    chosen: dict[str, ReviewNode] = {}
    for node in sorted(opinionated, key=lambda n: n.at):
        if node.state in OPINIONS:
            chosen[normal_login(node.login)] = node
    for node in latest:
        login = normal_login(node.login)
        known = chosen.get(login)
        if node.bot and node.state == "COMMENTED" and (known is None or node.at >= known.at):
            chosen[login] = node
    counted: list[tuple[Review, ReviewNode]] = []
    for login, node in sorted(chosen.items(), key=lambda item: item[1].at):
        if (names and login not in names) or node.commit != head:
            continue
        state = node.state
        if state == "COMMENTED":
            state = "CHANGES_REQUESTED" if node.comments or BLOCKING.search(node.body) else "APPROVED"
        counted.append((Review(login, state, node.body), node))
    return tuple(counted)
