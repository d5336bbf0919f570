"""Files only the owner may read: run directories, prompts, run specs, logs and the one-shot secret file.

Prompts and logs quote the agent's work and whatever it printed; a run spec names the agent's command.
Other users on the machine must not read them, whatever the umask of the process that wrote them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Create ``path`` and each missing parent 0700 (``mkdir(parents=True)`` would give the parents the
    umask's mode), and make ``path`` itself 0700; returns it."""
    missing = []
    here = path
    while not here.is_dir():
        missing.append(here)
        here = here.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` created 0600 (an existing file is made 0600 first, then rewritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        handle.write(text)


def write_secret_once(path: Path, values: Mapping[str, str]) -> None:
    """A 0600 file holding ``values`` (NAME → secret) as JSON, created exclusively (never through an
    existing file or symlink): the hand-over of a secret to one process that reads and unlinks it."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale one from a launch that never started
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(values), handle)


def take_secret_once(path: Path) -> dict[str, str] | None:
    """Read and unlink the file :func:`write_secret_once` wrote; None if it is not there (or unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        with contextlib.suppress(OSError):
            os.unlink(path)  # first: whatever happens next, the secret is no longer on disk
        try:
            data = json.load(handle)
        except (OSError, ValueError):
            return None
    if not isinstance(data, dict):
        return None
    return {str(k): str(v) for k, v in data.items()}
