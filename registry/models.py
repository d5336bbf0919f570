"""Registry records as immutable values.

Every record is a frozen pydantic model; a transition returns a new record (``model_copy``), so the
monitor's decisions can be computed from values and written back in one atomic update.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
TASK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(StrEnum):
    queued = "queued"
    running = "running"
    checking = "checking"
    ready = "ready"
    merged = "merged"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def active(self) -> bool:
        return self in (Status.queued, Status.running, Status.checking, Status.ready)

    @property
    def holds_slot(self) -> bool:
        """Whether a task in this state occupies one of the `max_parallel` agent slots."""
        return self is Status.running


class FailureKind(StrEnum):
    died = "died"
    agent_error = "agent_error"
    api_error = "api_error"
    max_turns = "max_turns"
    phantom = "phantom"
    stuck = "stuck"
    timeout = "timeout"
    ci_failed = "ci_failed"
    changes_requested = "changes_requested"
    conflict = "conflict"
    behind = "behind"
    screenshots_missing = "screenshots_missing"
    setup_failed = "setup_failed"
    worktree_missing = "worktree_missing"
    launch_failed = "launch_failed"
    fix_rejected = "fix_rejected"  # a fixer's result broke the guardrails (a side's symbol gone, a placeholder)


class Failure(Frozen):
    kind: FailureKind
    summary: str
    evidence: str = ""
    at: datetime


class FixTarget(Frozen):
    """What a fixer attempt fixes in a finished branch, and the two sides its result is verified against."""

    kind: FailureKind  # conflict | ci_failed | changes_requested
    head: str  # the branch head before the fix ("ours")
    base: str  # the base head when the fix started ("theirs")


class Attempt(Frozen):
    number: int
    session: str
    prompt_path: str
    started_at: datetime
    launched_at: datetime | None = None
    ended_at: datetime | None = None
    start_head: str | None = None
    progress_at: datetime | None = None
    log_size: int = 0
    seen_head: str | None = None  # the branch head at the last progress mark: a new commit is progress
    retry_at: datetime | None = None  # the provider failed (api_error): the next attempt waits until then
    exit_code: int | None = None
    failure: Failure | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True  # False: its agent spent tokens on a model with no known price
    fix: FixTarget | None = None  # a fixer attempt: its result is checked against the guardrails
    runtime: str = "tmux"  # where it runs ("tmux" | "container"), kept so a changed swarm.toml never loses it


class Spend(Frozen):
    """Tokens and dollars the orchestrator spent at one moment (budgets count it on that day)."""

    at: datetime
    tokens: int = 0
    cost_usd: float = 0.0
    what: str = ""  # "retry prompt", "review", "notes", ...


class PullRequest(Frozen):
    number: int
    url: str


class BranchFacts(Frozen):
    """What git says about a branch against its base: a pure function of the two heads in ``key``,
    so a tick recomputes it only when either moves (a task waiting for review costs nothing)."""

    key: str  # "<base head>:<branch head>"
    merged: bool
    ahead: int
    behind: int
    conflicts: tuple[str, ...] = ()
    changed_files: tuple[str, ...] = ()


class MergeRequest(Frozen):
    """A human's approval for the merge train (`swarm merge`, a `/swarm merge` comment, or a non-bot GitHub
    approval on the head it names) and where the train has got with it."""

    by: str  # who approved: a GitHub login, or the local user for `swarm merge`
    at: datetime
    head: str  # the branch head the human approved
    via: str = "cli"  # "cli" | "comment" | "github" | "dashboard"
    gate_head: str | None = None  # the head the train brought up to date with the base: its CI is the gate
    enqueued: bool = False  # handed to GitHub's own merge queue
    waiting: str = ""  # why the merge waits (for `swarm status`)


class Task(Frozen):
    id: str
    title: str
    prompt: str
    agent: str
    kind: str = "default"
    status: Status = Status.queued
    base_branch: str
    branch: str
    worktree: str
    after: tuple[str, ...] = ()
    acceptance: tuple[str, ...] = ()  # acceptance criteria: in the prompt and the PR body
    links: tuple[str, ...] = ()  # where the task came from (a Sentry issue, a ticket): in the PR body
    source_issue: int | None = None  # the GitHub issue it was made from ("Fixes #N" in the PR body)
    issue_comment_id: int | None = None  # swarm's one comment on that issue, edited as the task moves
    issue_mirrored: str = ""  # what that comment says (a digest): it is edited only when this changes
    llm_tokens: int = 0  # the orchestrator's own spend on this task (planning share, retry prompts, reviews)
    llm_cost_usd: float = 0.0
    llm_spend: tuple[Spend, ...] = ()  # when llm_tokens were spent; the rest counts at created_at
    attempts: tuple[Attempt, ...] = ()
    pr: PullRequest | None = None
    checks: dict[str, str] = Field(default_factory=dict)
    reason: str = ""
    notes: tuple[str, ...] = ()
    fired: tuple[str, ...] = ()
    branch_facts: BranchFacts | None = None
    merge_request: MergeRequest | None = None  # approved for the merge train ([merge] mode = "queue")
    # Stacking ([plan] stack, monitor/merge/stack.py): a dependent starts on its dependency's checked branch.
    contract_deps: tuple[str, ...] = ()  # dependencies owning a contract of the plan this task builds on
    passed_head: str | None = None  # the latest head whose own checks (commits, sync, PR, CI) all passed
    stacked_on: str | None = None  # the dependency whose branch this one is built on (its base_branch)
    stack_base_sha: str | None = None  # that dependency's head this branch was last based on (rebase --onto)
    stack_home: str = ""  # the base branch to return to once the dependency merged (if its record is gone)
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not TASK_ID_RE.match(value):
            raise ValueError(f"task id {value!r} must match {TASK_ID_RE.pattern}")
        return value

    @property
    def attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def tokens(self) -> int:
        """Every token spent on the task: its agents' and the orchestrator's (planning share, retries, reviews)."""
        return sum(a.tokens for a in self.attempts) + self.llm_tokens

    @property
    def cost_usd(self) -> float:
        return round(sum(a.cost_usd for a in self.attempts) + self.llm_cost_usd, 6)

    @property
    def cost_known(self) -> bool:
        """False when an attempt's tokens had no price: its cost is then shown as unknown, not as $0."""
        return all(a.cost_known for a in self.attempts)

    def with_attempt(self, attempt: Attempt) -> Task:
        """Replace the current attempt (the last one) with an updated copy."""
        return self.model_copy(update={"attempts": (*self.attempts[:-1], attempt)})


