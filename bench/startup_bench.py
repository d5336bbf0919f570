"""How long a ``swarm`` command takes to start: ``swarm --version`` and ``swarm status`` (in a fresh
repository), against a bare ``python -c pass``. Every command pays its imports before it does anything,
so this is the floor of every command's latency.

Run: ``.venv/bin/python bench/startup_bench.py [--rounds N] [--top N]``.
Import: ``from bench.startup_bench import run`` → a dict of figures (seconds, ratios, slowest imports).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def _median_seconds(argv: list[str], cwd: Path, rounds: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds): CPU time moves less when other work shares the machine."""
    walls, cpus = [], []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def slowest_imports(argv: list[str], cwd: Path, top: int) -> list[tuple[str, float]]:
    """``-X importtime`` self times summed per top-level package, the largest first (seconds)."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, check=True, capture_output=True,
                          text=True)
    packages: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            packages[parts[2].strip().split(".")[0]] += int(parts[0])
    return [(name, us / 1e6) for name, us in packages.most_common(top)]


def run(rounds: int = 10, top: int = 8) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="swarm-startup-") as tmp:
        repo = Path(tmp)
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
               "GIT_COMMITTER_EMAIL": "b@b"}
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, check=True, env=env)
        subprocess.run([*SWARM, "init"], cwd=repo, check=True, capture_output=True, env=env)
        bare = _median_seconds([sys.executable, "-c", "pass"], repo, rounds)
        version = _median_seconds([*SWARM, "--version"], repo, rounds)
        status = _median_seconds([*SWARM, "status"], repo, rounds)
        return {
            "rounds": rounds,
            "python_s": bare[0],
            "version_s": version[0],
            "status_s": status[0],
            "version_ratio": version[0] / bare[0],
            "status_ratio": status[0] / bare[0],
            "python_cpu_s": bare[1],
            "version_cpu_s": version[1],
            "status_cpu_s": status[1],
            "version_cpu_ratio": version[1] / bare[1],
            "status_cpu_ratio": status[1] / bare[1],
            "version_imports_s": slowest_imports([*SWARM, "--version"], repo, top),
            "status_imports_s": slowest_imports([*SWARM, "status"], repo, top),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    figures = run(args.rounds, args.top)
    print(f"median of {figures['rounds']} runs: wall, CPU")
    print(f"  python -c pass   {figures['python_s']:.3f} s  {figures['python_cpu_s']:.3f} s")
    for label, name in (("version", "swarm --version"), ("status", "swarm status")):
        print(f"  {name:<15}  {figures[f'{label}_s']:.3f} s  {figures[f'{label}_cpu_s']:.3f} s  "
              f"({figures[f'{label}_ratio']:.1f}x python wall, {figures[f'{label}_cpu_ratio']:.1f}x CPU)")
    for label in ("version", "status"):
        listed = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in figures[f"{label}_imports_s"])
        print(f"  slowest imports of {label}: {listed}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
