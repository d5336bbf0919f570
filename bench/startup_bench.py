"""How long a ``swarm`` command takes to start: ``swarm --version`` and ``swarm status`` (in a fresh
repository), against a bare ``python -c pass``. Every command pays its imports before it does anything,
so this is the floor of every command's latency.

Run: ``.venv/bin/python bench/startup_bench.py [--rounds N] [--top N]``.
Import: ``from bench.startup_bench import run`` → a dict of figures (seconds, ratios, slowest imports).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def _median_seconds(argv: list[str], cwd: Path, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
            "python_s": bare,
            "version_s": version,
            "status_s": status,
            "version_ratio": version / bare,
            "status_ratio": status / bare,
            "version_imports_s": slowest_imports([*SWARM, "--version"], repo, top),
            "status_imports_s": slowest_imports([*SWARM, "status"], repo, top),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    figures = run(args.rounds, args.top)
    print(f"median of {figures['rounds']} runs")
    print(f"  python -c pass   {figures['python_s']:.3f} s")
    print(f"  swarm --version  {figures['version_s']:.3f} s  ({figures['version_ratio']:.1f}x python)")
    print(f"  swarm status     {figures['status_s']:.3f} s  ({figures['status_ratio']:.1f}x python)")
    for label in ("version", "status"):
        listed = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in figures[f"{label}_imports_s"])
        print(f"  slowest imports of {label}: {listed}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
