"""Tests of the fake GitHub itself, driven with the real clients (PyGithub, httpx) and real git repositories.

Why: the monitor's GitHub tests are only as good as the fake they run against. Each test here checks one
thing the fake must do the way GitHub does it (a JSON shape PyGithub reads, a status code, a header, a merge
commit that really lands in the bare repository, a GraphQL answer to the monitor's own documents), so that a
wrong fake fails here rather than making a monitor test pass for the wrong reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from github import Auth, Github, GithubException
from github.GithubException import BadCredentialsException, RateLimitExceededException

from monitor.world.github_query import OPEN_PULLS, REVIEW_COMMENTS, pulls_by_number
from tests.conftest import git
from tests.fakes.github_schema import validate_document
from tests.fakes.github_server import FakeGitHub

TOKEN = "ghp_" + "T3st" * 9
REPO = "acme/widgets"


@dataclass
class World:
    fake: FakeGitHub
    work: Path
    bare: Path

    def commit(self, branch: str, path: str, content: str, *, start: str = "main") -> str:
        """Commit ``path`` on ``branch`` (created from ``start`` if new), push it, and return the commit."""
        if git(self.work, "branch", "--list", branch):
            git(self.work, "checkout", "-q", branch)
        else:
            git(self.work, "checkout", "-q", "-b", branch, start)
        (self.work / path).write_text(content)
        git(self.work, "add", path)
        git(self.work, "commit", "-q", "-m", f"{branch}: {path}")
        git(self.work, "push", "-q", "origin", branch)
        git(self.work, "checkout", "-q", "main")
        return git(self.work, "rev-parse", branch)

    def github(self, **kwargs: Any) -> Github:
        # PyGithub throttles itself by default (0.25 s between requests, 1 s between writes): off for speed
        return Github(auth=Auth.Token(TOKEN), base_url=self.fake.url, seconds_between_requests=0,
                      seconds_between_writes=0, **kwargs)

    def graphql(self, query: str, variables: dict[str, Any] | None = None, operation: str | None = None,
                token: str = TOKEN) -> httpx.Response:
        payload: dict[str, Any] = {"query": query, "variables": variables or {}}
        if operation is not None:
            payload["operationName"] = operation
        return httpx.post(f"{self.fake.url}/graphql", json=payload, headers={"Authorization": f"bearer {token}"})


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# widgets\nline two\n")
    git(work, "add", "README.md")
    git(work, "commit", "-q", "-m", "initial")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    with FakeGitHub(token=TOKEN) as fake:
        fake.add_repo("acme", "widgets", bare, strict=True, required_approvals=1)
        yield World(fake, work, bare)
        assert fake.internal_errors == []


def bare_git(world: World, *args: str) -> str:
    return git(world.bare, *args)


# ------------------------------------------------------------------------------------------------ REST


def test_pull_requests_list_create_duplicate_and_edit(world: World) -> None:
    head = world.commit("feature", "a.txt", "a\n")
    git(world.work, "push", "-q", "origin", "main:refs/heads/level")  # a branch with no commits ahead of main
    repo = world.github().get_repo(REPO)
    assert repo.full_name == REPO and repo.default_branch == "main"

    pr = repo.create_pull(base="main", head="feature", title="Add a", body="first body")
    assert pr.number == 1 and pr.head.sha == head and pr.head.ref == "feature" and pr.user.login == "agent"
    assert pr.html_url == f"{world.fake.url}/{REPO}/pull/1"

    with pytest.raises(GithubException) as duplicate:
        repo.create_pull(base="main", head="acme:feature", title="Again", body="")
    assert duplicate.value.status == 422
    assert duplicate.value.data["errors"][0]["message"] == "A pull request already exists for acme:feature."
    with pytest.raises(GithubException) as level:
        repo.create_pull(base="main", head="level", title="Nothing", body="")
    assert level.value.status == 422 and "No commits between main and level" in str(level.value.data)
    with pytest.raises(GithubException) as missing:
        repo.create_pull(base="main", head="no-such-branch", title="Ghost", body="")
    assert missing.value.data["errors"][0] == {"resource": "PullRequest", "field": "head", "code": "invalid"}

    assert [p.number for p in repo.get_pulls(state="open", head="acme:feature")] == [1]
    assert list(repo.get_pulls(state="open", head="acme:other")) == []
    fetched = repo.get_pull(1)
    assert fetched.mergeable is True and fetched.commits == 1 and fetched.additions == 1
    fetched.edit(body="edited body")
    assert world.fake.pr(REPO, 1)["body"] == "edited body"
    assert repo.get_pull(1).body == "edited body"
    fetched.edit(state="closed")
    assert [p.number for p in repo.get_pulls(state="closed")] == [1]
    assert list(repo.get_pulls(state="open")) == []


def test_rest_lists_paginate_with_link_headers(world: World) -> None:
    world.commit("feature", "a.txt", "a\n")
    for i in range(7):
        git(world.work, "push", "-q", "origin", f"feature:refs/heads/b{i}")
        world.fake.open_pr(REPO, f"b{i}")
    response = httpx.get(f"{world.fake.url}/repos/{REPO}/pulls", params={"per_page": 3},
                         headers={"Authorization": f"token {TOKEN}"})
    assert [p["number"] for p in response.json()] == [7, 6, 5]  # newest first, as GitHub lists them
    links = response.headers["link"]
    assert f'<{world.fake.url}/repos/{REPO}/pulls?per_page=3&page=2>; rel="next"' in links
    assert 'page=3>; rel="last"' in links
    numbers = [p.number for p in world.github(per_page=3).get_repo(REPO).get_pulls()]
    assert numbers == [7, 6, 5, 4, 3, 2, 1]
    assert world.fake.count("rest_read", path_prefix=f"/repos/{REPO}/pulls") == 1 + 3


def test_update_branch_really_merges_the_base_into_the_head(world: World) -> None:
    old_head = world.commit("feature", "a.txt", "a\n")
    main_head = world.commit("main", "b.txt", "b\n")
    number = world.fake.open_pr(REPO, "feature", title="Behind")
    pull = world.github().get_repo(REPO).get_pull(number)
    assert pull.mergeable_state == "behind"  # strict protection and main moved on

    assert pull.update_branch(expected_head_sha="0" * 40) is False  # 422: the head is not that
    assert pull.update_branch(expected_head_sha=old_head) is True
    new_head = bare_git(world, "rev-parse", "feature")
    assert new_head != old_head
    assert bare_git(world, "log", "-1", "--format=%P", new_head).split() == [old_head, main_head]
    assert bare_git(world, "show", f"{new_head}:b.txt") == "b"
    assert "Merge branch 'main' into feature" in bare_git(world, "log", "-1", "--format=%s", new_head)

    again = world.github().get_repo(REPO).get_pull(number)
    assert again.head.sha == new_head and again.mergeable_state == "clean"
    assert again.update_branch() is False  # "There are no new commits on the base branch."
    assert world.fake.requests[-1].status == 422


def test_check_runs_annotations_and_job_logs(world: World) -> None:
    sha = world.commit("feature", "a.txt", "a\n")
    log = "2026-01-01T00:00:00.0000000Z collecting\n2026-01-01T00:00:01.0000000Z FAILED test_a - boom\n"
    old = world.fake.add_check_run(REPO, sha, "tests", conclusion="success")
    run_id = world.fake.add_check_run(
        REPO, sha, "tests", conclusion="failure", title="1 failed", summary="pytest: 1 failed", text="details",
        annotations=[("a.txt", 1, "failure", "boom"), ("b.txt", 3, "warning", "meh", "Lint")], log=log,
    )
    world.fake.add_check_run(REPO, sha, "lint", status="in_progress", conclusion=None, app_slug="ruff-bot")
    repo = world.github().get_repo(REPO)

    runs = {r.name: r for r in repo.get_commit(sha).get_check_runs()}
    assert set(runs) == {"tests", "lint"}  # the re-run replaced the older "tests"
    tests = runs["tests"]
    assert (tests.id, tests.conclusion, tests.status) == (run_id, "failure", "completed")
    assert tests.output.title == "1 failed" and tests.output.summary == "pytest: 1 failed"
    assert tests.output.annotations_count == 2 and tests.app.slug == "github-actions"
    assert tests.details_url.startswith(f"{world.fake.url}/{REPO}/actions/runs/")
    assert runs["lint"].status == "in_progress" and runs["lint"].conclusion is None
    assert runs["lint"].app.slug == "ruff-bot"
    assert {r.id for r in repo.get_commit(sha).get_check_runs(filter="all")} >= {old, run_id}

    annotations = [(a.path, a.start_line, a.annotation_level, a.message, a.title)
                   for a in repo.get_check_run(run_id).get_annotations()]
    assert annotations == [("a.txt", 1, "failure", "boom", ""), ("b.txt", 3, "warning", "meh", "Lint")]

    job = repo.get_workflow_job(run_id)
    assert job.head_sha == sha and job.conclusion == "failure"
    location = job.logs_url()
    assert location.startswith(f"{world.fake.url}/_blobs/job-logs/{run_id}?sig=")
    logs = httpx.get(location)  # no Authorization: a signed URL on another host in real life
    assert logs.status_code == 200 and logs.text == log
    blob = [r for r in world.fake.requests if r.kind == "redirect_target"]
    assert len(blob) == 1 and blob[0].authorized is False
    assert httpx.get(location.split("?")[0] + "?sig=forged").status_code == 403
    with pytest.raises(GithubException) as no_job:
        repo.get_workflow_job(runs["lint"].id)  # not an Actions job with a log
    assert no_job.value.status == 404


def test_combined_status_is_pending_without_statuses(world: World) -> None:
    sha = world.commit("feature", "a.txt", "a\n")
    commit = world.github().get_repo(REPO).get_commit(sha)
    empty = commit.get_combined_status()
    assert (empty.state, empty.total_count, empty.statuses) == ("pending", 0, [])

    world.fake.add_status(REPO, sha, "ci/build", "pending")
    world.fake.add_status(REPO, sha, "ci/build", "success", description="built", target_url="http://ci/1")
    world.fake.add_status(REPO, sha, "ci/deploy", "error", description="no creds")
    combined = commit.get_combined_status()
    assert combined.state == "failure" and combined.total_count == 2
    assert {(s.context, s.state) for s in combined.statuses} == {("ci/build", "success"), ("ci/deploy", "error")}
    assert [s.state for s in commit.get_statuses()] == ["error", "success", "pending"]  # newest first


def test_reviews_review_comments_and_issue_comments(world: World) -> None:
    sha = world.commit("feature", "a.txt", "a\n")
    number = world.fake.open_pr(REPO, "feature")
    human = world.fake.add_review(REPO, number, "carol", "CHANGES_REQUESTED", body="fix it",
                                  comments=[("a.txt", 1, "wrong letter")])
    world.fake.add_review(REPO, number, "copilot-pull-request-reviewer", "COMMENTED", body="hm", bot=True)
    pull = world.github().get_repo(REPO).get_pull(number)

    reviews = list(pull.get_reviews())
    assert [(r.user.login, r.user.type, r.state) for r in reviews] == [
        ("carol", "User", "CHANGES_REQUESTED"), ("copilot-pull-request-reviewer[bot]", "Bot", "COMMENTED")]
    assert reviews[0].commit_id == sha and reviews[0].submitted_at is not None
    assert pull.get_review(human).body == "fix it"
    comments = list(pull.get_single_review_comments(human))
    assert [(c.path, c.line, c.body, c.user.login) for c in comments] == [("a.txt", 1, "wrong letter", "carol")]

    mine = pull.create_review(body="a note", event="COMMENT", comments=[{"path": "a.txt", "line": 1, "body": "ok"}])
    assert mine.state == "COMMENTED" and mine.user.login == "agent"
    assert sorted(c.body for c in pull.get_review_comments()) == ["ok", "wrong letter"]
    with pytest.raises(GithubException) as own:
        pull.create_review(body="lgtm", event="APPROVE")  # GitHub refuses approving one's own PR
    assert own.value.status == 422

    pull.create_issue_comment("Fixed in the next push.")
    assert world.fake.pr(REPO, number)["comments"] == ["Fixed in the next push."]
    assert [c.body for c in pull.get_issue_comments()] == ["Fixed in the next push."]


def test_latest_opinionated_reviews_skip_comments_and_dismissals(world: World) -> None:
    sha = world.commit("feature", "a.txt", "a\n")
    number = world.fake.open_pr(REPO, "feature")
    add = world.fake.add_review
    carol = add(REPO, number, "carol", "APPROVED", body="yes")
    carol_note = add(REPO, number, "carol", "COMMENTED", body="a thought")
    dave = add(REPO, number, "dave", "CHANGES_REQUESTED", body="no")
    erin_yes = add(REPO, number, "erin", "APPROVED", body="yes")
    erin = add(REPO, number, "erin", "CHANGES_REQUESTED", body="on second thought, no")
    bot = add(REPO, number, "coderabbitai", "COMMENTED", body="LGTM", bot=True)
    pull = world.github().get_repo(REPO).get_pull(number)
    pull.get_review(dave).dismiss("outdated")  # PUT .../reviews/{id}/dismissals, as PyGithub sends it
    with pytest.raises(GithubException) as commented:
        pull.get_review(carol_note).dismiss("only opinions can be dismissed")
    assert commented.value.status == 422
    with pytest.raises(ValueError, match="dismissed"):
        world.fake.dismiss_review(REPO, number, dave)  # twice

    query = ("query Reviews($n: Int!) { repository(owner: \"acme\", name: \"widgets\") { pullRequest(number: $n) {"
             " reviewDecision"
             " latestOpinionatedReviews(first: 10, writersOnly: false) {"
             " nodes { fullDatabaseId state author { login } } }"
             " latestReviews(first: 10) { nodes { fullDatabaseId state } } } } }")
    pr = world.graphql(query, {"n": number}).json()["data"]["repository"]["pullRequest"]
    assert [(r["fullDatabaseId"], r["state"]) for r in pr["latestOpinionatedReviews"]["nodes"]] == [
        (str(carol), "APPROVED"), (str(erin), "CHANGES_REQUESTED")]  # no comment, no dismissed one, no bot
    assert [(r["fullDatabaseId"], r["state"]) for r in pr["latestReviews"]["nodes"]] == [
        (str(carol_note), "COMMENTED"), (str(dave), "DISMISSED"), (str(erin), "CHANGES_REQUESTED"),
        (str(bot), "COMMENTED")]
    assert pr["reviewDecision"] == "CHANGES_REQUESTED" and erin_yes < erin
    assert [r.state for r in pull.get_reviews()].count("DISMISSED") == 1 and sha


def test_compare_counts_commits_both_ways(world: World) -> None:
    world.commit("feature", "a.txt", "a\n")
    world.commit("feature", "c.txt", "c\n")
    main_head = world.commit("main", "b.txt", "b\n")
    repo = world.github().get_repo(REPO)
    diverged = repo.compare("main", "feature")
    assert (diverged.status, diverged.ahead_by, diverged.behind_by, diverged.total_commits) == ("diverged", 2, 1, 2)
    assert [c.commit.message for c in diverged.commits] == ["feature: a.txt", "feature: c.txt"]
    assert diverged.merge_base_commit.sha == bare_git(world, "merge-base", "main", "feature")
    assert repo.compare("feature", "main").status == "diverged"
    assert repo.compare(main_head, "main").status == "identical"
    git(world.work, "push", "-q", "origin", "main:refs/heads/old-main")
    world.commit("main", "d.txt", "d\n")
    behind = repo.compare("main", "old-main")
    assert (behind.status, behind.ahead_by, behind.behind_by) == ("behind", 0, 1)


def test_bad_or_missing_token_is_401(world: World) -> None:
    with pytest.raises(BadCredentialsException) as bad:
        Github(auth=Auth.Token("ghp_wrong"), base_url=world.fake.url, retry=None,
               seconds_between_requests=0).get_repo(REPO)
    assert bad.value.status == 401 and bad.value.data["message"] == "Bad credentials"
    anonymous = httpx.get(f"{world.fake.url}/repos/{REPO}")
    assert anonymous.status_code == 401 and "x-ratelimit-remaining" in anonymous.headers
    assert world.graphql("{ viewer { login } }", token="nope").status_code == 401
    assert [(r.status, r.authorized) for r in world.fake.requests] == [(401, True), (401, False), (401, True)]
    assert world.fake.rate_remaining("core") == 5000  # refused requests cost nothing


def test_etag_304_costs_nothing(world: World) -> None:
    auth = {"Authorization": f"token {TOKEN}"}
    url = f"{world.fake.url}/repos/{REPO}"
    first = httpx.get(url, headers=auth)
    assert first.status_code == 200 and first.headers["x-ratelimit-remaining"] == "4999"
    assert first.headers["x-ratelimit-resource"] == "core" and first.headers["x-ratelimit-used"] == "1"
    etag = first.headers["etag"]
    cached = httpx.get(url, headers={**auth, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
    assert cached.headers["x-ratelimit-remaining"] == "4999"
    assert httpx.get(url, headers={**auth, "If-None-Match": 'W/"stale"'}).status_code == 200
    assert world.fake.rate_remaining("core") == 4998
    world.commit("feature", "a.txt", "a\n")
    world.fake.open_pr(REPO, "feature")
    changed = httpx.get(url, headers={**auth, "If-None-Match": etag})  # open_issues_count moved
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_rate_limit_fault_refuses_with_github_headers(world: World) -> None:
    world.fake.rate_limit(30, status=403)
    started = time.time()
    with pytest.raises(RateLimitExceededException) as limited:
        world.github(retry=None).get_repo(REPO)
    headers = limited.value.headers or {}
    assert limited.value.status == 403 and headers["x-ratelimit-remaining"] == "0"
    assert math.ceil(started + 29) <= int(headers["x-ratelimit-reset"]) <= math.ceil(time.time() + 30)
    assert "retry-after" not in headers
    ok = world.graphql("query Q { rateLimit { remaining } }")  # only the core resource is limited
    assert ok.json()["data"]["rateLimit"]["remaining"] == 4999

    world.fake.rate_limit(30, status=429, retry_after=7, resource="graphql")
    refused = world.graphql("query Q { rateLimit { remaining } }")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "7"
    assert refused.json()["message"].startswith("API rate limit exceeded")
    assert refused.headers["x-ratelimit-resource"] == "graphql"
    assert [(r.kind, r.status, r.fault) for r in world.fake.requests] == [
        ("rest_read", 403, "rate_limit"), ("graphql", 200, None), ("graphql", 429, "rate_limit")]


def test_graphql_is_charged_githubs_points_and_reports_them(world: World) -> None:
    """Points, not requests: the connections a query may touch (the product of the bounds above each),
    summed, divided by 100 and rounded, at least 1; in ``rateLimit`` and the ``x-ratelimit-*`` headers."""
    cheap = world.graphql("query Q { rateLimit { cost remaining } }")
    assert cheap.json()["data"]["rateLimit"] == {"cost": 1, "remaining": 4999}
    # GitHub's own example, on a repository: 1 + 100 + 100 x 50 = 5,101 requests -> 51 points
    docs = ("query Docs { repository(owner: \"acme\", name: \"widgets\") { pullRequests(first: 100) { edges {"
            " node { id reviews(first: 50) { edges { node { id comments(first: 60) { edges { node { id } } } } } } } }"
            " } } rateLimit { cost remaining used } }")
    answer = world.graphql(docs)
    assert answer.json()["data"]["rateLimit"] == {"cost": 51, "remaining": 4948, "used": 52}
    assert (answer.headers["x-ratelimit-remaining"], answer.headers["x-ratelimit-used"]) == ("4948", "52")
    assert world.fake.rate_remaining("graphql") == 4948
    assert world.fake.graphql_points == [("Q", 1), ("Docs", 51)]

    def pulls(first: int) -> str:  # 1 + first requests
        return f"pullRequests(first: {first}) {{ nodes {{ reviews(first: 1) {{ totalCount }} }} }}"

    def cost(*firsts: int) -> int:
        fields = " ".join(f"p{n}: {pulls(first)}" for n, first in enumerate(firsts))
        query = f"query C {{ repository(owner: \"acme\", name: \"widgets\") {{ {fields} }} rateLimit {{ cost }} }}"
        value: int = world.graphql(query).json()["data"]["rateLimit"]["cost"]
        return value

    assert (cost(49, 99), cost(49, 98)) == (2, 1)  # 150 requests round up to 2 points, 149 down to 1


def test_a_query_costing_more_than_what_is_left_is_refused_whole(world: World) -> None:
    world.fake.set_rate_remaining("graphql", 50)
    docs = ("query Docs { repository(owner: \"acme\", name: \"widgets\") { pullRequests(first: 100) { nodes {"
            " reviews(first: 50) { nodes { comments(first: 60) { totalCount } } } } } } }")
    refused = world.graphql(docs)
    assert refused.status_code == 200 and refused.json()["errors"][0]["type"] == "RATE_LIMITED"
    assert "data" not in refused.json() and world.fake.rate_remaining("graphql") == 50
    assert world.graphql("query Q { rateLimit { remaining } }").json()["data"]["rateLimit"]["remaining"] == 49


def test_exhausted_budget_is_refused_like_github(world: World) -> None:
    world.fake.set_rate_remaining("graphql", 0)
    answer = world.graphql("query Q { rateLimit { remaining } }")
    assert answer.status_code == 200 and answer.json()["errors"][0]["type"] == "RATE_LIMITED"
    assert answer.headers["x-ratelimit-remaining"] == "0"
    assert world.github(retry=None).get_repo(REPO).name == "widgets"  # core is a separate budget


def test_fail_next_and_delay_next(world: World) -> None:
    world.commit("feature", "a.txt", "a\n")
    world.fake.open_pr(REPO, "feature")
    world.fake.fail_next(1, 502, path_prefix=f"/repos/{REPO}/pulls")
    repo = world.github().get_repo(REPO)  # the path prefix spares this one
    assert [p.number for p in repo.get_pulls()] == [1]  # PyGithub's default retry absorbs one 502
    pulls = [(r.status, r.fault) for r in world.fake.requests if r.path == f"/repos/{REPO}/pulls"]
    assert pulls == [(502, "fail"), (200, None)]

    world.fake.fail_next(1, 503)
    with pytest.raises(GithubException) as unavailable:
        world.github(retry=None).get_repo(REPO)
    assert unavailable.value.status == 503 and "Unicorn" in str(unavailable.value.data)

    world.fake.delay_next(1, 2.0, path_prefix="/graphql")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{world.fake.url}/graphql", json={"query": "{ viewer { login } }"},
                   headers={"Authorization": f"token {TOKEN}"}, timeout=0.2)
    assert world.graphql("{ viewer { login } }").json()["data"]["viewer"]["login"] == "agent"


# --------------------------------------------------------------------------------------------- GraphQL


def test_the_monitor_documents_are_valid_and_typos_are_rejected(world: World) -> None:
    assert validate_document(OPEN_PULLS) == []
    assert validate_document(pulls_by_number([3, 1])) == []
    assert validate_document(REVIEW_COMMENTS) == []
    typo = OPEN_PULLS.replace("headRefOid", "headRefOdi")
    assert any("headRefOdi" in e for e in validate_document(typo))
    answer = world.graphql(typo, {"owner": "acme", "name": "widgets"}, "SwarmOpenPulls")
    body = answer.json()
    assert answer.status_code == 200 and "data" not in body
    assert body["errors"][0]["message"] == "Field 'headRefOdi' doesn't exist on type 'PullRequest'"
    assert world.fake.rate_remaining("graphql") == 5000  # rejected before execution
    missing = world.graphql(OPEN_PULLS, {"owner": "acme", "name": "nope"}).json()
    assert missing["data"]["repository"] is None and missing["errors"][0]["type"] == "NOT_FOUND"


def test_open_pulls_paginates_120_prs_in_three_pages(world: World) -> None:
    head = world.commit("feature", "a.txt", "a\n")
    refspecs = [f"feature:refs/heads/pr-{i:03d}" for i in range(121)]
    git(world.work, "push", "-q", "origin", *refspecs)
    numbers = [world.fake.open_pr(REPO, f"pr-{i:03d}", title=f"PR {i}") for i in range(121)]
    world.fake.close_pr(REPO, numbers[60])
    expected = [n for n in numbers if n != numbers[60]]

    seen: list[dict[str, Any]] = []
    remaining: list[int] = []
    cursor = None
    for _ in range(5):
        data = world.graphql(OPEN_PULLS, {"owner": "acme", "name": "widgets", "cursor": cursor}).json()
        assert "errors" not in data, data
        remaining.append(data["data"]["rateLimit"]["remaining"])
        page = data["data"]["repository"]["pullRequests"]
        seen += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]
        assert cursor and not cursor.isdigit()  # opaque
    assert [n["number"] for n in seen] == expected
    assert remaining == [4998, 4996, 4994]  # 2 points a page: 1 + 50 x 3 requests, divided by 100, rounded
    assert [r.operation for r in world.fake.requests] == ["SwarmOpenPulls"] * 3
    first = seen[0]
    assert (first["headRefName"], first["headRefOid"], first["baseRefName"]) == ("pr-000", head, "main")
    assert (first["state"], first["mergeable"], first["mergeStateStatus"]) == ("OPEN", "MERGEABLE", "CLEAN")
    assert first["statusCheckRollup"] is None and first["reviewDecision"] == "REVIEW_REQUIRED"
    assert first["url"] == f"{world.fake.url}/{REPO}/pull/{numbers[0]}"

    closed = world.graphql(pulls_by_number([numbers[60]]), {"owner": "acme", "name": "widgets"}).json()
    assert closed["data"]["repository"][f"pr{numbers[60]}"]["state"] == "CLOSED"


def test_conflicts_are_conflicting_and_dirty(world: World) -> None:
    world.commit("feature", "README.md", "# widgets\nfeature's line\n")
    world.commit("main", "README.md", "# widgets\nmain's line\n")
    number = world.fake.open_pr(REPO, "feature")
    query = pulls_by_number([number])
    variables = {"owner": "acme", "name": "widgets"}

    world.fake.set_mergeable_unknown(REPO, number, reads=1)
    computing = world.graphql(query, variables).json()["data"]["repository"][f"pr{number}"]
    assert (computing["mergeable"], computing["mergeStateStatus"]) == ("UNKNOWN", "UNKNOWN")
    pr = world.graphql(query, variables).json()["data"]["repository"][f"pr{number}"]
    assert (pr["mergeable"], pr["mergeStateStatus"]) == ("CONFLICTING", "DIRTY")

    pull = world.github().get_repo(REPO).get_pull(number)
    assert pull.mergeable is False and pull.mergeable_state == "dirty"
    before = world.fake.branch_sha(REPO, "feature")
    assert pull.update_branch() is False
    assert world.fake.requests[-1].status == 422 and world.fake.branch_sha(REPO, "feature") == before
    with pytest.raises(ValueError, match="not mergeable"):
        world.fake.merge_pr(REPO, number)


def test_reviews_rollup_and_merge_in_graphql(world: World) -> None:
    sha = world.commit("feature", "a.txt", "a\n")
    number = world.fake.open_pr(REPO, "feature", body="the body")
    world.fake.add_review(REPO, number, "carol", "CHANGES_REQUESTED", body="no")
    approval = world.fake.add_review(REPO, number, "carol", "APPROVED", body="now yes",
                                     comments=[("a.txt", 1, "nit"), ("a.txt", 1, "another nit")])
    bot = world.fake.add_review(REPO, number, "copilot-pull-request-reviewer[bot]", "COMMENTED", body="note")
    check = world.fake.add_check_run(REPO, sha, "tests", conclusion="failure", title="1 failed")
    world.fake.add_status(REPO, sha, "ci/lint", "success", description="clean", target_url="http://ci/lint")
    query = pulls_by_number([number])
    variables = {"owner": "acme", "name": "widgets"}

    pr = world.graphql(query, variables).json()["data"]["repository"][f"pr{number}"]
    assert pr["body"] == "the body" and pr["reviewDecision"] == "APPROVED"
    reviews = pr["latestReviews"]["nodes"]
    assert [(r["fullDatabaseId"], r["state"], r["author"]) for r in reviews] == [
        (str(approval), "APPROVED", {"__typename": "User", "login": "carol"}),
        (str(bot), "COMMENTED", {"__typename": "Bot", "login": "copilot-pull-request-reviewer"}),
    ]
    assert reviews[0]["commit"] == {"oid": sha} and reviews[0]["submittedAt"].endswith("Z")
    assert reviews[0]["body"] == "now yes" and "comments" not in reviews[0]  # detail is a query of its own
    detail = world.graphql(REVIEW_COMMENTS, {"ids": [r["id"] for r in reviews] + ["PRR_kwnothing"]}).json()
    assert "errors" not in detail, detail
    assert detail["data"]["nodes"] == [{"id": reviews[0]["id"], "comments": {"totalCount": 2}},
                                       {"id": reviews[1]["id"], "comments": {"totalCount": 0}}, None]
    assert detail["data"]["rateLimit"]["cost"] == 1
    unbounded = world.graphql(
        "query Unbounded($n: Int!) { repository(owner: \"acme\", name: \"widgets\") {"
        " pullRequest(number: $n) { latestReviews(first: 5) { nodes { comments { nodes { body } } } } } } }",
        {"n": number},
    )
    assert unbounded.json()["errors"][0]["type"] == "MISSING_PAGINATION_BOUNDARIES"
    rollup = pr["statusCheckRollup"]
    assert rollup["state"] == "FAILURE" and pr["mergeStateStatus"] == "UNSTABLE"
    assert rollup["contexts"]["pageInfo"] == {"hasNextPage": False}
    run, status = rollup["contexts"]["nodes"]
    assert (run["__typename"], run["databaseId"], run["status"], run["conclusion"], run["title"]) == (
        "CheckRun", check, "COMPLETED", "FAILURE", "1 failed")
    assert (status["__typename"], status["context"], status["state"], status["targetUrl"]) == (
        "StatusContext", "ci/lint", "SUCCESS", "http://ci/lint")

    world.fake.update_check_run(check, conclusion="success")
    green = world.graphql(query, variables).json()["data"]["repository"][f"pr{number}"]
    assert green["statusCheckRollup"]["state"] == "SUCCESS" and green["mergeStateStatus"] == "CLEAN"

    main_before = world.fake.branch_sha(REPO, "main")
    merge = world.fake.merge_pr(REPO, number)
    assert bare_git(world, "rev-parse", "main") == merge
    assert bare_git(world, "log", "-1", "--format=%P", merge).split() == [main_before, sha]
    merged = world.graphql(query, variables).json()["data"]["repository"][f"pr{number}"]
    assert (merged["state"], merged["merged"]) == ("MERGED", True)
    assert world.github().get_repo(REPO).get_pull(number).merged is True


def test_rate_limit_endpoint_is_free_and_tracks_both_resources(world: World) -> None:
    gh = world.github()
    gh.get_repo(REPO)
    world.graphql("query Q { rateLimit { remaining } }")
    overview = gh.get_rate_limit()
    assert (overview.resources.core.remaining, overview.resources.graphql.remaining) == (4999, 4999)
    assert overview.resources.core.limit == 5000 and overview.resources.core.used == 1
    gh.get_rate_limit()
    assert world.fake.rate_remaining("core") == 4999  # GET /rate_limit costs nothing
    assert gh.rate_limiting[0] == 4999  # PyGithub reads the x-ratelimit headers of every answer


def test_squash_merge_through_rest(world: World) -> None:
    world.commit("feature", "a.txt", "a\n")
    world.commit("feature", "c.txt", "c\n")
    main_before = world.fake.branch_sha(REPO, "main")
    number = world.fake.open_pr(REPO, "feature", title="Add a and c")
    pull = world.github().get_repo(REPO).get_pull(number)
    with pytest.raises(GithubException) as moved:
        pull.merge(merge_method="squash", sha="0" * 40)
    assert moved.value.status == 409  # "Head branch was modified"
    status = pull.merge(merge_method="squash")
    assert status.merged is True
    assert bare_git(world, "rev-parse", "main") == status.sha
    assert bare_git(world, "log", "-1", "--format=%P%n%s", status.sha).split("\n") == [
        main_before, f"Add a and c (#{number})"]
    assert bare_git(world, "show", f"{status.sha}:c.txt") == "c"
    assert pull.is_merged() is True
    assert world.fake.pr(REPO, number)["state"] == "closed"
    assert [p.number for p in world.github().get_repo(REPO).get_pulls(state="closed")] == [number]
