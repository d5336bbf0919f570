"""Installing a pinned npm package into a git-ignored cache for the tests (the real Claude Code CLI, GitHub's
GraphQL schema): one lock per cache so that pytest-xdist workers install once, and one way to run npm."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path


class NpmInstallError(RuntimeError):
    """npm could not install the package: the message has the command and the end of its output."""


@contextlib.contextmanager
def locked(cache_dir: Path) -> Iterator[None]:
    """Serialise installs into the same cache (parallel test workers may all ask at once)."""
    with (cache_dir / ".install.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def npm_install(npm: str, cache_dir: Path, spec: str, flags: Sequence[str], timeout: float) -> None:
    """``npm install spec`` into ``cache_dir`` with a throwaway download cache (only the tree is kept)."""
    with tempfile.TemporaryDirectory(prefix="swarm-npm-cache-") as npm_cache:
        env = {
            **os.environ,
            "npm_config_cache": npm_cache,
            "npm_config_logs_dir": str(cache_dir / ".npm-logs"),  # kept, for the error message
            "npm_config_update_notifier": "false",
        }
        command = [npm, "install", "--prefix", str(cache_dir), "--no-audit", "--no-fund", *flags,
                   "--loglevel=error", spec]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NpmInstallError(f"`{' '.join(command)}` did not run to the end: {exc}") from exc
    if done.returncode != 0:
        raise NpmInstallError(
            f"`{' '.join(command)}` failed with exit code {done.returncode}:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
