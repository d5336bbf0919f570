"""What the push gate and check jobs in containers cost, measured on this machine.

* Push gate: the start of an attempt's gate (staging repository + the detached gate process, until it
  listens), a push of a small branch through it (one new commit with a small file, the real git client
  over loopback HTTP with the token from a credential store), and its landing in the local branch
  (fetch from the staging repository + fast-forward), median of ``--rounds`` (10).
* Check jobs: from ``Runner.launch_job`` to the job's first output line and to its verdict
  (``result.json``), for a job that only prints, in tmux (a tmux-profile task) and in a container (a
  container-profile task, on the tests' private podman), median of ``--jobs`` (5) each.

Run: ``.venv/bin/python bench/gate_bench.py [--rounds 10] [--jobs 5]`` (needs podman and debootstrap, as the
tests do).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.agent_run import LOG, RESULT
from monitor.runtime.pushgate import PushSettings, land, start, stop
from monitor.world.tmux import Tmux
from registry.models import Attempt, Task
from tests.fakes.podman import podman_service
from tests.runtime.test_container_lifecycle import container_config
from tests.worlds import make_world


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def _repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.invalid")):
        _git(repo, "config", key, value)
    (repo / "README.md").write_text("# bench\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "initial")
    return repo


def _wait(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("waited too long")
        time.sleep(0.005)


def push_figures(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = _repo(root)
        worktree = root / "wt"
        _git(repo, "worktree", "add", "-q", "-b", "swarm/b", str(worktree), "main")
        clone = root / "agent"
        subprocess.run(["git", "clone", "-q", "-b", "swarm/b", str(repo), str(clone)], check=True)
        starts, pushes, lands = [], [], []
        for number in range(rounds):
            run_dir = root / "runs" / str(number + 1)
            run_dir.mkdir(parents=True)
            began = time.perf_counter()
            access = start(run_dir, worktree, "swarm/b", PushSettings())
            starts.append(time.perf_counter() - began)
            store = root / "credentials"
            store.write_text(access.credential_line())
            (clone / f"f{number}.txt").write_text(f"small change {number}\n")
            _git(clone, "add", ".")
            _git(clone, "-c", "user.name=a", "-c", "user.email=a@b.invalid", "commit", "-q", "-m", f"c{number}")
            began = time.perf_counter()
            _git(clone, "-c", f"credential.helper=store --file={store}", "push", "-q", access.url,
                 "HEAD:refs/heads/swarm/b")
            pushes.append(time.perf_counter() - began)
            began = time.perf_counter()
            assert land(run_dir, worktree, "swarm/b")  # the next gate's base
            lands.append(time.perf_counter() - began)
            stop(run_dir)
    return {"gate_start_ms": statistics.median(starts) * 1000, "push_ms": statistics.median(pushes) * 1000,
            "land_ms": statistics.median(lands) * 1000}


def _started(job_dir: Path) -> Callable[[], bool]:
    return lambda: (job_dir / LOG).exists() and b"started" in (job_dir / LOG).read_bytes()


def _job_times(world: Any, task: Task, jobs: int) -> tuple[float, float]:
    first, verdict = [], []
    sha = _git(Path(task.worktree), "rev-parse", "HEAD")
    for number in range(jobs):
        job = f"bench{number}"
        job_dir = world.layout.job_dir(task.id, sha, job)
        began = time.perf_counter()
        world.runner.launch_job(task, sha, job, "sh -c 'echo started'", 120)
        _wait(_started(job_dir))
        first.append(time.perf_counter() - began)
        _wait((job_dir / RESULT).exists)
        verdict.append(time.perf_counter() - began)
        assert json.loads((job_dir / RESULT).read_text())["exit_code"] == 0
    return statistics.median(first) * 1000, statistics.median(verdict) * 1000


def job_figures(jobs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = _repo(root)
        socket = f"swarm-bench-{secrets.token_hex(4)}"
        with podman_service(root / "podman") as engine:
            world, _, _ = make_world(repo, socket, extra=container_config(engine))
            try:
                worktree = root / "repo.swarm" / "t1"
                _git(repo, "worktree", "add", "-q", "-b", "swarm/t1", str(worktree), "main")
                now = world.clock()
                attempt = Attempt(number=1, session="swarm-t1", prompt_path="p", started_at=now, runtime="tmux")
                task = Task(id="t1", title="t", prompt="p", agent="boxed", branch="swarm/t1", worktree=str(worktree),
                            base_branch="main", created_at=now, updated_at=now, attempts=(attempt,))
                tmux = _job_times(world, task, jobs)
                boxed = task.model_copy(update={"id": "t2", "attempts": (attempt.model_copy(
                    update={"runtime": "container"}),)})
                container = _job_times(world, boxed, jobs)
            finally:
                Tmux(socket).kill_server()
    return {"tmux_first_ms": tmux[0], "tmux_verdict_ms": tmux[1], "container_first_ms": container[0],
            "container_verdict_ms": container[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args()
    figures = {**push_figures(args.rounds), **job_figures(args.jobs)}
    for key, value in figures.items():
        print(f"{key}: {value:.0f}")


if __name__ == "__main__":
    main()
