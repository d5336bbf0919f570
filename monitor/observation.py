"""What one tick saw about one task, as plain immutable values (the input of the pure ``decide``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from registry.models import BranchFacts, PullRequest


class Liveness(StrEnum):
    alive = "alive"          # the session's pane is running
    exited = "exited"        # the pane is dead (remain-on-exit) or the wrapper wrote its result
    gone = "gone"            # the tmux server answers and the session does not exist
    no_server = "no_server"  # no server on the socket: never started, a reboot, or a hidden socket
    unknown = "unknown"      # the server cannot be reached (error, timeout): NOT evidence of a death

    @property
    def blind(self) -> bool:
        """The monitor cannot see the agents' sessions: neither alive nor dead may be concluded."""
        return self in (Liveness.no_server, Liveness.unknown)


@dataclass(frozen=True)
class RunResult:
    """``result.json`` written by the in-session wrapper when the agent (or its setup) exited."""

    phase: str  # "agent" | "setup" | "launch"
    exit_code: int
    started_at: datetime
    ended_at: datetime
    tool_calls: int = 0
    is_error: bool = False
    api_error: bool = False
    max_turns: bool = False
    has_result: bool = False
    killed_by: str = ""
    error: str = ""
    final_text: str = ""
    tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True  # False: tokens were spent on a model with no known price
    failed_commands: int = 0  # commands the agent ran that failed (exit code 0 of the CLI notwithstanding)
    failed_command: str = ""  # the last of them and the end of its output
    context_exhausted: bool = False  # the model's context window was full


@dataclass(frozen=True)
class Review:
    reviewer: str
    state: str  # "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED"
    body: str = ""


@dataclass(frozen=True)
class ForgeView:
    """The definition-of-done items the forge knows about, at the branch's current head."""

    supports_pr: bool
    pr: PullRequest | None = None
    ci: str = "none"  # "none" | "not_started" | "pending" | "pass" | "fail" | "action_required" | "unknown"
    ci_evidence: str = ""
    reviews: tuple[Review, ...] = ()
    reviews_not_started: tuple[str, ...] = ()
    closed: bool = False
    merged: bool = False
    unknown_reason: str = ""
    pr_head: str = ""  # the head the forge's PR shows ("" where there is no PR)
    sync: str = ""  # "" | "conflict" | "behind" | "unknown" (the forge is still computing mergeability)
    screenshots_at: str = ""  # the head whose screenshots the PR body links
    body_has_image: bool = False  # the PR body shows an image someone else put there
    reviews_to_post: tuple[str, ...] = ()  # AI lenses with a verdict not yet posted on the PR


@dataclass(frozen=True)
class Observation:
    liveness: Liveness
    worktree_exists: bool
    result: RunResult | None = None
    pane_status: int | None = None
    log_size: int = 0
    log_tail: str = ""
    head: str | None = None
    ahead: int = 0
    behind: int = 0
    new_commits: int = 0
    dirty: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    changed_files: tuple[str, ...] = ()
    merged: bool = False
    forge: ForgeView | None = None
    branch_facts: BranchFacts | None = None  # to be remembered on the task when new
