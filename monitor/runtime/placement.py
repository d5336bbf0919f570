"""Where a new container attempt runs when several engines are listed (``[[runtime.container.hosts]]``).

Placement is a pure choice over values, so it is tested as a table: each host has a name and a number
of slots, and the caller says how many agents each host runs now (``None`` when the host could not be
asked). Hosts fill in the order the user listed them (list the cheapest first, usually this machine);
an unreachable host is skipped rather than counted as empty, so an engine that is down never receives
the whole queue. The attempt then records ``container:<name>``, and liveness, kill, logs and attach go to
that engine for as long as the attempt lives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.runtime.base import CONTAINER

HOST_PREFIX = f"{CONTAINER}:"


@dataclass(frozen=True)
class Host:
    """One engine that takes attempts: its name (as attempts record it) and how many agents it may run."""

    name: str
    slots: int


def runtime_key(host: str) -> str:
    """The name an Attempt records for an attempt on ``host`` (the key of the Runner's runtimes)."""
    return f"{HOST_PREFIX}{host}"


def host_of(runtime: str) -> str:
    """The host an attempt's recorded runtime names ("" for tmux or the single engine)."""
    return runtime.removeprefix(HOST_PREFIX) if runtime.startswith(HOST_PREFIX) else ""


def place(hosts: Sequence[Host], used: Mapping[str, int | None]) -> str | None:
    """The first listed host with a free slot, or None when every reachable host is full (or none is
    reachable). ``used[name]`` is how many agents run there; a missing or ``None`` entry means the host
    could not be asked, and it is skipped."""
    for host in hosts:
        busy = used.get(host.name)
        if busy is not None and busy < host.slots:
            return host.name
    return None


def bind(hosts: Sequence[Host], used: Mapping[str, int | None]) -> tuple[str, bool]:
    """The host a new attempt is recorded on, and whether a slot is free there now. With every host full
    the attempt is still bound (to the first reachable host, else the first listed) and its launch waits
    for a slot there: the tick never fails a task for a full fleet. Needs at least one host."""
    chosen = place(hosts, used)
    if chosen is not None:
        return chosen, True
    reachable = [host.name for host in hosts if used.get(host.name) is not None]
    return (reachable or [hosts[0].name])[0], False
