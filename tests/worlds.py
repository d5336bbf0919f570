"""Building a real World for tests: real git and tmux (private socket), a clock the test moves, and a
notifier that records what it was asked to send."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.tick import World
from orchestrator.config import CONFIG_NAME, load
from orchestrator.wiring import build_world
from registry.models import OutboxMessage

SCRIPTED = [sys.executable, "-m", "tests.agents.scripted"]
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RecordingNotifier:
    sent: list[OutboxMessage] = field(default_factory=list)
    fail_with: Exception | None = None

    def send(self, message: OutboxMessage) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)


@dataclass
class Clock:
    """A wall clock and a monotonic clock the test moves: ``advance`` is time passing (both move), ``jump``
    is the wall clock stepping (or a suspend) while the monotonic clock stands still."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    mono: float = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)
        self.mono += timedelta(**kwargs).total_seconds()

    def jump(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def write_config(
    repo: Path, socket: str, *, ci: str = "", extra: str = "", monitor: str = "", forge: str = "local"
) -> Path:
    argv = ", ".join(f'"{part}"' for part in SCRIPTED)
    text = f"""
[project]
base_branch = "main"
forge = "{forge}"

[agents.scripted]
command = [{argv}]
prompt = "stdin"
env = {{ PYTHONPATH = "{REPO_ROOT}" }}

[routing]
default = "scripted"

[monitor]
tmux_socket = "{socket}"
max_attempts = 3
stuck_after = "10m"
attempt_timeout = "1h"
{monitor}

[local]
ci = '{ci}'
{extra}
"""
    (repo / CONFIG_NAME).write_text(text)
    exclude = repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text(".swarm/\nswarm.toml\n")
    return repo / CONFIG_NAME


def make_world(repo: Path, socket: str, **config: str) -> tuple[World, Clock, RecordingNotifier]:
    write_config(repo, socket, **config)
    clock = Clock()
    notifier = RecordingNotifier()
    world = build_world(repo, load(repo / CONFIG_NAME), notifier)
    world.clock = clock
    world.monotonic = clock.monotonic
    return world, clock, notifier
