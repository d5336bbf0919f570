"""The git wrapper against real repositories and worktrees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.world.git import DirtyWorktree, Divergence, Git, GitError, leftovers_ref
from tests.conftest import git


def commit(cwd: Path, name: str, content: str, message: str | None = None) -> str:
    (cwd / name).parent.mkdir(parents=True, exist_ok=True)
    (cwd / name).write_text(content)
    git(cwd, "add", name)
    git(cwd, "commit", "-q", "-m", message or f"edit {name}")
    return git(cwd, "rev-parse", "HEAD")


@pytest.fixture
def repo(git_repo: Path) -> Git:
    return Git(git_repo)


@pytest.fixture
def wt_root(tmp_path: Path) -> Path:
    root = tmp_path / "worktrees"
    root.mkdir()
    return root


def test_basics(repo: Git, git_repo: Path) -> None:
    assert repo.toplevel() == git_repo.resolve()
    assert repo.version() >= (2, 38, 0)
    assert repo.branch_exists("main") is True
    assert repo.branch_exists("nope") is False
    assert repo.head("main") == git(git_repo, "rev-parse", "main")
    assert repo.head("nope") is None
    assert repo.worktrees() == {git_repo.resolve(): "main"}


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError):
        Git(tmp_path)


def test_refs_that_look_like_options_are_refused(repo: Git) -> None:
    for bad in ("--output=/tmp/x", "-D", "a..b", "a b", ""):
        with pytest.raises(ValueError):
            repo.head(bad)


def test_create_worktree_new_branch_and_idempotent(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "task-1"
    repo.create_worktree(path, "task/1", "main")
    assert (path / "README.md").read_text() == "# demo\n"
    assert git(path, "branch", "--show-current") == "task/1"
    assert repo.head("task/1") == repo.head("main")
    assert repo.worktrees() == {git_repo.resolve(): "main", path.resolve(): "task/1"}
    (path / "work.txt").write_text("in progress\n")  # a second call must not disturb the checkout
    repo.create_worktree(path, "task/1", "main")
    assert (path / "work.txt").read_text() == "in progress\n"
    assert len(repo.worktrees()) == 2


def test_create_worktree_reuses_existing_branch(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "task-2"
    repo.create_worktree(path, "task/2", "main")
    sha = commit(path, "feature.txt", "feature\n")
    repo.remove_worktree(path, wt_root)
    assert not path.exists()
    assert repo.worktrees() == {git_repo.resolve(): "main"}
    commit(git_repo, "other.txt", "main moved on\n")  # base moved: reuse must keep the branch, not rebase it
    repo.create_worktree(path, "task/2", "main")
    assert repo.head("task/2") == sha
    assert (path / "feature.txt").read_text() == "feature\n"
    assert not (path / "other.txt").exists()


def test_create_worktree_after_directory_vanished(repo: Git, wt_root: Path) -> None:
    path = wt_root / "task-3"
    repo.create_worktree(path, "task/3", "main")
    sha = commit(path, "f.txt", "x\n")
    shutil.rmtree(path)  # e.g. a reboot wiped a tmpfs
    repo.create_worktree(path, "task/3", "main")
    assert repo.head("task/3") == sha
    assert (path / "f.txt").exists()


def test_create_worktree_refuses_foreign_path(repo: Git, wt_root: Path) -> None:
    path = wt_root / "occupied"
    path.mkdir()
    (path / "precious.txt").write_text("keep me\n")
    with pytest.raises(GitError):
        repo.create_worktree(path, "task/4", "main")
    assert (path / "precious.txt").read_text() == "keep me\n"
    assert repo.branch_exists("task/4") is False
    empty = wt_root / "empty"
    empty.mkdir()
    with pytest.raises(GitError):
        repo.create_worktree(empty, "task/5", "main")


def test_create_worktree_refuses_path_on_another_branch(repo: Git, wt_root: Path) -> None:
    path = wt_root / "t"
    repo.create_worktree(path, "task/a", "main")
    with pytest.raises(GitError):
        repo.create_worktree(path, "task/b", "main")
    with pytest.raises(GitError):  # the branch is checked out elsewhere already
        repo.create_worktree(wt_root / "t2", "task/a", "main")


def test_remove_worktree_refuses_outside_root(repo: Git, git_repo: Path, tmp_path: Path, wt_root: Path) -> None:
    outside = tmp_path / "elsewhere"
    repo.create_worktree(outside, "task/out", "main")
    with pytest.raises(GitError):
        repo.remove_worktree(outside, wt_root)
    with pytest.raises(GitError):
        repo.remove_worktree(wt_root, wt_root)  # the root itself is not strictly inside
    with pytest.raises(GitError):
        repo.remove_worktree(wt_root / ".." / "elsewhere", wt_root)
    link = wt_root / "sneaky"
    link.symlink_to(outside)
    with pytest.raises(GitError):
        repo.remove_worktree(link, wt_root)
    with pytest.raises(GitError):
        repo.remove_worktree(git_repo, wt_root)
    assert outside.is_dir() and (outside / "README.md").exists()
    assert outside.resolve() in repo.worktrees()


def test_remove_worktree_discards_it_and_keeps_branch(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "gone"
    repo.create_worktree(path, "task/gone", "main")
    (path / "dirty.txt").write_text("uncommitted\n")
    repo.remove_worktree(path, wt_root, discard_changes=True)  # the caller saved the leftovers first
    assert not path.exists()
    assert repo.worktrees() == {git_repo.resolve(): "main"}
    assert repo.branch_exists("task/gone")
    repo.remove_worktree(path, wt_root)  # again: nothing left to do, no error
    repo.delete_branch("task/gone")
    assert repo.branch_exists("task/gone") is False
    with pytest.raises(GitError):
        repo.delete_branch("task/gone")


def test_remove_worktree_leaves_unregistered_directory(repo: Git, wt_root: Path) -> None:
    stranger = wt_root / "stranger"
    stranger.mkdir()
    (stranger / "data").write_text("x")
    repo.remove_worktree(stranger, wt_root)
    assert (stranger / "data").exists()


def test_divergence_commits_and_changed_files(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "d"
    repo.create_worktree(path, "task/d", "main")
    old = repo.head("task/d")
    assert old is not None
    commit(path, "a.txt", "a\n")
    commit(path, "sub/b.txt", "b\n")
    commit(git_repo, "m.txt", "m\n")
    assert repo.divergence("main", "task/d") == Divergence(ahead=2, behind=1)
    assert repo.divergence("task/d", "main") == Divergence(ahead=1, behind=2)
    assert repo.commits_between(old, "task/d") == 2
    assert repo.commits_between("task/d", old) == 0
    assert sorted(repo.changed_files("main", "task/d")) == ["a.txt", "sub/b.txt"]  # not m.txt


def test_conflicts(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "c"
    repo.create_worktree(path, "task/c", "main")
    commit(path, "README.md", "# branch version\n")
    commit(path, "new.txt", "only on branch\n")
    commit(git_repo, "README.md", "# main version\n")
    main_before = repo.head("main")
    assert repo.conflicts("main", "task/c") == ["README.md"]
    # nothing was touched: main, its checkout and the branch's checkout are as they were
    assert repo.head("main") == main_before
    assert (git_repo / "README.md").read_text() == "# main version\n"
    assert repo.is_dirty(git_repo) == [] and repo.is_dirty(path) == []


def test_no_conflicts(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "nc"
    repo.create_worktree(path, "task/nc", "main")
    commit(path, "feature.txt", "feature\n")
    commit(git_repo, "other.txt", "other\n")
    assert repo.conflicts("main", "task/nc") == []


def test_conflicts_error_on_missing_ref(repo: Git) -> None:
    with pytest.raises(GitError, match="no-such-branch"):
        repo.conflicts("main", "no-such-branch")
    with pytest.raises(GitError):
        repo.conflicts("no-such-base", "main")


def merged(repo: Git, branch: str) -> bool:
    """``is_merged`` asked both ways (alone, and with the tip and divergence the observer already has)."""
    alone = repo.is_merged(branch, "main")
    tip = repo.head(branch)
    assert tip is not None
    informed = repo.is_merged(branch, "main", tip=tip, ahead=repo.divergence("main", branch).ahead)
    assert alone == informed
    return alone


def test_zero_commit_branch_is_not_merged(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "z"
    repo.create_worktree(path, "task/z", "main")
    assert merged(repo, "task/z") is False
    commit(git_repo, "later.txt", "later\n")
    assert merged(repo, "task/z") is False
    assert repo.merge_base_into(path, "main") is True  # a fast-forward: still no work of its own
    assert repo.head("task/z") == repo.head("main")
    assert merged(repo, "task/z") is False
    assert repo.is_merged("no-such-branch", "main") is False


def test_merged_with_merge_commit(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "m"
    repo.create_worktree(path, "task/m", "main")
    commit(path, "feature.txt", "feature\n")
    assert merged(repo, "task/m") is False
    commit(git_repo, "other.txt", "other\n")
    git(git_repo, "merge", "--no-edit", "--no-ff", "task/m")
    assert merged(repo, "task/m") is True


def test_merged_by_fast_forward(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "ff"
    repo.create_worktree(path, "task/ff", "main")
    commit(path, "feature.txt", "feature\n")
    assert merged(repo, "task/ff") is False
    git(git_repo, "merge", "--ff-only", "task/ff")
    assert repo.head("main") == repo.head("task/ff")
    assert merged(repo, "task/ff") is True


def test_merged_by_rebase_style_cherry_pick(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "r"
    repo.create_worktree(path, "task/r", "main")
    first = commit(path, "one.txt", "1\n")
    second = commit(path, "two.txt", "2\n")
    commit(git_repo, "other.txt", "other\n")
    git(git_repo, "cherry-pick", first)
    assert merged(repo, "task/r") is False  # only half of it landed
    git(git_repo, "cherry-pick", second)
    assert repo.divergence("main", "task/r").ahead == 2  # not ancestors: patch equivalence decides
    assert merged(repo, "task/r") is True


def test_is_dirty(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "dirty"
    repo.create_worktree(path, "task/dirty", "main")
    assert repo.is_dirty(path) == []
    (path / "README.md").write_text("changed\n")
    (path / "new" / "deep").mkdir(parents=True)
    (path / "new" / "deep" / "file.txt").write_text("untracked\n")
    assert sorted(repo.is_dirty(path)) == [" M README.md", "?? new/deep/file.txt"]
    assert repo.is_dirty(git_repo) == []


def test_merge_base_into_clean(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "mb"
    repo.create_worktree(path, "task/mb", "main")
    mine = commit(path, "mine.txt", "mine\n")
    theirs = commit(git_repo, "theirs.txt", "theirs\n")
    assert repo.merge_base_into(path, "main") is True
    assert (path / "theirs.txt").read_text() == "theirs\n"
    assert (path / "mine.txt").read_text() == "mine\n"
    assert git(path, "merge-base", "--is-ancestor", theirs, "HEAD") == ""
    assert git(path, "merge-base", "--is-ancestor", mine, "HEAD") == ""
    assert repo.divergence("main", "task/mb") == Divergence(ahead=2, behind=0)
    assert repo.is_dirty(path) == []


def test_merge_base_into_conflict_aborts(repo: Git, git_repo: Path, wt_root: Path) -> None:
    path = wt_root / "mc"
    repo.create_worktree(path, "task/mc", "main")
    mine = commit(path, "README.md", "# mine\n")
    commit(git_repo, "README.md", "# theirs\n")
    (path / "notes.txt").write_text("untracked notes\n")
    assert repo.merge_base_into(path, "main") is False
    assert repo.head("task/mc") == mine
    assert (path / "README.md").read_text() == "# mine\n"
    assert repo.is_dirty(path) == ["?? notes.txt"]  # no merge leftovers, untracked work kept
    assert not (Path(git(path, "rev-parse", "--absolute-git-dir")) / "MERGE_HEAD").exists()


def test_merge_base_into_refuses_dirty_or_foreign(repo: Git, wt_root: Path, tmp_path: Path) -> None:
    path = wt_root / "md"
    repo.create_worktree(path, "task/md", "main")
    (path / "README.md").write_text("uncommitted edit\n")
    with pytest.raises(GitError):
        repo.merge_base_into(path, "main")
    assert (path / "README.md").read_text() == "uncommitted edit\n"
    with pytest.raises(GitError):
        repo.merge_base_into(tmp_path, "main")


def test_timeout_is_enforced(git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hook = tmp_path / "slow-editor"
    hook.write_text("#!/bin/sh\nsleep 30\n")
    hook.chmod(0o755)
    monkeypatch.setenv("GIT_EDITOR", str(hook))
    repo = Git(git_repo, timeout=1.0)
    assert repo.head("main") is not None  # fast commands are unaffected
    before = repo.head("main")
    with pytest.raises(GitError, match="timed out"):
        repo._run("commit", "--allow-empty")  # waits for an editor that never returns
    assert repo.head("main") == before


# -- never losing uncommitted work ---------------------------------------------------------------------


def _ignore_build_output(git_repo: Path) -> None:
    commit(git_repo, ".gitignore", "build/\n", "ignore build output")


@pytest.mark.parametrize("change", ["modified", "untracked", "deleted", "staged"])
def test_remove_worktree_refuses_a_worktree_with_uncommitted_work(
    repo: Git, git_repo: Path, wt_root: Path, change: str
) -> None:
    path = wt_root / "busy"
    repo.create_worktree(path, "task/busy", "main")
    if change == "modified":
        (path / "README.md").write_text("edited\n")
    elif change == "untracked":
        (path / "notes").mkdir()
        (path / "notes" / "idea.txt").write_text("keep me\n")
    elif change == "deleted":
        (path / "README.md").unlink()
    else:
        (path / "staged.txt").write_text("staged\n")
        git(path, "add", "staged.txt")
    before = git(path, "status", "--porcelain", "--untracked-files=all")

    with pytest.raises(DirtyWorktree, match="uncommitted or untracked") as raised:
        repo.remove_worktree(path, wt_root)

    assert raised.value.changes
    assert path.resolve() in repo.worktrees()
    assert git(path, "status", "--porcelain", "--untracked-files=all") == before


def test_remove_worktree_takes_a_clean_worktree_with_its_ignored_files(
    repo: Git, git_repo: Path, wt_root: Path
) -> None:
    _ignore_build_output(git_repo)
    path = wt_root / "built"
    repo.create_worktree(path, "task/built", "main")
    (path / "build").mkdir()
    (path / "build" / "out.bin").write_bytes(b"\0" * 100)
    repo.remove_worktree(path, wt_root)
    assert not path.exists()
    assert path.resolve() not in repo.worktrees()


def test_save_leftovers_snapshots_work_without_touching_the_worktree_or_its_index(
    repo: Git, git_repo: Path, wt_root: Path
) -> None:
    _ignore_build_output(git_repo)
    path = wt_root / "left"
    repo.create_worktree(path, "task/left", "main")
    commit(path, "kept.txt", "committed\n")
    (path / "README.md").write_text("edited, not committed\n")
    (path / "staged.txt").write_text("staged only\n")
    git(path, "add", "staged.txt")
    (path / "kept.txt").unlink()
    (path / "new" / "deep").mkdir(parents=True)
    (path / "new" / "deep" / "file.txt").write_text("untracked\n")
    (path / "build").mkdir()
    (path / "build" / "out.bin").write_text("ignored\n")
    status_before = git(path, "status", "--porcelain", "--untracked-files=all")
    index_before = git(path, "diff", "--cached", "--name-status")
    head = repo.head("task/left")
    ref = leftovers_ref("left")

    sha = repo.save_leftovers(path, ref, "swarm: leftovers of task left")

    assert sha is not None and repo.head(ref) == sha
    assert git(path, "status", "--porcelain", "--untracked-files=all") == status_before
    assert git(path, "diff", "--cached", "--name-status") == index_before
    assert git(git_repo, "rev-parse", f"{sha}^1") == head
    files = set(git(git_repo, "ls-tree", "-r", "--name-only", sha).splitlines())
    assert files == {".gitignore", "README.md", "staged.txt", "new/deep/file.txt"}  # kept.txt deleted, no build/
    assert git(git_repo, "show", f"{sha}:README.md") == "edited, not committed"
    assert git(git_repo, "log", "-1", "--format=%s", sha) == "swarm: leftovers of task left"

    # the worktree can go now; the documented command brings the work back in a checkout of the branch
    repo.remove_worktree(path, wt_root, discard_changes=True)
    again = wt_root / "again"
    repo.create_worktree(again, "task/left", "main")
    git(again, "checkout", ref, "--", ".")
    assert (again / "new" / "deep" / "file.txt").read_text() == "untracked\n"
    assert (again / "README.md").read_text() == "edited, not committed\n"
    assert (again / "staged.txt").read_text() == "staged only\n"


def test_save_leftovers_keeps_what_was_saved_before_and_skips_a_clean_worktree(
    repo: Git, git_repo: Path, wt_root: Path
) -> None:
    path = wt_root / "twice"
    repo.create_worktree(path, "task/twice", "main")
    ref = leftovers_ref("twice")
    assert repo.save_leftovers(path, ref, "m") is None
    assert repo.head(ref) is None
    (path / "one.txt").write_text("1\n")
    first = repo.save_leftovers(path, ref, "m")
    (path / "two.txt").write_text("2\n")
    second = repo.save_leftovers(path, ref, "m")
    assert second is not None and first is not None and second != first
    assert git(git_repo, "rev-parse", f"{second}^2") == first  # the earlier save stays reachable


def test_save_leftovers_works_without_a_configured_identity(
    repo: Git, wt_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = wt_root / "anon"
    repo.create_worktree(path, "task/anon", "main")
    (path / "x.txt").write_text("x\n")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("EMAIL", "")
    assert repo.save_leftovers(path, leftovers_ref("anon"), "m") is not None


def test_leftovers_ref_names_are_safe() -> None:
    assert leftovers_ref("fix-login-3") == "refs/swarm/leftovers/fix-login-3"
    assert leftovers_ref("Some Dir..name") == "refs/swarm/leftovers/some-dir-name"
    assert leftovers_ref("...") == "refs/swarm/leftovers/worktree"


def test_disk_full_is_recognised_in_git_errors() -> None:
    assert GitError("`git worktree add` exited 128: error: unable to write: No space left on device").disk_full
    assert not GitError("`git worktree add` exited 128: fatal: invalid reference: nope").disk_full
