"""The one place that creates ``.swarm/``: it is excluded from git the moment it exists.

``swarm init`` excluded it, but a fresh clone of a repository with a committed ``swarm.toml`` never runs
init, and its first `swarm spawn` or tick made ``.swarm/`` appear as ``?? .swarm/`` in `git status` (one
``git add -A`` away from committing prompts, logs and the registry). The exclusion goes to
``info/exclude`` in the *common* git directory, so it also holds when swarm runs in a linked worktree.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ENTRY = ".swarm/"


def common_git_dir(repo: Path) -> Path | None:
    """The repository's common git directory (shared by its worktrees), or None outside git."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=repo, capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = result.stdout.strip()
    return Path(out) if result.returncode == 0 and out else None


def exclude_state_dir(repo: Path) -> bool:
    """Add ``.swarm/`` to the common ``info/exclude`` unless it is there; True when it is excluded now."""
    git_dir = common_git_dir(repo)
    if git_dir is None:
        return False
    exclude = git_dir / "info" / "exclude"
    try:
        current = exclude.read_text(encoding="utf-8", errors="replace") if exclude.exists() else ""
        if ENTRY in current.splitlines() or "/.swarm/" in current.splitlines():
            return True
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as out:
            out.write(("" if current.endswith("\n") or not current else "\n") + ENTRY + "\n")
    except OSError:
        return False
    return True


def ensure_state_dir(state_dir: Path) -> Path:
    """Create ``state_dir`` (``<repo>/.swarm``) if needed and make sure git ignores it; returns it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    exclude_state_dir(state_dir.parent)
    return state_dir
