"""How long one ``Registry.update`` takes on a realistically large registry.

Run: ``.venv/bin/python bench/registry_bench.py [--tasks N] [--rounds N] [--dir PATH]``.
Import: ``from bench.registry_bench import run`` → a dict of figures in milliseconds.

The registry holds ``tasks`` tasks, each with two attempts and a ~1 KB prompt. Every measured update
changes one task (as a monitor tick does), so each round pays the full price: flock, parse + validate the
whole file, dump it, write the backup and the new file, each with fsync + rename + directory fsync.
Besides the totals the script times the parts of an update on their own (validate, dump, the durable
writes) so a miss points at the part to fix.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from registry.models import Attempt, RegistryState, Status, Task
from registry.store import Registry

TARGET_UPDATE_MEDIAN_MS = 20.0
PROMPT = ("Implement the feature described in the issue, keep the public API stable, add tests. " * 13)[:1024]


def make_task(index: int, now: datetime) -> Task:
    attempts = tuple(
        Attempt(
            number=n,
            session=f"swarm-task-{index:05d}-{n}",
            prompt_path=f"/var/lib/swarm/prompts/task-{index:05d}-{n}.md",
            started_at=now - timedelta(minutes=30 * n),
            launched_at=now - timedelta(minutes=30 * n - 1),
            start_head="0123456789abcdef0123456789abcdef01234567",
            progress_at=now,
            log_size=123_456,
            tokens=50_000 * n,
            cost_usd=0.75 * n,
        )
        for n in (1, 2)
    )
    return Task(
        id=f"task-{index:05d}",
        title=f"Task number {index}",
        prompt=PROMPT,
        agent="claude-code",
        status=Status.running,
        base_branch="main",
        branch=f"swarm/task-{index:05d}",
        worktree=f"/var/lib/swarm/worktrees/task-{index:05d}",
        attempts=attempts,
        checks={"ci": "pending"},
        notes=("seeded by the benchmark",),
        created_at=now,
        updated_at=now,
    )


def _ms(samples: list[float]) -> tuple[float, float]:
    """(median, p95) of samples given in seconds, in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _time(action: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def run(tasks: int = 1000, rounds: int = 50, directory: Path | None = None) -> dict[str, float]:
    """Seed a registry of ``tasks`` tasks and time ``rounds`` updates and reads (milliseconds)."""
    with tempfile.TemporaryDirectory(prefix="swarm-bench-", dir=directory) as tmp:
        state_dir = Path(tmp)
        registry = Registry(state_dir)
        now = datetime.now(UTC)
        seeded = {task.id: task for task in (make_task(i, now) for i in range(tasks))}
        registry.update(lambda state: state.model_copy(update={"tasks": seeded}))
        registry.update(lambda state: state.model_copy(update={"tasks": dict(state.tasks)}))  # → a .bak

        counter = iter(range(10**9))

        def touch(state: RegistryState) -> RegistryState:
            task = state.tasks[f"task-{next(counter) % tasks:05d}"]
            return state.with_task(task.model_copy(update={"updated_at": datetime.now(UTC)}))

        update_samples = _time(lambda: registry.update(touch), rounds)
        read_samples = _time(registry.read, rounds)

        # The parts of one update, timed on their own.
        raw = registry.path.read_bytes()
        state = RegistryState.model_validate_json(raw)
        validate_samples = _time(lambda: RegistryState.model_validate_json(raw), rounds)
        dump_samples = _time(lambda: state.model_dump_json(indent=1).encode(), rounds)
        probe = state_dir / "probe.json"

        def durable_write() -> None:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, raw)
                os.fsync(fd)
            finally:
                os.close(fd)
            dir_fd = os.open(state_dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

        write_samples = _time(durable_write, rounds)

    update_median, update_p95 = _ms(update_samples)
    read_median, read_p95 = _ms(read_samples)
    return {
        "tasks": float(tasks),
        "rounds": float(rounds),
        "file_kb": len(raw) / 1024,
        "update_median_ms": update_median,
        "update_p95_ms": update_p95,
        "read_median_ms": read_median,
        "read_p95_ms": read_p95,
        "validate_median_ms": _ms(validate_samples)[0],
        "dump_median_ms": _ms(dump_samples)[0],
        # An update writes two files durably (the backup and the new registry).
        "durable_write_median_ms": _ms(write_samples)[0],
    }


def report(figures: dict[str, float]) -> str:
    rows = [
        ("registry size", f"{figures['tasks']:.0f} tasks, {figures['file_kb']:.0f} KB"),
        ("update median", f"{figures['update_median_ms']:.1f} ms"),
        ("update p95", f"{figures['update_p95_ms']:.1f} ms"),
        ("read median", f"{figures['read_median_ms']:.1f} ms"),
        ("read p95", f"{figures['read_p95_ms']:.1f} ms"),
        ("  parse+validate", f"{figures['validate_median_ms']:.1f} ms"),
        ("  dump (indent=1)", f"{figures['dump_median_ms']:.1f} ms"),
        ("  one durable write", f"{figures['durable_write_median_ms']:.1f} ms  (an update does two)"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"Registry benchmark ({figures['rounds']:.0f} rounds)"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    verdict = "PASS" if figures["update_median_ms"] <= TARGET_UPDATE_MEDIAN_MS else "MISS"
    lines.append(
        f"  target: update median ≤ {TARGET_UPDATE_MEDIAN_MS:.0f} ms  {verdict} ({figures['update_median_ms']:.1f} ms)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the registry (default: $TMPDIR)")
    args = parser.parse_args()
    print(report(run(args.tasks, args.rounds, args.dir)))


if __name__ == "__main__":
    main()