class OutboxMessage(Frozen):
    """A notification owed to the human, written in the same update as the state change behind it."""

    key: str
    task_id: str
    kind: str
    text: str
    created_at: datetime
    sent_at: datetime | None = None
    tries: int = 0
    last_error: str = ""
    # what a rich notifier (Slack's Block Kit) lays out; JSON values only, redacted like ``text``
    data: dict[str, Any] = Field(default_factory=dict)
    not_before: datetime | None = None  # the notifier asked us to wait (a rate limit's Retry-After)


class RegistryState(Frozen):
    schema_version: int = SCHEMA_VERSION
    serial: int = 0
    tasks: dict[str, Task] = Field(default_factory=dict)
    outbox: tuple[OutboxMessage, ...] = ()
    outage_since: datetime | None = None  # a fleet-wide provider outage was announced then (cleared when over)
    train_landed: tuple[str, ...] = ()  # tasks the merge train merged since it was last empty (one notice)
    spend: tuple[Spend, ...] = ()  # the orchestrator's spend on no task (reading notes), last 8 days

    def with_task(self, task: Task) -> RegistryState:
        tasks = dict(self.tasks)
        tasks[task.id] = task
        return self.model_copy(update={"tasks": tasks})

    def enqueue(self, message: OutboxMessage) -> RegistryState:
        if any(m.key == message.key for m in self.outbox):
            return self
        return self.model_copy(update={"outbox": (*self.outbox, message)})
