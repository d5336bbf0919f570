"""ContainerRuntime against a real podman (Docker Engine API): launch, liveness and exit codes for all
containers in one call, ownership, kill, OOM evidence, an unreachable engine, and the size parser."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.runtime.base import RuntimeFailure, RuntimeUnavailable
from monitor.runtime.container import ContainerPane, ContainerRuntime, Limits, entry_argv, exit_record, parse_size
from tests.fakes.podman import Podman
from tests.waiting import wait_for


def _runtime(engine: Podman, owner: str = "/repo/a", memory: str = "256m") -> ContainerRuntime:
    return ContainerRuntime(engine.url, image=engine.image, owner=owner, limits=Limits(memory=memory, cpus=1, pids=256))


def _run_dir(tmp_path: Path, prompt: str = "the prompt\n") -> tuple[Path, Path]:
    worktree = tmp_path / "wt"
    worktree.mkdir(parents=True)
    run = tmp_path / "runs" / "t1" / "1"
    run.mkdir(parents=True)
    (run / "prompt.md").write_text(prompt)
    return worktree, run


def _name() -> str:
    return f"swarm-test-{secrets.token_hex(4)}"


def _exited(runtime: ContainerRuntime, name: str) -> ContainerPane:
    def dead() -> ContainerPane | None:
        pane = (runtime.panes() or {}).get(name)
        return pane if isinstance(pane, ContainerPane) and pane.dead else None

    pane = wait_for(dead, timeout=60, what=f"container {name} to exit")
    assert pane is not None
    return pane


def test_an_attempt_runs_with_its_prompt_env_and_user_and_its_exit_code_is_read(
    podman: Podman, tmp_path: Path
) -> None:
    runtime = _runtime(podman)
    worktree, run = _run_dir(tmp_path)
    name = _name()
    script = 'cat; echo "HOME=$HOME A=$A"; id -u; pwd; touch made-here; exit 3'
    runtime.launch_attempt(name, entry_argv(run, "stdin", ["sh", "-c", script]), worktree, {"A": "1"},
                           mounts=[(run.parent, False)], task="t1")
    pane = _exited(runtime, name)
    assert pane.dead_status == 3
    output = (run / "output.log").read_text()
    assert "the prompt" in output
    assert "HOME=/tmp A=1" in output
    assert f"\n{os.getuid()}\n" in output
    assert str(worktree) in output
    assert (worktree / "made-here").exists()
    assert (run / "phase").read_text().strip() == "agent"
    record = exit_record(run, pane, "plain", datetime.now(UTC))
    assert record["phase"] == "agent" and record["exit_code"] == 3 and record["killed_by"] == ""
    # a second launch of the same attempt is a no-op: an exited container is judged, never run twice
    runtime.launch_attempt(name, entry_argv(run, "stdin", ["sh", "-c", "echo again"]), worktree, {},
                           mounts=[(run.parent, False)], task="t1")
    assert "again" not in (run / "output.log").read_text()
    assert runtime.kill(name) is True
    assert name not in (runtime.panes() or {})
    assert runtime.kill(name) is False


def test_setup_runs_once_per_worktree_before_the_agent(podman: Podman, tmp_path: Path) -> None:
    runtime = _runtime(podman)
    worktree, run = _run_dir(tmp_path)
    marker = run.parent / "setup.ok"
    env = {"SWARM_SETUP": "echo setting-up >> setup-count", "SWARM_SETUP_MARKER": str(marker)}
    for _ in range(2):
        name = _name()
        runtime.launch_attempt(name, entry_argv(run, "none", ["sh", "-c", 'env | grep -c SWARM_SETUP; exit 0']),
                               worktree, env, mounts=[(run.parent, False)], task="t1")
        assert _exited(runtime, name).dead_status == 0
    assert (worktree / "setup-count").read_text().count("setting-up") == 1
    assert marker.exists()
    assert (run / "output.log").read_text().count("0\n") == 2  # the agent never sees the setup's variables


def test_a_failed_setup_is_reported_as_the_setup_phase(podman: Podman, tmp_path: Path) -> None:
    runtime = _runtime(podman)
    worktree, run = _run_dir(tmp_path)
    name = _name()
    env = {"SWARM_SETUP": "echo broken-setup; exit 5", "SWARM_SETUP_MARKER": str(run.parent / "setup.ok")}
    runtime.launch_attempt(name, entry_argv(run, "none", ["true"]), worktree, env, mounts=[(run.parent, False)],
                           task="t1")
    pane = _exited(runtime, name)
    record = exit_record(run, pane, "plain", datetime.now(UTC))
    assert (record["phase"], record["exit_code"]) == ("setup", 5)
    assert "broken-setup" in (run / "output.log").read_text()
    assert not (run.parent / "setup.ok").exists()


def test_a_missing_agent_command_is_a_launch_failure(podman: Podman, tmp_path: Path) -> None:
    runtime = _runtime(podman)
    worktree, run = _run_dir(tmp_path)
    name = _name()
    runtime.launch_attempt(name, entry_argv(run, "stdin", ["no-such-agent-cli"]), worktree, {},
                           mounts=[(run.parent, False)], task="t1")
    record = exit_record(run, _exited(runtime, name), "plain", datetime.now(UTC))
    assert record["phase"] == "launch" and record["exit_code"] == 127
    assert "not found in the container image" in record["error"]


def test_out_of_memory_is_its_own_evidence_and_a_kill_from_outside_is_a_death(podman: Podman, tmp_path: Path) -> None:
    runtime = _runtime(podman, memory="128m")
    worktree, run = _run_dir(tmp_path)
    hog = _name()
    runtime.launch_attempt(hog, entry_argv(run, "none", ["python3", "-c", "x = bytearray(400 * 2**20)"]), worktree,
                           {}, mounts=[(run.parent, False)], task="t1")
    pane = _exited(runtime, hog)
    assert pane.dead_status == 137
    record = exit_record(run, pane, "plain", datetime.now(UTC))
    assert record["killed_by"] == ""
    assert record["error"].startswith("out of memory")
    assert "of its 128 MiB limit" in record["error"]

    _, other_run = _run_dir(tmp_path / "other")
    sleeper = _name()
    runtime.launch_attempt(sleeper, entry_argv(other_run, "none", ["sleep", "600"]), worktree, {},
                           mounts=[(other_run.parent, False)], task="t2")
    wait_for(lambda: (other_run / "phase").exists(), timeout=30, what="the sleeper to start")
    podman.cli("kill", sleeper)
    pane = _exited(runtime, sleeper)
    record = exit_record(other_run, pane, "plain", datetime.now(UTC))
    assert record["exit_code"] == 137 and record["killed_by"] == "SIGKILL"
    assert "out of memory" not in record["error"]


def test_each_repository_sees_and_kills_only_its_own_containers(podman: Podman, tmp_path: Path) -> None:
    mine, theirs = _runtime(podman, "/repo/mine"), _runtime(podman, "/repo/theirs")
    worktree, run = _run_dir(tmp_path)
    name = _name()
    theirs.launch_attempt(name, entry_argv(run, "none", ["sleep", "600"]), worktree, {}, mounts=[], task="t1")
    assert name in (theirs.panes() or {})
    assert name not in (mine.panes() or {})
    assert mine.kill(name) is False
    with pytest.raises(RuntimeFailure, match="belongs to /repo/theirs"):
        mine.launch_attempt(name, entry_argv(run, "none", ["true"]), worktree, {}, mounts=[], task="t1")
    assert theirs.kill(name) is True


def test_an_unreachable_engine_raises_unavailable_not_an_empty_list(tmp_path: Path) -> None:
    runtime = ContainerRuntime(f"unix://{tmp_path}/nothing.sock", image="img", owner="/repo")
    with pytest.raises(RuntimeUnavailable, match="unreachable"):
        runtime.panes()
    with pytest.raises(RuntimeUnavailable):
        runtime.kill("swarm-x")


def test_a_missing_image_is_named_with_how_to_fix_it(podman: Podman, tmp_path: Path) -> None:
    runtime = ContainerRuntime(podman.url, image="localhost/no/such:image", owner="/repo")
    worktree, run = _run_dir(tmp_path)
    with pytest.raises(RuntimeFailure, match=r"image localhost/no/such:image is not on the container engine"):
        runtime.launch_attempt(_name(), entry_argv(run, "none", ["true"]), worktree, {}, mounts=[], task="t1")


@pytest.mark.parametrize(("text", "size"), [("4g", 4 * 2**30), ("512m", 512 * 2**20), ("1.5G", 3 * 2**29),
                                            ("1024", 1024), ("64MiB", 64 * 2**20)])
def test_memory_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_bad_memory_size_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match=r'e\.g\. "4g"'):
        parse_size("lots")


def test_a_container_killed_before_its_entry_ran_is_a_death_not_a_launch_failure(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    killed = ContainerPane("swarm-x", True, None, 137, "/repo", "")
    record = exit_record(run, killed, "plain", datetime.now(UTC))
    assert (record["phase"], record["killed_by"]) == ("agent", "SIGKILL")
    no_shell = ContainerPane("swarm-x", True, None, 127, "/repo", "")
    record = exit_record(run, no_shell, "plain", datetime.now(UTC))
    assert record["phase"] == "launch" and "/bin/sh" in record["error"]


def test_limits_labels_user_and_mounts_are_set_on_the_container(podman: Podman, tmp_path: Path) -> None:
    runtime = ContainerRuntime(podman.url, image=podman.image, owner="/repo/a",
                               limits=Limits(memory="300m", cpus=1.5, pids=128))
    worktree, run = _run_dir(tmp_path)
    name = _name()
    (tmp_path / "ro").mkdir()
    runtime.launch_attempt(name, entry_argv(run, "none", ["sleep", "600"]), worktree, {}, task="t1",
                           mounts=[(run.parent, False), (tmp_path / "ro", True)])
    try:
        attrs = runtime.client().containers.get(name).attrs
        host = attrs["HostConfig"]
        assert host["Memory"] == 300 * 2**20
        assert host["NanoCpus"] == 1_500_000_000
        assert host["PidsLimit"] == 128
        assert host["NetworkMode"] == "none"
        assert attrs["Config"]["Labels"]["swarm.repo"] == "/repo/a"
        assert attrs["Config"]["Labels"]["swarm.task"] == "t1"
        assert attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
        mounts = {m["Destination"]: m["RW"] for m in attrs["Mounts"]}
        assert mounts[str(worktree)] is True
        assert mounts[str(run.parent)] is True
        assert mounts[str(tmp_path / "ro")] is False
    finally:
        runtime.kill(name)


class _Exiting:
    """A container the engine is still taking down: podman refuses its removal with a 500 a few times."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.removed = 0

    def remove(self, force: bool = False) -> None:
        import docker.errors
        import requests

        if self.refusals:
            self.refusals -= 1
            answer = requests.Response()
            answer.status_code = 500
            raise docker.errors.APIError("500 Server Error: container state improper",
                                         response=answer, explanation="container state improper")
        self.removed += 1


class _OneContainer(ContainerRuntime):
    def __init__(self, container: _Exiting) -> None:
        super().__init__("unix:///nonexistent.sock", image="local/base", owner="/repo")
        self.container = container

    def _get(self, name: str) -> object:
        return self.container


@pytest.mark.parametrize(("refusals", "removed"), [(0, True), (3, True), (4, False)])
def test_kill_waits_out_a_container_that_is_busy_exiting(
    refusals: int, removed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import monitor.runtime.container as module

    monkeypatch.setattr(module, "KILL_RETRY_DELAYS", (0.0, 0.0, 0.0, None))
    container = _Exiting(refusals)
    runtime = _OneContainer(container)
    if removed:
        assert runtime.kill("swarm-t1") is True and container.removed == 1
    else:  # still refused after the last try: the engine is not answering as it should
        with pytest.raises(RuntimeUnavailable):
            runtime.kill("swarm-t1")
