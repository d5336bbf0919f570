"""A command that times out returns control even when something outside its process group holds its pipes
(a wedged tmux server keeps the stdout its client passed it): the monitor must never hang on one call."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from monitor.world import proc


def test_a_timed_out_tmux_client_whose_server_is_wedged_does_not_hang(tmp_path: Path) -> None:
    path = tmp_path / "wedged.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(8)  # accepts connections (and the client's file descriptors), never answers
    try:
        started = time.monotonic()
        with pytest.raises(proc.ProcTimeout, match="timed out after 1s"):
            proc.run(["tmux", "-S", str(path), "list-panes", "-a"], timeout=1.0)
        assert time.monotonic() - started < 1.0 + proc.KILL_GRACE + 2.0
    finally:
        listener.close()


def test_a_timed_out_command_still_returns_what_it_printed(tmp_path: Path) -> None:
    script = "import sys, time; print('half way', flush=True); time.sleep(30)"
    with pytest.raises(proc.ProcTimeout) as caught:
        proc.run([__import__("sys").executable, "-c", script], timeout=1.0)
    assert "half way" in caught.value.output
