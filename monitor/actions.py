"""The actions ``decide`` can ask for, as immutable values; ``act`` carries them out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.observation import RunResult
from registry.models import Failure


@dataclass(frozen=True)
class Start:
    """Queued → running: create the worktree and launch attempt 1. A stacked start (monitor/merge/stack.py)
    branches from ``onto``, the checked head of the dependency ``stack_on``, instead of the base."""

    task_id: str
    stack_on: str = ""
    onto: str = ""


@dataclass(frozen=True)
class Launch:
    """An attempt was recorded but its session was never confirmed: launch it (idempotently)."""

    task_id: str
    attempt: int


@dataclass(frozen=True)
class Progress:
    task_id: str
    attempt: int
    log_size: int
    at: datetime
    head: str | None = None


@dataclass(frozen=True)
class ToChecking:
    """The agent exited with work on the branch: judge the definition of done from now on."""

    task_id: str
    attempt: int
    result: RunResult | None


@dataclass(frozen=True)
class Respawn:
    task_id: str
    attempt: int
    failure: Failure
    result: RunResult | None = None
    kill: bool = False
    fired: str = ""  # a key that makes this failure fire once (e.g. ci_failed:<sha>)


@dataclass(frozen=True)
class Backoff:
    """The provider failed (api_error): record when the next attempt may start, instead of starting it now."""

    task_id: str
    attempt: int
    retry_at: datetime


@dataclass(frozen=True)
class Fail:
    """Attempts exhausted (or a failure no agent can fix): failed, and the human is told."""

    task_id: str
    attempt: int
    failure: Failure
    result: RunResult | None = None
    kill: bool = False


@dataclass(frozen=True)
class OpenPR:
    task_id: str
    head: str


@dataclass(frozen=True)
class PushBranch:
    """Make the pull request show the branch's head (push it, or fast-forward to what the forge added)."""

    task_id: str
    head: str


@dataclass(frozen=True)
class LinkScreenshots:
    task_id: str
    head: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class PostReviews:
    """Post the AI lenses' findings on the pull request (once per head and lens)."""

    task_id: str
    head: str
    lenses: tuple[str, ...]


@dataclass(frozen=True)
class AskHuman:
    """Tell the human once (per ``key``) that the task waits for them, without failing it."""

    task_id: str
    key: str
    summary: str
    evidence: str = ""


@dataclass(frozen=True)
class StartChecks:
    task_id: str
    head: str
    jobs: tuple[str, ...]


@dataclass(frozen=True)
class UpdateBranch:
    task_id: str


@dataclass(frozen=True)
class MarkReady:
    task_id: str
    head: str


@dataclass(frozen=True)
class BackToChecking:
    """A ready task whose head or checks changed is judged again."""

    task_id: str


@dataclass(frozen=True)
class MarkMerged:
    task_id: str


@dataclass(frozen=True)
class MarkClosed:
    task_id: str


Action = (
    Start | Launch | Progress | ToChecking | Respawn | Backoff | Fail | OpenPR | PushBranch | LinkScreenshots
    | PostReviews | AskHuman | StartChecks | UpdateBranch | MarkReady | BackToChecking | MarkMerged | MarkClosed
)
