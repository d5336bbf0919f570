"""The fixer: a conflict, a red CI or requested changes on a finished task (it reached checking or ready with
commits) is handed to an attempt in the same worktree, with the precise evidence and the guardrails in its
prompt; its result is verified against those guardrails before the task is judged again.

- ``plan_fix``: whether the next attempt is a fixer, the two sides it is verified against, and the evidence
  (the conflicting hunks of both sides, computed by ``git merge-tree`` without touching the worktree; the CI
  log tail; the review comments; and why the previous fix was rejected).
- ``GUARDRAILS``: appended to the fixer's prompt whoever wrote the rest (template or model), so a rewritten
  prompt can never drop them.
- ``check_fix``: the guardrail violations of the fix that took the branch from its pre-fix head to ``after``.
"""

from __future__ import annotations

from monitor.merge.gitops import conflict_hunks, merge_base
from monitor.merge.guardrails import verify
from monitor.world.git import Git
from registry.models import Attempt, Failure, FailureKind, FixTarget, Status, Task

FIXABLE = frozenset({FailureKind.conflict, FailureKind.ci_failed, FailureKind.changes_requested})
FINISHED = (Status.checking, Status.ready)

GUARDRAILS = """
## Guardrails for this fix (the supervisor verifies them on your result)

You are fixing a finished branch in its own worktree: its commits are the work; do not start over.
- Never run `git restore --source=HEAD`, `git checkout --ours/--theirs`, `git reset --hard` or `git clean`
  over another side's changes: a conflict is resolved hunk by hunk, never by taking one side wholesale.
- Keep the more complete side of each hunk (usually both sides' additions, merged).
- Never replace an implementation with a placeholder (`pass  # TODO`, `raise NotImplementedError`, `...`,
  an empty body) to make something compile or a test pass.
- Read each resolved file back and check that every function, class and method both sides defined still
  exists, then run the tests and commit (a merge commit for a conflict: `git merge` the base, resolve, commit).
A fix that drops a side's function or adds a placeholder is rejected: the branch is put back and you are
asked again with that evidence.
"""


def fixes(task: Task, failure: Failure) -> FailureKind | None:
    """The kind of fix the next attempt is, or None for an ordinary retry: a fixable failure on a finished
    task, or another try after a fixer attempt that failed (rejected, died, committed nothing)."""
    last = task.attempt
    if task.status is Status.running and last is not None and last.fix is not None:
        return last.fix.kind
    if failure.kind in FIXABLE and task.status in FINISHED:
        return failure.kind
    return None


def plan_fix(git: Git, task: Task, failure: Failure, base_ref: str) -> tuple[FixTarget, str] | None:
    """The target of the next (fixer) attempt and its evidence, or None when it is an ordinary retry. A fix
    tried again keeps its first target: its result is verified against the sides as they were before it."""
    kind = fixes(task, failure)
    if kind is None:
        return None
    last = task.attempt
    if task.status is Status.running and last is not None and last.fix is not None:
        target = last.fix
    else:
        head, base = git.head(task.branch), git.head(base_ref)
        if head is None or base is None:
            return None
        target = FixTarget(kind=kind, head=head, base=base)
    parts = [failure.evidence.strip()] if failure.evidence.strip() else []
    if kind is FailureKind.conflict:
        files, hunks = conflict_hunks(git, target.head, target.base)
        if hunks:
            common = merge_base(git, target.head, target.base)
            shown = base_ref.removeprefix("refs/remotes/").removeprefix("refs/heads/")
            parts.append(f"Merging {shown} ({target.base[:10]}) into this branch ({target.head[:10]}, merge base "
                         f"{(common or '?')[:10]}) conflicts in {len(files)} file(s): run `git merge {shown}`, "
                         "resolve each hunk keeping both sides' intent, and commit. The hunks, both sides:\n"
                         + hunks)
    return target, "\n\n".join(parts)


def check_fix(git: Git, attempt: Attempt, after: str) -> list[str]:
    """The guardrail violations of fixer ``attempt`` whose result is ``after`` (empty: accepted)."""
    if attempt.fix is None:
        return []
    fix = attempt.fix
    return verify(git, fix.head, fix.base, after, conflict=fix.kind is FailureKind.conflict)


def rejection(violations: list[str], attempt: Attempt, ref: str) -> tuple[str, str]:
    """(summary, evidence) of a rejected fix."""
    assert attempt.fix is not None
    summary = (f"the {attempt.fix.kind.value} fix of attempt {attempt.number} broke the guardrails "
               f"({len(violations)} problem(s)); its commits are kept under {ref}, the branch is back at "
               f"{attempt.fix.head[:10]}")
    evidence = "The previous fix was rejected:\n" + "\n".join(f"- {v}" for v in violations[:40])
    return summary, evidence
