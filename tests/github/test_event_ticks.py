"""Event ticks on GitHub read only what they need, and GitHub's budget shows in `swarm status`.

Why: `swarm serve` ticks for the tasks a webhook concerns. Reading every page of open pull requests for one
task would cost ⌈open PRs / 50⌉ requests per event, so webhooks would spend more than polling; reading that
task's PR by number costs 1 request and 1 point. The view of the task must be the one a full read gives,
whatever state its PR is in (CI failing, changes requested, merged, closed, a new PR on the same branch, no
PR recorded yet). And the budget GitHub reports in each answer's ``x-ratelimit-*`` headers is written to
``.swarm/github.json`` for `swarm status` to print. Everything runs against the fake GitHub over HTTP with
the real clients, and a real bare repository as ``origin``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import graphql
import pytest

from monitor.decide import decide
from monitor.layout import Layout
from monitor.observe import Observer
from monitor.policy import DonePolicy, Policy
from monitor.tick import run_tick
from monitor.world.git import Git
from monitor.world.github import GitHubForge
from monitor.world.github_api import GitHubApi, GitHubConfig
from monitor.world.github_query import PAGE_SIZE, pulls_by_branch
from monitor.world.tmux import Tmux
from orchestrator.config import load
from orchestrator.wiring import build_world
from registry.models import Attempt, PullRequest, RegistryState, Status, Task
from registry.store import Registry
from tests.conftest import git
from tests.fakes.github_schema import node_count, rate_limit_cost
from tests.fakes.github_server import FakeGitHub

TOKEN = "ghp_Ev3ntT1cks0123456789abcdefghijklmnopq"
REPO = "acme/shop"
OPEN = 120
SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


@dataclass
class Stage:
    fake: FakeGitHub
    repo: Path
    tmp: Path
    head: str
    numbers: dict[str, int]  # branch -> PR number

    def open(self, *indexes: int) -> None:
        branches = [f"swarm/t-{i:03d}" for i in indexes]
        git(self.repo, "push", "-q", "origin", *[f"{self.head}:refs/heads/{b}" for b in branches])
        for branch in branches:
            self.numbers[branch] = self.fake.open_pr(REPO, branch, title=branch)

    def forge(self, name: str, wanted: tuple[str, ...] = ("coderabbitai[bot]", "carol")) -> GitHubForge:
        api = GitHubApi(GitHubConfig(repo=REPO, api_url=self.fake.url, token=TOKEN,
                                     state_path=self.tmp / name / "github.json", timeout=10, ci_grace=0))
        return GitHubForge(api, Git(self.repo), self.tmp / name, wanted_reviewers=wanted)

    def task(self, index: int, *, pr: bool = True, status: Status = Status.checking) -> Task:
        branch = f"swarm/t-{index:03d}"
        now = datetime.now(UTC)
        worktree = self.tmp / "wt" / branch
        worktree.mkdir(parents=True, exist_ok=True)
        attempt = Attempt(number=1, session=f"swarm-t-{index:03d}", prompt_path=str(worktree / "prompt.md"),
                          started_at=now - timedelta(hours=1), launched_at=now - timedelta(hours=1),
                          ended_at=now - timedelta(minutes=30), start_head=self.head, exit_code=0)
        number = self.numbers.get(branch)
        recorded = PullRequest(number=number, url=f"{self.fake.url}/{REPO}/pull/{number}") if pr and number else None
        return Task(id=f"t-{index:03d}", title=branch, prompt="p", agent="claude", status=status,
                    base_branch="main", branch=branch, worktree=str(worktree), attempts=(attempt,), pr=recorded,
                    created_at=now, updated_at=now)

    def all_tasks(self) -> list[Task]:
        return [self.task(int(b.removeprefix("swarm/t-"))) for b in sorted(self.numbers)]


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
        st = Stage(fake, git_repo, tmp_path, head, {})
        st.open(*range(OPEN))
        for i in range(OPEN):  # local branches at the head the PRs show (the observer reads them)
            git(git_repo, "branch", "-f", f"swarm/t-{i:03d}", head)
        yield st
        assert fake.internal_errors == []


def graphql_calls(fake: FakeGitHub) -> Counter[str | None]:
    return Counter(r.operation for r in fake.requests if r.kind == "graphql")


def full_read(stage: Stage, forge: GitHubForge) -> None:
    """What a full reconcile reads: every task, the pages of every open PR."""
    stage.fake.reset_log()
    forge.prefetch(stage.all_tasks())
    assert graphql_calls(stage.fake)["SwarmOpenPulls"] == 3


def test_an_event_tick_for_one_task_among_120_open_prs_costs_one_request_and_one_point(stage: Stage) -> None:
    full = stage.forge("full")
    full_read(stage, full)
    assert json.loads((stage.tmp / "full" / "github.json").read_text())["open_pulls"] == OPEN

    event = stage.forge("full")  # a new process: the open count comes from the state file
    task = stage.task(7)
    stage.fake.reset_log()
    event.prefetch([task])
    assert len(stage.fake.requests) == 1, [(r.kind, r.operation or r.path) for r in stage.fake.requests]
    assert stage.fake.graphql_points == [("SwarmPullsByNumber", 1)]
    assert event.view(task, stage.head, None) == full.view(task, stage.head, None)

    stage.fake.reset_log()  # 60 tasks: still fewer requests than the 3 pages
    event.prefetch([stage.task(i) for i in range(60)])
    assert graphql_calls(stage.fake) == {"SwarmPullsByNumber": 2}
    assert sum(points for _, points in stage.fake.graphql_points) == 2 + 1


def test_a_full_reconcile_still_reads_the_pages(stage: Stage) -> None:
    forge = stage.forge("full")
    full_read(stage, forge)
    stage.fake.reset_log()
    forge.prefetch(stage.all_tasks())  # 120 tasks by number would take as many requests as the pages
    assert graphql_calls(stage.fake) == {"SwarmOpenPulls": 3}
    first = stage.forge("fresh")  # the open count unknown: the pages, as before
    stage.fake.reset_log()
    first.prefetch([stage.task(1)])
    assert graphql_calls(stage.fake) == {"SwarmOpenPulls": 3}


def test_one_task_is_judged_as_a_full_tick_judges_it_whatever_its_pr_shows(stage: Stage) -> None:
    fake, head = stage.fake, stage.head
    number = stage.numbers
    fake.add_check_run(REPO, head, "tests", conclusion="failure", title="1 failed", summary="test_cart failed")
    # every PR shares the head: reviews tell the tasks apart
    fake.add_review(REPO, number["swarm/t-001"], "coderabbitai", "CHANGES_REQUESTED", bot=True, body="Fix it",
                    comments=[("work.txt", 1, "off by one")])
    fake.add_review(REPO, number["swarm/t-002"], "carol", "APPROVED", body="LGTM")
    fake.close_pr(REPO, number["swarm/t-004"])
    fake.close_pr(REPO, number["swarm/t-005"])  # closed, then opened again as a new PR on the same branch
    reopened = fake.open_pr(REPO, "swarm/t-005", title="again")
    fake.merge_pr(REPO, number["swarm/t-003"], squash=True)
    git(stage.repo, "push", "-q", "origin", f"{head}:refs/heads/swarm/t-200", f"{head}:refs/heads/swarm/t-201")
    git(stage.repo, "branch", "-f", "swarm/t-200", head)
    git(stage.repo, "branch", "-f", "swarm/t-201", head)
    number["swarm/t-200"] = fake.open_pr(REPO, "swarm/t-200", title="opened by the agent")  # not recorded
    cases = [stage.task(0), stage.task(1), stage.task(2), stage.task(3), stage.task(4), stage.task(5),
             stage.task(200, pr=False), stage.task(201, pr=False), stage.task(9, status=Status.ready)]
    everything = [*stage.all_tasks(), cases[-3]]

    full = stage.forge("full")
    stage.fake.reset_log()
    full.prefetch(everything)
    scoped = stage.forge("scoped")
    scoped.api.state.set_open_pulls(len(fake.pulls(REPO)))  # as the last full read of this process saw

    layout = Layout.for_repo(stage.repo)
    policy = Policy(done=DonePolicy(reviews=1, reviewers=("coderabbitai[bot]", "carol")))
    now = datetime.now(UTC)
    seen = {}
    for task in cases:
        stage.fake.reset_log()
        scoped.prefetch([task])
        calls = graphql_calls(stage.fake)
        assert sum(calls.values()) <= 2 and "SwarmOpenPulls" not in calls, (task.id, calls)
        observations = [Observer(layout, Tmux("swarm-unused"), Git(stage.repo), forge).observe(
            task, {}, now, head) for forge in (full, scoped)]
        assert observations[0] == observations[1], task.id
        judged = [decide(task, obs, policy, now) for obs in observations]
        assert judged[0] == judged[1], task.id
        view = observations[1].forge
        assert view is not None
        seen[task.id] = (view.pr, view.ci, "\n".join(r.body for r in view.reviews))
    assert seen["t-000"][1] == "fail" and seen["t-003"][0] is not None
    assert seen["t-005"][0] is not None and seen["t-005"][0].number == reopened
    assert seen["t-200"][0] is not None and seen["t-200"][0].number == number["swarm/t-200"]
    assert seen["t-201"][0] is None
    assert "off by one" in seen["t-001"][2]  # the inline comments, read for the retry's evidence


def test_the_branch_query_stays_inside_githubs_limits() -> None:
    document = graphql.parse(pulls_by_branch(PAGE_SIZE))
    variables = {"owner": "o", "name": "n", **{f"b{i}": f"swarm/t-{i}" for i in range(PAGE_SIZE)}}
    assert rate_limit_cost(document, variables) == (PAGE_SIZE * 4, 2)
    assert node_count(document, variables) == PAGE_SIZE * 161
    assert rate_limit_cost(graphql.parse(pulls_by_branch(1)), {"owner": "o", "name": "n", "b0": "x"})[1] == 1
    with pytest.raises(ValueError, match=f"1 to {PAGE_SIZE}"):
        pulls_by_branch(PAGE_SIZE + 1)


def test_githubs_budget_is_kept_from_the_answers_headers(stage: Stage) -> None:
    forge = stage.forge("budget")
    forge.prefetch([stage.task(1)])  # GraphQL: the pages
    state = json.loads((stage.tmp / "budget" / "github.json").read_text())
    graphql_left = stage.fake.rate_remaining("graphql")
    assert state["rates"]["graphql"]["remaining"] == graphql_left < 5000
    assert state["rates"]["graphql"]["limit"] == 5000 and state["rates"]["graphql"]["reset"] > 0
    number = stage.numbers["swarm/t-001"]
    assert forge.api.rest("read a PR", lambda r: r.get_pull(number).title) == "swarm/t-001"
    forge.api.state.flush_rate(every=0)
    state = json.loads((stage.tmp / "budget" / "github.json").read_text())
    assert state["rates"]["core"] == {"remaining": stage.fake.rate_remaining("core"), "limit": 5000,
                                      "reset": state["rates"]["core"]["reset"], "resource": "core"}
    assert state["rate"]["resource"] == "graphql"  # the scarcer of the two


def test_answers_read_out_of_order_keep_the_lowest_remaining(tmp_path: Path) -> None:
    api = GitHubApi(GitHubConfig(repo=REPO, api_url="http://127.0.0.1:9", token=TOKEN,
                                 state_path=tmp_path / "github.json"))
    api.note_rate({"X-RateLimit-Remaining": "4990", "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": "100",
                   "X-RateLimit-Resource": "graphql"}, "core")
    api.note_rate({"x-ratelimit-remaining": "4995", "x-ratelimit-limit": "5000", "x-ratelimit-reset": "100"},
                  "graphql")
    api.note_rate({"x-ratelimit-remaining": "oops"}, "graphql")  # not a budget: ignored
    api.flush_rate()
    api.flush_rate()  # nothing new: no second write
    data = json.loads((tmp_path / "github.json").read_text())
    assert data["rates"] == {"graphql": {"remaining": 4990, "limit": 5000, "reset": 100, "resource": "graphql"}}
    api.note_rate({"x-ratelimit-remaining": "4999", "x-ratelimit-limit": "5000", "x-ratelimit-reset": "3700"},
                  "graphql")  # the next hour
    api.flush_rate()  # within 5 s of the last write: kept for the next tick
    assert json.loads((tmp_path / "github.json").read_text())["rates"]["graphql"]["remaining"] == 4990
    api.state.flush_rate(every=0)
    assert json.loads((tmp_path / "github.json").read_text())["rates"]["graphql"]["remaining"] == 4999
    api.close()


def configure(stage: Stage, socket: str, tasks: list[Task]) -> None:
    """swarm.toml for the fake GitHub, and these tasks in the registry."""
    (stage.repo / "swarm.toml").write_text(f"""
