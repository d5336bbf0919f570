"""What a tick costs on GitHub's point budget, and how long it waits: the forge against the fake GitHub, which
charges GraphQL GitHub's documented points.

Why: GitHub's GraphQL budget is 5,000 points an hour, not 5,000 requests. A page of 50 pull requests that
nests a connection under each review costs 32 points; a fleet of 1,000 PRs read every minute would then be
blind for most of every hour. These tests hold the forge to 2 points a page, to reading each review's detail
once, and to reading the pages of a tick at once (from the cursors the last tick saw) without losing a PR
when PRs open or close between ticks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.world.git import Git
from monitor.world.github import GitHubForge
from monitor.world.github_api import GitHubApi, GitHubConfig
from registry.models import PullRequest, Status, Task
from tests.conftest import git
from tests.fakes.github_server import FakeGitHub

TOKEN = "ghp_P0ints0123456789abcdefghijklmnopqrstu"
REPO = "acme/shop"


@dataclass
class Stage:
    fake: FakeGitHub
    repo: Path
    tmp: Path
    head: str
    numbers: dict[str, int]  # branch -> PR number

    def open(self, *indexes: int) -> None:
        """Push ``swarm/t-NNN`` branches at the stage's head and open a PR for each."""
        branches = [f"swarm/t-{i:03d}" for i in indexes]
        git(self.repo, "push", "-q", "origin", *[f"{self.head}:refs/heads/{b}" for b in branches])
        for branch in branches:
            self.numbers[branch] = self.fake.open_pr(REPO, branch, title=branch)

    def forge(self, wanted: tuple[str, ...] = ()) -> GitHubForge:
        """A new forge, as a one-shot tick makes it: only the state file carries anything over."""
        api = GitHubApi(GitHubConfig(repo=REPO, api_url=self.fake.url, token=TOKEN,
                                     state_path=self.tmp / "state" / "github.json", timeout=10, ci_grace=0))
        return GitHubForge(api, Git(self.repo), self.tmp / "state", wanted_reviewers=wanted)

    def tasks(self) -> list[Task]:
        now = datetime.now(UTC)
        return [Task(id=branch.removeprefix("swarm/"), title=branch, prompt="p", agent="claude",
                     status=Status.checking, base_branch="main", branch=branch, worktree=str(self.tmp / "wt"),
                     pr=PullRequest(number=number, url=f"{self.fake.url}/{REPO}/pull/{number}"),
                     created_at=now, updated_at=now)
                for branch, number in self.numbers.items()]

    def tick(self, forge: GitHubForge) -> Counter[str | None]:
        """One prefetch (what a tick asks GitHub), as GraphQL operations counted."""
        self.fake.reset_log()
        forge.prefetch(self.tasks())
        return Counter(r.operation for r in self.fake.requests if r.kind == "graphql")

    def seen(self, forge: GitHubForge) -> set[str]:
        return {t.branch for t in self.tasks() if forge.view(t, self.head, None).pr is not None}

    def state(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.tmp / "state" / "github.json").read_text())
        return data


@pytest.fixture
def stage(git_repo: Path, tmp_path: Path) -> Iterator[Stage]:
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(git_repo), str(bare))
    git(git_repo, "remote", "add", "origin", str(bare))
    (git_repo / "work.txt").write_text("work\n")
    git(git_repo, "add", "work.txt")
    git(git_repo, "commit", "-q", "-m", "work")
    head = git(git_repo, "rev-parse", "HEAD")
    with FakeGitHub(token=TOKEN) as fake:
        fake.add_repo("acme", "shop", bare)
        yield Stage(fake, git_repo, tmp_path, head, {})
        assert fake.internal_errors == []


def test_a_quiet_tick_costs_two_points_a_page(stage: Stage) -> None:
    stage.open(*range(3))
    forge = stage.forge()
    assert stage.tick(forge) == {"SwarmOpenPulls": 1}
    assert stage.fake.graphql_points == [("SwarmOpenPulls", 2)]
    assert forge.api.points == 2  # as GitHub reported it in rateLimit { cost }
    assert stage.seen(forge) == set(stage.numbers)


def test_the_pages_of_a_tick_are_read_at_once_from_the_cursors_of_the_last_tick(stage: Stage) -> None:
    stage.open(*range(120))
    first = stage.forge()
    assert stage.tick(first) == {"SwarmOpenPulls": 3}  # no cursors yet: one page after another
    assert stage.fake.most_in_flight("graphql") == 1
    assert len(stage.state()["page_cursors"]) == 2  # type: ignore[arg-type]

    stage.fake.delay_next(3, 1.0, path_prefix="/graphql")  # answers slow enough to overlap if sent at once
    later = stage.forge()
    assert stage.tick(later) == {"SwarmOpenPulls": 3}
    assert stage.fake.most_in_flight("graphql") == 3
    assert sum(points for _, points in stage.fake.graphql_points) == 6
    assert stage.seen(later) == set(stage.numbers)


