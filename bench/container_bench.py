"""What running agents in containers costs, measured on a private podman (the tests' engine: the Docker
Engine API, runc, the offline base image), and what the memory limit buys on a 24 GiB machine.

* Start overhead per attempt: from the launch call to the agent's first instruction (``sh`` touching a
  marker file, so the figure is the runtime's and not an interpreter's), through
  :class:`ContainerRuntime` (create + start through the API, bind mounts, limits) and through tmux
  (``new-session``), median and p95 of ``--rounds`` (20) each; and the kill of each.
* Memory per idle agent container: ``--idle`` (5) containers whose agent is an idle ``python3`` (a stand-in:
  no agent CLI is installable here), read from the engine's stats (the container's cgroup: what its limit
  is charged with) and, on the host, the resident memory of the container's ``conmon`` monitor (the
  engine's own cost per container, outside the limit).
* How many agents a 24 GiB machine holds: with ``memory = "4g"`` the limit is the worst case, so
  ``floor((24 GiB - reserve) / (4 GiB + conmon))`` always fit; without limits only the typical size can be
  divided in, ``floor((24 GiB - reserve) / typical)``, and nothing bounds one agent's peak. ``typical`` is
  the issue's 3–4 GB per working agent (3.5 GiB), not measured here; the reserve is the host's own share
  (``--reserve``, 2 GiB).

Run: ``.venv/bin/python bench/container_bench.py [--rounds 20] [--idle 5]`` (needs podman and debootstrap, as
the tests do; about a minute with the base image cached in ``.cache/podman-base``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.runtime.container import ContainerRuntime, Limits, parse_size
from monitor.world.tmux import Tmux
from tests.fakes.podman import Podman, podman_service

GIB = 1024**3
MIB = 1024**2
IDLE_AGENT = ["python3", "-c", "import time; open('started', 'w').close(); time.sleep(3600)"]
FIRST_STEP = ["/bin/sh", "-c", "touch started; exec sleep 3600"]  # the start figure is the runtime's, not python's


def _wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the agent never started")
        time.sleep(0.002)


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _start_overhead(start: Callable[[str, Path], None], stop: Callable[[str], object], root: Path,
                    rounds: int) -> tuple[list[float], list[float]]:
    """Seconds from the launch call to the marker file, and of the kill, per round."""
    starts, kills = [], []
    for number in range(rounds):
        work = _fresh(root / f"r{number}")
        name = f"swarm-bench-{secrets.token_hex(4)}"
        began = time.perf_counter()
        start(name, work)
        _wait((work / "started").exists)
        starts.append(time.perf_counter() - began)
        began = time.perf_counter()
        stop(name)
        kills.append(time.perf_counter() - began)
    return starts, kills


def _conmon_rss(engine: Podman, name: str) -> int:
    """Resident bytes of the conmon that monitors container ``name`` (its pid from podman inspect)."""
    pid = engine.cli("inspect", "--format", "{{.State.ConmonPid}}", name).strip()
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{int(pid)}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _idle_memory(
    engine: Podman, runtime: ContainerRuntime, root: Path, count: int
) -> tuple[list[int], list[int], list[int]]:
    """(cgroup bytes without page cache, with it, conmon bytes) of ``count`` idle agent containers."""
    names = []
    for number in range(count):
        work = _fresh(root / f"idle{number}")
        name = f"swarm-bench-idle-{secrets.token_hex(4)}"
        runtime.launch(name, IDLE_AGENT, work)
        names.append(name)
        _wait((work / "started").exists)
    time.sleep(2)  # let the interpreters settle (not a test: a measurement)
    cgroup, total, conmon = [], [], []
    try:
        client = runtime.client()
        for name in names:
            stats: dict[str, Any] = client.containers.get(name).stats(stream=False)
            memory = stats.get("memory_stats") or {}
            usage = int(memory.get("usage", 0))
            cache = int((memory.get("stats") or {}).get("cache", 0))
            cgroup.append(max(usage - cache, 0) or usage)
            total.append(usage)
            conmon.append(_conmon_rss(engine, name))
    finally:
        for name in names:
            runtime.kill(name)
    return cgroup, total, conmon


@contextlib.contextmanager
def _tmux() -> Iterator[Tmux]:
    tmux = Tmux(f"swarm-bench-{secrets.token_hex(4)}")
    try:
        yield tmux
    finally:
        tmux.kill_server()


def capacity(machine: int, reserve: int, per_agent: int) -> int:
    """Agents that fit when each may take ``per_agent`` bytes and the host keeps ``reserve``."""
    return max(0, math.floor((machine - reserve) / per_agent))


def run(rounds: int = 20, idle: int = 5, reserve_gib: float = 2.0, typical_gib: float = 3.5) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="swarm-container-bench-") as tmp:
        root = Path(tmp)
        with podman_service(root / "podman") as engine, _tmux() as tmux:
            runtime = ContainerRuntime(engine.url, image=engine.image, owner=f"bench-{secrets.token_hex(4)}",
                                       network="none", limits=Limits(memory="4g", cpus=2, pids=1024))

            def container_start(name: str, work: Path) -> None:
                runtime.launch(name, FIRST_STEP, work)

            def tmux_start(name: str, work: Path) -> None:
                tmux.launch(name, FIRST_STEP, work)

            container_start("swarm-bench-warm", _fresh(root / "warm"))  # first use pulls layers into the cache
            _wait((root / "warm" / "started").exists)
            runtime.kill("swarm-bench-warm")
            c_starts, c_kills = _start_overhead(container_start, runtime.kill, root / "c", rounds)
            t_starts, t_kills = _start_overhead(tmux_start, tmux.kill, root / "t", rounds)
            cgroup, total, conmon = _idle_memory(engine, runtime, root / "m", idle)
    figures["container_start_s"], figures["container_start_p95_s"] = _stats(c_starts)
    figures["tmux_start_s"], figures["tmux_start_p95_s"] = _stats(t_starts)
    figures["container_kill_s"], _ = _stats(c_kills)
    figures["tmux_kill_s"], _ = _stats(t_kills)
    figures["overhead_s"] = figures["container_start_s"] - figures["tmux_start_s"]
    figures["idle_cgroup_bytes"] = int(statistics.median(cgroup))
    figures["idle_cgroup_total_bytes"] = int(statistics.median(total))
    figures["idle_conmon_bytes"] = int(statistics.median(conmon))
    machine, reserve, limit = 24 * GIB, int(reserve_gib * GIB), parse_size("4g")
    figures["agents_with_4g_limit"] = capacity(machine, reserve, limit + figures["idle_conmon_bytes"])
    figures["agents_without_limit_typical"] = capacity(machine, reserve, int(typical_gib * GIB))
    figures["rounds"], figures["idle"], figures["reserve_gib"], figures["typical_gib"] = rounds, idle, reserve_gib, \
        typical_gib
    return figures


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle", type=int, default=5)
    parser.add_argument("--reserve", type=float, default=2.0, help="GiB the host keeps for itself")
    parser.add_argument("--typical", type=float, default=3.5, help="GiB a working agent takes without a limit")
    args = parser.parse_args()
    try:
        f = run(args.rounds, args.idle, args.reserve, args.typical)
    except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
        sys.exit(f"container bench: {exc}")
    print(f"start to the agent's first instruction, median (p95) of {f['rounds']}:")
    print(f"  container (podman, Docker API)  {f['container_start_s'] * 1000:7.0f} ms "
          f"({f['container_start_p95_s'] * 1000:.0f} ms)")
    print(f"  tmux session                    {f['tmux_start_s'] * 1000:7.0f} ms "
          f"({f['tmux_start_p95_s'] * 1000:.0f} ms)")
    print(f"  overhead per attempt            {f['overhead_s'] * 1000:7.0f} ms")
    print(f"kill, median: container {f['container_kill_s'] * 1000:.0f} ms, tmux {f['tmux_kill_s'] * 1000:.0f} ms")
    print(f"memory per idle agent container (median of {f['idle']}, idle python3 as the agent):")
    print(f"  charged to its cgroup (its limit)  {f['idle_cgroup_bytes'] / MIB:6.1f} MiB "
          f"({f['idle_cgroup_total_bytes'] / MIB:.1f} MiB with page cache)")
    print(f"  conmon on the host (outside it)    {f['idle_conmon_bytes'] / MIB:6.1f} MiB")
    print(f"a 24 GiB machine keeping {f['reserve_gib']:g} GiB for itself:")
    print(f"  memory = \"4g\": {f['agents_with_4g_limit']} agents, always (each is killed at 4 GiB, with evidence)")
    print(f"  no limit:      {f['agents_without_limit_typical']} agents if each stays near {f['typical_gib']:g} GiB; "
          "one runaway can take the machine (no bound)")


if __name__ == "__main__":
    main()
