"""A secret handed to a container's entry once, through a file: never the container's environment.

A ``forge_token = true`` profile's token must reach the agent in its container the way it reaches the
tmux wrapper: not through ``Config.Env`` (``docker inspect`` shows it to anyone who may talk to the
engine, for as long as the container exists), nor argv (``ps`` on the host), nor labels. The monitor
writes a 0600 file of ``NAME=VALUE`` lines into the attempt's run directory (bind-mounted, or copied
into the container's own run directory on a host that cannot see this disk); the POSIX entry
(:data:`monitor.runtime.container.ENTRY`) opens it, deletes it, keeps the values in unexported shell
variables (the setup command never sees them) and exports them only in the agent's own subshell. The
monitor removes the file if the entry has not taken it within :data:`HANDOVER_TIMEOUT`; the entry then
stops with "not handed over", and the next attempt gets a fresh file.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from monitor.private import FILE_MODE

HANDOVER_TIMEOUT = 20.0  # seconds a container's entry has to take the file before the monitor removes it
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_lines(values: Mapping[str, str]) -> bytes:
    """``NAME=VALUE`` lines the entry reads; a name that is not a variable name or a value with a line break
    (which would smuggle another line in) is refused."""
    lines = []
    for name, value in sorted(values.items()):
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        if "\n" in value or "\r" in value or "\0" in value:
            raise ValueError(f"the value of {name} holds a line break or a NUL byte; it cannot be handed over")
        lines.append(f"{name}={value}\n")
    return "".join(lines).encode("utf-8")


def write_env_once(path: Path, values: Mapping[str, str]) -> None:
    """The one-shot file at ``path``, 0600, created exclusively (never through an existing file or link)."""
    data = env_lines(values)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale one from a launch that never started
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def wait_taken(path: Path, timeout: float = HANDOVER_TIMEOUT) -> bool:
    """Wait until the entry has deleted ``path``; remove it when it has not by ``timeout``. True if taken."""
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    taken = not path.exists()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return taken