def test_prs_closed_and_opened_between_ticks_are_neither_lost_nor_doubled(stage: Stage) -> None:
    stage.open(*range(120))
    stage.tick(stage.forge())
    for branch in [f"swarm/t-{i:03d}" for i in (*range(0, 10), *range(55, 60))]:
        stage.fake.close_pr(REPO, stage.numbers.pop(branch))
    stage.open(*range(120, 160))  # 145 open: the pages overlap where PRs closed, the last one grows
    forge = stage.forge()
    assert stage.tick(forge) == {"SwarmOpenPulls": 4}  # 3 at once, then the last one followed
    assert stage.seen(forge) == set(stage.numbers)
    again = stage.forge()
    assert stage.tick(again) == {"SwarmOpenPulls": 3}  # the pages begin at every 50th PR again
    assert stage.seen(again) == set(stage.numbers)


def test_pages_that_leave_a_gap_are_read_again_in_order(stage: Stage, caplog: pytest.LogCaptureFixture) -> None:
    stage.open(*range(120))
    stage.tick(stage.forge())
    state = stage.state()
    cursors = state["page_cursors"]
    assert isinstance(cursors, list)
    state["page_cursors"] = cursors[1:]  # the 2nd page forgotten: PRs 51 to 100 would be missed
    (stage.tmp / "state" / "github.json").write_text(json.dumps(state))
    forge = stage.forge()
    assert stage.tick(forge) == {"SwarmOpenPulls": 2 + 3}
    assert "held 70 of 120" in caplog.text
    assert stage.seen(forge) == set(stage.numbers)
    assert stage.state()["page_cursors"] == cursors


def test_a_reviews_inline_comments_are_counted_once(stage: Stage) -> None:
    stage.open(0, 1, 2)
    bot, approved, other = (stage.numbers[f"swarm/t-{i:03d}"] for i in range(3))
    stage.fake.add_review(REPO, bot, "coderabbitai", "COMMENTED", bot=True, body="Review",
                          comments=[("work.txt", 1, "off by one")])
    stage.fake.add_review(REPO, approved, "carol", "APPROVED", body="LGTM")
    stage.fake.add_review(REPO, other, "coderabbitai", "COMMENTED", bot=True, body="Looks fine",
                          commit_id=git(stage.repo, "rev-parse", "HEAD~1"))  # an older head: not counted
    tasks = {t.pr.number: t for t in stage.tasks() if t.pr is not None}

    forge = stage.forge()
    assert stage.tick(forge) == {"SwarmOpenPulls": 1, "SwarmReviewComments": 1}
    assert stage.fake.graphql_points == [("SwarmOpenPulls", 2), ("SwarmReviewComments", 1)]
    verdict = forge.view(tasks[bot], stage.head, None).reviews
    assert [(r.reviewer, r.state) for r in verdict] == [("coderabbitai", "CHANGES_REQUESTED")]
    assert "off by one" in verdict[0].body  # the inline comments, fetched for the retry's evidence

    later = stage.forge()  # a new process: the count comes from the state file
    assert stage.tick(later) == {"SwarmOpenPulls": 1}
    assert [(r.reviewer, r.state) for r in later.view(tasks[bot], stage.head, None).reviews] == [
        ("coderabbitai", "CHANGES_REQUESTED")]

    stage.fake.add_review(REPO, approved, "coderabbitai", "COMMENTED", bot=True, body="No findings")
    latest = stage.forge()
    assert stage.tick(latest) == {"SwarmOpenPulls": 1, "SwarmReviewComments": 1}  # only the new review
    assert sorted((r.reviewer, r.state) for r in latest.view(tasks[approved], stage.head, None).reviews) == [
        ("carol", "APPROVED"), ("coderabbitai", "APPROVED")]


def test_reviewers_not_counted_need_no_detail(stage: Stage) -> None:
    stage.open(0)
    stage.fake.add_review(REPO, stage.numbers["swarm/t-000"], "someone", "CHANGES_REQUESTED", body="no",
                          comments=[("work.txt", 1, "hm")])
    assert stage.tick(stage.forge(wanted=("coderabbitai[bot]",))) == {"SwarmOpenPulls": 1}


def test_cursors_github_refuses_are_forgotten_and_the_pages_read_in_order(stage: Stage,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    stage.open(*range(60))
    stage.tick(stage.forge())
    state = stage.state()
    state["page_cursors"] = ["bm90IGEgY3Vyc29y"]  # a cursor of some other GitHub: INVALID_CURSOR_ARGUMENTS
    (stage.tmp / "state" / "github.json").write_text(json.dumps(state))
    forge = stage.forge()
    assert stage.tick(forge) == {"SwarmOpenPulls": 2 + 2}
    assert "refused from the last tick's cursors" in caplog.text
    assert stage.seen(forge) == set(stage.numbers)
    assert stage.state()["page_cursors"] != ["bm90IGEgY3Vyc29y"]
