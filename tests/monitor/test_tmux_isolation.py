"""Two repositories on one tmux server, and swarm's secrets kept out of it: real tmux, private sockets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from monitor.world.tmux import ForeignSession, Tmux
from tests.waiting import wait_for


def raw(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True).stdout


def two_repos(tmp_path: Path, socket: str) -> tuple[Tmux, Tmux, Path, Path]:
    roots = tmp_path / "a.swarm", tmp_path / "b.swarm"
    for root in roots:
        root.mkdir()
    a = Tmux(socket, owner=str(tmp_path / "a"), roots=(roots[0],))
    b = Tmux(socket, owner=str(tmp_path / "b"), roots=(roots[1],))
    return a, b, roots[0], roots[1]


def test_a_session_is_tagged_with_its_repository_and_only_it_sees_kills_or_reuses_it(
    tmux_socket: str, tmp_path: Path
) -> None:
    a, b, root_a, root_b = two_repos(tmp_path, tmux_socket)
    b.launch("swarm-fix-login-0001", ["sleep", "60"], root_b)
    assert raw(tmux_socket, "show-options", "-v", "-t", "=swarm-fix-login-0001:", "@swarm_repo").strip() == b.owner

    assert set(b.panes() or {}) == {"swarm-fix-login-0001"}
    assert a.panes() == {}, "A does not see B's session"
    assert a.has_session("swarm-fix-login-0001") is False
    assert a.kill("swarm-fix-login-0001") is False
    with pytest.raises(ForeignSession, match=r"belongs to .*another repository"):
        a.launch("swarm-fix-login-0001", ["sleep", "60"], root_a)  # same task id in A: refused, not "reused"
    assert b.has_session("swarm-fix-login-0001") is True
    assert Tmux(tmux_socket).has_session("swarm-fix-login-0001"), "an owner-less view (doctor) sees every session"
    assert b.kill("swarm-fix-login-0001") is True


def test_an_untagged_session_of_an_older_swarm_belongs_to_the_repository_whose_worktree_root_holds_it(
    tmux_socket: str, tmp_path: Path
) -> None:
    a, b, _root_a, root_b = two_repos(tmp_path, tmux_socket)
    worktree = root_b / "old-task"
    worktree.mkdir()
    Tmux(tmux_socket).launch("swarm-old-task", ["sleep", "60"], worktree)  # no tag, as an older swarm did

    assert set(b.panes() or {}) == {"swarm-old-task"}
    assert a.panes() == {}
    assert a.kill("swarm-old-task") is False
    assert b.has_session("swarm-old-task") is True


def test_swarms_secrets_never_reach_a_server_it_starts_and_are_removed_from_an_older_one(
    tmux_socket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SWARM_TEST_SECRET", "s3cr3t-value-for-the-test")
    monkeypatch.setenv("SWARM_TEST_HARMLESS", "visible")
    tmux = Tmux(tmux_socket, owner=str(tmp_path), roots=(tmp_path,), hide_env=["SWARM_TEST_SECRET"])
    out = tmp_path / "env.txt"
    tmux.launch("fresh", ["sh", "-c", f"env > {out}.tmp && mv {out}.tmp {out}; sleep 60"], tmp_path)
    wait_for(out.exists, "the pane's environment dump")
    pane_env = out.read_text()
    assert "SWARM_TEST_HARMLESS=visible" in pane_env
    assert "SWARM_TEST_SECRET" not in pane_env
    assert "SWARM_TEST_SECRET" not in raw(tmux_socket, "show-environment", "-g")
    server_pid = int(raw(tmux_socket, "display-message", "-p", "-t", "=fresh:", "#{pid}").strip())
    assert b"SWARM_TEST_SECRET" not in Path(f"/proc/{server_pid}/environ").read_bytes()
    assert tmux.server_held_secrets("fresh") == [] and "still holds them" not in caplog.text

    tmux.kill_server()
    # An older swarm started the server with the secret in its environment:
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "older", "sleep", "60"], check=True,
                   env={k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")})
    assert "SWARM_TEST_SECRET=s3cr3t-value-for-the-test" in raw(tmux_socket, "show-environment", "-g")
    out.unlink()
    tmux.launch("next", ["sh", "-c", f"env > {out}.tmp && mv {out}.tmp {out}; sleep 60"], tmp_path)
    wait_for(out.exists, "the pane's environment dump")
    assert "SWARM_TEST_SECRET" not in out.read_text()
    assert "SWARM_TEST_SECRET" not in raw(tmux_socket, "show-environment", "-g")
    # What cannot be cleaned without ending its agents, the older server's own process, is said once.
    assert tmux.server_held_secrets("next") == ["SWARM_TEST_SECRET"]
    assert "still holds them" in caplog.text and "kill-server" in caplog.text


def test_a_repository_path_tmux_cannot_tag_is_a_clear_error(tmux_socket: str) -> None:
    with pytest.raises(ValueError, match="trailing ';'"):
        Tmux(tmux_socket, owner="/srv/odd;")
    with pytest.raises(ValueError, match="invalid environment variable name"):
        Tmux(tmux_socket, hide_env=["NOT-A-NAME"])
