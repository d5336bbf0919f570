"""A real full disk for tests: a small tmpfs mounted over a directory, and a filler file that uses up
its last byte, so writes fail with a genuine ENOSPC from the kernel (not an injected exception).

Mounting needs root (or CAP_SYS_ADMIN); where it is refused the tests using :func:`tiny_disk` are skipped,
and the injected-ENOSPC tests in ``tests/registry/test_store.py`` still cover the write paths.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tiny_disk(path: Path, size: str = "512k") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``path`` (created if missing) for the duration of the block."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        if os.environ.get("CI"):  # CI runs as root: a refused mount there is a broken machine, not a skip
            pytest.fail(f"cannot mount a tmpfs for the full-disk tests: {mounted.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'}): needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Write a filler file in ``directory`` until the disk is full; returns it (unlink it to free space)."""
    filler = directory / ".filler"
    chunk = b"\0" * 4096
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        # a last partial page, byte by byte, so not even a small write fits
        while True:
            try:
                os.write(fd, b"\0")
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    return filler
