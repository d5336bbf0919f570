"""The tmux wrapper against a real tmux server on a private socket."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.world.tmux import Pane, Tmux, TmuxUnavailable


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def raw(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=False)


@pytest.fixture
def tmux(tmux_socket: str) -> Tmux:
    return Tmux(tmux_socket)


def test_no_server_means_unknown_not_dead(tmux: Tmux) -> None:
    assert tmux.panes() is None
    assert tmux.server_running() is False
    assert tmux.has_session("task-1") is False
    assert tmux.kill("task-1") is False
    assert tmux.capture("task-1") == ""
    tmux.kill_server()  # nothing to kill: no error


def test_launch_runs_argv_without_a_shell(tmux: Tmux, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    evil = "$(touch pwned); touch pwned2 `touch pwned3`"
    script = 'printf "%s|%s" "$1" "$GREETING" > "$0"'
    tmux.launch("lit", ["sh", "-c", script, str(out), evil], cwd=tmp_path, env={"GREETING": "a b;$(x)"})
    wait_for(out.exists)
    wait_for(lambda: out.read_text() != "")
    assert out.read_text() == f"{evil}|a b;$(x)"
    for name in ("pwned", "pwned2", "pwned3"):
        assert not (tmp_path / name).exists()


def test_launch_passes_a_single_literal_argument(tmux: Tmux, tmp_path: Path) -> None:
    # The first argv element is executed directly: a name with shell syntax is not split or expanded.
    tmux.launch("direct", ["touch", "a;b", "$(touch pwned)"], cwd=tmp_path)
    wait_for(lambda: (tmp_path / "a;b").exists() and (tmp_path / "$(touch pwned)").exists())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["$(touch pwned)", "a;b"]
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "a").exists()


def test_launch_uses_cwd_size_and_history_limit(tmux: Tmux, tmp_path: Path, tmux_socket: str) -> None:
    tmux.launch("sized", ["sh", "-c", "pwd > where.txt; sleep 30"], cwd=tmp_path)
    wait_for(lambda: (tmp_path / "where.txt").exists() and (tmp_path / "where.txt").read_text() != "")
    assert Path((tmp_path / "where.txt").read_text().strip()).resolve() == tmp_path.resolve()
    size = raw(tmux_socket, "display-message", "-p", "-t", "=sized:", "#{window_width}x#{window_height}")
    assert size.stdout.strip() == "220x50"
    assert raw(tmux_socket, "show-options", "-gv", "history-limit").stdout.strip() == "50000"
    assert raw(tmux_socket, "show-options", "-gv", "remain-on-exit").stdout.strip() == "on"


def test_exited_pane_stays_dead_with_its_status(tmux: Tmux, tmp_path: Path) -> None:
    # The very first session on a fresh server: remain-on-exit must already be on when it starts.
    tmux.launch("quick", ["sh", "-c", "exit 7"], cwd=tmp_path)
    tmux.launch("alive", ["sleep", "30"], cwd=tmp_path)

    def quick_dead() -> bool:
        panes = tmux.panes()
        return panes is not None and panes["quick"].dead

    wait_for(quick_dead)
    panes = tmux.panes()
    assert panes is not None
    assert panes["quick"].dead is True
    assert panes["quick"].dead_status == 7
    assert isinstance(panes["quick"].pid, int)
    alive = panes["alive"]
    assert alive == Pane(session="alive", dead=False, pid=alive.pid, dead_status=None)
    assert alive.pid is not None and alive.pid > 0
    assert tmux.has_session("quick") is True
    assert tmux.server_running() is True


def test_panes_reports_the_first_pane_of_a_session(tmux: Tmux, tmp_path: Path, tmux_socket: str) -> None:
    tmux.launch("multi", ["sleep", "30"], cwd=tmp_path)
    raw(tmux_socket, "split-window", "-t", "=multi:", "sh", "-c", "exit 3")
    # the second pane has exited (kept dead by remain-on-exit): a report that picked it would now say so
    wait_for(lambda: raw(tmux_socket, "list-panes", "-t", "=multi:", "-F", "#{pane_dead}").stdout.split() == ["0", "1"])
    panes = tmux.panes()
    assert panes is not None
    assert list(panes) == ["multi"]
    assert panes["multi"].dead is False
    assert panes["multi"].dead_status is None


def test_exact_names_never_match_by_prefix(tmux: Tmux, tmp_path: Path) -> None:
    tmux.launch("task-12", ["sh", "-c", "echo twelve-output; sleep 30"], cwd=tmp_path)
    wait_for(lambda: "twelve-output" in tmux.capture("task-12"))
    assert tmux.has_session("task-12") is True
    assert tmux.has_session("task-1") is False
    assert tmux.capture("task-1") == ""
    assert tmux.kill("task-1") is False
    assert tmux.has_session("task-12") is True
    # launch of the shorter name creates its own session instead of finding task-12
    tmux.launch("task-1", ["sleep", "30"], cwd=tmp_path)
    panes = tmux.panes()
    assert panes is not None and set(panes) == {"task-1", "task-12"}
    assert tmux.kill("task-1") is True
    assert tmux.has_session("task-1") is False
    assert tmux.has_session("task-12") is True


def test_capture_returns_printed_text(tmux: Tmux, tmp_path: Path) -> None:
    tmux.launch("talker", ["sh", "-c", "for i in 1 2 3 4 5; do echo line-$i; done; sleep 30"], cwd=tmp_path)
    wait_for(lambda: "line-5" in tmux.capture("talker"))
    text = tmux.capture("talker")
    assert [line for line in text.splitlines() if line] == [f"line-{i}" for i in range(1, 6)]
    assert text.endswith("line-5\n")


def test_capture_reaches_into_scrollback(tmux: Tmux, tmp_path: Path) -> None:
    tmux.launch("long", ["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo n$i; i=$((i+1)); done; sleep 30"], tmp_path)
    wait_for(lambda: "n299" in tmux.capture("long"))
    few = tmux.capture("long", lines=10).split()
    many = tmux.capture("long", lines=1000).split()
    assert "n0" in many and "n299" in many
    assert "n0" not in few and "n299" in few
    assert len(many) == 300


def test_capture_of_a_dead_pane_still_works(tmux: Tmux, tmp_path: Path) -> None:
    # (tmux can drop the output of a process that exits within a few ms of writing it: hence the sleep)
    tmux.launch("done", ["sh", "-c", "echo last-words; sleep 0.3; exit 2"], cwd=tmp_path)
    wait_for(lambda: (p := tmux.panes()) is not None and p["done"].dead)
    assert "last-words" in tmux.capture("done")


def test_launch_is_idempotent(tmux: Tmux, tmp_path: Path) -> None:
    tmux.launch("once", ["sleep", "30"], cwd=tmp_path)
    first = tmux.panes()
    assert first is not None
    tmux.launch("once", ["sh", "-c", "touch second-run; sleep 30"], cwd=tmp_path)
    second = tmux.panes()
    assert second is not None
    assert second["once"].pid == first["once"].pid
    assert len(second) == 1
    time.sleep(0.2)
    assert not (tmp_path / "second-run").exists()


def test_kill_and_kill_server(tmux: Tmux, tmp_path: Path) -> None:
    tmux.launch("a", ["sleep", "30"], cwd=tmp_path)
    tmux.launch("b", ["sleep", "30"], cwd=tmp_path)
    assert tmux.kill("a") is True
    assert tmux.kill("a") is False
    panes = tmux.panes()
    assert panes is not None and set(panes) == {"b"}
    tmux.kill_server()
    assert tmux.panes() is None


@pytest.mark.parametrize("name", ["", "a b", "x:y", "x.y", "=x", "a" * 81, "tâche", "a\tb"])
def test_invalid_names_are_refused(tmux: Tmux, tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        tmux.launch(name, ["true"], cwd=tmp_path)
    with pytest.raises(ValueError):
        tmux.has_session(name)
    with pytest.raises(ValueError):
        tmux.kill(name)
    with pytest.raises(ValueError):
        tmux.capture(name)
    assert tmux.panes() is None  # nothing was started


def test_env_names_are_validated(tmux: Tmux, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        tmux.launch("envy", ["true"], cwd=tmp_path, env={"A=B": "x"})
    assert tmux.panes() is None


def test_attach_argv_targets_the_exact_session(tmux_socket: str, tmp_path: Path) -> None:
    assert Tmux(tmux_socket).attach_argv("task-1") == ["tmux", "-L", tmux_socket, "attach-session", "-t", "=task-1"]
    sock = str(tmp_path / "sock")
    assert Tmux(sock).attach_argv("x")[:3] == ["tmux", "-S", sock]


def test_socket_path_is_used_with_dash_s(tmp_path: Path) -> None:
    sock = tmp_path / "private.sock"
    tmux = Tmux(str(sock))
    try:
        assert tmux.panes() is None
        tmux.launch("by-path", ["sleep", "30"], cwd=tmp_path)
        assert sock.exists()
        panes = tmux.panes()
        assert panes is not None and set(panes) == {"by-path"}
    finally:
        tmux.kill_server()
    assert tmux.panes() is None


def test_unreachable_tmux_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tmux binary at all
    with pytest.raises(TmuxUnavailable):
        Tmux("whatever").panes()


def test_server_outlives_its_last_session(tmux: Tmux, tmp_path: Path) -> None:
    # exit-empty is off: when the last agent ends, "no sessions" must not look like "no server".
    tmux.launch("only", ["sleep", "30"], cwd=tmp_path)
    assert tmux.kill("only") is True
    assert tmux.panes() == {}
    assert tmux.server_running() is True
    assert tmux.has_session("only") is False
    assert tmux.capture("only") == ""


def test_kill_server_leaves_no_socket_file(tmux_socket: str, tmp_path: Path) -> None:
    tmux = Tmux(tmux_socket)
    tmux.launch("litter", ["sleep", "30"], tmp_path)
    assert tmux.socket_path().exists()
    tmux.kill_server()
    assert not tmux.socket_path().exists()
    assert tmux.panes() is None
