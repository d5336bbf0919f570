"""A full disk is a wait, not a failure: ENOSPC for real (a tiny tmpfs filled to the last byte) while git
creates a worktree, while prompt.md/run.json are written for a start or a respawn. The task stays queued
(or its attempt unrespawned) with a reason naming the path, an event is logged once, no attempt is
counted, no empty file is left behind, and the work goes on once space is back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.runner import DiskFull
from monitor.tick import World, run_tick
from orchestrator.config import CONFIG_NAME, load
from orchestrator.wiring import build_world
from registry.models import FailureKind, Status
from tests.monitor.test_tick import events, spawn, status_of, tick_until
from tests.tinydisk import fill, tiny_disk
from tests.worlds import Clock, RecordingNotifier, write_config


def world_with(repo: Path, socket: str, worktree_root: Path | None = None) -> World:
    config = write_config(repo, socket)
    if worktree_root is not None:
        line = f'worktree_root = "{worktree_root}"\n'
        config.write_text(config.read_text().replace("[project]\n", "[project]\n" + line, 1))
    world = build_world(repo, load(repo / CONFIG_NAME), RecordingNotifier())
    clock = Clock()
    world.clock = clock
    world.monotonic = clock.monotonic
    return world


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".filler"))


def test_a_full_disk_while_creating_the_worktree_keeps_the_task_queued(
    git_repo: Path, tmux_socket: str, tmp_path: Path
) -> None:
    with tiny_disk(tmp_path / "worktrees", "1m") as root:
        world = world_with(git_repo, tmux_socket, root)
        filler = fill(root)

        task = spawn(world, "scenario: commit-good")

        assert task.status is Status.queued
        assert task.attempts == ()
        assert task.reason.startswith("waiting for disk space: could not write ")
        assert str(root / task.id) in task.reason and "No space left on device" in task.reason
        assert events(world, task.id).count("start_deferred") == 1
        assert not (root / task.id).exists(), "a half-made checkout was left behind"
        assert not world.layout.run_dir(task.id, 1).exists()

        run_tick(world)  # still full: still waiting, said once
        again = world.registry.read().tasks[task.id]
        assert again.status is Status.queued and again.attempts == ()
        assert events(world, task.id).count("start_deferred") == 1

        filler.unlink()
        state = tick_until(world, status_of(task.id, Status.ready))
        assert len(state.tasks[task.id].attempts) == 1
        assert not any(a.failure for a in state.tasks[task.id].attempts)


def test_a_full_disk_while_writing_the_prompt_leaves_no_empty_file(git_repo: Path, tmux_socket: str) -> None:
    world = world_with(git_repo, tmux_socket)
    with tiny_disk(world.layout.runs_dir, "256k") as runs:
        filler = fill(runs)

        task = spawn(world, "scenario: commit-good")

        prompt = world.layout.run_dir(task.id, 1) / "prompt.md"
        assert task.status is Status.queued and task.attempts == ()
        assert f"could not write {prompt}" in task.reason
        assert not prompt.exists() and files_under(runs) == []
        assert [e.get("path") for e in world.events.read(task.id) if e["event"] == "start_deferred"] == [str(prompt)]

        filler.unlink()
        state = tick_until(world, status_of(task.id, Status.running, Status.checking, Status.ready))
        assert len(state.tasks[task.id].attempts) == 1
        assert prompt.read_text().startswith("scenario: commit-good")


def test_a_full_disk_while_writing_run_json_removes_the_prompt_too(git_repo: Path, tmux_socket: str) -> None:
    world = world_with(git_repo, tmux_socket)
    with tiny_disk(world.layout.runs_dir, "256k") as runs:
        task = spawn(world, "scenario: sleep")  # creates the worktree; its attempt dir is ours to check
        world.tmux.kill(session_for(task.id))
        filler = fill(runs)
        os.truncate(filler, filler.stat().st_size - 4096)  # room for one small file: prompt.md, not run.json

        with pytest.raises(DiskFull) as raised:
            world.runner.write_attempt(task, 7, "short prompt")

        run_dir = world.layout.run_dir(task.id, 7)
        assert raised.value.path == str(run_dir / "run.json")
        assert not run_dir.exists(), "a half-written attempt directory was left behind"
        assert not list(runs.rglob(".*.tmp-*"))


def test_a_full_disk_at_respawn_defers_it_without_counting_an_attempt(git_repo: Path, tmux_socket: str) -> None:
    world = world_with(git_repo, tmux_socket)
    with tiny_disk(world.layout.runs_dir, "1m") as runs:
        task = spawn(world, "scenario: sleep\nretry: commit-good")
        run_tick(world)
        filler = fill(runs)
        world.tmux.kill(session_for(task.id))

        run_tick(world)

        current = world.registry.read().tasks[task.id]
        assert len(current.attempts) == 1, "a respawn that could not write its prompt counted an attempt"
        assert current.status is Status.running
        assert "waiting for disk space" in current.reason
        assert str(world.layout.run_dir(task.id, 2) / "prompt.md") in current.reason
        assert "respawn_deferred" in events(world, task.id)
        assert not world.layout.run_dir(task.id, 2).exists()

        filler.unlink()
        state = tick_until(world, status_of(task.id, Status.ready))
        attempts = state.tasks[task.id].attempts
        assert len(attempts) == 2
        assert attempts[0].failure is not None and attempts[0].failure.kind is FailureKind.died


def test_a_human_retry_on_a_full_disk_is_one_line_and_records_nothing(git_repo: Path, tmux_socket: str) -> None:
    from orchestrator import tasks as task_ops

    world = world_with(git_repo, tmux_socket)
    with tiny_disk(world.layout.runs_dir, "1m") as runs:
        task = spawn(world, "scenario: sleep")
        run_tick(world)
        filler = fill(runs)
        before = world.registry.read().tasks[task.id]

        with pytest.raises(DiskFull) as raised:
            task_ops.retry(world, task.id, "try again")

        assert str(world.layout.run_dir(task.id, 2) / "prompt.md") in str(raised.value)
        after = world.registry.read().tasks[task.id]
        assert len(after.attempts) == len(before.attempts) == 1, "a retry that wrote no prompt counted an attempt"
        assert not world.layout.run_dir(task.id, 2).exists()
        assert world.tmux.has_session(session_for(task.id)), "the running agent was stopped for nothing"
        filler.unlink()
