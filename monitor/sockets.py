"""Which tmux socket a repository's agents live on when ``[monitor] tmux_socket`` is not set.

Every repository used to get the socket ``swarm``, and two repositories on one server saw (and killed)
each other's sessions. The default is now one socket per repository, ``swarm-<name>-<hash of the path>``.

Upgrading must not orphan agents already running on the old shared ``swarm`` socket, and moving a
repository must not silently switch sockets under running agents. So the first choice is pinned in
``.swarm/tmux-socket`` and kept: a repository whose agents already run on ``swarm`` (sessions tagged with
it, or untagged ones started in its worktree root by an older swarm) stays on ``swarm``; any other
repository gets its own socket. Sessions are tagged with their repository either way (see
:mod:`monitor.world.tmux`), so a repository left on ``swarm`` still never touches another's agents.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from monitor.layout import Layout
from monitor.world.tmux import Tmux, TmuxError

LEGACY_SOCKET = "swarm"
PIN_NAME = "tmux-socket"
_VALID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def per_repo_socket(repo: Path) -> str:
    """``swarm-<repository name>-<8 hex digits of its absolute path>``: readable, and distinct per path."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", repo.name).strip("-")[:24] or "repo"
    digest = hashlib.sha256(str(repo).encode()).hexdigest()[:8]
    return f"swarm-{slug}-{digest}"


def _legacy_agents(layout: Layout) -> bool | None:
    """Whether the old shared ``swarm`` server holds sessions of this repository (None: cannot tell)."""
    try:
        tmux = Tmux(LEGACY_SOCKET, timeout=5.0, owner=str(layout.repo), roots=(layout.worktree_root,))
        return bool(tmux.panes())
    except TmuxError:
        return None
    except ValueError:
        return False  # a repository path tmux cannot tag: an older swarm started no session for it either


def default_socket(layout: Layout) -> str:
    """The socket for a repository whose config does not name one (pinned once ``.swarm/`` exists)."""
    pin = layout.state_dir / PIN_NAME
    with contextlib.suppress(OSError, UnicodeDecodeError):
        pinned = pin.read_text(encoding="utf-8").strip()
        if _VALID.fullmatch(pinned):
            return pinned
    name = per_repo_socket(layout.repo)
    if not layout.state_dir.is_dir():
        return name  # nothing ran here yet; pinned by the first command that finds .swarm/
    legacy = _legacy_agents(layout)
    if legacy is None:
        return LEGACY_SOCKET  # the old server hangs: keep its agents reachable, decide (and pin) next time
    chosen = LEGACY_SOCKET if legacy else name
    tmp = pin.with_name(f".{PIN_NAME}.tmp-{os.getpid()}")
    with contextlib.suppress(OSError):
        tmp.write_text(chosen + "\n", encoding="utf-8")
        os.replace(tmp, pin)
    return chosen
