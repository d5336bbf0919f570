"""Stacked starts: the pure decisions (when a dependent may start on its dependency's branch, when a stacked branch
restacks) as tables, and a three-level plan landed on the local forge with and without ``[plan] stack``
(real git, real tmux, the scripted agent, a simulated human who merges)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from monitor.decide import plan_starts
from monitor.merge.stack import plan_restacks, stack_json, stack_position, stack_target
from monitor.policy import Policy
from orchestrator.config import parse
from orchestrator.status import table
from registry.models import PullRequest, RegistryState, Status, Task
from tests.merge.stack_scenario import git, land, stack_world, three_level_plan

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
A_HEAD = "a" * 40
NEW_HEAD = "b" * 40


def task(task_id: str, status: Status = Status.queued, **update: object) -> Task:
    base = Task(id=task_id, title=task_id, prompt="p", agent="x", base_branch="main", branch=f"swarm/{task_id}",
                worktree=f"/w/{task_id}", status=status, created_at=NOW, updated_at=NOW)
    return base.model_copy(update=update)


def state(*tasks: Task) -> RegistryState:
    return RegistryState(tasks={t.id: t for t in tasks})


@pytest.mark.parametrize(("mode", "contract", "dep_status", "passed", "stacks"), [
    ("contracts", True, Status.ready, A_HEAD, True),
    ("contracts", True, Status.checking, A_HEAD, True),  # CI passed, reviews pending: enough
    ("contracts", True, Status.running, A_HEAD, True),  # a retry is at work; its checked head stands
    ("contracts", False, Status.ready, A_HEAD, False),  # no contract: waits for the merge, as before
    ("all", False, Status.ready, A_HEAD, True),
    ("off", True, Status.ready, A_HEAD, False),
    ("contracts", True, Status.checking, None, False),  # nothing checked yet
    ("contracts", True, Status.failed, A_HEAD, False),
])
def test_a_dependent_starts_on_its_dependency_only_once_that_passed_its_checks(
    mode: str, contract: bool, dep_status: Status, passed: str | None, stacks: bool,
) -> None:
    dep = task("a", dep_status, passed_head=passed)
    child = task("b", after=("a",), contract_deps=("a",) if contract else ())
    starts, waiting = plan_starts(state(dep, child), Policy(stack=mode), busy=0)
    if stacks:
        assert [(s.task_id, s.stack_on, s.onto) for s in starts] == [("b", "a", A_HEAD)]
    else:
        assert starts == []
        assert waiting["b"].startswith("waiting for a")


def test_a_dependent_that_waits_for_its_dependency_to_pass_says_so() -> None:
    _, waiting = plan_starts(state(task("a", Status.running), task("b", after=("a",), contract_deps=("a",))),
                             Policy(), busy=0)
    assert waiting["b"] == "waiting for a (running); stacks on a once its branch passes its own checks"


def test_two_open_dependencies_cannot_be_stacked_on() -> None:
    tasks = state(task("a", Status.ready, passed_head=A_HEAD), task("c", Status.ready, passed_head=NEW_HEAD),
                  task("b", after=("a", "c")))
    assert stack_target(tasks.tasks["b"], tasks.tasks, "all") == (None, "")


def test_restacks_follow_a_merge_or_a_new_checked_head_and_never_a_running_agent() -> None:
    stacked = {"stacked_on": "a", "stack_base_sha": A_HEAD, "base_branch": "swarm/a", "stack_home": "main"}
    same = state(task("a", Status.ready, passed_head=A_HEAD), task("b", Status.ready, **stacked))
    assert plan_restacks(same.tasks) == ([], {})

    moved = state(task("a", Status.checking, passed_head=NEW_HEAD), task("b", Status.checking, **stacked))
    [restack], _ = plan_restacks(moved.tasks)
    assert (restack.onto, restack.old, restack.base_branch, restack.stacked_on) == (NEW_HEAD, A_HEAD, "swarm/a", "a")

    merged = state(task("a", Status.merged, passed_head=A_HEAD), task("b", Status.ready, **stacked))
    [restack], _ = plan_restacks(merged.tasks)
    assert (restack.onto, restack.old, restack.base_branch, restack.stacked_on) == ("main", A_HEAD, "main", None)

    running = state(task("a", Status.merged), task("b", Status.running, **stacked))
    due, waiting = plan_restacks(running.tasks)
    assert due == []
    assert waiting["b"] == "restack waits for the agent to finish (a merged into main)"


def test_status_names_the_dependency_and_its_pull_request() -> None:
    dep = task("a", Status.ready, pr=PullRequest(number=12, url="https://x/pull/12"))
    child = task("b", Status.ready, stacked_on="a", stack_base_sha=A_HEAD, base_branch="swarm/a")
    tasks = state(dep, child).tasks
    assert stack_position(child, tasks) == "on #12 (a, ready)"
    assert stack_json(child, tasks) == {
        "on": "a", "pr": 12, "base_branch": "swarm/a", "base_sha": A_HEAD, "position": "on #12 (a, ready)",
        "waits": "lands after a merges (its PR targets swarm/a until then)"}
    assert stack_json(dep, tasks) is None
    shown = Console(width=200, record=True)
    shown.print(table([dep, child.model_copy(update={"reason": "ready for review"})], NOW, 200))
    assert "on #12 (a, ready): ready for review" in shown.export_text()


def test_plan_settings_parse_and_refuse_a_bad_value(tmp_path: Path) -> None:
    assert parse({"plan": {"stack": True}}, tmp_path / "swarm.toml").plan.stack_mode == "all"
    assert parse({}, tmp_path / "swarm.toml").plan.stack_mode == "contracts"
    assert parse({"plan": {"stack": False, "restack": "merge"}}, tmp_path / "swarm.toml").plan.stack_mode == "off"
    with pytest.raises(Exception, match=r"plan\.restack"):
        parse({"plan": {"restack": "squash"}}, tmp_path / "swarm.toml")


def test_a_three_level_plan_lands_sooner_stacked_and_without_duplicate_commits(
    tmp_path: Path, git_repo: Path, tmux_socket: str,
) -> None:
    other = tmp_path / "plain"
    git(tmp_path, "clone", "-q", str(git_repo), str(other))
    stacked_world, stacked_clock, _ = stack_world(git_repo, tmux_socket, stack=True)
    plain_world, plain_clock, _ = stack_world(other, f"{tmux_socket}-plain", stack=False)
    try:
        stacked_tasks = three_level_plan(stacked_world)
        stacked = land(stacked_world, stacked_clock, stacked_tasks)
        plain = land(plain_world, plain_clock, three_level_plan(plain_world))
    finally:
        plain_world.tmux.kill_server()
    assert stacked.ticks_to_last_ready < plain.ticks_to_last_ready
    assert stacked.ticks_to_landed < plain.ticks_to_landed
    b, c = stacked_tasks[1].id, stacked_tasks[2].id
    events = [e["event"] for e in stacked_world.events.read(b)]
    assert events.index("stacked") < events.index("started") and "restacked" in events
    assert "stacked" in [e["event"] for e in stacked_world.events.read(c)]
    # the b and c work landed once each: the restacks carried no copy of a dependency's commits
    subjects = git(git_repo, "log", "--format=%s", "--no-merges", "main").splitlines()
    assert sorted(s for s in subjects if s.startswith("add ")) == ["add one.txt", "add three.txt", "add two.txt"]
    for repo in (git_repo, other):
        assert {p.name for p in repo.iterdir()} >= {"one.txt", "two.txt", "three.txt"}
