"""The local event socket of `swarm serve`: a unix datagram socket (``.swarm/serve.sock``, mode 0600) on
which agent wrappers, check jobs and CLI commands name the tasks that just changed (see
:mod:`monitor.wake`). Each message only wakes the reconcile loop; what it says is input, and anything that is
not a task id is dropped."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from monitor.wake import MAX_MESSAGE, decode, socket_path

log = logging.getLogger(__name__)


class EventSocket:
    def __init__(self, state_dir: Path, on_wake: Callable[[set[str]], None]) -> None:
        self.path = socket_path(state_dir)
        self.on_wake = on_wake
        self.sock: socket.socket | None = None
        self.thread = threading.Thread(target=self._loop, name="swarm-events", daemon=True)
        self.closing = threading.Event()
        self.received = 0
        self.inode = 0

    def open(self) -> None:
        """Bind (replacing a stale socket left by a killed service) with mode 0600 from the first moment:
        bound under a temporary name, chmodded, then renamed into place."""
        parent = self.path.parent
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = parent.lstat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o022:
            raise OSError(f"{parent} is not a private directory of this user; remove it and start again")
        tmp = parent / f".{self.path.name}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(tmp))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            self.inode = self.path.stat().st_ino
        except OSError:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        sock.settimeout(0.5)
        self.sock = sock
        self.thread.start()

    def _loop(self) -> None:
        assert self.sock is not None
        while not self.closing.is_set():
            try:
                message = self.sock.recv(MAX_MESSAGE)
            except TimeoutError:
                continue
            except OSError:
                if self.closing.is_set():
                    return
                log.exception("event socket failed; events wait for the next reconcile")
                return
            self.received += 1
            self.on_wake(decode(message))

    def close(self) -> None:
        self.closing.set()
        if self.sock is not None:
            self.thread.join(2.0)
            self.sock.close()
        # only our own socket: a newer service may have replaced it already
        with contextlib.suppress(OSError):
            if self.inode and self.path.stat().st_ino == self.inode:
                self.path.unlink()
