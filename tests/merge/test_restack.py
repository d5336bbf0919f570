"""Restacks on the local forge, through the real tick (real git worktrees, real tmux, the scripted agent): a
dependency squash-merged under a stacked branch, a dependency whose checked head moved, and a real conflict that
goes to an attempt with both sides' hunks while the monitor moves nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from monitor.merge.restack import conflict_hunks
from monitor.tick import World, run_tick
from registry.models import FailureKind, RegistryState, Status
from tests.merge.stack_scenario import git, human_merge, spawn, stack_world
from tests.waiting import wait_for


def tick_until(world: World, what: str, done: Callable[[RegistryState], bool]) -> RegistryState:
    def once() -> RegistryState | None:
        run_tick(world)
        current = world.registry.read()
        return current if done(current) else None

    found = wait_for(once, what, timeout=60, interval=0.1)
    assert found is not None
    return found


def events(world: World, task_id: str) -> list[dict[str, object]]:
    return list(world.events.read(task_id))


def ready_again(world: World, task_id: str) -> Callable[[RegistryState], bool]:
    """Ready at the branch's current head: its checks ran on the restacked head."""
    def done(state: RegistryState) -> bool:
        head = git(world.layout.repo, "rev-parse", state.tasks[task_id].branch)[:12]
        return state.tasks[task_id].status is Status.ready and any(
            e["event"] == "ready" and e["head"] == head for e in events(world, task_id))
    return done


def stacked_pair(world: World, a_scenario: str, b_scenario: str) -> tuple[str, str]:
    """a, and b stacked on a's checked head; both ready."""
    a = spawn(world, "Dependency", a_scenario).id
    b = spawn(world, "Dependent", b_scenario, (a,)).id
    tick_until(world, "both ready", lambda s: s.tasks[a].status is Status.ready and s.tasks[b].status is Status.ready)
    current = world.registry.read().tasks
    assert current[b].stacked_on == a and current[b].base_branch == f"swarm/{a}"
    assert current[b].stack_base_sha == current[a].passed_head == git(world.layout.repo, "rev-parse", f"swarm/{a}")
    return a, b


def test_a_squash_merged_dependency_is_restacked_onto_main_without_its_commits(git_repo: Path,
                                                                               tmux_socket: str) -> None:
    world, _, _ = stack_world(git_repo, tmux_socket)
    a, b = stacked_pair(world, "write:api.txt:api", "write:client.txt:client")
    old_b = git(git_repo, "rev-parse", f"swarm/{b}")
    human_merge(git_repo, f"swarm/{a}", squash=True)  # the dependency's commit lands as a new one

    state = tick_until(world, "b restacked and ready again",
                       lambda s: s.tasks[b].stacked_on is None and ready_again(world, b)(s))
    new_b = git(git_repo, "rev-parse", f"swarm/{b}")
    assert new_b != old_b and state.tasks[b].base_branch == "main"
    # only b's own commit is on top of main: a's original commit is not carried a second time
    assert git(git_repo, "log", "--format=%s", f"main..swarm/{b}").splitlines() == ["add client.txt"]
    assert git(git_repo, "rev-parse", f"swarm/{b}^") == git(git_repo, "rev-parse", "main")
    names = [e["event"] for e in events(world, b)]
    restacked = next(e for e in events(world, b) if e["event"] == "restacked")
    assert restacked["how"] == "rebase" and restacked["base"] == "main"
    # its checks ran again on the new head
    assert any(e["event"] == "checks_started" and e["head"] == new_b[:12] for e in events(world, b))
    assert names.count("ready") == 2
    assert git(Path(state.tasks[b].worktree), "status", "--porcelain") == ""


def test_a_dependency_with_a_new_checked_head_carries_its_dependent_along(git_repo: Path, tmux_socket: str) -> None:
    world, _, _ = stack_world(git_repo, tmux_socket)
    a, b = stacked_pair(world, "write:api.txt:api", "write:client.txt:client")
    a_tree = Path(world.registry.read().tasks[a].worktree)
    (a_tree / "api.txt").write_text("api v2\n")  # the dependency's next attempt (or its author) improves it
    git(a_tree, "commit", "-qam", "api v2")
    a_new = git(a_tree, "rev-parse", "HEAD")

    state = tick_until(world, "b restacked onto a's new head",
                       lambda s: s.tasks[b].stack_base_sha == a_new and ready_again(world, b)(s))
    assert state.tasks[a].passed_head == a_new and state.tasks[b].stacked_on == a
    assert git(git_repo, "rev-parse", f"swarm/{b}^") == a_new
    assert git(git_repo, "log", "--format=%s", f"swarm/{a}..swarm/{b}").splitlines() == ["add client.txt"]
    new_b = git(git_repo, "rev-parse", f"swarm/{b}")
    assert any(e["event"] == "checks_started" and e["head"] == new_b[:12] for e in events(world, b))


