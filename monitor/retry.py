"""Prompts for a respawned attempt: the original task, what went wrong, and the evidence, fenced.

``RetryPrompter`` is the seam: the deterministic template here is the token-free default; the
orchestrator may inject an LLM implementation, so the monitor itself never imports LLM code.
"""

from __future__ import annotations

from typing import Protocol

from monitor.fence import Fence
from monitor.layout import SCREENSHOT_DIR
from monitor.redact import redact
from registry.models import Failure, FailureKind, Task

FOOTER = f"""
---
How your work is judged (a supervisor checks this automatically when you exit):
- Done means: the task above is complete, with tests where they make sense, and committed.
- Commit your work on the current branch with `git commit` before you finish; uncommitted work is lost.
- For changes to the UI, save screenshots under `{SCREENSHOT_DIR}/` and commit them too.
- Do not push and do not open a pull request: the supervisor pushes, opens it and runs the checks.
- Never discard work you did not write (no `git restore`, `git checkout --`, `git reset --hard` over it).
"""

ADVICE: dict[FailureKind, str] = {
    FailureKind.died: "The agent process ended without finishing (crash, kill or reboot). Look at what is "
    "already committed and in the worktree, then continue from there.",
    FailureKind.agent_error: "The agent exited with an error. Read the output below, fix the cause and finish.",
    FailureKind.api_error: "The model API failed during the previous attempt. Continue from the current "
    "state of the worktree; keep steps small.",
    FailureKind.max_turns: "The previous attempt ran out of turns or context. Narrow down: do the smallest "
    "complete change that satisfies the task, commit early, and avoid reading files you do not need.",
    FailureKind.phantom: "The previous attempt said it was done but no commit exists on the branch. "
    "Do the work for real, run the tests, and commit it.",
    FailureKind.stuck: "The previous attempt stopped making progress (no output and no commit for a long "
    "time) and was stopped. Avoid commands that wait for input or run forever.",
    FailureKind.timeout: "The previous attempt ran past its time budget and was stopped. Commit smaller "
    "steps and finish the essential part first.",
    FailureKind.ci_failed: "CI failed on your last commit. Find the root cause of the failure below (do not "
    "just silence the test), fix it, run the checks locally, and commit.",
    FailureKind.changes_requested: "A reviewer asked for changes. Address each point below, then commit.",
    FailureKind.conflict: "Your branch conflicts with the base branch. Merge or rebase onto the base, "
    "resolve the conflicts keeping the more complete side of each, run the tests and commit.",
    FailureKind.behind: "The base branch moved. Rebase onto it (or merge it in), run the tests and commit.",
    FailureKind.fix_rejected: "The supervisor rejected the previous fix: it broke the guardrails below (a "
    "function or class one side defined is gone, or an implementation became a placeholder). The branch was "
    "put back to where it was before that fix. Fix again, keeping every side's symbols and implementations.",
    FailureKind.screenshots_missing: f"Your change touches the UI files below but no screenshot was "
    f"committed. Capture screenshots of the changed screens, save them under `{SCREENSHOT_DIR}/`, commit.",
}


class RetryPrompter(Protocol):
    def retry_prompt(self, task: Task, failure: Failure, attempt_number: int, max_attempts: int) -> str:
        """The body of the next attempt's prompt (the runner appends the common footer)."""
        ...


class TemplateRetryPrompter:
    """Deterministic and token-free."""

    def __init__(self, evidence_limit: int = 6000) -> None:
        self.evidence_limit = evidence_limit

    def retry_prompt(self, task: Task, failure: Failure, attempt_number: int, max_attempts: int) -> str:
        fence = Fence()
        parts = [
            task.prompt.rstrip(),
            "",
            "---",
            f"## Attempt {attempt_number} of {max_attempts}: the previous attempt failed ({failure.kind.value})",
            redact(failure.summary),
            "",
            ADVICE.get(failure.kind, "Fix what went wrong and finish the task."),
        ]
        if failure.evidence.strip():
            parts += ["", fence.preamble(), "", fence.wrap(f"{failure.kind.value} evidence", failure.evidence,
                                                            self.evidence_limit)]
        return "\n".join(parts) + notes_section(task.notes) + "\n"


def notes_section(notes: tuple[str, ...]) -> str:
    """The human's notes (trusted: they come from `swarm retry --note`), or nothing."""
    if not notes:
        return ""
    return "\n\n## Notes from the human\n" + "\n".join(f"- {note}" for note in notes)


def with_footer(body: str) -> str:
    """Every prompt, whoever wrote it, ends with the same footer."""
    return body.rstrip() + "\n" + FOOTER
