"""The issue's performance targets, measured on real git and a real (private) tmux server.

Run: ``.venv/bin/python bench/run.py`` (or ``make bench``); ``--quick`` runs fewer rounds.
Import: ``from bench.run import registry_figures, tick_figures, spawn_figures, import_figures, github_figures``,
each → a dict of figures (milliseconds for the registry, seconds elsewhere).

1. ``Registry.update`` median at 1,000 tasks ≤ 20 ms (``bench/registry_bench.py``).
2. One tick over 100 running agents with nothing to do ≤ 1 s. The agents are a tiny profile that reads
   its prompt, prints one line and sleeps, so every tick after the first only observes: it counts the
   subprocesses (tmux through ``monitor.world.proc.run``, git through GitPython's ``Git.execute``) and the
   registry writes (serial increments) a tick makes. The same tick at 10 tasks shows how it scales.
3. ``swarm spawn`` (no setup command) ≤ 1 s, in-process and through the CLI; the CLI figure includes
   Python start-up and imports, which are timed on their own.
4. GitHub requests per tick with nothing changed ≤ 2 + ⌈open PRs / 50⌉ at 10, 100 and 500 open PRs (10 and
   100 with ``--quick``), and ≥ 20× fewer than a per-PR REST poll at 100 PRs, on the fake GitHub
   (``bench/github_bench.py``).

Each part builds its repository in a temporary directory and its agents on a tmux server of its own
(``swarm-bench-<random>``); the server and the directory are removed whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CallCounter, QuietNotifier, _stats
from monitor.tick import World, run_tick
from monitor.world.proc import pid_alive
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, load
from orchestrator.wiring import build_world
from registry.models import Status

T = TypeVar("T")
TARGET_REGISTRY_MS = 20.0
TARGET_TICK_S = 1.0
TARGET_SPAWN_S = 1.0
AGENT = "sleeper"
# Reads the prompt from stdin, prints one line, then stays alive and silent.
SLEEPER = [sys.executable, "-c", "import sys,time; sys.stdin.read(); print('ready', flush=True); time.sleep(3600)"]
GIT_IDENTITY = ["-c", "user.name=swarm-bench", "-c", "user.email=bench@swarm.invalid"]
PROMPT = "Benchmark task: do nothing, quietly."
# Commits one file of its own and exits: the task then waits, ready, for a human review.
COMMITTER = [sys.executable, "-c", (
    "import os, subprocess, sys; sys.stdin.read(); name = os.path.basename(os.getcwd()) + '.txt'; "
    "open(name, 'w').write('done\\n'); subprocess.run(['git', 'add', name], check=True); "
    "subprocess.run(['git', '-c', 'user.name=swarm-bench', '-c', 'user.email=bench@swarm.invalid', "
    "'commit', '-q', '-m', 'bench'], check=True)")]


# -- helpers ------------------------------------------------------------------------------------------


def _cpu() -> float:
    """CPU seconds of this process and its finished children: less moved than wall time by a busy machine."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _measured(action: Callable[[], T]) -> tuple[T, float, float]:
    """(result, wall seconds, CPU seconds of this process and the children it waited for)."""
    cpu, start = _cpu(), time.perf_counter()
    result = action()
    return result, time.perf_counter() - start, _cpu() - cpu


def _timed_cpu(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds)."""
    _, wall, cpu = _measured(action)
    return wall, cpu


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, check=True, capture_output=True)


def _make_repo(repo: Path, files: int) -> None:
    """A repository on ``main`` with a few files and one commit."""
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# bench\n")
    for n in range(files):
        package = repo / "src" / f"pkg{n % 3}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"module{n}.py").write_text("".join(f"def f{i}() -> int:\n    return {i}\n\n" for i in range(50)))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial")


def _write_config(repo: Path, socket: str, max_parallel: int) -> None:
    argv = ", ".join(json.dumps(part) for part in SLEEPER)
    committer = ", ".join(json.dumps(part) for part in COMMITTER)
    (repo / CONFIG_NAME).write_text(f"""
[project]
base_branch = "main"

[agents.{AGENT}]
command = [{argv}]
prompt = "stdin"

[agents.committer]
command = [{committer}]
prompt = "stdin"

[routing]
default = "{AGENT}"

