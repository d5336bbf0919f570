"""Stacked pull requests on the fake GitHub, through `swarm monitor run-once` as a user runs it (real PyGithub and
httpx on 127.0.0.1, a real bare repository as the remote, real tmux agents): the dependent's PR targets its
dependency's branch, and once the dependency is squash-merged it is rebased onto main, pushed with a lease and
retargeted, its diff holding only its own commit; a real conflict is handed to an attempt with nothing pushed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.fakes.github_server import FakeGitHub
from tests.github.test_scenarios import REPO, TOKEN, Stage, is_status, stage_for


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as server:
        yield server


def stacked_stage(git_repo: Path, tmux_socket: str, fake: FakeGitHub) -> Stage:
    stage = stage_for(git_repo, tmux_socket, fake)
    config = git_repo / "swarm.toml"
    config.write_text(config.read_text() + "\n[plan]\nstack = true\n")
    return stage


def stacked_pair(stage: Stage, a_prompt: str, b_prompt: str) -> tuple[str, str]:
    a = stage.spawn("Dependency", a_prompt)
    b = stage.spawn("Dependent", b_prompt, "--after", a)
    stage.tick_until(a, is_status("ready"))
    stage.tick_until(b, is_status("ready"))
    assert stage.task(b)["stacked_on"] == a
    return a, b


def remote(stage: Stage, *args: str) -> str:
    return git(stage.bare, *args)


def test_a_stacked_pr_targets_its_dependency_then_main_after_a_squash_merge(git_repo: Path, tmux_socket: str,
                                                                           fake: FakeGitHub) -> None:
    stage = stacked_stage(git_repo, tmux_socket, fake)
    a, b = stacked_pair(stage, "scenario: write:api.txt:api", "scenario: write:client.txt:client")
    a_pr, b_pr = stage.task(a)["pr"]["number"], stage.task(b)["pr"]["number"]
    assert fake.pr(REPO, b_pr)["base"] == f"swarm/{a}"  # GitHub shows only b's own diff
    assert fake.pr(REPO, b_pr)["commits"] == 1
    assert remote(stage, "log", "--format=%s", f"swarm/{a}..swarm/{b}").splitlines() == ["add client.txt"]
    status = json.loads(stage.swarm("status", "--json"))
    stack = next(t["stack"] for t in status if t["id"] == b)
    assert stack["position"] == f"on #{a_pr} ({a}, ready)" and stack["on"] == a
    # a second commit on the dependency (its author's fix): b follows it, and the squash below then differs from
    # every commit of a, so only `rebase --onto` keeps a's first commit out of b (a plain rebase would conflict)
    a_tree = Path(stage.task(a)["worktree"])
    (a_tree / "api.txt").write_text("api v2\n")
    git(a_tree, "commit", "-qam", "api v2")
    a_new = git(a_tree, "rev-parse", "HEAD")
    stage.tick_until(b, lambda t: t["stack_base_sha"] == a_new and t["reason"] == "ready for review")
    assert fake.branch_sha(REPO, f"swarm/{a}") == a_new
    old_b = fake.branch_sha(REPO, f"swarm/{b}")

    fake.merge_pr(REPO, a_pr, squash=True)
    stage.tick_until(b, lambda t: t["stacked_on"] is None and t["status"] == "ready"
                     and t["reason"] == "ready for review")
    pull = fake.pr(REPO, b_pr)
    assert pull["base"] == "main" and pull["state"] == "open"
    assert pull["commits"] == 1  # retargeted without the restack it would list a's squashed-away commit too
    new_b = fake.branch_sha(REPO, f"swarm/{b}")
    assert new_b != old_b and new_b == stage.head(b)
    # the PR's commits: b's one, on top of the squashed dependency (its original commit is not carried again)
    assert remote(stage, "log", "--format=%s", f"main..swarm/{b}").splitlines() == ["add client.txt"]
    assert remote(stage, "rev-parse", f"swarm/{b}^") == remote(stage, "rev-parse", "main")
    retargets = [r for r in fake.requests if r.method == "PATCH" and r.path.endswith(f"/pulls/{b_pr}")]
    assert len(retargets) == 1
    assert len(stage.task(b)["attempts"]) == 1  # no agent was needed


def test_a_conflicting_restack_pushes_nothing_and_hands_the_hunks_to_an_attempt(git_repo: Path, tmux_socket: str,
                                                                               fake: FakeGitHub) -> None:
    stage = stacked_stage(git_repo, tmux_socket, fake)
    a, b = stacked_pair(stage, "scenario: write:shared.txt:one",
                        "scenario: write:shared.txt:two\nretry: restack-resolve")
    old_b = fake.branch_sha(REPO, f"swarm/{b}")
    a_tree = Path(stage.task(a)["worktree"])
    (a_tree / "shared.txt").write_text("three\n")
    git(a_tree, "commit", "-qam", "three")  # the dependency's next checked head changes the same line

    stage.tick_until(b, lambda t: len(t["attempts"]) == 2)
    failure = stage.task(b)["attempts"][0]["failure"]
    assert failure["kind"] == "conflict" and "git rebase --onto" in failure["evidence"]
    for side in ("three", "one", "two", "<<<<<<<", ">>>>>>>"):
        assert side in failure["evidence"]
    assert fake.branch_sha(REPO, f"swarm/{b}") == old_b  # never force-pushed over: the agent resolves first
    stage.tick_until(b, lambda t: t["status"] == "ready" and t["reason"] == "ready for review")
    assert remote(stage, "show", f"swarm/{b}:shared.txt") == "two"
    assert remote(stage, "rev-parse", f"swarm/{b}^") == remote(stage, "rev-parse", f"swarm/{a}")
