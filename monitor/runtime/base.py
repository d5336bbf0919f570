"""The Runtime Protocol: what the monitor asks of whatever runs an agent.

:class:`monitor.world.tmux.Tmux` satisfies it as it is; :class:`monitor.runtime.container.ContainerRuntime`
implements it on the Docker Engine API. Errors subclass tmux's, so every path that already treats an
unreachable tmux server as "unknown, not dead" (no mass respawn) treats an unreachable engine the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from monitor.world.tmux import Pane, TmuxError, TmuxUnavailable

TMUX = "tmux"
CONTAINER = "container"
RUNTIMES = (TMUX, CONTAINER)


class RuntimeFailure(TmuxError):
    """The runtime refused a command (for a reason other than being unreachable)."""


class RuntimeUnavailable(TmuxUnavailable):
    """The runtime cannot be reached (engine down, socket missing, timeout): nothing can be said about its
    sessions, so none of them may be judged dead on it."""


class Runtime(Protocol):
    """One place agents run. Sessions are named exactly (one per task); ``panes`` answers for all of them
    in one call: ``None`` means "nothing can be known" (like no tmux server), an error means unreachable."""

    def panes(self) -> dict[str, Pane] | None: ...

    def launch(self, name: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> None: ...

    def kill(self, name: str) -> bool: ...

    def capture(self, name: str, lines: int = 200) -> str: ...

    def attach_argv(self, name: str) -> list[str]: ...
