"""Several container hosts: placement as a table (pure), the ``[[runtime.container.hosts]]`` settings, and
attempts placed on two real engines (two private podman services), each attempt's liveness and kill going
to the engine it records."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.runtime.base import RuntimeFailure
from monitor.runtime.container import ContainerRuntime
from monitor.runtime.gitexec import ext_url, fetch_from, push_into
from monitor.runtime.hosts import NoFreeSlot, PlacingRunner
from monitor.runtime.placement import Host, bind, host_of, place, runtime_key
from monitor.tick import World, run_tick
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, ConfigError, load
from registry.models import Status, Task
from tests.conftest import git
from tests.fakes.podman import Podman, podman_service
from tests.runtime.test_container_lifecycle import AGENT
from tests.waiting import wait_for
from tests.worlds import make_world, write_config

A, B, C = Host("a", 2), Host("b", 1), Host("c", 3)


@pytest.mark.parametrize(
    ("hosts", "used", "expected"),
    [
        ([A, B], {"a": 0, "b": 0}, "a"),  # the first listed host first
        ([A, B], {"a": 1, "b": 0}, "a"),  # while it has a free slot
        ([A, B], {"a": 2, "b": 0}, "b"),  # full: the next one
        ([A, B], {"a": 3, "b": 0}, "b"),  # over its slots (started elsewhere): still full
        ([A, B], {"a": 2, "b": 1}, None),  # every host full: nothing is placed
        ([A, B], {"a": None, "b": 0}, "b"),  # an unreachable host is skipped, never taken as empty
        ([A, B], {"b": 0}, "b"),  # not asked at all: the same
        ([A, B], {"a": None, "b": None}, None),  # nothing reachable
        ([B, A], {"a": 0, "b": 0}, "b"),  # the user's order decides
        ([A, B, C], {"a": 2, "b": 1, "c": 2}, "c"),
        ([], {}, None),
    ],
)
def test_place_takes_the_first_listed_host_with_a_free_slot(
    hosts: list[Host], used: dict[str, int | None], expected: str | None
) -> None:
    assert place(hosts, used) == expected


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        ({"a": 1, "b": 0}, ("a", True)),
        ({"a": 2, "b": 0}, ("b", True)),
        ({"a": 2, "b": 1}, ("a", False)),  # all full: bound to the first reachable host, its launch waits
        ({"a": None, "b": 1}, ("b", False)),
        ({"a": None, "b": None}, ("a", False)),  # nothing reachable: the first listed
    ],
)
def test_bind_always_names_a_host_and_says_whether_it_has_room(
    used: dict[str, int | None], expected: tuple[str, bool]
) -> None:
    assert bind([A, B], used) == expected


def test_runtime_names() -> None:
    assert runtime_key("build2") == "container:build2"
    assert host_of("container:build2") == "build2"
    assert host_of("container") == host_of("tmux") == ""


def hosts_config(image: str, hosts: list[tuple[str, str, int]], extra: str = "") -> str:
    source = AGENT.read_text()
    listed = "".join(f'\n[[runtime.container.hosts]]\nname = "{name}"\nengine = "{url}"\nslots = {slots}\n'
                     for name, url, slots in hosts)
    return f"""
[agents.boxed]
command = ["python3", "-c", '''{source}''']
prompt = "stdin"
runtime = "container"

