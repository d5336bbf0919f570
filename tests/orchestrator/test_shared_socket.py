"""Two repositories, one machine: each repository's sessions and worktrees are its own.

Real repositories, a real tmux server, the real `swarm` command line for `cleanup --yes` and
`monitor run-once`, and the same task id in both repositories (ids come from titles).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import sockets
from monitor.layout import Layout
from monitor.world.tmux import Tmux
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, load
from orchestrator.systemd import default_swarm_argv, render_units
from orchestrator.wiring import utc_now
from registry.models import FailureKind, Status
from tests.worlds import REPO_ROOT, make_world

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
SLEEPER = f"""
[agents.sleeper]
command = ["{sys.executable}", "-m", "tests.agents.env_dump"]
prompt = "stdin"
env = {{ PYTHONPATH = "{REPO_ROOT}" }}
"""


def swarm(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def new_repo(path: Path) -> Path:
    path.mkdir()
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


@pytest.fixture
def same_id(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both repositories give their "Fix login" task the same id."""
    monkeypatch.setattr(task_ops, "new_task_id", lambda title, existing: "fix-login-0001")
    yield "fix-login-0001"


def test_cleanup_in_one_repository_never_touches_the_other_ones_agent_on_a_shared_socket(
    git_repo: Path, tmp_path: Path, tmux_socket: str, same_id: str
) -> None:
    repo_a, repo_b = git_repo, new_repo(tmp_path / "other")
    world_b, _, _ = make_world(repo_b, tmux_socket, extra=SLEEPER)
    world_a, _, _ = make_world(repo_a, tmux_socket, extra=SLEEPER)
    for world in (world_a, world_b):  # the `swarm` processes below run on the real clock
        world.clock, world.monotonic = utc_now, time.monotonic
    session = f"swarm-{same_id}"

    task_b = task_ops.spawn(world_b, title="Fix login", prompt="scenario: sleep", agent="sleeper", kind="default",
                            after=[], base_branch="main")
    assert task_b.status is Status.running and task_b.attempts[0].launched_at is not None
    pid_b = (world_b.tmux.panes() or {})[session].pid

    # The same task id in A: its session name is taken by B's agent, so A's launch fails and says why.
    task_a = task_ops.spawn(world_a, title="Fix login", prompt="scenario: sleep", agent="sleeper", kind="default",
                            after=[], base_branch="main")
    assert task_a.id == task_b.id == same_id
    failure = task_a.attempts[0].failure
    assert failure is not None and failure.kind is FailureKind.launch_failed
    assert "another repository" in failure.summary + failure.evidence
    # A's task of that id ends cancelled: cleanup then removes "its" session of that name, and there is none.
    world_a.registry.update(lambda st: st.with_task(st.tasks[same_id].model_copy(update={"status": Status.cancelled})))

    # A's own orphan, and one of B's that an older swarm started untagged in B's worktree root.
    Tmux(tmux_socket, owner=str(world_a.layout.repo), roots=(world_a.layout.worktree_root,)).launch(
        "swarm-stray-0002", ["sleep", "60"], repo_a)
    old_worktree = world_b.layout.worktree_root / "legacy-0003"
    old_worktree.mkdir(parents=True)
    Tmux(tmux_socket).launch("swarm-legacy-0003", ["sleep", "60"], old_worktree)

    out = swarm(repo_a, "cleanup", "--yes").stdout
    assert "killed orphan session swarm-stray-0002" in out, out
    assert session not in out and "legacy-0003" not in out, out
    everything = Tmux(tmux_socket).panes() or {}
    assert set(everything) == {session, "swarm-legacy-0003"}
    assert everything[session].pid == pid_b and not everything[session].dead, "B's agent still runs"

    report = swarm(repo_b, "monitor", "run-once", "--json").stdout
    state = world_b.registry.read().tasks[same_id]
    assert state.status is Status.running, report
    assert len(state.attempts) == 1 and state.attempts[0].failure is None
    events = [json.loads(line) for line in world_b.layout.events_path.read_text().splitlines()]
    assert [e for e in events if e.get("event") in ("died", "failure", "respawned")] == []


def minimal_config(repo: Path) -> None:
    (repo / CONFIG_NAME).write_text('[project]\nbase_branch = "main"\n')


def test_two_repositories_with_the_default_config_get_their_own_sockets(tmp_path: Path) -> None:
    one, two = new_repo(tmp_path / "shop"), new_repo(tmp_path / "api")
    (tmp_path / "elsewhere").mkdir()
    twin = new_repo(tmp_path / "elsewhere" / "shop")  # the same name as `one`, another path
    for repo in (one, two, twin):
        minimal_config(repo)
    names = [load(repo / CONFIG_NAME).monitor.tmux_socket for repo in (one, two, twin)]
    assert len(set(names)) == 3 and all(n.startswith("swarm-") for n in names), names
    assert names[0].startswith("swarm-shop-") and names[2].startswith("swarm-shop-")
    # systemd units are named after the socket: still rendered, one tmux unit per repository
    units = [render_units(repo, load(repo / CONFIG_NAME), default_swarm_argv(), tmux="/usr/bin/tmux").names.tmux
             for repo in (one, two)]
    assert units[0] != units[1]


def test_the_default_socket_is_pinned_and_an_explicit_one_wins(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "shop")
    minimal_config(repo)
    (repo / ".swarm").mkdir()
    first = load(repo / CONFIG_NAME).monitor.tmux_socket
    assert (repo / ".swarm" / sockets.PIN_NAME).read_text().strip() == first
    assert load(repo / CONFIG_NAME).monitor.tmux_socket == first
    (repo / CONFIG_NAME).write_text('[monitor]\ntmux_socket = "mine"\n')
    assert load(repo / CONFIG_NAME).monitor.tmux_socket == "mine", "an explicit socket always wins"


def test_after_an_upgrade_a_repository_with_agents_on_the_old_shared_socket_stays_there(
    tmp_path: Path, tmux_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sockets, "LEGACY_SOCKET", tmux_socket)  # stands for the old default "swarm"
    busy, idle = new_repo(tmp_path / "busy"), new_repo(tmp_path / "idle")
    for repo in (busy, idle):
        minimal_config(repo)
        (repo / ".swarm").mkdir()  # both used swarm before the upgrade
    worktree = Layout.for_repo(busy).worktree("fix-0001")
    worktree.mkdir(parents=True)
    Tmux(tmux_socket).launch("swarm-fix-0001", ["sleep", "60"], worktree)  # untagged: an older swarm's agent

    assert load(busy / CONFIG_NAME).monitor.tmux_socket == tmux_socket, "its running agent stays reachable"
    assert load(idle / CONFIG_NAME).monitor.tmux_socket == sockets.per_repo_socket(idle.resolve())
    Tmux(tmux_socket).kill_server()
    assert load(busy / CONFIG_NAME).monitor.tmux_socket == tmux_socket, "pinned: no switch under the agents"
