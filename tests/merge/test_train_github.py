"""The merge train on the fake GitHub (real PyGithub/httpx, a real bare repository): only a human's approval
of the current head puts a PR in the train (a bot's, a configured AI reviewer's, or one on an older commit
never does), the train merges exactly the head CI passed, and where the repository runs GitHub's merge queue
every approved PR is enqueued there (enqueuePullRequest) instead of merged by a second queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.tick import run_tick
from registry.models import Status
from tests.fakes.github_server import FakeGitHub
from tests.merge.github_stage import REPO, TOKEN, github_world
from tests.merge.steps import git, spawn, step, tick_until


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as server:
        yield server


def _merges(fake: FakeGitHub) -> list[str]:
    return [r.path for r in fake.requests if r.method == "PUT" and r.path.endswith("/merge")]


def test_only_a_human_approval_of_the_current_head_merges(
        git_repo: Path, tmux_socket: str, fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = tmp_path / "steps"
    world, notifier = github_world(git_repo, tmux_socket, fake, steps, monkeypatch,
                                   done='reviewers = ["coderabbitai[bot]", "gpt-reviewer"]',
                                   merge='mode = "queue"\nmethod = "squash"')
    step(steps, 1, "commit({'a.txt': 'first\\n'}, 'first')\ncommit({'a.txt': 'second\\n'}, 'second')\n")
    task = spawn(world, "Add a")
    state = tick_until(world, "ready", lambda s: s.tasks[task.id].status is Status.ready)
    pr = state.tasks[task.id].pr
    assert pr is not None
    head = git(git_repo, "rev-parse", task.branch)
    fake.add_check_run(REPO, head, "tests")
    fake.add_review(REPO, pr.number, "coderabbitai[bot]", "APPROVED")  # a bot
    fake.add_review(REPO, pr.number, "gpt-reviewer", "APPROVED")  # a configured AI reviewer (a user account)
    fake.add_review(REPO, pr.number, "dependabot", "APPROVED", bot=True)
    fake.add_review(REPO, pr.number, "alice", "APPROVED", commit_id=git(git_repo, "rev-parse", f"{head}~1"))
    for _ in range(3):
        run_tick(world)
    state = world.registry.read()
    assert state.tasks[task.id].status is Status.ready and state.tasks[task.id].merge_request is None
    assert not fake.pr(REPO, pr.number)["merged"] and _merges(fake) == []

    fake.add_review(REPO, pr.number, "bob", "APPROVED")  # a human, on the current head
    state = tick_until(world, "merged", lambda s: s.tasks[task.id].status is Status.merged)
    merged = fake.pr(REPO, pr.number)
    assert merged["merged"] and _merges(fake) == [f"/repos/{REPO}/pulls/{pr.number}/merge"]
    main = git(git_repo.parent / "remote.git", "rev-parse", "main")
    assert len(git(git_repo.parent / "remote.git", "log", "-1", "--format=%P", main).split()) == 1, "squashed"
    assert git(git_repo.parent / "remote.git", "show", "main:a.txt") == "second"
    events = [json.loads(line) for line in world.layout.events_path.read_text().splitlines()]
    joined = next(e for e in events if e["event"] == "merge_requested")
    assert joined["by"] == "bob" and joined["via"] == "github" and joined["head"] == head
    assert any(e["event"] == "train_merged" and e["task"] == task.id for e in events)
    assert any(m.kind == "train" and m.data.get("status") == "landed" for m in notifier.sent)


def test_a_repository_with_a_merge_queue_gets_the_prs_enqueued_not_merged(
        git_repo: Path, tmux_socket: str, fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = tmp_path / "steps"
    world, _ = github_world(git_repo, tmux_socket, fake, steps, monkeypatch, merge_queue=True)
    step(steps, 1, "import uuid\ncommit({uuid.uuid4().hex + '.txt': 'x\\n'}, 'work')\n")
    first = spawn(world, "First")
    second = spawn(world, "Second")
    state = tick_until(world, "both ready",
                       lambda s: all(s.tasks[t.id].status is Status.ready for t in (first, second)))
    numbers = []
    for task in (second, first):  # approved in this order: enqueued in this order
        pr = state.tasks[task.id].pr
        assert pr is not None
        numbers.append(pr.number)
        fake.add_review(REPO, pr.number, "alice", "APPROVED")
        run_tick(world)
    for _ in range(2):
        run_tick(world)
    assert fake.queued(REPO) == numbers, "each approved PR enqueued once, in approval order"
    assert _merges(fake) == [], "no second queue: swarm merges nothing itself"
    state = world.registry.read()
    for task in (first, second):
        request = state.tasks[task.id].merge_request
        assert request is not None and request.enqueued and request.waiting == "in GitHub's merge queue"
    enqueues = [r for r in fake.requests if r.operation == "SwarmEnqueue"]
    assert len(enqueues) == 2
    fake.merge_pr(REPO, numbers[0])  # GitHub's queue lands it: the task is merged as after a human merge
    state = tick_until(world, "merged", lambda s: s.tasks[second.id].status is Status.merged)
    assert state.tasks[first.id].status is Status.ready


def test_a_dismissed_approval_takes_the_task_out_of_the_train_before_any_merge(
        git_repo: Path, tmux_socket: str, fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = tmp_path / "steps"
    world, notifier = github_world(git_repo, tmux_socket, fake, steps, monkeypatch)
    step(steps, 1, "commit({'a.txt': 'mine\\n'}, 'mine')\n")
    task = spawn(world, "Add a")
    state = tick_until(world, "ready", lambda s: s.tasks[task.id].status is Status.ready)
    pr = state.tasks[task.id].pr
    assert pr is not None
    head = git(git_repo, "rev-parse", task.branch)
    other = tmp_path / "other"  # someone else lands work on main: the train must bring the branch up to date
    git(tmp_path, "clone", "-q", str(git_repo.parent / "remote.git"), str(other))
    (other / "b.txt").write_text("theirs\n")
    git(other, "add", "b.txt")
    git(other, "-c", "user.name=Other", "-c", "user.email=other@example.com", "commit", "-q", "-m", "theirs")
    git(other, "push", "-q", "origin", "HEAD:main")
    review = fake.add_review(REPO, pr.number, "bob", "APPROVED")
    run_tick(world)  # bob's approval joins the train, which merges main into the branch first
    request = world.registry.read().tasks[task.id].merge_request
    assert request is not None and request.by == "bob" and request.head == head
    assert fake.pr(REPO, pr.number)["head_sha"] != head, "brought up to date with main"
    fake.dismiss_review(REPO, pr.number, review)
    run_tick(world)
    run_tick(world)
    state = world.registry.read()
    assert state.tasks[task.id].merge_request is None and state.tasks[task.id].status is not Status.merged
    assert not fake.pr(REPO, pr.number)["merged"] and _merges(fake) == []
    stopped = [m for m in notifier.sent if m.kind == "train" and "dismissed or withdrawn" in m.text]
    assert len(stopped) == 1 and "bob" in stopped[0].text
