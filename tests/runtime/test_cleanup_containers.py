"""`swarm cleanup` and containers, on a real podman engine: this repository's containers that no live task
owns are listed, removed only with --yes (the daily chore only reports them), another repository's
containers on the same engine are never seen, and an engine that cannot be reached is one line."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.runtime.base import CONTAINER, TMUX
from monitor.runtime.container import ContainerRuntime
from monitor.tick import World
from orchestrator.cleanup import run_cleanup
from orchestrator.config import CONFIG_NAME, load
from orchestrator.maintenance import run_due
from registry.archive import archive_finished
from registry.models import Attempt, Status, Task
from tests.fakes.podman import Podman
from tests.waiting import wait_for
from tests.worlds import make_world

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
# task id -> (status, runtime of its last attempt); None: no task at all
TASKS: dict[str, tuple[Status, str] | None] = {
    "live": (Status.running, CONTAINER),       # owned: its attempt runs in that container
    "broken": (Status.failed, CONTAINER),      # owned: kept for `swarm logs` like a failed task's session
    "done": (Status.merged, CONTAINER),        # orphan: the engine was down when the task was merged
    "moved": (Status.running, TMUX),           # orphan: its current attempt runs in tmux
    "ghost": None,                             # orphan: no task of that name (archived, a crash)
}
ORPHANS = {"swarm-done", "swarm-moved", "swarm-ghost"}
OWNED = {"swarm-live", "swarm-broken"}


def engine_config(engine: Podman) -> str:
    return f"""
