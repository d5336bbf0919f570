"""The two rich consoles of the command line (stdout and stderr), made on first use: loading rich
costs tens of milliseconds that `swarm --version` and the plain-text commands need not pay."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@cache
def console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True)


@cache
def err() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)
