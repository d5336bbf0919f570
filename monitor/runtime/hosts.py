"""Several container engines (``[[runtime.container.hosts]]``): each is a :class:`ContainerRuntime` under
the name ``container:<host>``, and a new container attempt is placed on the first host with a free slot.

A host's slots count every running container swarm started there, for any repository (the engines are
the truth: two repositories sharing a build machine share its slots). A host that cannot be asked is
skipped. When every host is full the attempt is still recorded, on the first reachable host, and its
launch waits there: :class:`NoFreeSlot` is an "unreachable runtime" error, so the tick defers the launch
(event ``launch_deferred``) and tries again on the next tick, and nothing is judged dead meanwhile.

A host that sees the worktree at the same path (``shares_worktree = true``: this machine, or one that
mounts the same filesystem) is a :class:`ContainerRuntime`; one that does not is a
:class:`monitor.runtime.remote.RemoteContainerRuntime` (branch pushed in, commits fetched back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.runner import Runner
from monitor.runtime.base import CONTAINER, Runtime, RuntimeUnavailable
from monitor.runtime.container import REPO_LABEL, ContainerRuntime
from monitor.runtime.placement import Host, bind, host_of, runtime_key
from registry.models import Attempt, Task


class NoFreeSlot(RuntimeUnavailable):
    """Every reachable container host runs as many agents as its slots allow: the attempt waits."""


def running_agents(runtime: ContainerRuntime) -> int:
    """How many of swarm's containers (of any repository) run on this engine now."""
    client = runtime.client()
    found = runtime._call("list containers", client.containers.list, filters={"label": REPO_LABEL})
    return len(found)


class HostPool:
    """The listed engines, by host name, in the order of swarm.toml."""

    def __init__(self, hosts: Sequence[tuple[Host, ContainerRuntime]]) -> None:
        if not hosts:
            raise ValueError("a host pool needs at least one host")
        self.hosts = [host for host, _ in hosts]
        self.engines = {host.name: runtime for host, runtime in hosts}

    def runtimes(self) -> dict[str, Runtime]:
        """Each engine under the runtime name its attempts record."""
        return {runtime_key(name): runtime for name, runtime in self.engines.items()}

    def usage(self) -> dict[str, int | None]:
        """Running agents per host; None for a host that could not be asked."""
        used: dict[str, int | None] = {}
        for name, runtime in self.engines.items():
            try:
                used[name] = running_agents(runtime)
            except RuntimeUnavailable:
                used[name] = None
        return used

    def choose(self) -> str:
        """The runtime name of the host a new attempt is recorded on: the first with a free slot, else
        (every host full) one where its launch waits for a slot (see :meth:`check_slot`)."""
        return runtime_key(bind(self.hosts, self.usage())[0])

    def check_slot(self, host: str, session: str) -> None:
        """Raise :class:`NoFreeSlot` when ``host`` runs as many agents as its slots and ``session`` is not one
        of them (a container that exists already is never refused: its launch is a no-op)."""
        runtime = self.engines[host]
        if runtime._get(session) is not None:
            return
        busy = running_agents(runtime)
        slots = next(h.slots for h in self.hosts if h.name == host)
        if busy >= slots:
            raise NoFreeSlot(f"container host {host} runs {busy} of its {slots} slot(s): the launch waits for a free "
                             "slot; raise slots or add a host in [[runtime.container.hosts]]")


class PlacingRunner(Runner):
    """The Runner, with container attempts placed on a host of the pool instead of the single engine, and
    launched only while that host has a free slot (else the launch is deferred to a later tick)."""

    def __init__(self, *args: Any, pool: HostPool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = pool

    def runtime_name(self, task: Task) -> str:
        name = super().runtime_name(task)
        return self.pool.choose() if name == CONTAINER else name

    def launch(self, task: Task, attempt: Attempt) -> None:
        host = host_of(attempt.runtime)
        if host in self.pool.engines:
            self.pool.check_slot(host, attempt.session)
        super().launch(task, attempt)
