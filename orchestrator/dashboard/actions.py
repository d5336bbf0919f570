"""What the dashboard's buttons do: exactly what `swarm retry`, `swarm cancel` and `swarm submit` do — the
same functions (``orchestrator.tasks.retry`` / ``cancel``, ``orchestrator.submit.submit``), then the same
wake of the reconcile loop. They run on a world of their own, built as the CLI builds one (the service's
tick thread keeps its own), one action at a time."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from monitor.tick import World
from orchestrator.config import Settings
from orchestrator.errors import OperationalError, UsageError

MAX_REQUEST_CHARS = 20_000
MAX_NOTE_CHARS = 4_000


class ActionRefused(Exception):
    """The action cannot be done as asked (a usage error of the CLI): the message says why, in one line."""


class Actions:
    def __init__(self, repo: Path, settings: Settings, wake: Callable[[set[str]], None],
                 world: Callable[[], World] | None = None) -> None:
        self.repo = repo
        self.settings = settings
        self.wake = wake
        self._make_world = world
        self._world: World | None = None
        self.lock = threading.Lock()

    def world(self) -> World:
        if self._world is None:
            if self._make_world is not None:
                self._world = self._make_world()
            else:
                from orchestrator.wiring import build_world

                self._world = build_world(self.repo, self.settings)
        return self._world

    def can_submit(self) -> bool:
        """The submit box is shown only when a model key is configured (planning needs it)."""
        return bool(os.environ.get(self.settings.llm.api_key_env, "").strip())

    def retry(self, task_id: str, note: str) -> str:
        from monitor.runner import LaunchError
        from monitor.world.git import GitError
        from orchestrator import tasks as task_ops

        if len(note) > MAX_NOTE_CHARS:
            raise ActionRefused(f"the note is {len(note)} characters; keep it under {MAX_NOTE_CHARS}")
        with self.lock:
            try:
                found = task_ops.retry(self.world(), task_id, note)
            except UsageError as exc:
                raise ActionRefused(_line(exc)) from None
            except (GitError, LaunchError) as exc:
                raise OperationalError(f"could not retry {task_id}: {_line(exc)}") from None
        self.wake({found.id})
        return f"{found.id}: {found.status.value} (attempt {len(found.attempts)})"

    def cancel(self, task_id: str) -> str:
        from orchestrator import tasks as task_ops

        with self.lock:
            try:
                found = task_ops.cancel(self.world(), task_id)
            except UsageError as exc:
                raise ActionRefused(_line(exc)) from None
        self.wake({found.id})
        return f"{found.id}: {found.status.value}"

    def merge(self, task_id: str) -> str:
        """`swarm merge TASK`: the person at the dashboard approves the task's current head for the train."""
        import getpass

        from orchestrator.merging import request_merge

        with self.lock:
            try:
                said = request_merge(self.repo, task_id, getpass.getuser(), via="dashboard")
            except UsageError as exc:
                raise ActionRefused(_line(exc)) from None
        return said

    def submit(self, request: str) -> tuple[str, list[str]]:
        """(a one-line summary, the spawned task ids)."""
        from orchestrator.brain.llm import LlmError, llm_from
        from orchestrator.brain.planner import PlanError
        from orchestrator.submit import SubmitError
        from orchestrator.submit import submit as submit_tasks

        if not self.can_submit():
            raise ActionRefused(f"no model key: set ${self.settings.llm.api_key_env} to plan requests")
        if not request.strip():
            raise ActionRefused("the request is empty: say what you want built")
        if len(request) > MAX_REQUEST_CHARS:
            raise ActionRefused(f"the request is {len(request)} characters; keep it under {MAX_REQUEST_CHARS}")
        with self.lock:
            try:
                report = submit_tasks(self.world(), self.settings, request, dry_run=False,
                                      llm=llm_from(self.settings))
            except UsageError as exc:
                raise ActionRefused(_line(exc)) from None
            except (PlanError, LlmError, SubmitError) as exc:
                raise OperationalError(_line(exc)) from None
        spawned = [t.task_id for t in report.tasks if t.task_id]
        if spawned:
            self.wake(set(spawned))
        return f"submitted: {len(spawned)} task(s) spawned", spawned


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
