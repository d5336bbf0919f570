"""`swarm cleanup`, the daily chore and the removal after a merge never lose uncommitted or untracked work:
real repositories, real worktrees, a real tmux server, the scripted agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, Settings, load
from orchestrator.maintenance import clean_and_archive, run_due
from registry.models import Status, Task
from tests.conftest import git
from tests.monitor.test_tick import CI_CHECK, events, status_of, tick_until
from tests.worlds import Clock, make_world


@pytest.fixture
def parts(git_repo: Path, tmux_socket: str) -> tuple[World, Clock, Settings]:
    world, clock, _ = make_world(git_repo, tmux_socket, ci=CI_CHECK)
    return world, clock, load(git_repo / CONFIG_NAME)


def cancelled_with_leftovers(world: World) -> tuple[Task, Path]:
    """A cancelled task whose worktree holds an edit to a tracked file, an untracked file and build output."""
    git(world.layout.repo, "commit", "-q", "--allow-empty", "-m", "base")
    (world.layout.repo / ".gitignore").write_text("build/\n")
    git(world.layout.repo, "add", ".gitignore")
    git(world.layout.repo, "commit", "-q", "-m", "ignore build output")
    task = task_ops.spawn(world, title="Half done", prompt="scenario: sleep", agent="scripted", kind="default",
                          after=[], base_branch="main")
    task_ops.cancel(world, task.id)
    worktree = Path(task.worktree)
    (worktree / "README.md").write_text("# demo\nhalf-written edit\n")
    (worktree / "notes").mkdir()
    (worktree / "notes" / "plan.txt").write_text("the plan\n")
    (worktree / "build").mkdir()
    (worktree / "build" / "out.bin").write_text("ignored output\n")
    return task, worktree


def snapshot(worktree: Path) -> dict[str, str]:
    return {str(p.relative_to(worktree)): p.read_text() for p in worktree.rglob("*")
            if p.is_file() and ".git" not in p.parts}


def test_dry_run_lists_a_dirty_worktree_and_changes_nothing(parts: tuple[World, Clock, Settings]) -> None:
    world, _clock, settings = parts
    task, worktree = cancelled_with_leftovers(world)
    before = snapshot(worktree)

    lines = clean_and_archive(world, settings, world.clock(), dry_run=True)

    [line] = [line for line in lines if str(worktree) in line]
    assert line.startswith(f"would save dirty worktree {worktree}")
    assert "2 uncommitted/untracked file(s): README.md, notes/plan.txt" in line
    assert f"refs/swarm/leftovers/{task.id}" in line
    assert snapshot(worktree) == before
    assert world.git.head(f"refs/swarm/leftovers/{task.id}") is None


def test_the_daily_chore_never_touches_a_dirty_worktree(parts: tuple[World, Clock, Settings]) -> None:
    world, _clock, settings = parts
    task, worktree = cancelled_with_leftovers(world)
    before = snapshot(worktree)
    status = git(worktree, "status", "--porcelain", "--untracked-files=all")

    done = run_due(world, settings)

    assert any(line.startswith(f"cleanup: kept dirty worktree {worktree}") for line in done), done
    assert snapshot(worktree) == before
    assert git(worktree, "status", "--porcelain", "--untracked-files=all") == status
    assert world.git.head(f"refs/swarm/leftovers/{task.id}") is None, "the chore writes no ref either"


def test_cleanup_saves_the_work_to_a_ref_says_where_then_removes_the_worktree(
    parts: tuple[World, Clock, Settings]
) -> None:
    world, _clock, settings = parts
    task, worktree = cancelled_with_leftovers(world)
    ref = f"refs/swarm/leftovers/{task.id}"

    lines = clean_and_archive(world, settings, world.clock())

    [line] = [line for line in lines if str(worktree) in line]
    assert line.startswith(f"removed worktree {worktree}")
    assert f"saved in {ref}" in line and f"git checkout {ref} -- ." in line and task.branch in line
    assert not worktree.exists()
    # the work comes back with the command the line gives, in a checkout of the task's branch
    back = world.layout.worktree_root / "back"
    git(world.layout.repo, "worktree", "add", "-q", str(back), task.branch)
    git(back, "checkout", ref, "--", ".")
    assert (back / "notes" / "plan.txt").read_text() == "the plan\n"
    assert (back / "README.md").read_text() == "# demo\nhalf-written edit\n"
    assert not (back / "build").exists(), "ignored output is not saved"


def test_cleanup_of_a_dirty_orphan_worktree_saves_it_first(parts: tuple[World, Clock, Settings]) -> None:
    world, _clock, settings = parts
    orphan = world.layout.worktree_root / "stray"
    world.layout.worktree_root.mkdir(parents=True, exist_ok=True)
    git(world.layout.repo, "worktree", "add", "-q", "-b", "stray", str(orphan), "main")
    (orphan / "draft.txt").write_text("draft\n")

    listed = clean_and_archive(world, settings, world.clock())
    assert any("orphan worktree" in line and "dirty: 1 uncommitted" in line for line in listed), listed
    assert (orphan / "draft.txt").exists()

    removed = clean_and_archive(world, settings, world.clock(), remove_orphans=True)
    assert any(line.startswith(f"removed orphan worktree {orphan}") and "refs/swarm/leftovers/stray" in line
               for line in removed), removed
    assert not orphan.exists()
    assert git(world.layout.repo, "show", "refs/swarm/leftovers/stray:draft.txt") == "draft"


def test_a_merged_task_with_uncommitted_work_keeps_its_worktree(parts: tuple[World, Clock, Settings]) -> None:
    world, _clock, _settings = parts
    task = task_ops.spawn(world, title="Merge me", prompt="scenario: commit-good", agent="scripted",
                          kind="default", after=[], base_branch="main")
    tick_until(world, status_of(task.id, Status.ready))
    worktree = Path(task.worktree)
    (worktree / "scratch.txt").write_text("notes the agent never committed\n")
    git(world.layout.repo, "merge", "-q", "--no-ff", "-m", "merge", task.branch)

    state = tick_until(world, status_of(task.id, Status.merged))
    run_tick(world)

    assert state.tasks[task.id].status is Status.merged
    assert (worktree / "scratch.txt").read_text() == "notes the agent never committed\n"
    assert "worktree_kept" in events(world, task.id)
    assert "worktree_removed" not in events(world, task.id)


def test_a_plain_directory_where_the_worktree_was_is_left_alone_and_not_reported_removed(
    parts: tuple[World, Clock, Settings]
) -> None:
    world, _clock, settings = parts
    _task, worktree = cancelled_with_leftovers(world)
    git(world.layout.repo, "worktree", "remove", "--force", str(worktree))
    worktree.mkdir()
    (worktree / "mine.txt").write_text("the user's own file\n")

    lines = clean_and_archive(world, settings, world.clock())

    [line] = [line for line in lines if str(worktree) in line and "in use" not in line]
    assert line.startswith(f"left {worktree} alone") and "not a git worktree" in line
    assert (worktree / "mine.txt").read_text() == "the user's own file\n"


def test_swarm_cleanup_on_the_command_line_warns_then_saves(git_repo: Path, tmux_socket: str) -> None:
    import json

    from tests.orchestrator.test_cli import swarm
    from tests.worlds import write_config

    write_config(git_repo, tmux_socket)
    task_id = swarm(git_repo, "spawn", "--title", "Draft", "--prompt", "scenario: sleep").stdout.strip()
    worktree = Path(json.loads(swarm(git_repo, "status", task_id, "--json").stdout)["worktree"])
    swarm(git_repo, "cancel", task_id)
    (worktree / "draft.md").write_text("unsaved thoughts\n")

    dry = swarm(git_repo, "cleanup", "--dry-run").stdout
    assert f"would save dirty worktree {worktree}" in dry and "draft.md" in dry
    assert (worktree / "draft.md").exists()

    done = swarm(git_repo, "cleanup").stdout
    assert f"refs/swarm/leftovers/{task_id}" in done and not worktree.exists()
    assert git(git_repo, "show", f"refs/swarm/leftovers/{task_id}:draft.md") == "unsaved thoughts"
