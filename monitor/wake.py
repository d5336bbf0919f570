"""Waking `swarm serve` when something happened to a task: an agent's wrapper exited, a local CI or
reviewer job finished, or `swarm spawn`/`retry`/`cancel`/`submit` wrote the registry.

The service listens on a unix datagram socket under ``.swarm/`` (mode 0600: only this user can wake it).
A wake is one datagram naming the task ids; it never blocks and never fails its caller: without a running
service (no socket, or a stale one) nothing happens, and a message lost on a full queue costs latency only,
since the service's timer still reconciles every task. Token-free and light: the agent wrapper imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
from collections.abc import Iterable
from pathlib import Path

SOCKET_NAME = "serve.sock"
MAX_MESSAGE = 4096  # one datagram: ids past this size are dropped (the timer reconciles them)
_TASK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # registry.models.TASK_ID_RE, without importing pydantic
_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes on Linux; keep a margin


def socket_path(state_dir: Path) -> Path:
    """``.swarm/serve.sock``; when that path is too long for a unix socket, a fixed short path derived from
    it in the user's private runtime directory (both ends compute the same one)."""
    path = state_dir / SOCKET_NAME
    if len(os.fsencode(str(path))) <= _UNIX_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(str(state_dir.resolve()))).hexdigest()[:20]
    return _runtime_dir() / f"serve-{digest}.sock"


def _runtime_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "swarm"
    return Path("/tmp") / f"swarm-{os.getuid()}"  # noqa: S108 - created 0700 and checked by the service


def encode(task_ids: Iterable[str]) -> bytes:
    """The message: valid task ids separated by spaces (empty = "reconcile everything")."""
    out = b""
    for task_id in task_ids:
        if not _TASK_ID.fullmatch(task_id):
            continue
        piece = (b" " if out else b"") + task_id.encode()
        if len(out) + len(piece) > MAX_MESSAGE:
            break
        out += piece
    return out


def decode(message: bytes) -> set[str]:
    """Task ids from a message (anything that is not a task id is ignored: the socket is input)."""
    text = message[:MAX_MESSAGE].decode("ascii", errors="replace")
    return {word for word in text.split() if _TASK_ID.fullmatch(word)}


def wake(state_dir: Path, task_ids: Iterable[str]) -> bool:
    """Tell a running `swarm serve` that these tasks changed; True when the message was handed over.

    Returns at once in every case: no socket, a stale socket (no service), a full queue or any socket
    error mean False and nothing else.
    """
    path = socket_path(state_dir)
    if not path.exists():
        return False
    message = encode(task_ids)
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.sendto(message or b" ", str(path))
        return True
    return False


def state_dir_for_run(run_dir: Path) -> Path | None:
    """The ``.swarm`` directory of an attempt's or a check job's run directory (``<state>/runs/<task>/...``)."""
    for parent in run_dir.resolve().parents:
        if parent.name == "runs":
            return parent.parent
    return None