[runtime.container]
image = "{image}"
network = "none"
memory = "256m"
cpus = 1
pids = 256
{extra}{listed}"""


@pytest.mark.parametrize(
    ("extra", "hosts", "message"),
    [
        ("", [("a", "unix:///x.sock", 1), ("a", "unix:///y.sock", 1)], "host 'a' is listed twice"),
        ("", [("a", "unix:///x.sock", 0)], "slots"),
        ("", [("a b", "unix:///x.sock", 1)], "is not a host name"),
        ('engine = "unix:///z.sock"\n', [("a", "unix:///x.sock", 1)], "runtime.container.engine: set with"),
        ("", [("a", "", 1)], "give the host's Docker Engine API URL"),
    ],
)
def test_bad_hosts_are_one_line_errors(
    git_repo: Path, tmux_socket: str, extra: str, hosts: list[tuple[str, str, int]], message: str
) -> None:
    write_config(git_repo, tmux_socket, extra=hosts_config("img", hosts, extra))
    with pytest.raises(ConfigError, match=message) as caught:
        load(git_repo / CONFIG_NAME)
    assert "\n" not in str(caught.value)


def test_a_host_that_cannot_see_the_worktree_is_accepted(git_repo: Path, tmux_socket: str) -> None:
    config = hosts_config("img", [("far", "ssh://build2", 2)]) + "shares_worktree = false\n"
    write_config(git_repo, tmux_socket, extra=config)
    assert not load(git_repo / CONFIG_NAME).runtime.container.hosts[0].shares_worktree  # test_remote_host.py


def test_hosts_become_one_runtime_each_and_a_placing_runner(git_repo: Path, tmux_socket: str) -> None:
    hosts = [("a", "unix:///a.sock", 2), ("", "unix:///b.sock", 1)]
    world, _, _ = make_world(git_repo, tmux_socket, extra=hosts_config("img", hosts))
    assert isinstance(world.runner, PlacingRunner)
    assert sorted(world.runner.runtimes) == ["container:a", "container:unix:///b.sock", "tmux"]
    engine = world.runner.runtimes["container:a"]
    assert isinstance(engine, ContainerRuntime) and engine.engine == "unix:///a.sock"
    assert [(h.name, h.slots) for h in world.runner.pool.hosts] == [("a", 2), ("unix:///b.sock", 1)]


# -- two real engines ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def second_podman(tmp_path_factory: pytest.TempPathFactory, podman: Podman) -> Iterator[Podman]:
    """Another private podman (own storage, own socket): a second host."""
    with podman_service(tmp_path_factory.mktemp("podman-b")) as engine:
        yield engine


def running(engine: Podman) -> set[str]:
    return {line for line in engine.cli("ps", "--format", "{{.Names}}").split() if line}


def spawn(world: World) -> Task:
    return task_ops.spawn(world, title="Placed", prompt="scenario: sleep\nretry: commit", agent="boxed",
                          kind="default", after=[], base_branch="main")


def test_attempts_fill_the_hosts_in_order_and_each_is_watched_and_stopped_on_its_own(
    git_repo: Path, tmux_socket: str, podman: Podman, second_podman: Podman
) -> None:
    hosts = [("a", podman.url, 1), ("b", second_podman.url, 1)]
    world, clock, _ = make_world(git_repo, tmux_socket, extra=hosts_config(podman.image, hosts),
                                 monitor="max_parallel = 5\n")
    try:
        first, second, third = spawn(world), spawn(world), spawn(world)
        assert first.attempt is not None and first.attempt.runtime == "container:a"
        assert second.attempt is not None and second.attempt.runtime == "container:b"
        assert third.attempt is not None and third.attempt.runtime == "container:a", "both full: bound to a"
        assert third.attempt.launched_at is None, "its launch waits for a slot on a"
        deferred = [e for e in world.events.read(third.id) if e["event"] == "launch_deferred"]
        assert deferred and "container host a runs 1 of its 1 slot(s)" in deferred[-1]["error"]
        wait_for(lambda: session_for(first.id) in running(podman), what="the first agent on host a")
        wait_for(lambda: session_for(second.id) in running(second_podman), what="the second agent on host b")
        assert session_for(second.id) not in running(podman)
        assert session_for(third.id) not in running(podman) | running(second_podman)
        again = world.registry.read().tasks[first.id]
        assert again.attempt is not None
        world.runner.launch(again, again.attempt)  # its own container fills host a: launching it again is a no-op
        with pytest.raises(NoFreeSlot, match="container host a runs 1 of its 1 slot"):
            world.runner.launch(third, third.attempt)

        second_podman.stop_service()  # host b is unreachable: its task is not judged, host a's still is
        try:
            for _ in range(2):  # the first tick may still see its first output as progress
                clock.advance(minutes=3)
                run_tick(world)
            state = world.registry.read()
            blind = state.tasks[second.id]
            assert blind.status is Status.running and len(blind.attempts) == 1 and "cannot be reached" in blind.reason
            assert state.tasks[first.id].reason == "agent running"
            assert state.tasks[third.id].attempt.launched_at is None  # type: ignore[union-attr]
        finally:
            second_podman.start_service()

        task_ops.cancel(world, first.id)  # stops the container where it runs: host a
        assert session_for(first.id) not in running(podman)
        assert session_for(second.id) in running(second_podman)
        run_tick(world)  # a's slot is free again: the waiting attempt launches there
        placed = world.registry.read().tasks[third.id]
        assert placed.attempt is not None and placed.attempt.launched_at is not None, placed.reason
        assert len(placed.attempts) == 1 and placed.status is Status.running
        wait_for(lambda: session_for(third.id) in running(podman), what="the third agent on host a")
    finally:
        for runtime in world.runner.runtimes.values():
            if isinstance(runtime, ContainerRuntime):
                for name in runtime.panes() or {}:
                    runtime.kill(name)


# -- the transport of a host that cannot see the worktree (shares_worktree = false) ---------------------


def test_a_branch_goes_into_a_container_and_its_commits_come_back_over_the_engines_exec(
    git_repo: Path, podman: Podman, tmp_path: Path
) -> None:
    runtime = ContainerRuntime(podman.url, image=podman.image, owner=str(git_repo), network="none")
    name = f"swarm-clone-{secrets.token_hex(4)}"
    runtime.launch(name, ["/bin/sh", "-c", "git init -q /tmp/work && sleep 600"], tmp_path)
    try:
        def pushed() -> bool:
            try:
                push_into(runtime, name, git_repo, "main", "swarm/t1", "/tmp/work")
            except RuntimeFailure:
                return False  # the container is still starting
            return True

        wait_for(pushed, what="the branch pushed into the container")
        work = ("cd /tmp/work && git checkout -q swarm/t1 && echo done > work.txt && git add work.txt && "
                "git -c user.name=agent -c user.email=agent@swarm.invalid commit -q -m 'agent work'")
        done = runtime.client().containers.get(name).exec_run(["/bin/sh", "-c", work])
        assert done.exit_code == 0, done.output
        head = fetch_from(runtime, name, git_repo, "swarm/t1", "/tmp/work")
        assert head == git(git_repo, "rev-parse", "swarm/t1")
        assert git(git_repo, "log", "-1", "--format=%s %an", "swarm/t1") == "agent work agent"
        assert git(git_repo, "rev-parse", "swarm/t1~1") == git(git_repo, "rev-parse", "main")
    finally:
        runtime.kill(name)
    with pytest.raises(RuntimeFailure, match=f"could not fetch swarm/t1 from container {name}"):
        fetch_from(runtime, name, git_repo, "swarm/t1", "/tmp/work")


def test_an_engine_url_that_git_would_split_is_refused(podman: Podman) -> None:
    runtime = ContainerRuntime("unix:///tmp/a b.sock", image=podman.image, owner="/repo")
    with pytest.raises(ValueError, match="cannot be used in a git ext:: remote"):
        ext_url(runtime, "swarm-x")
    assert ext_url(ContainerRuntime(podman.url, image=podman.image, owner="/r"), "swarm-x", "/w").endswith(
        f"{podman.url} exec -i swarm-x %S /w")