[runtime.container]
engine = "{engine.url}"
image = "{engine.image}"
network = "none"
memory = "256m"
cpus = 1
pids = 64
"""


def add_task(world: World, task_id: str, status: Status, runtime: str) -> None:
    now = datetime.now(UTC)  # the CLI's cleanup archives finished tasks by the real clock
    attempt = Attempt(number=1, session=session_for(task_id), prompt_path=str(world.layout.run_dir(task_id, 1)),
                      started_at=now - timedelta(minutes=5), launched_at=now - timedelta(minutes=5), runtime=runtime)
    task = Task(id=task_id, title=task_id, prompt="p", agent="scripted", status=status, base_branch="main",
                branch=f"swarm/{task_id}", worktree=str(world.layout.worktree(task_id)), attempts=(attempt,),
                created_at=now - timedelta(hours=1), updated_at=now,
                ended_at=None if status.active else now)
    world.registry.update(lambda s: s.with_task(task))


@pytest.fixture
def scene(git_repo: Path, tmux_socket: str, podman: Podman, tmp_path: Path
          ) -> Iterator[tuple[World, ContainerRuntime, ContainerRuntime]]:
    """A repository with five containers on the engine (two owned, three orphans; the ghost's has exited)
    and a container of another repository on the same engine."""
    world, _clock, _ = make_world(git_repo, tmux_socket, extra=engine_config(podman))
    runtime = world.runner.runtimes[CONTAINER]
    assert isinstance(runtime, ContainerRuntime)
    other = ContainerRuntime(podman.url, image=podman.image, owner=str(tmp_path / "other-repo"), network="none")
    workdir = tmp_path / "work"
    workdir.mkdir()
    for task_id, record in TASKS.items():
        if record is not None:
            add_task(world, task_id, *record)
        argv = ["true"] if task_id == "ghost" else ["sleep", "300"]
        runtime.launch_attempt(session_for(task_id), argv, workdir, {}, mounts=(), task=task_id)
    other.launch_attempt("swarm-elsewhere", ["sleep", "300"], workdir, {}, mounts=(), task="elsewhere")
    wait_for(lambda: (runtime.panes() or {}).get("swarm-ghost", None) is not None
             and (runtime.panes() or {})["swarm-ghost"].dead, what="the ghost's container to exit")
    try:
        yield world, runtime, other
    finally:
        for engine in (runtime, other):
            for name in engine.panes() or {}:
                engine.kill(name)


def names(runtime: ContainerRuntime) -> set[str]:
    return set(runtime.panes() or {})


def container_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("orphan container", "removed orphan container",
                                                        "kept orphan container", "containers on"))]


def test_orphan_containers_are_listed_and_nothing_is_removed_without_yes(
    scene: tuple[World, ContainerRuntime, ContainerRuntime], git_repo: Path
) -> None:
    world, runtime, other = scene
    before = names(runtime)
    assert before == ORPHANS | OWNED

    for dry_run, remove in ((False, False), (True, True), (True, False)):
        lines = container_lines(list(run_cleanup(world, dry_run=dry_run, remove_orphans=remove)))
        assert len(lines) == 3, lines
        assert {line.split()[2] for line in lines} == ORPHANS, lines
        assert all(line.startswith("orphan container ") and line.endswith("`swarm cleanup --yes` removes it")
                   for line in lines), lines
        assert names(runtime) == before
    lines = container_lines(list(run_cleanup(world, dry_run=False, remove_orphans=False)))
    why = {line.split()[2]: line for line in lines}
    assert "(running, task done is merged)" in why["swarm-done"]
    assert "(running, task moved's attempt 1 runs in tmux)" in why["swarm-moved"]
    assert "(exited 0, no task of this repository has that name)" in why["swarm-ghost"]
    assert all("swarm-elsewhere" not in line for line in lines), "another repository's container is not listed"

    # the monitor's daily chore only reports them
    done = run_due(world, load(git_repo / CONFIG_NAME))
    reported = [line for line in done if "orphan container" in line]
    assert len(reported) == 3 and all(line.startswith("cleanup: orphan container ") for line in reported), done
    assert names(runtime) == before
    assert names(other) == {"swarm-elsewhere"}


def test_with_yes_the_orphans_go_and_owned_or_foreign_containers_stay(
    scene: tuple[World, ContainerRuntime, ContainerRuntime],
) -> None:
    world, runtime, other = scene
    lines = container_lines(list(run_cleanup(world, dry_run=False, remove_orphans=True)))
    assert sorted(line.split()[3] for line in lines) == sorted(ORPHANS), lines
    assert all(line.startswith("removed orphan container ") for line in lines), lines
    assert names(runtime) == OWNED
    assert not (runtime.panes() or {})["swarm-live"].dead, "the live task's agent kept running"
    assert names(other) == {"swarm-elsewhere"}, "another repository's container is never touched"
    assert container_lines(list(run_cleanup(world, dry_run=False, remove_orphans=True))) == []


def test_the_cli_lists_orphan_containers_and_removes_them_with_yes(
    scene: tuple[World, ContainerRuntime, ContainerRuntime], git_repo: Path
) -> None:
    _world, runtime, other = scene

    def swarm(*args: str) -> str:
        done = subprocess.run([*SWARM, "cleanup", *args], cwd=git_repo, capture_output=True, text=True, timeout=120,
                              check=False, env={**os.environ, "COLUMNS": "400"})
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    listed = swarm()  # no terminal: nothing asked, nothing removed
    assert listed.count("orphan container ") == 3, listed
    assert names(runtime) == ORPHANS | OWNED
    removed = swarm("--yes")
    assert removed.count("removed orphan container ") == 3, removed
    assert names(runtime) == OWNED and names(other) == {"swarm-elsewhere"}


def test_an_unreachable_engine_is_one_line_and_nothing_changes(
    scene: tuple[World, ContainerRuntime, ContainerRuntime], podman: Podman
) -> None:
    world, runtime, other = scene
    podman.stop_service()
    try:
        lines = list(run_cleanup(world, dry_run=False, remove_orphans=True))
    finally:
        podman.start_service()
    about = container_lines(lines)
    assert len(about) == 1, lines
    assert about[0].startswith(f"containers on {podman.url} not checked: ") and "\n" not in about[0]
    assert "swarm cleanup` again" in about[0]
    assert lines[-1].startswith("worktrees in use: "), "the rest of the cleanup still ran"
    assert names(runtime) == ORPHANS | OWNED
    assert names(other) == {"swarm-elsewhere"}


def test_an_archived_tasks_container_is_an_orphan_that_names_it(
    scene: tuple[World, ContainerRuntime, ContainerRuntime],
) -> None:
    world, runtime, _other = scene
    moved = archive_finished(world.registry, world.layout.state_dir / "runs", datetime.now(UTC) + timedelta(days=30),
                             timedelta(days=14))
    assert sorted(t.id for t in moved) == ["broken", "done"]
    lines = container_lines(list(run_cleanup(world, dry_run=True, remove_orphans=True)))
    why = {line.split()[2]: line for line in lines}
    assert set(why) == ORPHANS | {"swarm-broken"}, lines
    assert "(running, task broken is failed and archived)" in why["swarm-broken"]
    assert "(running, task done is merged and archived)" in why["swarm-done"]
    assert names(runtime) == ORPHANS | OWNED


def test_two_host_names_for_one_engine_list_it_once_and_keep_a_live_attempt_on_either(
    git_repo: Path, tmux_socket: str, podman: Podman, tmp_path: Path
) -> None:
    hosts = "".join(f'\n[[runtime.container.hosts]]\nname = "{name}"\nengine = "{podman.url}"\nslots = 4\n'
                    for name in ("a", "b"))
    config = f'\n[runtime.container]\nimage = "{podman.image}"\nnetwork = "none"\nmemory = "256m"\n{hosts}'
    world, _clock, _ = make_world(git_repo, tmux_socket, extra=config)
    engine = world.runner.runtimes["container:a"]
    assert isinstance(engine, ContainerRuntime)
    add_task(world, "live", Status.running, "container:b")  # recorded on b, listed through a first
    workdir = tmp_path / "work"
    workdir.mkdir()
    try:
        for task_id in ("live", "ghost"):
            engine.launch_attempt(session_for(task_id), ["sleep", "300"], workdir, {}, mounts=(), task=task_id)
        lines = container_lines(list(run_cleanup(world, dry_run=False, remove_orphans=False)))
        assert lines == [f"orphan container swarm-ghost on host a ({podman.url}) (running, no task of this "
                         "repository has that name); `swarm cleanup --yes` removes it"]
        removed = container_lines(list(run_cleanup(world, dry_run=False, remove_orphans=True)))
        assert [line.split()[3] for line in removed] == ["swarm-ghost"], removed
        assert names(engine) == {"swarm-live"}
    finally:
        for name in engine.panes() or {}:
            engine.kill(name)


def test_a_check_container_whose_job_ended_is_an_orphan_and_a_running_jobs_stays(
    git_repo: Path, tmux_socket: str, podman: Podman, tmp_path: Path
) -> None:
    from monitor.runtime.checkjob import CHECK_LABEL, check_containers

    world, _clock, _ = make_world(git_repo, tmux_socket, extra=engine_config(podman))
    runtime = world.runner.runtimes[CONTAINER]
    assert isinstance(runtime, ContainerRuntime)
    client = runtime.client()
    left, live = "swarm-job-left-abc1234-ci", "swarm-job-live-abc1234-ci"
    for name in (left, live):
        client.containers.run(podman.image, ["sleep", "300"], name=name, detach=True, network_mode="none",
                              labels={CHECK_LABEL: runtime.owner})
    world.tmux.launch(live, ["sleep", "300"], git_repo)  # the live job's session, as the runner starts it
    try:
        lines = [line for line in run_cleanup(world, dry_run=False, remove_orphans=False) if "check container" in line]
        assert lines == [f"orphan check container {left} on {podman.url} (running, its job has ended); "
                         "`swarm cleanup --yes` removes it"], lines
        assert set(check_containers(runtime)) == {left, live}
        lines = [line for line in run_cleanup(world, dry_run=False, remove_orphans=True) if "check container" in line]
        assert lines == [f"removed orphan check container {left} on {podman.url} (running, its job has ended)"]
        assert set(check_containers(runtime)) == {live}, "the running job's container stays"
    finally:
        for name in (left, live):
            with contextlib.suppress(Exception):
                client.containers.get(name).remove(force=True)
