"""Merges per hour through the merge train on the fake GitHub.

Run: ``.venv/bin/python bench/train_bench.py`` (``--prs N``, ``--json``).

N tasks (default 10) each commit one file of their own (real git, real tmux, agents that run one step) and
their pull requests are opened on the fake GitHub (real PyGithub and httpx on 127.0.0.1, a real bare
repository). Once all are ready a human approves every one; the train then lands them one at a time: each
merge moves main, so every next PR is brought up to date (GitHub's update-branch), its new head gets CI (a
check run the fake posts before each tick, i.e. CI that takes no time) and only then is it merged with
``merge(sha=head)``. The figures: ticks per merge (each tick one `swarm monitor run-once`), merges per hour at
the default 5-minute tick interval (``swarm monitor daemon``/the timer), and merges per hour of wall time when
ticks run back to back (`swarm serve`, woken by webhooks: the machine's own limit, CI time excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest

from monitor.tick import World, run_tick
from monitor.world.tmux import Tmux
from registry.models import RegistryState, Status
from tests.fakes.github_server import FakeGitHub
from tests.merge.github_stage import REPO, TOKEN, github_world
from tests.merge.steps import spawn, step

INTERVAL_MINUTES = 5
IDENTITY = {"GIT_AUTHOR_NAME": "swarm-bench", "GIT_AUTHOR_EMAIL": "bench@swarm.invalid",
            "GIT_COMMITTER_NAME": "swarm-bench", "GIT_COMMITTER_EMAIL": "bench@swarm.invalid"}


def _repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    (repo / "README.md").write_text("# bench\n")
    for args in (["init", "-q", "-b", "main"], ["add", "README.md"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def _post_ci(fake: FakeGitHub, done: set[str]) -> None:
    """CI for every open pull request's head that has none yet: a passing check run."""
    for pull in fake.pulls(REPO):
        sha = pull["head_sha"]
        if pull["state"] == "open" and sha not in done:
            fake.add_check_run(REPO, sha, "tests")
            done.add(sha)


def _tick_until(world: World, fake: FakeGitHub, ci: set[str], done: Any, limit: int) -> int:
    for ticks in range(1, limit + 1):
        _post_ci(fake, ci)
        run_tick(world)
        if done(world.registry.read()):
            return ticks
        time.sleep(0.05)  # the agents' and git's own processes finish between ticks
    raise RuntimeError(f"not done after {limit} ticks: {_reasons(world.registry.read())}")


def _reasons(state: RegistryState) -> str:
    return "; ".join(f"{t.id}: {t.status.value} {t.reason}" for t in state.tasks.values())


def run(prs: int) -> dict[str, Any]:
    socket = f"swarm-bench-{secrets.token_hex(4)}"
    patch = pytest.MonkeyPatch()
    with tempfile.TemporaryDirectory(prefix="swarm-train-bench-") as tmp, FakeGitHub(token=TOKEN) as fake:
        root = Path(tmp)
        try:
            world, _ = github_world(_repo(root), socket, fake, root / "steps", patch,
                                    monitor=f"max_parallel = {prs}")
            step(root / "steps", 1, "import uuid\ncommit({uuid.uuid4().hex + '.txt': 'x\\n'}, 'work')\n")
            tasks = [spawn(world, f"Task {n}") for n in range(prs)]
            ci: set[str] = set()
            _tick_until(world, fake, ci, lambda s: all(s.tasks[t.id].status is Status.ready for t in tasks), 200)
            for task in tasks:
                pr = world.registry.read().tasks[task.id].pr
                assert pr is not None
                fake.add_review(REPO, pr.number, "alice", "APPROVED")
            started = time.monotonic()
            ticks = _tick_until(world, fake, ci, lambda s: all(s.tasks[t.id].status is Status.merged for t in tasks),
                                40 * prs)
            seconds = time.monotonic() - started
        finally:
            Tmux(socket).kill_server()
            patch.undo()
        merged = sum(1 for p in fake.pulls(REPO) if p["merged"])
    return {
        "prs": prs, "merged": merged, "ticks": ticks, "ticks_per_merge": round(ticks / prs, 2),
        "merges_per_hour_at_5m_ticks": round(prs / (ticks * INTERVAL_MINUTES / 60), 2),
        "wall_seconds": round(seconds, 2), "merges_per_hour_wall": round(prs / (seconds / 3600)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.prs <= 50:
        print("--prs must be between 1 and 50", file=sys.stderr)
        return 2
    os.environ.update({k: v for k, v in IDENTITY.items() if k not in os.environ})
    figures = run(args.prs)
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(f"{figures['merged']}/{figures['prs']} approved PRs merged through the train in {figures['ticks']} ticks "
              f"({figures['ticks_per_merge']} per merge): {figures['merges_per_hour_at_5m_ticks']} merges/hour at "
              f"{INTERVAL_MINUTES}-minute ticks; {figures['wall_seconds']} s of wall time back to back = "
              f"{figures['merges_per_hour_wall']} merges/hour (CI time excluded)")
    return 0 if figures["merged"] == figures["prs"] else 1


if __name__ == "__main__":
    sys.exit(main())
