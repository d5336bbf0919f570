"""``.swarm/discovered.json``: which Sentry issue became which task, and what Sentry said then. It outlives
the tasks' archiving, is never reset (a damaged file stops discovery instead of making every known issue a
second task) and is written under its own lock (``discovered.lock``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.agent_run import write_json_atomic
from monitor.locks import try_lock
from monitor.tick import World
from orchestrator.discovery.sentry_api import DiscoveryError

STATE_NAME = "discovered.json"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskRef(_Record):
    """One task made for an issue, with what Sentry said then and what became of the task (kept here so
    it outlives the task's archiving)."""

    task_id: str
    created_at: datetime
    status_at_discovery: str
    substatus_at_discovery: str = ""
    count: int = 0
    users: int = 0
    last_seen: str = ""
    regression_of: str | None = None
    task_status: str | None = None
    ended_at: datetime | None = None
    pr_url: str | None = None


class IssueRecord(_Record):
    short_id: str
    permalink: str
    title: str
    first_seen: str
    armed: bool = True  # a regression seen now is a new one (False right after a task made for a regression)
    tasks: tuple[TaskRef, ...]

    @property
    def latest(self) -> TaskRef:
        return self.tasks[-1]


class DiscoveredState(_Record):
    version: int = 1
    issues: dict[str, IssueRecord] = {}


def state_path(world: World) -> Path:
    return world.layout.state_dir / STATE_NAME


def load_state(path: Path) -> DiscoveredState:
    """Never reset: a damaged file would make every known issue a new task, so discovery stops instead."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DiscoveredState()
    try:
        return DiscoveredState.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise DiscoveryError(f"{path} is damaged ({first}); discovery will not run without it (every known issue "
                             "would get a second task): repair it, or move it aside to start over") from None


def save_state(path: Path, state: DiscoveredState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, state.model_dump(mode="json"))


@contextlib.contextmanager
def discovery_lock(state_dir: Path) -> Iterator[None]:
    with try_lock(state_dir / "discovered.lock") as held:
        if not held:
            raise DiscoveryError("another Sentry discovery is running (it holds .swarm/discovered.lock); "
                                 "this one did nothing")
        yield
