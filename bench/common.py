"""What the benchmarks share (statistics, a silent notifier, a subprocess counter): here so that
``run`` and ``github_bench`` both import it and not each other."""

from __future__ import annotations

import contextlib
import statistics
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import git as gitpython

from monitor.world import proc
from registry.models import OutboxMessage


def _stats(samples: Sequence[float]) -> tuple[float, float]:
    """(median, p95) of the samples, in their own unit."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


class QuietNotifier:
    """Nothing is announced during a benchmark (a sleeping agent never becomes ready anyway)."""

    def send(self, message: OutboxMessage) -> None:
        return None


class CallCounter:
    """Counts subprocesses by command (``tmux list-panes``, ``git for-each-ref``) while installed.

    Wraps ``monitor.world.proc.run`` (every tmux call) and GitPython's ``Git.execute`` (every git call)
    in this process only; the library code is unchanged."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    @contextlib.contextmanager
    def installed(self) -> Iterator[CallCounter]:
        real_run = proc.run
        real_execute = gitpython.cmd.Git.execute

        def counting_run(argv: Sequence[str], **kwargs: Any) -> proc.Result:
            self.calls[self._name(argv)] += 1
            return real_run(argv, **kwargs)

        def counting_execute(runner: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls[self._name(command if isinstance(command, list | tuple) else str(command).split())] += 1
            return real_execute(runner, command, *args, **kwargs)

        with mock.patch.object(proc, "run", counting_run), \
                mock.patch.object(gitpython.cmd.Git, "execute", counting_execute):
            yield self

    @staticmethod
    def _name(argv: Sequence[str]) -> str:
        program = Path(argv[0]).name if argv else "?"
        rest = list(argv[1:])
        if program == "tmux" and len(rest) >= 2 and rest[0] in ("-L", "-S"):
            rest = rest[2:]
        while program == "git" and len(rest) >= 2 and rest[0] == "-c":
            rest = rest[2:]
        return f"{program} {rest[0]}" if rest else program

    def total(self, program: str) -> int:
        return sum(n for name, n in self.calls.items() if name.split()[0] == program)

    def describe(self, per: int = 1) -> str:
        return ", ".join(f"{name} ×{n / per:g}" for name, n in self.calls.most_common())
