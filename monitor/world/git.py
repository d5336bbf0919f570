"""Git, through GitPython (the project's choice for git), for the monitor's worktrees and branches.

Every call goes through one helper that sets a timeout (GitPython kills the process after
``kill_after_timeout`` seconds) and turns failures into :class:`GitError` with the command and the tail
of its stderr. Nothing here runs a destructive command on a checkout (no ``reset --hard``, ``clean`` or
``checkout --``): worktrees are only created, merged into (aborting a conflicted merge, and only on a
worktree without uncommitted changes) and removed when strictly inside the caller's root and clean (a
worktree with uncommitted or untracked files is removed only after the caller saved them to a ref with
:meth:`Git.save_leftovers`, which touches neither the worktree nor its index). Questions about branches
(divergence, conflicts, merged or not) are answered without touching any worktree.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Container, Mapping
from dataclasses import dataclass
from pathlib import Path

import git

_OWN_WORK = ("commit", "cherry-pick", "revert", "am")  # branch reflog subjects that record new commits
LEFTOVERS_PREFIX = "refs/swarm/leftovers/"
_DISK_FULL = ("No space left on device", "Disk quota exceeded")


class GitError(Exception):
    """A git command failed: the message names the command and ends with the tail of its stderr."""

    @property
    def disk_full(self) -> bool:
        """Whether git failed because the disk (or the user's quota) is full: a transient condition."""
        return any(text in str(self) for text in _DISK_FULL)


class DirtyWorktree(GitError):
    """A worktree holds uncommitted or untracked files; it is not removed (nothing is lost silently)."""

    def __init__(self, path: Path, changes: list[str]) -> None:
        self.path = path
        self.changes = changes
        super().__init__(f"{path} has {len(changes)} uncommitted or untracked file(s) ({changed_paths(changes)})")


def changed_paths(changes: list[str], limit: int = 5) -> str:
    """``git status --porcelain`` lines as a short list of paths for a message."""
    paths = [line[3:] for line in changes]
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def leftovers_ref(name: str) -> str:
    """Where the uncommitted work of task (or directory) ``name`` is saved before its worktree goes."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "worktree"
    return LEFTOVERS_PREFIX + slug


@dataclass(frozen=True)
class Divergence:
    ahead: int
    behind: int


def _ref(name: str) -> str:
    """Refuse names git would read as an option or a range, or that cannot be a ref at all."""
    if not name or name.startswith("-") or ".." in name or re.search(r"[\s\x00-\x1f\x7f]", name):
        raise ValueError(f"invalid git ref {name!r}")
    return name


class Git:
    def __init__(self, repo_path: Path, timeout: float = 60.0) -> None:
        try:
            self._repo = git.Repo(str(repo_path))
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise GitError(f"{repo_path} is not a git repository") from exc
        self.repo_path = Path(repo_path)
        self.timeout = timeout

    # -- plumbing --------------------------------------------------------------------------------

    def _run(
        self, *args: str, cwd: Path | None = None, ok: Container[int] = (0,), env: Mapping[str, str] | None = None
    ) -> tuple[int, str, str]:
        runner = self._repo.git if cwd is None else git.Git(str(cwd))
        try:
            status, out, err = runner.execute(
                ["git", *args],
                kill_after_timeout=self.timeout,
                with_extended_output=True,
                with_exceptions=False,
                env=dict(env) if env else None,
            )
        except (git.GitCommandNotFound, OSError) as exc:
            raise GitError(f"git {' '.join(args)}: cannot run git: {exc}") from exc
        if str(err).startswith("Timeout:"):
            raise GitError(f"git {' '.join(args)} timed out after {self.timeout:g}s")
        if status not in ok:
            raise self._error(args, status, str(err) or str(out))
        return int(status), str(out), str(err)

    @staticmethod
    def _error(args: tuple[str, ...], status: int, text: str) -> GitError:
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        detail = " | ".join(lines[-3:])[-500:] if lines else "(no output)"
        return GitError(f"`git {' '.join(args)}` exited {status}: {detail}")

    def _is_ancestor(self, older: str, newer: str) -> bool:
        status, _, _ = self._run("merge-base", "--is-ancestor", older, newer, ok=(0, 1))
        return status == 0

    # -- queries ---------------------------------------------------------------------------------

    def version(self) -> tuple[int, int, int]:
        _, out, _ = self._run("version")
        numbers = [int(n) for n in re.findall(r"\d+", out.split("version", 1)[-1])[:3]]
        major, minor, patch = [*numbers, 0, 0, 0][:3]
        return major, minor, patch

    def toplevel(self) -> Path:
        _, out, _ = self._run("rev-parse", "--show-toplevel")
        return Path(out.strip()).resolve()

    def git_dir(self) -> Path:
        """The repository's common git directory (shared by all worktrees): where info/exclude lives."""
        _, out, _ = self._run("rev-parse", "--path-format=absolute", "--git-common-dir")
        return Path(out.strip()).resolve()

    def branch_heads(self, prefix: str) -> dict[str, str]:
        """Every local branch under ``prefix`` (e.g. "swarm/") and its sha, in one git call."""
        _, out, _ = self._run("for-each-ref", "--format=%(refname:short) %(objectname)", f"refs/heads/{_ref(prefix)}")
        heads = {}
        for line in out.splitlines():
            name, _, sha = line.partition(" ")
            if sha:
                heads[name] = sha
        return heads

    def branch_exists(self, branch: str) -> bool:
        status, _, _ = self._run("show-ref", "--verify", "--quiet", f"refs/heads/{_ref(branch)}", ok=(0, 1))
        return status == 0

    def head(self, ref: str) -> str | None:
        """The commit sha ``ref`` points at, or None if it does not exist."""
        status, out, _ = self._run("rev-parse", "--verify", "--quiet", f"{_ref(ref)}^{{commit}}", ok=(0, 1))
        return (out.strip() or None) if status == 0 else None

    def worktrees(self) -> dict[Path, str | None]:
        """Registered worktree (resolved path) -> checked-out branch, None when detached or bare."""
        _, out, _ = self._run("worktree", "list", "--porcelain", "-z")
        trees: dict[Path, str | None] = {}
        for block in out.split("\0\0"):
            fields = [f for f in block.split("\0") if f]
            path = next((f[len("worktree ") :] for f in fields if f.startswith("worktree ")), None)
            if path is None:
                continue
            branch = next((f[len("branch ") :] for f in fields if f.startswith("branch ")), None)
            if branch is not None and branch.startswith("refs/heads/"):
                branch = branch[len("refs/heads/") :]
            trees[Path(path).resolve()] = branch
        return trees

    def divergence(self, base: str, branch: str) -> Divergence:
        """How many commits ``branch`` has that ``base`` lacks (ahead) and the reverse (behind)."""
        _, out, _ = self._run("rev-list", "--left-right", "--count", f"{_ref(base)}...{_ref(branch)}")
        behind, ahead = (int(n) for n in out.split())
        return Divergence(ahead=ahead, behind=behind)

    def commits_between(self, old: str, new: str) -> int:
        _, out, _ = self._run("rev-list", "--count", f"{_ref(old)}..{_ref(new)}")
        return int(out.strip())

    def changed_files(self, base: str, branch: str) -> list[str]:
        """Files the branch changed since it forked from ``base``."""
        _, out, _ = self._run("diff", "--name-only", "-z", f"{_ref(base)}...{_ref(branch)}")
        return [name for name in out.split("\0") if name]

    def diff(self, base: str, head: str) -> str:
        """The patch ``head`` adds since it forked from ``base`` (what a reviewer reads)."""
        _, out, _ = self._run("diff", "--no-color", "--unified=3", f"{_ref(base)}...{_ref(head)}")
        return out

    def conflicts(self, base: str, branch: str) -> list[str]:
        """Files that would conflict when merging ``branch`` into ``base``, computed in memory by
        ``git merge-tree --write-tree`` (git >= 2.38) without touching any worktree or ref."""
        status, out, err = self._run(
            "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", _ref(base), _ref(branch),
            ok=(0, 1),
        )  # fmt: skip
        fields = out.split("\0")
        if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", fields[0].strip()):
            # git 2.39 also exits 1 on errors such as "not something we can merge"
            raise self._error(("merge-tree", "--write-tree", base, branch), status, err or out)
        return [] if status == 0 else [name for name in fields[1:] if name]  # field 0: the tree oid

    def is_merged(self, branch: str, base: str, tip: str | None = None, ahead: int | None = None) -> bool:
        """Whether ``branch``'s own work has landed in ``base``.

        True when the branch tip is an ancestor of ``base`` and the branch has at least one commit of
        its own, or when every commit of the branch is patch-equivalent to one in ``base`` (``git
        cherry``: a rebase or cherry-pick merge). A branch with no commits of its own (just created, or
        only fast-forwarded to a newer ``base``) is not merged. A caller that already knows the tip and
        how far it is ahead of an existing ``base`` passes them and saves three git calls."""
        if tip is None:
            tip = self.head(branch)
            if tip is None:
                return False
        if ahead is None and self.head(base) is None:
            return False
        if ahead == 0 or (ahead is None and self._is_ancestor(tip, base)):
            return self._has_own_commits(branch, base, tip)
        _, out, _ = self._run("cherry", _ref(base), _ref(branch))
        marks = [line[:1] for line in out.splitlines() if line.strip()]
        return bool(marks) and all(mark == "-" for mark in marks)

    def _has_own_commits(self, branch: str, base: str, tip: str) -> bool:
        """For a tip already contained in ``base``: did the branch ever contribute a commit?

        If the tip is off ``base``'s first-parent line it was merged in as a side branch, so yes. If it
        is on that line, the history alone cannot tell a fast-forward merge of the branch's commits
        from a branch that never committed and was fast-forwarded to ``base``; the branch's reflog can
        (entries such as "commit: ..." record commits made on it). No reflog -> no (conservative)."""
        _, parents, _ = self._run("rev-list", "--parents", "-n", "1", tip)
        line = self._run("rev-list", "--first-parent", _ref(base), "--not", *parents.split()[1:])[1]
        if tip not in line.split():
            return True
        status, out, _ = self._run("reflog", "show", "--format=%gs", f"refs/heads/{_ref(branch)}", ok=(0, 128))
        if status != 0:
            return False
        return any(subject.split(":", 1)[0].split(" ", 1)[0] in _OWN_WORK for subject in out.splitlines())

    def is_dirty(self, worktree: Path) -> list[str]:
        """``git status --porcelain`` lines for uncommitted changes, untracked files included."""
        _, out, _ = self._run("status", "--porcelain", "--untracked-files=all", cwd=worktree)
        return [line for line in out.splitlines() if line.strip()]

    # -- actions ---------------------------------------------------------------------------------

    def create_worktree(self, path: Path, branch: str, base: str) -> None:
        """Check ``branch`` out at ``path``, creating the branch from ``base`` if it does not exist.

        Idempotent when ``path`` already is this repository's worktree on ``branch``; reuses an existing
        branch (keeping its commits) when it has no worktree; refuses an existing ``path`` that is not a
        registered worktree (it is never deleted or overwritten)."""
        _ref(branch)
        _ref(base)
        self._run("worktree", "prune")
        target = Path(path).resolve()
        trees = self.worktrees()
        if target in trees:
            if trees[target] == branch:
                return
            raise GitError(f"{target} is already a worktree on {trees[target] or 'a detached HEAD'}, not {branch}")
        if os.path.lexists(path) or target.exists():
            raise GitError(f"{target} exists and is not a worktree of {self.repo_path}; refusing to touch it")
        holder = next((p for p, b in trees.items() if b == branch), None)
        if holder is not None:
            raise GitError(f"branch {branch} is already checked out at {holder}")
        if self.branch_exists(branch):
            self._run("worktree", "add", str(target), branch)
        else:
            self._run("worktree", "add", "-b", branch, str(target), base)

    def save_leftovers(self, worktree: Path, ref: str, message: str) -> str | None:
        """Save the worktree's uncommitted and untracked files (not ignored ones) as a commit at ``ref``,
        whose first parent is the worktree's HEAD (and second the commit ``ref`` held, if any: nothing
        saved earlier is dropped). Returns the commit, or None when there is nothing to save.

        Neither the worktree nor its index is touched: the snapshot is built in a temporary index
        (``GIT_INDEX_FILE``) with ``read-tree``, ``add --all``, ``write-tree``, ``commit-tree`` and
        ``update-ref``. Get the files back with ``git checkout <ref> -- .`` in a checkout of the branch."""
        if not ref.startswith(LEFTOVERS_PREFIX):
            raise ValueError(f"leftovers ref {ref!r} must start with {LEFTOVERS_PREFIX}")
        _ref(ref)
        target = Path(worktree).resolve()
        if target not in self.worktrees():
            raise GitError(f"{target} is not a worktree of {self.repo_path}; nothing saved")
        if not self.is_dirty(target):
            return None
        with tempfile.TemporaryDirectory(prefix="swarm-leftovers-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            status, out, _ = self._run("rev-parse", "-q", "--verify", "HEAD^{commit}", cwd=target, ok=(0, 1))
            head = out.strip() if status == 0 else ""
            if head:
                self._run("read-tree", head, cwd=target, env=env)
            self._run("add", "--all", "--", ".", cwd=target, env=env)
            _, tree, _ = self._run("write-tree", cwd=target, env=env)
        previous = self.head(ref)
        parents = [arg for sha in (head, previous) if sha for arg in ("-p", sha)]
        argv = ("commit-tree", tree.strip(), *parents, "-m", message)
        try:
            _, commit, _ = self._run(*argv)
        except GitError as exc:  # no user.name/user.email configured: sign as swarm rather than lose the files
            if "ident" not in str(exc) and "who you are" not in str(exc):
                raise
            who = {f"GIT_{role}_{part}": value for role in ("AUTHOR", "COMMITTER")
                   for part, value in (("NAME", "swarm"), ("EMAIL", "swarm@localhost"))}
            _, commit, _ = self._run(*argv, env=who)
        self._run("update-ref", "-m", "swarm: save leftovers", ref, commit.strip(), previous or "")
        return commit.strip()

    def remove_worktree(self, path: Path, root: Path, *, discard_changes: bool = False) -> None:
        """Remove the worktree at ``path``, only if it lies strictly inside ``root``, both as written and
        with symlinks resolved. A worktree with uncommitted or untracked files raises
        :class:`DirtyWorktree` and stays, unless ``discard_changes`` (for a caller that saved them first
        with :meth:`save_leftovers`); ignored files (build output) go with it. A path that is not a
        registered worktree is left alone (the call is then only a prune)."""
        root_real = Path(root).resolve()
        lexical = Path(os.path.normpath(Path(path).absolute()))
        root_lexical = Path(os.path.normpath(Path(root).absolute()))
        target = Path(path).resolve()
        inside = root_real in target.parents and (root_lexical in lexical.parents or root_real in lexical.parents)
        if not inside:
            raise GitError(f"refusing to remove {path}: not strictly inside {root}")
        if target in self.worktrees():
            if discard_changes:
                self._run("worktree", "remove", "--force", str(target))
            else:
                changes = self.is_dirty(target)
                if changes:
                    raise DirtyWorktree(target, changes)
                # no --force: git itself refuses if a file appeared since the check above
                self._run("worktree", "remove", str(target))
        self._run("worktree", "prune")

    def merge_base_into(self, worktree: Path, base: str) -> bool:
        """Merge ``base`` into the branch checked out in ``worktree``: True if it merged cleanly, False
        on conflict (the merge is aborted, leaving the worktree as it was). Raises :class:`GitError` if
        the worktree is not one of this repository's, has uncommitted changes to tracked files (an
        abort could not restore them), or the merge fails for another reason."""
        target = Path(worktree).resolve()
        if target not in self.worktrees():
            raise GitError(f"{target} is not a worktree of {self.repo_path}")
        _, dirty, _ = self._run("status", "--porcelain", "--untracked-files=no", cwd=target)
        if dirty.strip():
            raise GitError(f"{target} has uncommitted changes; not merging {base} into it")
        status, out, err = self._run("merge", "--no-edit", _ref(base), cwd=target, ok=range(256))
        if status == 0:
            return True
        in_merge, _, _ = self._run("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=target, ok=(0, 1))
        if in_merge == 0:
            self._run("merge", "--abort", cwd=target)
            return False
        raise self._error(("merge", "--no-edit", base), status, err or out)

    def delete_branch(self, branch: str) -> None:
        self._run("branch", "-D", _ref(branch))

    # -- remotes (the GitHub forge) ----------------------------------------------------------------
    # Credentials never go into argv: the caller passes an environment with GIT_ASKPASS and the token.

    def fetch(self, remote: str, refspecs: list[str], env: Mapping[str, str] | None = None) -> None:
        """Fetch ``refspecs`` from ``remote`` (one network round trip for all of them)."""
        self._run("fetch", "--quiet", "--no-tags", _ref(remote), *refspecs, env=env)

    def push(
        self, remote: str, sha: str, branch: str, expect: str | None, env: Mapping[str, str] | None = None
    ) -> None:
        """Set ``branch`` on ``remote`` to ``sha``. ``expect`` is the remote's current sha (None: the
        branch must not exist there): the push is refused if someone moved it meanwhile."""
        lease = f"--force-with-lease=refs/heads/{_ref(branch)}:{expect or ''}"
        self._run("push", "--quiet", "--no-verify", lease, _ref(remote), f"{_ref(sha)}:refs/heads/{branch}", env=env)

    def fast_forward(self, worktree: Path, sha: str) -> None:
        """Move the branch checked out in ``worktree`` forward to ``sha`` (never a merge, never a reset)."""
        self._run("merge", "--ff-only", "--quiet", _ref(sha), cwd=Path(worktree))

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self._is_ancestor(_ref(older), _ref(newer))

    def run(
        self, *args: str, cwd: Path | None = None, ok: Container[int] = (0,), env: Mapping[str, str] | None = None
    ) -> tuple[int, str, str]:
        """Any git command with this class's timeout and errors: for monitor/merge, which rebases only in a
        scratch worktree of its own and moves a task's branch with :meth:`move_branch`."""
        return self._run(*args, cwd=cwd, ok=ok, env=env)

    def move_branch(self, worktree: Path, sha: str) -> None:
        """Point the branch checked out in ``worktree`` at ``sha`` (a restacked history) with ``reset --keep``,
        which refuses rather than lose a local change; the caller has checked the worktree is clean."""
        self._run("reset", "--keep", "--quiet", _ref(sha), cwd=Path(worktree))