[project]
base_branch = "main"
forge = "github"

[monitor]
tmux_socket = "{socket}"

[github]
repo = "{REPO}"
api_url = "{stage.fake.url}"
token_env = "GITHUB_TOKEN"
ci_grace = "0s"

[done]
reviews = 1
reviewers = ["carol"]
""")
    exclude = stage.repo / ".git" / "info" / "exclude"
    exclude.write_text(".swarm/\nswarm.toml\n")

    def seed(state: RegistryState) -> RegistryState:
        return state.model_copy(update={"tasks": {task.id: task for task in tasks}})

    Registry(stage.repo / ".swarm").update(seed)


def test_a_tick_limited_to_one_task_asks_github_once_and_leaves_it_as_a_full_tick_does(
        stage: Stage, tmux_socket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    for i in range(OPEN):
        stage.fake.add_review(REPO, stage.numbers[f"swarm/t-{i:03d}"], "carol", "APPROVED", body="LGTM")
    stage.fake.add_check_run(REPO, stage.head, "tests", conclusion="success")
    configure(stage, tmux_socket, [stage.task(i, status=Status.ready) for i in range(OPEN)])
    world = build_world(stage.repo, load(stage.repo / "swarm.toml"))
    stage.fake.reset_log()
    full = run_tick(world)
    assert graphql_calls(stage.fake) == {"SwarmOpenPulls": 3} and full.actions == []
    before = world.registry.read().tasks["t-042"]

    stage.fake.reset_log()
    event = run_tick(world, only={"t-042"})
    assert event.actions == []
    assert [(r.kind, r.operation) for r in stage.fake.requests] == [("graphql", "SwarmPullsByNumber")]
    assert stage.fake.graphql_points == [("SwarmPullsByNumber", 1)]
    after = world.registry.read().tasks["t-042"]
    assert (after.status, after.reason, after.checks) == (before.status, before.reason, before.checks)
    assert after.status is Status.ready

    stage.fake.close_pr(REPO, stage.numbers["swarm/t-042"])  # a webhook says so: the event tick sees it, and
    # looks for a newer open PR of the branch as the pages would show it (none here)
    stage.fake.reset_log()
    run_tick(world, only={"t-042"})
    assert graphql_calls(stage.fake) == {"SwarmPullsByNumber": 1, "SwarmPullsByBranch": 1}
    closed = world.registry.read().tasks["t-042"]  # judged as a full read judges it (the test above)
    assert closed.status is not Status.ready and "closed" in closed.reason.lower(), closed.reason


def test_swarm_status_shows_the_budget_left_after_a_tick(stage: Stage) -> None:
    configure(stage, f"swarm-evt-{os.getpid()}", [stage.task(3, status=Status.ready)])
    env = {**os.environ, "GITHUB_TOKEN": TOKEN}

    def swarm(*args: str) -> str:
        done = subprocess.run([*SWARM, *args], cwd=stage.repo, capture_output=True, text=True, timeout=90, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    swarm("monitor", "run-once")
    out = swarm("status")
    left = stage.fake.rate_remaining("graphql")
    line = next((row for row in out.splitlines() if row.startswith("GitHub budget:")), "")
    assert f"{left:,} of 5,000 GraphQL points left (resets " in line, out


def test_the_budget_line_tells_the_two_budgets_apart_and_a_passed_reset(tmp_path: Path) -> None:
    from orchestrator.serve.health import github_budget

    now = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)
    at = int(now.timestamp())
    rates = {"core": {"remaining": 4990, "limit": 5000, "reset": at + 600, "resource": "core"},
             "graphql": {"remaining": 4712, "limit": 5000, "reset": at + 1800, "resource": "graphql"}}
    (tmp_path / "github.json").write_text(json.dumps({"rates": rates}))
    assert github_budget(tmp_path, now) == ("GitHub budget: 4,712 of 5,000 GraphQL points left (resets 22:30 UTC); "
                                            "4,990 of 5,000 REST requests left (resets 22:10 UTC)")
    assert github_budget(tmp_path, now.replace(minute=40)).startswith(
        "GitHub budget: 5,000 of 5,000 GraphQL points (its hour began again at 22:30 UTC)")
    (tmp_path / "github.json").write_text(json.dumps({"rate": rates["core"]}))  # only the scarcest known
    assert github_budget(tmp_path, now) == "GitHub budget: 4,990 of 5,000 REST requests left (resets 22:10 UTC)"
    (tmp_path / "github.json").write_text(json.dumps({"rates": {"core": {"remaining": "lots"}}}))
    assert github_budget(tmp_path, now) == ""