[monitor]
tmux_socket = "{socket}"
max_parallel = {max_parallel}
""")
    (repo / ".git" / "info").mkdir(parents=True, exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text(".swarm/\nswarm.toml\n")


def _wait_gone(pids: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if pid_alive(pid)]




@contextlib.contextmanager
def sandbox(max_parallel: int = 100, files: int = 6) -> Iterator[World]:
    """A temporary repository with a ``sleeper`` agent profile and a World on a private tmux server."""
    socket = f"swarm-bench-{secrets.token_hex(4)}"
    tmp = Path(tempfile.mkdtemp(prefix="swarm-bench-"))
    world: World | None = None
    try:
        repo = tmp / "repo"
        _make_repo(repo, files)
        _write_config(repo, socket, max_parallel)
        world = build_world(repo, load(repo / CONFIG_NAME), QuietNotifier())
        yield world
    finally:
        pids: list[int] = []
        if world is not None:
            with contextlib.suppress(Exception):
                pids = [p.pid for p in (world.tmux.panes() or {}).values() if p.pid]
            with contextlib.suppress(Exception):
                world.tmux.kill_server()
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
        # tmux 3.3 leaves the socket file of a killed server behind; it is ours, so it goes too.
        with contextlib.suppress(OSError):
            (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket).unlink()
        # The wrappers stop their agents on SIGHUP and write result.json: let them finish before the rmtree.
        _wait_gone(pids, timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


def _spawn(world: World, n: int) -> None:
    task_ops.spawn(world, title=f"Bench task {n}", prompt=PROMPT, agent=AGENT, kind="default", after=[],
                   base_branch="main")


def _events(world: World) -> int:
    try:
        return world.layout.events_path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


# -- 1. the registry --------------------------------------------------------------------------------


def registry_figures(tasks: int = 1000, rounds: int = 50) -> dict[str, float]:
    """``bench/registry_bench.py``: milliseconds."""
    from bench.registry_bench import run

    return run(tasks, rounds)


# -- 2. the tick ------------------------------------------------------------------------------------


def wait_until_ready(world: World, tasks: int, timeout: float = 90.0) -> float:
    """Wait until ``tasks`` tasks run and every agent has printed its line; returns the seconds waited."""
    start = time.monotonic()
    while True:
        state = world.registry.read()
        ready = 0
        for task in state.tasks.values():
            attempt = task.attempt
            if task.status is not Status.running or attempt is None or attempt.launched_at is None:
                continue
            log = world.layout.run_dir(task.id, attempt.number) / "output.log"
            with contextlib.suppress(FileNotFoundError):
                ready += b"ready" in log.read_bytes()
        if ready >= tasks:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"only {ready} of {tasks} agents running and ready after {timeout:g}s")
        time.sleep(0.2)


def tick_figures(tasks: int = 100, ticks: int = 10) -> dict[str, Any]:
    """Spawn ``tasks`` silent agents, one warm-up tick, then time ``ticks`` ticks (seconds)."""
    with sandbox(max_parallel=max(tasks, 1)) as world:
        spawn_samples = [_timed(partial(_spawn, world, n)) for n in range(tasks)]
        waited = wait_until_ready(world, tasks)
        warm_up = _timed(lambda: run_tick(world))  # records every agent's first output as progress
        serial, events = world.registry.read().serial, _events(world)
        counter = CallCounter()
        samples: list[float] = []
        cpu_samples: list[float] = []
        actions: list[str] = []
        with counter.installed():
            for _ in range(ticks):
                report, wall, cpu = _measured(partial(run_tick, world))
                samples.append(wall)
                cpu_samples.append(cpu)
                actions += report.actions
                if report.skipped or report.tasks != tasks:
                    raise RuntimeError(f"tick saw {report.tasks} of {tasks} tasks (skipped: {report.skipped})")
        state = world.registry.read()
        running = sum(1 for t in state.tasks.values() if t.status is Status.running)
        registry_kb = world.registry.path.stat().st_size / 1024
        writes = state.serial - serial
        new_events = _events(world) - events
    median, p95 = _stats(samples)
    spawn_median, spawn_p95 = _stats(spawn_samples)
    return {
        "tasks": tasks,
        "ticks": ticks,
        "tick_median_s": median,
        "tick_p95_s": p95,
        "tick_max_s": max(samples),
        "tick_cpu_median_s": statistics.median(cpu_samples),
        "warm_up_s": warm_up,
        "running_after": running,
        "actions": len(actions),
        "tmux_calls_per_tick": counter.total("tmux") / ticks,
        "git_calls_per_tick": counter.total("git") / ticks,
        "calls_detail": counter.describe(ticks),
        "registry_writes_per_tick": writes / ticks,
        "events_per_tick": new_events / ticks,
        "registry_kb": registry_kb,
        "seed_spawn_median_s": spawn_median,
        "seed_spawn_p95_s": spawn_p95,
        "ready_wait_s": waited,
    }


def review_figures(tasks: int = 40, ticks: int = 5) -> dict[str, Any]:
    """``tasks`` tasks that committed and now wait, ready, for a human: the cost of a tick over them."""
    with sandbox(max_parallel=max(tasks, 1)) as world:
        for n in range(tasks):
            task_ops.spawn(world, title=f"Review task {n}", prompt=PROMPT, agent="committer", kind="default",
                           after=[], base_branch="main")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run_tick(world)
            if all(t.status is Status.ready for t in world.registry.read().tasks.values()):
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("the committing agents did not all reach ready within 120 s")
        counter = CallCounter()
        samples: list[float] = []
        with counter.installed():
            for _ in range(ticks):
                samples.append(_timed(partial(run_tick, world)))
    median, p95 = _stats(samples)
    return {"tasks": tasks, "ticks": ticks, "tick_median_s": median, "tick_p95_s": p95,
            "git_calls_per_tick": counter.total("git") / ticks, "calls_detail": counter.describe(ticks)}


# -- 3. spawn ---------------------------------------------------------------------------------------


def _swarm_executable() -> str:
    beside = Path(sys.executable).parent / "swarm"
    found = str(beside) if beside.exists() else shutil.which("swarm")
    if not found:
        raise RuntimeError("no `swarm` executable beside the interpreter or on PATH: pip install -e . first")
    return found


def spawn_figures(rounds: int = 20, cli_rounds: int = 5) -> dict[str, Any]:
    """Seconds per spawn (worktree + prompt + tmux launch, no setup command), in-process and via the CLI."""
    swarm = _swarm_executable()
    with sandbox(max_parallel=rounds + cli_rounds + 5) as world:
        counter = CallCounter()
        with counter.installed():
            timed = [_timed_cpu(partial(_spawn, world, n)) for n in range(rounds)]
        samples = [wall for wall, _ in timed]
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        cli_timed = []
        for n in range(cli_rounds):
            argv = [swarm, "spawn", "--title", f"CLI task {n}", "--prompt", PROMPT]
            done, wall, cpu = _measured(partial(subprocess.run, argv, cwd=world.layout.repo, env=env,
                                                capture_output=True, text=True, check=False))
            cli_timed.append((wall, cpu))
            if done.returncode != 0:
                raise RuntimeError(f"swarm spawn exited {done.returncode}: {done.stderr.strip()}")
        cli_samples = [wall for wall, _ in cli_timed]
        state = world.registry.read()
        launched = sum(1 for t in state.tasks.values()
                       if t.status is Status.running and t.attempt and t.attempt.launched_at)
    median, p95 = _stats(samples)
    cli_median, cli_p95 = _stats(cli_samples)
    return {
        "rounds": rounds,
        "cli_rounds": cli_rounds,
        "spawn_median_s": median,
        "spawn_p95_s": p95,
        "spawn_cpu_median_s": statistics.median(cpu for _, cpu in timed),
        "cli_median_s": cli_median,
        "cli_p95_s": cli_p95,
        "cli_cpu_median_s": statistics.median(cpu for _, cpu in cli_timed),
        "launched": launched,
        "spawned": len(state.tasks),
        "tmux_calls_per_spawn": counter.total("tmux") / rounds,
        "git_calls_per_spawn": counter.total("git") / rounds,
        "calls_detail": counter.describe(rounds),
    }


def import_figures(rounds: int = 5, top: int = 6) -> dict[str, Any]:
    """Seconds (wall and CPU) for a bare interpreter and for ``import orchestrator.cli``, and the packages
    that take longest to import (``-X importtime`` self times summed per top-level package)."""

    def python(*args: str) -> tuple[float, float]:
        return _timed_cpu(lambda: subprocess.run([sys.executable, *args], check=True, capture_output=True))

    bare = [python("-c", "pass") for _ in range(rounds)]
    cli = [python("-c", "import orchestrator.cli") for _ in range(rounds)]
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import orchestrator.cli"],
                          check=True, capture_output=True, text=True)
    packages: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            packages[parts[2].strip().split(".")[0]] += int(parts[0])
    return {
        "python_s": statistics.median(w for w, _ in bare),
        "python_cpu_s": statistics.median(c for _, c in bare),
        "import_cli_s": statistics.median(w for w, _ in cli),
        "import_cli_cpu_s": statistics.median(c for _, c in cli),
        "import_self_s": sum(packages.values()) / 1e6,
        "imports_s": {name: us / 1e6 for name, us in packages.most_common(top)},
    }


# -- 4. GitHub ---------------------------------------------------------------------------------------


def github_figures(quick: bool = False) -> dict[str, Any]:
    """``bench/github_bench.py``: requests and seconds per tick against a per-PR REST poll, by open PRs."""
    from bench import github_bench

    sizes = github_bench.QUICK_SIZES if quick else github_bench.SIZES
    return github_bench.github_figures(sizes, ticks=3 if quick else 5)


# -- the table --------------------------------------------------------------------------------------


def _verdict(value: float, target: float) -> str:
    return f"{'PASS' if value <= target else 'MISS'}  ({value / target:.2f}× target)"


def report(figures: dict[str, dict[str, Any]]) -> str:
    """The figures as a table: figure, target, PASS/MISS with the ratio to the target, and notes."""
    rows: list[tuple[str, str, str, str]] = []
    machine = figures.get("machine")
    if machine:
        rows.append(("machine", f"{machine['cpus']:g} CPUs", "",
                     f"load average {machine['load_before']:.1f} before, {machine['load_after']:.1f} after"))
    reg = figures.get("registry")
    if reg:
        rows += [
            (f"1. registry update median ({reg['tasks']:.0f} tasks, {reg['file_kb']:.0f} KB)",
             f"{reg['update_median_ms']:.1f} ms", f"≤ {TARGET_REGISTRY_MS:g} ms",
             _verdict(reg["update_median_ms"], TARGET_REGISTRY_MS)),
            ("   registry update p95", f"{reg['update_p95_ms']:.1f} ms", "", ""),
            ("   registry read median", f"{reg['read_median_ms']:.1f} ms", "", ""),
        ]
    big, small = figures.get("tick"), figures.get("tick_small")
    if big:
        rows += [
            (f"2. tick, {big['tasks']} running agents, median of {big['ticks']}", f"{big['tick_median_s']:.3f} s",
             f"≤ {TARGET_TICK_S:g} s", _verdict(big["tick_median_s"], TARGET_TICK_S)),
            ("   tick p95 / max", f"{big['tick_p95_s']:.3f} / {big['tick_max_s']:.3f} s", "", ""),
            ("   tick CPU median (incl. children)", f"{big['tick_cpu_median_s']:.3f} s", "", ""),
            ("   first tick (records 1st output)", f"{big['warm_up_s']:.3f} s", "", ""),
            ("   subprocesses per tick", f"{big['tmux_calls_per_tick'] + big['git_calls_per_tick']:g}", "",
             big["calls_detail"] or "none"),
            ("   registry writes per tick", f"{big['registry_writes_per_tick']:g}", "",
             f"{big['registry_kb']:.0f} KB registry; events per tick {big['events_per_tick']:g}"),
            ("   actions taken / agents running", f"{big['actions']} / {big['running_after']}", "",
             f"of {big['tasks']} tasks after the timed ticks"),
        ]
    if small:
        ratio = ""
        if big:
            slower = big["tick_median_s"] / small["tick_median_s"]
            ratio = f"{big['tasks'] / small['tasks']:g}× the tasks → {slower:.2f}× the time"
        rows += [
            (f"   tick, {small['tasks']} running agents, median", f"{small['tick_median_s']:.3f} s", "", ratio),
            ("   subprocesses / registry writes per tick",
             f"{small['tmux_calls_per_tick'] + small['git_calls_per_tick']:g} / "
             f"{small['registry_writes_per_tick']:g}", "", ""),
        ]
    review = figures.get("review")
    if review:
        rows += [
            (f"   tick, {review['tasks']} tasks waiting for review, median", f"{review['tick_median_s']:.3f} s", "",
             f"git calls per tick: {review['git_calls_per_tick']:g} ({review['calls_detail'] or 'none'})"),
        ]
    spawn = figures.get("spawn")
    imports = figures.get("imports")
    if spawn:
        rows += [
            (f"3. spawn in-process, median of {spawn['rounds']}", f"{spawn['spawn_median_s']:.3f} s",
             f"≤ {TARGET_SPAWN_S:g} s", _verdict(spawn["spawn_median_s"], TARGET_SPAWN_S)),
            ("   spawn in-process p95 / CPU median", f"{spawn['spawn_p95_s']:.3f} / "
             f"{spawn['spawn_cpu_median_s']:.3f} s", "", ""),
            ("   subprocesses per spawn", f"{spawn['tmux_calls_per_spawn'] + spawn['git_calls_per_spawn']:g}", "",
             spawn["calls_detail"]),
        ]
        if big:
            rows.append(("   spawn while seeding the 100 tasks", f"{big['seed_spawn_median_s']:.3f} s", "",
                         f"median; p95 {big['seed_spawn_p95_s']:.3f} s"))
        rows += [
            (f"3. `swarm spawn` CLI, median of {spawn['cli_rounds']}", f"{spawn['cli_median_s']:.3f} s",
             f"≤ {TARGET_SPAWN_S:g} s", _verdict(spawn["cli_median_s"], TARGET_SPAWN_S)),
            ("   `swarm spawn` CLI p95 / CPU median", f"{spawn['cli_p95_s']:.3f} / {spawn['cli_cpu_median_s']:.3f} s",
             "", f"{spawn['cli_median_s'] / spawn['spawn_median_s']:.1f}× the in-process spawn"),
            ("   tasks launched in tmux", f"{spawn['launched']}/{spawn['spawned']}", "", ""),
        ]
    if imports:
        share = f"{imports['import_cli_s'] / spawn['cli_median_s']:.0%} of the CLI spawn" if spawn else ""
        rows += [
            ("   python start-up (-c pass)", f"{imports['python_s']:.3f} s", "", ""),
            ("   python + import orchestrator.cli", f"{imports['import_cli_s']:.3f} s", "",
             f"{share}; CPU {imports['import_cli_cpu_s']:.3f} s"),
            ("     import self time by package", f"{imports['import_self_s']:.3f} s", "",
             ", ".join(f"{name} {sec * 1000:.0f} ms" for name, sec in imports["imports_s"].items())),
        ]
    if spawn and imports:
        # In CPU seconds: wall times taken minutes apart on a shared machine do not add up.
        rest = spawn["cli_cpu_median_s"] - imports["import_cli_cpu_s"] - spawn["spawn_cpu_median_s"]
        rows.append(("   CLI CPU = start-up+imports + spawn + rest",
                     f"{imports['import_cli_cpu_s']:.3f} + {spawn['spawn_cpu_median_s']:.3f} + {rest:.3f} s", "",
                     "rest: typer, swarm.toml, build_world, exit"))
    github = figures.get("github")
    if github:
        from bench.github_bench import rows as github_rows

        rows += github_rows(github)
    name_w = max(len(r[0]) for r in rows)
    value_w = max(len(r[1]) for r in rows)
    target_w = max(len(r[2]) for r in rows)
    header = f"{'swarm benchmarks':<{name_w}}  {'figure':<{value_w}}  {'target':<{target_w}}  verdict / notes"
    lines = [header, "-" * len(header)]
    for name, value, target, note in rows:
        lines.append(f"{name:<{name_w}}  {value:<{value_w}}  {target:<{target_w}}  {note}".rstrip())
    return "\n".join(lines)


def run_all(quick: bool = False) -> dict[str, dict[str, Any]]:
    """Every part, in order; progress goes to stderr."""
    figures: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("registry", lambda: registry_figures(rounds=20 if quick else 50)),
        ("tick_small", lambda: tick_figures(10, 5 if quick else 10)),
        ("tick", lambda: tick_figures(100, 5 if quick else 10)),
        ("review", lambda: review_figures(40, 3 if quick else 5)),
        ("spawn", lambda: spawn_figures(10 if quick else 20, 3 if quick else 5)),
        ("imports", lambda: import_figures(3 if quick else 5)),
        ("github", lambda: github_figures(quick)),
    ]
    for name, step in steps:
        start = time.monotonic()
        figures[name] = step()
        print(f"  {name}: {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
    figures["machine"] = {"cpus": float(os.cpu_count() or 0), "load_before": load_before,
                          "load_after": os.getloadavg()[0]}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about half the time)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args()
    start = time.monotonic()
    figures = run_all(args.quick)
    print(json.dumps(figures, indent=1) if args.json else report(figures))
    print(f"(benchmarks took {time.monotonic() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
