"""Time to land a three-level plan (a ← b ← c) with and without ``[plan] stack``.

Run: ``.venv/bin/python bench/stack_bench.py`` (``--json`` for the figures as JSON, ``--rounds N``,
``--review-ticks N``).

Each round builds two temporary repositories on the local forge (real git, real tmux, the scripted agent
committing one file per task, ``ci = "true"``) and lands the same plan in both, one tick per simulated
five-minute interval, each tick once the agents and check jobs of the last one have ended
(tests/merge/stack_scenario.py), so the tick counts do not depend on the machine's load. A simulated human
starts reviewing a pull request when it is first ready and merges it ``--review-ticks`` ticks later, once it
targets main. Without stacking a dependent
starts only after its dependency merged; with it, it starts on the dependency's checked head, is reviewed
meanwhile, and is restacked onto main when the dependency lands. The figures: ticks (and simulated minutes) to
the last ``ready`` and to the last merge, the wall time of the run (the agents here take a second; real ones
take far longer, which only widens the gap), and the ratio without / with.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.world.tmux import Tmux
from tests.merge.stack_scenario import INTERVAL_MINUTES, Landing, land, stack_world, three_level_plan

IDENTITY = {"GIT_AUTHOR_NAME": "swarm-bench", "GIT_AUTHOR_EMAIL": "bench@swarm.invalid",
            "GIT_COMMITTER_NAME": "swarm-bench", "GIT_COMMITTER_EMAIL": "bench@swarm.invalid"}


def _repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["add", "README.md"], ["commit", "-q", "-m", "initial"]):
        if args[0] == "add":
            (repo / "README.md").write_text("# bench\n")
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def one_plan(stack: bool, review_ticks: int) -> Landing:
    socket = f"swarm-bench-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="swarm-stack-bench-") as tmp:
        world, clock, _ = stack_world(_repo(Path(tmp)), socket, stack=stack)
        try:
            return land(world, clock, three_level_plan(world), review_ticks=review_ticks)
        finally:
            Tmux(socket).kill_server()


def summary(runs: list[Landing]) -> dict[str, Any]:
    ready = statistics.median(r.ticks_to_last_ready for r in runs)
    landed = statistics.median(r.ticks_to_landed for r in runs)
    return {
        "ticks_to_last_ready": ready, "ticks_to_landed": landed,
        "minutes_to_last_ready": ready * INTERVAL_MINUTES, "minutes_to_landed": landed * INTERVAL_MINUTES,
        "wall_seconds_to_landed": round(statistics.median(r.seconds_to_landed for r in runs), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--review-ticks", type=int, default=4, help="the human's review time, in ticks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.rounds < 1 or args.review_ticks < 0:
        print("--rounds must be at least 1 and --review-ticks at least 0", file=sys.stderr)
        return 2
    os.environ.update({k: v for k, v in IDENTITY.items() if k not in os.environ})
    figures: dict[str, Any] = {
        "stacked": summary([one_plan(True, args.review_ticks) for _ in range(args.rounds)]),
        "unstacked": summary([one_plan(False, args.review_ticks) for _ in range(args.rounds)]),
    }
    figures["ratio_landed"] = round(figures["unstacked"]["ticks_to_landed"] / figures["stacked"]["ticks_to_landed"], 2)
    figures["ratio_last_ready"] = round(
        figures["unstacked"]["ticks_to_last_ready"] / figures["stacked"]["ticks_to_last_ready"], 2)
    figures["review_ticks"] = args.review_ticks
    figures["interval_minutes"] = INTERVAL_MINUTES
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"three-level plan, {args.rounds} round(s), review {args.review_ticks} ticks, "
          f"one tick = {INTERVAL_MINUTES} simulated minutes (medians)")
    for name in ("unstacked", "stacked"):
        f = figures[name]
        print(f"  {name:9}  last ready: {f['ticks_to_last_ready']:>4} ticks ({f['minutes_to_last_ready']:>5} min)   "
              f"landed: {f['ticks_to_landed']:>4} ticks ({f['minutes_to_landed']:>5} min)   "
              f"wall {f['wall_seconds_to_landed']} s")
    print(f"  without / with stacking: {figures['ratio_last_ready']}x to the last ready, "
          f"{figures['ratio_landed']}x to landed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
