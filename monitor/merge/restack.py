"""Carry out a restack (monitor/merge/stack.py decides when): git first, an agent only for a real conflict.

The dependent's history is rewritten in a scratch worktree of its own (``.swarm/restack/<task>``, detached),
never in the task's worktree: ``git rebase --onto <new> <old>`` (so a squash-merged dependency's commits are
not carried twice) or, with ``[plan] restack = "merge"``, ``git merge <new>``. On success the new head is
pushed over the old one with a lease (GitHub; a remote that moved meanwhile defers the restack), the PR is
retargeted when the dependency merged, and only then is the task's branch moved (``reset --keep`` on a clean
worktree). A stopped rebase yields the conflicting hunks of both sides (diff3: theirs, the common ancestor,
ours) as the evidence of a ``conflict`` failure, handed to an attempt through the respawn path; nothing is
pushed. A worktree with uncommitted files is never touched: the restack waits.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from monitor.act_checks import ActorCore
from monitor.actions import Fail
from monitor.decide import ASKED
from monitor.layout import job_session_for
from monitor.merge.stack import RESTACKABLE, Restack
from monitor.messages import waiting_message
from monitor.redact import redact
from monitor.world.forge import ForgeUnavailable
from monitor.world.git import GitError, changed_paths
from registry.models import Failure, FailureKind, Task

if TYPE_CHECKING:

    from monitor.world.git import Git

log = logging.getLogger(__name__)
SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
MAX_EVIDENCE = 12000
CONTEXT = 3  # lines kept around each conflict region
DIFF3 = ("-c", "merge.conflictStyle=diff3")
_IDENT = {f"GIT_{role}_{part}": value for role in ("AUTHOR", "COMMITTER")
          for part, value in (("NAME", "swarm"), ("EMAIL", "swarm@localhost"))}


class RestackCore(ActorCore, Protocol):
    """What a restack uses of ``monitor.act.Actor``: the same as the check actions."""


class RestackActions:
    def restack(self: RestackCore, action: Restack) -> None:
        """One restack; a forge that cannot be reached or a git failure leaves everything as it was (the next
        tick plans the same restack again)."""
        try:
            _restack(self, action)
        except ForgeUnavailable as exc:
            log.warning("task %s: restack deferred: %s", action.task_id, exc)
            self._event(action.task_id, "action_deferred", action="Restack", error=str(exc))
        except GitError as exc:
            log.error("task %s: restack failed: %s", action.task_id, exc)
            self._event(action.task_id, "action_error", action="Restack", error=str(exc))


def _restack(actor: RestackCore, action: Restack) -> None:
    task = actor._current(action.task_id)
    if task is None or task.status not in RESTACKABLE or task.attempt is None:
        return
    worktree = Path(task.worktree)
    head = actor.git.head(task.branch)
    if head is None or not worktree.is_dir():
        return  # decide tells the human about a missing worktree
    dirty = actor.git.is_dirty(worktree)
    if dirty:  # never touched; the human is told once per head (the key is a question's: not a failed head)
        key = f"{ASKED}restack:{head}"
        reason = f"restack waits: uncommitted files in the worktree ({changed_paths(dirty)}); commit or remove them"

        def wait(current: Task) -> Task | None:
            return None if key in current.fired else current.model_copy(
                update={"reason": reason, "fired": (*current.fired, key)})

        if key not in task.fired and actor._update(
                task.id, wait, waiting_message(task, key, reason, "\n".join(dirty[:20]), actor.now)) is not None:
            actor._event(task.id, "restack_waiting", why=reason)
        return
    onto = action.onto if SHA_RE.fullmatch(action.onto) else actor.git.head(actor.forge.base_ref(action.onto))
    if onto is None:
        raise GitError(f"cannot restack {task.branch}: {action.onto} is not known here")
    old = _old_base(actor.git, head, action.old, task.base_branch, actor.forge.base_ref(task.base_branch), onto)
    merge = actor.policy.restack == "merge"
    stacked: dict[str, object] = {"base_branch": action.base_branch, "stacked_on": action.stacked_on,
               "stack_base_sha": onto if action.stacked_on else None, "branch_facts": None}
    if actor.git.is_ancestor(onto, head):  # already built on it (an agent rebased, or a true merge landed)
        new = head
    else:
        rewritten, evidence = _rewrite(actor, task, head, onto, old, merge)
        if rewritten is None:
            _hand_to_agent(actor, task, action, onto, old, evidence, stacked, merge)
            return
        new = rewritten
        if not actor.forge.restacked(task, new, head, action.base_branch):
            actor._event(task.id, "restack_deferred", why="the remote branch moved since the last tick")
            return
        _stop_check_jobs(actor, task)
        actor.git.move_branch(worktree, new)
    if new == head and task.base_branch != action.base_branch:
        actor.forge.restacked(task, new, head, action.base_branch)  # only the PR's base changes

    def record(current: Task) -> Task | None:
        if current.status not in RESTACKABLE:
            return None
        return current.model_copy(update={**stacked, "reason": f"restacked onto {action.onto[:40]}: {action.why}"})

    if actor._update(task.id, record) is not None:
        actor._event(task.id, "restacked", onto=onto[:12], old=old[:12], head=head[:12], new=new[:12],
                     base=action.base_branch, how="merge" if merge else "rebase", why=action.why)


def _old_base(git: Git, head: str, recorded: str, base_branch: str, base_ref: str, onto: str) -> str:
    """The last dependency commit the branch holds: the recorded one when it still is an ancestor, else where the
    branch forks from its current base (an agent rebased it by hand), else from the new base."""
    if recorded and SHA_RE.fullmatch(recorded) and git.is_ancestor(recorded, head):
        return recorded
    for ref in (base_ref, base_branch, onto):
        status, out, _ = git.run("merge-base", head, ref, ok=(0, 1, 128))
        if status == 0 and out.strip():
            return out.strip()
    return onto


def _rewrite(actor: RestackCore, task: Task, head: str, onto: str, old: str,
             merge: bool) -> tuple[str | None, str]:
    """Rebase (or merge) in a scratch worktree: (the new head, "") or (None, the conflict evidence)."""
    scratch = actor.runner.layout.state_dir / "restack" / task.id
    _drop_scratch(actor.git, scratch)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    actor.git.run("worktree", "add", "--detach", "--quiet", str(scratch), head)
    try:
        argv = (*DIFF3, "merge", "--no-edit", "-m", f"Merge {onto[:12]} into {task.branch} (restack)", onto) \
            if merge else (*DIFF3, "rebase", "--onto", onto, old)
        status, out, err = actor.git.run(*argv, cwd=scratch, ok=range(256))
        if status != 0 and ("who you are" in err or "ident" in err):  # no identity configured: sign as swarm
            status, out, err = actor.git.run(*argv, cwd=scratch, ok=range(256), env=_IDENT)
        if status == 0:
            _, new, _ = actor.git.run("rev-parse", "HEAD", cwd=scratch)
            return new.strip(), ""
        files = [f for f in actor.git.run("diff", "--name-only", "--diff-filter=U", cwd=scratch)[1].splitlines() if f]
        if not files:  # not a conflict: a real error
            raise GitError(f"restack of {task.branch} failed: {(err or out).strip()[-500:]}")
        stopped = ""
        if not merge:
            code, line, _ = actor.git.run("log", "-1", "--format=%h %s", "REBASE_HEAD", cwd=scratch, ok=(0, 128))
            stopped = line.strip() if code == 0 else ""
        return None, conflict_evidence(scratch, files, stopped)
    finally:
        actor.git.run("rebase" if not merge else "merge", "--abort", cwd=scratch, ok=range(256))
        _drop_scratch(actor.git, scratch)


def _drop_scratch(git: Git, scratch: Path) -> None:
    if scratch.exists():
        git.run("worktree", "remove", "--force", str(scratch), ok=range(256))
    git.run("worktree", "prune")


def conflict_evidence(scratch: Path, files: list[str], stopped: str) -> str:
    """Each conflicting file's conflict regions with both sides (and their common ancestor), a few lines of
    context around them, as the agent needs them to resolve the conflict."""
    parts: list[str] = []
    if stopped:
        parts.append(f"the rebase stopped at your commit {stopped}")
    for name in files:
        try:
            text = (scratch / name).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            parts.append(f"--- {name}: (could not read: {exc})")
            continue
        hunks = conflict_hunks(text)
        parts.append(f"--- {name}: {len(hunks)} conflict(s)\n" + "\n...\n".join(hunks) if hunks
                     else f"--- {name}: conflicts on the whole file (added, deleted or renamed on one side)")
    text = "\n".join(parts)
    return text if len(text) <= MAX_EVIDENCE else text[:MAX_EVIDENCE] + "\n[... evidence cut]"


def conflict_hunks(text: str) -> list[str]:
    """The ``<<<<<<< … >>>>>>>`` regions of a file written with conflict markers, each with line numbers and
    ``CONTEXT`` lines around it."""
    lines = text.splitlines()
    hunks: list[str] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("<<<<<<< "):
            index += 1
            continue
        end = index
        while end < len(lines) and not lines[end].startswith(">>>>>>> "):
            end += 1
        start, stop = max(0, index - CONTEXT), min(len(lines), end + 1 + CONTEXT)
        hunks.append("\n".join(f"{n + 1:>5} {lines[n]}" for n in range(start, stop)))
        index = end + 1
    return hunks


def _hand_to_agent(actor: RestackCore, task: Task, action: Restack, onto: str, old: str, evidence: str,
                   stacked: dict[str, object], merge: bool) -> None:
    """A real conflict: the task now stands on the new base (so the restack is not planned again) and an agent
    gets the conflict, with the exact command to run; nothing was pushed, the branch did not move."""
    how = f"git merge {onto}" if merge else f"git rebase --onto {onto} {old}"
    summary = (f"restacking onto {action.onto[:40]} conflicts ({action.why}); run `{how}` in the worktree "
               "and resolve the conflicts")
    marked = ("In the hunks below, the side after `|||||||` is the common ancestor; in a rebase the side after "
              "`<<<<<<<` is the new base and the side before `>>>>>>>` is your commit. Keep both sides' intent.\n\n")
    failure = Failure(kind=FailureKind.conflict, summary=redact(summary),
                      evidence=redact(f"$ {how}\n{marked}{evidence}"), at=actor.now)
    if actor._update(task.id, lambda t: t.model_copy(update=stacked) if t.status in RESTACKABLE else None) is None:
        return
    actor._event(task.id, "restack_conflict", onto=onto[:12], old=old[:12], why=action.why)
    attempt = task.attempt
    assert attempt is not None
    if attempt.number >= actor.policy.max_attempts:
        actor._do_Fail(Fail(task.id, attempt.number, failure))
    else:
        actor.respawn(task.id, attempt.number, failure)


def _stop_check_jobs(actor: RestackCore, task: Task) -> None:
    """Check jobs (local CI, review lenses) of the old head run in the worktree: they are moot once it moves."""
    prefix = job_session_for(task.id, "")
    for session in actor.tmux.panes() or {}:
        if session.startswith(prefix):
            actor.tmux.kill(session)
