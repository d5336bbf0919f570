"""The git plumbing the merge package needs (reading a file at a revision, the files two revisions differ
in, the conflicting hunks of a merge, keeping a rejected fix under a ref, landing a branch on the base),
through the same GitPython choke point as ``monitor/world/git.py``."""

from __future__ import annotations

from pathlib import Path

from monitor.world.git import Git, GitError, leftovers_ref

HUNK_CONTEXT = 3
MAX_HUNK_CHARS = 12_000
REJECTED_PREFIX = "refs/swarm/rejected"


def _git(git: Git, *args: str, cwd: Path | None = None, ok: tuple[int, ...] = (0,)) -> tuple[int, str]:
    status, out, _err = git._run(*args, cwd=cwd, ok=ok)
    return status, out


def read_file(git: Git, rev: str, path: str) -> str | None:
    """The text of ``path`` at ``rev``; None when it does not exist there (or is not text)."""
    status, out = _git(git, "cat-file", "-p", f"{rev}:{path}", ok=(0, 1, 128))
    return out if status == 0 else None


def changed_between(git: Git, old: str, new: str) -> list[str]:
    """Paths that differ between two revisions (renames as a deletion and an addition)."""
    _, out = _git(git, "diff", "--name-only", "--no-renames", old, new)
    return [line for line in out.splitlines() if line.strip()]


def merge_base(git: Git, one: str, other: str) -> str | None:
    status, out = _git(git, "merge-base", one, other, ok=(0, 1))
    return out.strip() or None if status == 0 else None


def conflict_hunks(git: Git, ours: str, theirs: str, limit: int = MAX_HUNK_CHARS) -> tuple[list[str], str]:
    """The files a merge of ``theirs`` into ``ours`` conflicts in, and their conflicting hunks (both sides,
    with a few lines of context) as git writes them, computed without touching any worktree."""
    status, out = _git(git, "merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs, ok=(0, 1))
    lines = out.splitlines()
    if status == 0 or not lines:
        return [], ""
    tree, files = lines[0].strip(), [f for f in lines[1:] if f.strip()]
    parts: list[str] = []
    used = 0
    for path in files:
        text = read_file(git, tree, path) or ""
        hunks = _marked_regions(text)
        block = f"--- {path} (ours = the branch, theirs = the base)\n" + ("\n...\n".join(hunks) or "(binary or "
                                                                             "whole-file conflict)")
        if used + len(block) > limit:
            parts.append(f"--- {path}: (more hunks left out; run the merge to see them)")
            continue
        parts.append(block)
        used += len(block)
    return files, "\n\n".join(parts)


def _marked_regions(text: str) -> list[str]:
    lines = text.splitlines()
    regions: list[str] = []
    index = 0
    while index < len(lines):
        if lines[index].startswith("<<<<<<<"):
            start = max(0, index - HUNK_CONTEXT)
            end = index
            while end < len(lines) and not lines[end].startswith(">>>>>>>"):
                end += 1
            stop = min(len(lines), end + 1 + HUNK_CONTEXT)
            regions.append("\n".join(f"{n + 1:>5}: {lines[n]}" for n in range(start, stop)))
            index = stop
        else:
            index += 1
    return regions


def rejected_ref(task_id: str, attempt: int) -> str:
    return f"{REJECTED_PREFIX}/{task_id}/{attempt}"


def keep_and_reset(git: Git, worktree: Path, task_id: str, attempt: int, keep: str, reset_to: str) -> str:
    """Keep the fixer's head ``keep`` under refs/swarm/rejected/<task>/<attempt>, then put the branch
    checked out in ``worktree`` back to ``reset_to`` (uncommitted leftovers are stashed into the kept ref's
    history first, never lost). Returns the ref."""
    ref = rejected_ref(task_id, attempt)
    if git.is_dirty(worktree):
        git.save_leftovers(worktree, leftovers_ref(f"{task_id}-fix-{attempt}"),
                           f"swarm: uncommitted files of rejected fix {attempt}")
    _git(git, "update-ref", ref, keep)
    _git(git, "reset", "--hard", "--quiet", reset_to, cwd=worktree)
    return ref


def land_locally(git: Git, base: str, head: str, method: str, title: str) -> str:
    """Merge ``head`` (already up to date with ``base``) into the local branch ``base`` with ``method``;
    returns the new base head. The base moves only if it still is where it was (compare and swap), and a
    checked-out base is moved with ``git merge --ff-only`` in its worktree (refused over local changes)."""
    old = git.head(base)
    if old is None:
        raise GitError(f"the base branch {base} does not exist")
    if not git.is_ancestor(old, head):
        raise GitError(f"{head[:10]} is not up to date with {base}; bring it up to date first")
    _, tree = _git(git, "rev-parse", f"{head}^{{tree}}")
    if method == "rebase" or old == head:
        new = head
    elif method == "squash":
        _, new = _git(git, "commit-tree", tree.strip(), "-p", old, "-m", title)
    else:
        _, new = _git(git, "commit-tree", tree.strip(), "-p", old, "-p", head, "-m", title)
    new = new.strip()
    checked_out = [path for path, branch in git.worktrees().items() if branch in (base, f"refs/heads/{base}")]
    if checked_out:
        _, dirty = _git(git, "status", "--porcelain", "--untracked-files=no", cwd=checked_out[0])
        if dirty.strip():
            raise GitError(f"{base} is checked out in {checked_out[0]} with uncommitted changes; not merging into it")
        _git(git, "merge", "--ff-only", "--quiet", new, cwd=checked_out[0])
    else:
        _git(git, "update-ref", f"refs/heads/{base}", new, old)
    return new

