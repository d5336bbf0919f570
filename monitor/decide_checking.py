"""The walk of a checking or ready task through the definition of done: merged or closed, commits,
conflicts, sync with the base, the pull request, CI, reviews and screenshots; the first unmet item decides.

Split out of ``monitor/decide.py`` (which still exports ``decide_checking``) to keep each module small;
pure like it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import datetime

from monitor.actions import (
    Action,
    AskHuman,
    BackToChecking,
    Fail,
    LinkScreenshots,
    MarkClosed,
    MarkMerged,
    MarkReady,
    OpenPR,
    PostReviews,
    PushBranch,
    StartChecks,
    UpdateBranch,
)
from monitor.decision import ASKED, Decision, _failure, _retry_or_fail, _worktree_missing
from monitor.layout import SCREENSHOT_DIR
from monitor.observation import Observation, Review
from monitor.policy import Policy
from registry.models import FailureKind, Status, Task


def _login(name: str) -> str:
    """Reviewer names compare without case and without the REST ``[bot]`` suffix."""
    name = name.strip().lower()
    return name.removesuffix("[bot]")


def _ui_files(changed: Sequence[str], globs: Sequence[str]) -> list[str]:
    return [
        path for path in changed
        if not path.startswith(f"{SCREENSHOT_DIR}/") and any(fnmatch.fnmatch(path, g) for g in globs)
    ]


def decide_checking(task: Task, obs: Observation, policy: Policy, now: datetime) -> Decision:
    """Checking or ready: walk the definition of done in order; the first unmet item decides."""
    attempt = task.attempt
    assert attempt is not None
    done = policy.done
    checks: dict[str, str] = {}
    forge = obs.forge
    if obs.merged or (forge is not None and forge.merged):
        return Decision(task.id, (MarkMerged(task.id),), "merged into the base branch")
    if forge is not None and forge.closed:
        return Decision(task.id, (MarkClosed(task.id),), "the pull request was closed without merging")
    if not obs.worktree_exists:
        return _worktree_missing(task, attempt, now, kill=False)
    head = obs.head or ""
    back = (BackToChecking(task.id),) if task.status is Status.ready else ()
    passed = ""  # set once the walk is past CI: what a stacked dependent may start on

    def unmet(reason: str, *actions: Action) -> Decision:
        return Decision(task.id, (*back, *actions), reason, checks, passed)

    def failed(kind: FailureKind, summary: str, evidence: str) -> Decision:
        key = f"{kind.value}:{head}"
        failure = _failure(kind, summary, evidence, now)
        if key in task.fired:
            # Already retried for this very head and no agent is running: escalate once instead of
            # respawning in a loop or waiting forever for commits nobody will make.
            again = failure.model_copy(update={"summary": f"{summary} again on {head[:10]} after a retry"})
            return unmet(again.summary, Fail(task.id, attempt.number, again))
        return unmet(summary, _retry_or_fail(task, attempt, failure, policy, fired=key))

    checks["commits"] = "ok" if obs.ahead > 0 else "missing"
    if done.commits and obs.ahead == 0:
        return failed(FailureKind.phantom, "the branch has no commits ahead of the base", "")
    # the forge's mergeability is about the PR's head: a newer local head (not pushed yet) is judged by git
    sync = forge.sync if forge is not None and forge.pr_head == head else ""
    if task.stacked_on and sync in ("conflict", "behind"):
        sync = ""  # against the dependency's moving branch: restacks follow it (monitor/merge/stack.py)
    if done.no_conflict:
        conflict = bool(obs.conflicts) or sync == "conflict"
        checks["conflict"] = "conflict" if conflict else "ok"
        if conflict:
            files = obs.conflicts or ("(the forge reports a conflict; fetch the base to see the files)",)
            evidence = f"rebase onto {task.base_branch}; conflicting files:\n" + "\n".join(files)
            return failed(FailureKind.conflict, f"conflicts with {task.base_branch} in "
                          f"{len(obs.conflicts) or 'some'} file(s)", evidence)
    if done.up_to_date or sync == "behind":
        behind = obs.behind or (1 if sync == "behind" else 0)
        checks["synced"] = "ok" if behind == 0 else f"behind {obs.behind or '(required by the repository)'}"
        if behind:
            what = (f"{obs.behind} commit(s) behind {task.base_branch}" if obs.behind
                    else f"behind {task.base_branch} (the repository requires up-to-date branches)")
            return unmet(f"{what}; updating the branch", UpdateBranch(task.id))
    if forge is None or forge.ci == "unknown":
        checks["ci"] = "unknown"
        return Decision(task.id, (), f"forge state unknown: {forge.unknown_reason if forge else 'not read'}", checks)
    if done.pr and forge.supports_pr:
        checks["pr"] = "ok" if forge.pr else "missing"
        if forge.pr is None or task.pr != forge.pr:
            return unmet("opening the pull request" if forge.pr is None else "adopting the pull request",
                         OpenPR(task.id, head))
        if forge.pr_head != head:
            return unmet(f"publishing {head[:10]} to the pull request", PushBranch(task.id, head))
        if done.no_conflict and sync == "unknown":
            checks["conflict"] = "unknown"
            return unmet("the forge is still computing mergeability; asking again next tick")
    if done.ci:
        checks["ci"] = forge.ci
        if forge.ci == "not_started":
            return unmet("starting CI", StartChecks(task.id, head, ("ci",)))
        if forge.ci == "pending":
            return unmet("waiting for CI")
        if forge.ci == "action_required":
            key = f"{ASKED}ci:{head}"
            ask = () if key in task.fired else (AskHuman(task.id, key, forge.ci_evidence.split(": ", 1)[0],
                                                         forge.ci_evidence),)
            return unmet(forge.ci_evidence or "CI waits for a human", *ask)
        if forge.ci == "fail":
            return failed(FailureKind.ci_failed, "CI failed", forge.ci_evidence)
    passed = head
    if forge.reviews_to_post:
        return unmet("posting the AI reviews on the pull request", PostReviews(task.id, head, forge.reviews_to_post))
    wanted = {_login(r) for r in done.reviewers}
    latest: dict[str, Review] = {}
    for review in forge.reviews:  # chronological; a later comment does not erase a verdict
        if wanted and _login(review.reviewer) not in wanted:
            continue
        if review.state in ("APPROVED", "CHANGES_REQUESTED"):
            latest[review.reviewer] = review
        elif review.state == "DISMISSED":
            latest.pop(review.reviewer, None)
    blocking = [r for r in latest.values() if r.state == "CHANGES_REQUESTED"]
    if blocking:  # changes requested stop a task even when no approval is required
        checks["reviews"] = "changes requested"
        evidence = "\n\n".join(f"review by {r.reviewer}:\n{r.body}" for r in blocking)
        names = ", ".join(r.reviewer for r in blocking)
        return failed(FailureKind.changes_requested, f"changes requested by {names}", evidence)
    if done.reviews:
        approvals = sum(1 for r in latest.values() if r.state == "APPROVED")
        checks["reviews"] = f"{approvals}/{done.reviews}"
        if approvals < done.reviews:
            if forge.reviews_not_started:
                return unmet("starting reviewers", StartChecks(task.id, head, forge.reviews_not_started))
            return unmet(f"waiting for reviews ({approvals}/{done.reviews} approvals)")
    if done.screenshots_for:
        ui = _ui_files(obs.changed_files, done.screenshots_for)
        shots = tuple(p for p in obs.changed_files if p.startswith(f"{SCREENSHOT_DIR}/"))
        shown = bool(shots) or forge.body_has_image
        checks["screenshots"] = "n/a" if not ui else ("ok" if shown else "missing")
        if ui and not shown:
            return failed(FailureKind.screenshots_missing, f"{len(ui)} UI file(s) changed without screenshots",
                          f"UI files changed (commit screenshots of them under {SCREENSHOT_DIR}/):\n"
                          + "\n".join(ui))
        if ui and shots and forge.supports_pr and forge.pr is not None and forge.screenshots_at != head:
            return unmet("linking the screenshots in the pull request", LinkScreenshots(task.id, head, shots))
    if task.status is Status.ready:
        return Decision(task.id, (), "ready for review", checks, passed)
    return Decision(task.id, (MarkReady(task.id, head),), "ready for review", checks, passed)
