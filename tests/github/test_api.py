"""The GitHub gate with the real PyGithub and httpx clients: a REST rate limit blocks every later call
(REST and GraphQL, across processes), a 403 that is not a limit stays an error, job logs come without the
token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from github import GithubException

from monitor.world.forge import ForgeUnavailable
from monitor.world.github_api import GitHubApi, GitHubConfig
from monitor.world.github_query import OPEN_PULLS
from tests.conftest import git
from tests.fakes.github_server import FakeGitHub

TOKEN = "ghp_APItest0123456789abcdefghijklmnopqrstu"


@pytest.fixture
def fake(git_repo: Path) -> Iterator[FakeGitHub]:
    bare = git_repo.parent / "remote.git"
    git(git_repo.parent, "clone", "-q", "--bare", str(git_repo), str(bare))
    with FakeGitHub(token=TOKEN) as server:
        server.add_repo("acme", "shop", bare)
        yield server


def api_for(fake: FakeGitHub, tmp_path: Path, token: str = TOKEN) -> GitHubApi:
    return GitHubApi(GitHubConfig(repo="acme/shop", api_url=fake.url, token=token,
                                  state_path=tmp_path / "github.json", timeout=5))


@pytest.mark.parametrize(("status", "retry_after"), [(403, None), (429, 3), (429, None)])
def test_a_rest_rate_limit_blocks_every_later_call_until_the_reset(fake: FakeGitHub, tmp_path: Path, status: int,
                                                                   retry_after: int | None) -> None:
    fake.rate_limit(600, status=status, retry_after=retry_after, resource="core")
    api = api_for(fake, tmp_path)
    with pytest.raises(ForgeUnavailable, match="rate limit"):
        api.rest("list pulls", lambda r: list(r.get_pulls(state="open")))
    seen = len(fake.requests)
    assert seen >= 1
    expected = retry_after or 600  # retry-after wins; else x-ratelimit-reset (the end of the window)
    assert api.state.blocked_until == pytest.approx(time.time() + expected, abs=5)
    # a new process (a one-shot tick) reads the block from disk and makes no call at all
    again = api_for(fake, tmp_path)
    with pytest.raises(ForgeUnavailable, match="no calls until"):
        again.graphql(OPEN_PULLS, {"owner": "acme", "name": "shop", "cursor": None})
    with pytest.raises(ForgeUnavailable, match="no calls until"):
        again.rest("list pulls", lambda r: list(r.get_pulls(state="open")))
    assert len(fake.requests) == seen


def test_a_403_that_is_not_a_rate_limit_is_an_error_not_a_block(fake: FakeGitHub, tmp_path: Path) -> None:
    api = api_for(fake, tmp_path, token="ghp_wrong000000000000000000000000000000000")
    with pytest.raises(GithubException) as raised:
        api.rest("get repo", lambda r: r.default_branch)
    assert raised.value.status == 401
    assert api.state.blocked_until == 0.0


def test_graphql_reads_are_retried_a_bounded_number_of_times(fake: FakeGitHub, tmp_path: Path) -> None:
    naps: list[float] = []
    api = GitHubApi(GitHubConfig(repo="acme/shop", api_url=fake.url, token=TOKEN,
                                 state_path=tmp_path / "github.json", timeout=5), sleep=naps.append)
    fake.fail_next(5, status=502, path_prefix="/graphql")
    with pytest.raises(ForgeUnavailable, match=r"502 \(3 tries\)"):
        api.graphql(OPEN_PULLS, {"owner": "acme", "name": "shop", "cursor": None})
    assert fake.count("graphql") == 3 and len(naps) == 2
    assert 0.25 <= naps[0] <= 0.75 and 0.5 <= naps[1] <= 1.5  # backoff with jitter


def test_job_logs_follow_the_redirect_without_the_token(fake: FakeGitHub, git_repo: Path, tmp_path: Path) -> None:
    sha = git(git_repo, "rev-parse", "HEAD")
    job = fake.add_check_run("acme/shop", sha, "test", conclusion="failure", log="line 1\nboom\n")
    api = api_for(fake, tmp_path)
    assert api.job_log(job) == "line 1\nboom\n"
    api_calls = [r for r in fake.requests if r.kind != "redirect_target"]
    blobs = [r for r in fake.requests if r.kind == "redirect_target"]
    assert [r.authorized for r in api_calls] == [True] and [r.authorized for r in blobs] == [False]


def test_pull_requests_no_longer_open_are_read_fifty_per_query(fake: FakeGitHub, git_repo: Path,
                                                               tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from monitor.world.git import Git
    from monitor.world.github import GitHubForge
    from registry.models import PullRequest, Task

    git(git_repo, "checkout", "-q", "-b", "feature")
    (git_repo / "f.txt").write_text("f\n")
    git(git_repo, "add", "f.txt")
    git(git_repo, "commit", "-q", "-m", "feature")
    bare = git_repo.parent / "remote.git"
    git(git_repo, "push", "-q", str(bare), *[f"feature:refs/heads/swarm/t-{i:03d}" for i in range(120)])
    now = datetime.now(UTC)
    tasks = []
    for i in range(120):
        number = fake.open_pr("acme/shop", f"swarm/t-{i:03d}")
        fake.close_pr("acme/shop", number)
        tasks.append(Task(id=f"t-{i:03d}", title="t", prompt="p", agent="claude", base_branch="main",
                          branch=f"swarm/t-{i:03d}", worktree=str(tmp_path / f"t-{i}"), created_at=now,
                          updated_at=now, pr=PullRequest(number=number, url=f"{fake.url}/acme/shop/pull/{number}")))
    forge = GitHubForge(api_for(fake, tmp_path), Git(git_repo), tmp_path)
    fake.reset_log()
    forge.prefetch(tasks)
    assert [r.operation for r in fake.requests] == ["SwarmOpenPulls"] + ["SwarmPullsByNumber"] * 3
    assert all(forge.view(t, "0" * 40, None).closed for t in tasks)
