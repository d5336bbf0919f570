"""The CI rollup and review rules for GitHub, as tables (the fake server covers the transport)."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.world.github import failing_tail, pr_body, screenshots_section
from monitor.world.github_rollup import check_from_context, review_from_node, rollup, verdicts
from registry.models import Task

HEAD = "c" * 40
OLD = "d" * 40


def run(name: str, status: str = "COMPLETED", conclusion: str | None = "SUCCESS", at: str = "2026-01-01T00:00:00Z",
        id: int = 1) -> dict[str, Any]:
    return {"__typename": "CheckRun", "name": name, "status": status, "conclusion": conclusion, "completedAt": at,
            "databaseId": id}


def status(context: str, state: str, at: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"__typename": "StatusContext", "context": context, "state": state, "createdAt": at}


ROLLUP_ROWS = [
    pytest.param([], "none", id="zero-checks-is-no-ci"),
    pytest.param([run("test")], "pass", id="one-pass"),
    pytest.param([run("test"), status("ci/jenkins", "SUCCESS")], "pass", id="both-systems-pass"),
    pytest.param([run("test"), status("ci/jenkins", "FAILURE")], "fail", id="a-failing-status-fails"),
    pytest.param([run("test"), status("ci/jenkins", "ERROR")], "fail", id="status-error-fails"),
    pytest.param([run("test"), status("deploy", "PENDING")], "pending", id="pending-status-waits"),
    pytest.param([run("test", status="IN_PROGRESS", conclusion=None)], "pending", id="in-progress"),
    pytest.param([run("test", status="QUEUED", conclusion=None), run("lint", conclusion="FAILURE")], "fail",
                 id="any-failure-wins-over-pending"),
    pytest.param([run("test", conclusion="SKIPPED")], "none", id="only-skipped-is-no-ci"),
    pytest.param([run("test"), run("docs", conclusion="NEUTRAL")], "pass", id="neutral-is-skip"),
    *(pytest.param([run("test", conclusion=c)], "fail", id=f"{c.lower()}-fails")
      for c in ("FAILURE", "CANCELLED", "TIMED_OUT", "STARTUP_FAILURE")),
    pytest.param([run("deploy", conclusion="ACTION_REQUIRED")], "action_required", id="action-required-needs-human"),
    pytest.param([run("deploy", conclusion="ACTION_REQUIRED"), run("test", conclusion="FAILURE")], "fail",
                 id="a-failure-wins-over-action-required"),
    pytest.param([run("deploy", conclusion="ACTION_REQUIRED"), status("ci/jenkins", "ERROR")], "fail",
                 id="a-failing-status-wins-over-action-required"),
    pytest.param([run("deploy", conclusion="ACTION_REQUIRED"), run("test", status="QUEUED", conclusion=None)],
                 "action_required", id="action-required-is-asked-while-others-run"),
    pytest.param([run("test", conclusion="STALE")], "action_required", id="stale-asks-for-a-rerun"),
    pytest.param([run("test", conclusion="STALE"), run("lint", conclusion="FAILURE")], "fail",
                 id="a-failure-wins-over-stale"),
    pytest.param([run("test", conclusion="STALE", at="2026-01-01T00:00:00Z", id=1),
                  run("test", conclusion="SUCCESS", at="2026-01-15T00:00:00Z", id=2)], "pass",
                 id="a-rerun-replaces-the-stale-run"),
    pytest.param([run("test", conclusion="FAILURE", at="2026-01-01T00:00:00Z", id=1),
                  run("test", conclusion="SUCCESS", at="2026-01-01T00:05:00Z", id=2)], "pass",
                 id="rerun-that-passed-replaces-the-failure"),
    pytest.param([run("test", conclusion="SUCCESS", at="2026-01-01T00:05:00Z", id=2),
                  run("test", conclusion="FAILURE", at="2026-01-01T00:09:00Z", id=3)], "fail",
                 id="newest-rerun-failed"),
    pytest.param([run("test", status="IN_PROGRESS", conclusion=None, at="2026-01-01T00:09:00Z", id=3),
                  run("test", conclusion="FAILURE", at="2026-01-01T00:01:00Z", id=2)], "pending",
                 id="rerun-in-progress-hides-the-old-failure"),
    pytest.param([status("ci", "FAILURE", at="2026-01-01T00:00:00Z"),
                  status("ci", "SUCCESS", at="2026-01-01T01:00:00Z")], "pass", id="newest-status-per-context"),
]


@pytest.mark.parametrize(("nodes", "expected"), ROLLUP_ROWS)
def test_rollup(nodes: list[dict[str, Any]], expected: str) -> None:
    checks = [c for c in (check_from_context(n) for n in nodes) if c]
    assert rollup(checks).state == expected


def test_rollup_names_the_failing_checks_only() -> None:
    checks = [c for c in (check_from_context(n) for n in
              [run("lint", conclusion="FAILURE", id=9), run("test"), status("ci/e2e", "ERROR")]) if c]
    failing = rollup(checks).named("fail")
    assert [(c.name, c.kind, c.id) for c in failing] == [("ci/e2e", "status", 0), ("lint", "check_run", 9)]


def review(login: str, state: str, commit: str = HEAD, at: str = "2026-01-01T00:00:00Z", bot: bool = False,
           body: str = "", comments: int = 0, id: str = "1") -> Any:
    return review_from_node({
        "fullDatabaseId": id, "state": state, "body": body, "submittedAt": at, "commit": {"oid": commit},
        "author": {"__typename": "Bot" if bot else "User", "login": login}, "comments": {"totalCount": comments},
    })


def as_github_lists(history: list[Any]) -> tuple[list[Any], list[Any]]:
    """(latestOpinionatedReviews, latestReviews) of a chronological review history, as GitHub lists them:
    per reviewer the latest APPROVED/CHANGES_REQUESTED one (none when that one was dismissed), and the latest
    submitted one of any kind."""
    opinion: dict[str, Any] = {}
    latest: dict[str, Any] = {}
    for node in history:
        if node.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            opinion[node.login] = node
        if node.state != "PENDING":
            latest[node.login] = node
    return [n for n in opinion.values() if n.state != "DISMISSED"], list(latest.values())


REVIEW_ROWS = [
    pytest.param([review("alice", "APPROVED")], (), [("alice", "APPROVED")], id="approval"),
    pytest.param([review("alice", "APPROVED", commit=OLD)], (), [], id="approval-on-an-old-head-is-ignored"),
    pytest.param([review("alice", "CHANGES_REQUESTED", at="1"), review("alice", "APPROVED", at="2")], (),
                 [("alice", "APPROVED")], id="latest-per-reviewer"),
    pytest.param([review("alice", "APPROVED", at="1"), review("alice", "COMMENTED", at="2", body="thanks!")], (),
                 [("alice", "APPROVED")], id="approve-then-comment-still-approves"),
    pytest.param([review("alice", "CHANGES_REQUESTED", at="1"), review("alice", "COMMENTED", at="2")], (),
                 [("alice", "CHANGES_REQUESTED")], id="request-changes-then-comment-still-blocks"),
    pytest.param([review("alice", "COMMENTED")], (), [], id="human-comment-is-no-verdict"),
    pytest.param([review("alice", "APPROVED", at="1"), review("alice", "DISMISSED", at="2")], (), [],
                 id="dismissed-approval-is-no-verdict"),
    pytest.param([review("alice", "CHANGES_REQUESTED", at="1"), review("alice", "DISMISSED", at="2"),
                  review("alice", "COMMENTED", at="3")], (), [], id="dismissed-change-request-no-longer-blocks"),
    pytest.param([review("alice", "DISMISSED", at="1"), review("alice", "APPROVED", at="2")], (),
                 [("alice", "APPROVED")], id="approval-after-a-dismissal-counts"),
    pytest.param([review("coderabbitai", "COMMENTED", bot=True, body="Looks good")], (),
                 [("coderabbitai", "APPROVED")], id="bot-comment-without-findings-approves"),
    pytest.param([review("coderabbitai", "COMMENTED", bot=True, body="Actionable comments posted: 2")], (),
                 [("coderabbitai", "CHANGES_REQUESTED")], id="bot-actionable-comments-block"),
    pytest.param([review("coderabbitai", "COMMENTED", bot=True, body="nits", comments=1)], (),
                 [("coderabbitai", "CHANGES_REQUESTED")], id="bot-inline-comments-block"),
    pytest.param([review("coderabbitai", "APPROVED", bot=True, at="1"),
                  review("coderabbitai", "COMMENTED", bot=True, at="2", body="Actionable comments posted: 1")], (),
                 [("coderabbitai", "CHANGES_REQUESTED")], id="bot-approve-then-blocking-comment-blocks"),
    pytest.param([review("coderabbitai", "COMMENTED", bot=True, at="1", body="Actionable comments posted: 1"),
                  review("coderabbitai", "APPROVED", bot=True, at="2")], (),
                 [("coderabbitai", "APPROVED")], id="bot-comment-then-approval-approves"),
    pytest.param([review("alice", "APPROVED"), review("mallory", "CHANGES_REQUESTED")], ("alice",),
                 [("alice", "APPROVED")], id="only-configured-reviewers-count"),
    pytest.param([review("coderabbitai", "APPROVED", bot=True)], ("CodeRabbitAI[bot]",),
                 [("coderabbitai", "APPROVED")], id="rest-bot-login-matches-graphql-login"),
    pytest.param([review("alice", "PENDING")], (), [], id="pending-review-is-not-submitted"),
]


@pytest.mark.parametrize(("history", "wanted", "expected"), REVIEW_ROWS)
def test_review_verdicts(history: list[Any], wanted: tuple[str, ...], expected: list[tuple[str, str]]) -> None:
    opinionated, latest = as_github_lists(history)
    assert [(r.reviewer, r.state) for r, _ in verdicts(opinionated, latest, HEAD, wanted)] == expected


def test_a_dismissed_node_in_the_opinionated_list_is_no_verdict() -> None:
    dismissed = review("alice", "DISMISSED")  # should GitHub ever list one there
    assert verdicts([dismissed], [dismissed], HEAD, ()) == ()


def test_failing_tail_keeps_the_failing_step() -> None:
    log = "\n".join([f"2026-01-01T00:00:{i:02d}.0000000Z line {i}" for i in range(200)]
                    + ["2026-01-01T00:04:00.0000000Z ##[error]Process completed with exit code 1."]
                    + [f"cleanup {i}" for i in range(50)])
    tail = failing_tail(log, lines=20).splitlines()
    assert tail[-5] == "##[error]Process completed with exit code 1."
    assert tail[0] == "line 185"  # timestamps dropped, the lines before the error kept
    assert not any(line.startswith("cleanup 5") for line in tail)


def test_pr_body_has_summary_criteria_links_and_marker(tmp_path: Any) -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    task = Task(id="csv-export", title="CSV export", prompt="Add CSV export of invoices.\n\nDetails follow.",
                agent="claude", base_branch="main", branch="swarm/csv-export", worktree="/w/csv-export",
                acceptance=("GET /invoices.csv returns CSV", "tests cover empty lists"),
                links=("https://sentry.example/issues/42/",), created_at=now, updated_at=now)
    body = pr_body(task)
    assert "Add CSV export of invoices." in body and "Details follow" not in body
    assert "- [ ] GET /invoices.csv returns CSV" in body
    assert "https://sentry.example/issues/42/" in body
    assert body.rstrip().endswith("<!-- swarm-task: csv-export -->")


def test_screenshots_section_links_files_at_the_head() -> None:
    section = screenshots_section("https://github.com/acme/shop", HEAD, [".swarm-screenshots/page.png"])
    assert f"(https://github.com/acme/shop/blob/{HEAD}/.swarm-screenshots/page.png?raw=true)" in section
    assert section.startswith(f"<!-- swarm-screenshots {HEAD} -->")