def test_merge_restacks_merge_the_new_head_in(git_repo: Path, tmux_socket: str) -> None:
    world, _, _ = stack_world(git_repo, tmux_socket, restack="merge")
    a, b = stacked_pair(world, "write:api.txt:api", "write:client.txt:client")
    old_b = git(git_repo, "rev-parse", f"swarm/{b}")
    human_merge(git_repo, f"swarm/{a}")
    tick_until(world, "b merged main in", lambda s: s.tasks[b].stacked_on is None and ready_again(world, b)(s))
    parents = git(git_repo, "rev-list", "--parents", "-n", "1", f"swarm/{b}").split()[1:]
    assert parents == [old_b, git(git_repo, "rev-parse", "main")]


def test_a_real_conflict_goes_to_an_attempt_with_both_sides_and_nothing_is_moved(git_repo: Path,
                                                                                 tmux_socket: str) -> None:
    world, _, _ = stack_world(git_repo, tmux_socket)
    a, b = stacked_pair(world, "write:shared.txt:one", "write:shared.txt:two\nretry: restack-resolve")
    a_tree = Path(world.registry.read().tasks[a].worktree)
    (a_tree / "shared.txt").write_text("three\n")  # the same line, changed differently on the dependency
    git(a_tree, "commit", "-qam", "three")
    old_b = git(git_repo, "rev-parse", f"swarm/{b}")

    state = tick_until(world, "b's conflict handed to an attempt", lambda s: len(s.tasks[b].attempts) == 2)
    failure = state.tasks[b].attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.conflict
    assert "git rebase --onto" in failure.evidence and "shared.txt: 1 conflict(s)" in failure.evidence
    for side in ("<<<<<<<", "three", "|||||||", "one", "=======", "two", ">>>>>>>"):
        assert side in failure.evidence, side
    names = [e["event"] for e in events(world, b)]
    assert "restack_conflict" in names and "restacked" not in names
    # the monitor never rewrote b: whatever moved it after the conflict is the agent's own rebase
    assert old_b in git(git_repo, "reflog", "--format=%H", f"swarm/{b}").splitlines()
    assert not (world.layout.state_dir / "restack" / b).exists()

    state = tick_until(world, "the agent's resolution is ready", ready_again(world, b))
    assert git(git_repo, "show", f"swarm/{b}:shared.txt") == "two"
    assert git(git_repo, "rev-parse", f"swarm/{b}^") == git(git_repo, "rev-parse", f"swarm/{a}")


def test_a_dirty_worktree_is_never_restacked(git_repo: Path, tmux_socket: str) -> None:
    world, _, notifier = stack_world(git_repo, tmux_socket)
    a, b = stacked_pair(world, "write:api.txt:api", "write:client.txt:client")
    b_tree = Path(world.registry.read().tasks[b].worktree)
    (b_tree / "client.txt").write_text("half-done edit\n")
    old_b = git(git_repo, "rev-parse", f"swarm/{b}")
    human_merge(git_repo, f"swarm/{a}")
    tick_until(world, "the restack waits", lambda s: s.tasks[b].reason.startswith("restack waits: uncommitted"))
    for _ in range(2):
        run_tick(world)
    assert git(git_repo, "rev-parse", f"swarm/{b}") == old_b
    assert (b_tree / "client.txt").read_text() == "half-done edit\n"
    told = [m for m in notifier.sent if "restack waits" in m.text]
    assert len(told) == 1 and "client.txt" in told[0].text  # once, naming the file


def test_conflict_hunks_keep_context_and_line_numbers() -> None:
    text = "a\nb\nc\nd\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> 123 (c)\ne\nf\ng\nh\n"
    [hunk] = conflict_hunks(text)
    assert hunk.splitlines()[0] == "    2 b" and hunk.splitlines()[-1] == "   12 g"
