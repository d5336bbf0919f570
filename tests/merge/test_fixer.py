"""The fixer, through real ticks on the local forge (real git, real tmux): a conflict on a finished task goes
to a fixer attempt in the same worktree with both sides' hunks and the guardrails; a fix that drops one
side's function or puts a placeholder in is rejected (its commits kept under a ref, the branch put back) and
the next attempt gets that evidence; a good fix is judged as usual."""

from __future__ import annotations

from pathlib import Path

from monitor.merge.gitops import rejected_ref
from registry.models import FailureKind, Status
from tests.merge.steps import finished, git, spawn, step, steps_world, tick_until

BASE = "def shared():\n    return 1\n"
OURS = BASE + "\n\ndef ours_feature(x):\n    return x * 2\n"
THEIRS = BASE + "\n\ndef theirs_feature(y):\n    return y + 3\n"
BOTH = OURS + "\n\ndef theirs_feature(y):\n    return y + 3\n"


def _setup(git_repo: Path) -> None:
    (git_repo / "m.py").write_text(BASE)
    git(git_repo, "add", "m.py")
    git(git_repo, "commit", "-qm", "base")


def test_a_conflict_fix_that_drops_a_side_is_rejected_then_a_good_fix_lands(
        git_repo: Path, tmux_socket: str, tmp_path: Path) -> None:
    _setup(git_repo)
    steps = tmp_path / "steps"
    world, _clock, _ = steps_world(git_repo, tmux_socket, steps)
    step(steps, 1, f"commit({{'m.py': {OURS!r}}}, 'ours')\n")
    # the fixer "resolves" by keeping the branch's side wholesale: theirs_feature is lost
    step(steps, 2, "subprocess.run(['git', 'merge', '-q', '-s', 'ours', '--no-edit', 'main'], check=True)\n")
    step(steps, 3, "subprocess.run(['git', 'merge', '-q', '--no-edit', 'main'])\n"
                   f"commit({{'m.py': {BOTH!r}}}, 'resolve keeping both sides')\n")
    task = spawn(world)
    tick_until(world, "attempt 1 ready", lambda s: s.tasks[task.id].status is Status.ready)
    pre_fix = git(git_repo, "rev-parse", task.branch)

    (git_repo / "m.py").write_text(THEIRS)  # the base moves under the finished branch, in the same place
    git(git_repo, "commit", "-qam", "theirs")
    theirs = git(git_repo, "rev-parse", "main")
    state = tick_until(world, "the fixer started", lambda s: len(s.tasks[task.id].attempts) == 2)
    attempt = state.tasks[task.id].attempts[1]
    assert attempt.fix is not None and attempt.fix.kind is FailureKind.conflict
    assert (attempt.fix.head, attempt.fix.base) == (pre_fix, theirs)
    assert Path(state.tasks[task.id].worktree).is_dir()

    state = tick_until(world, "the bad fix judged", lambda s: len(s.tasks[task.id].attempts) == 3
                       and finished(world, task.id, 2))
    prompt = (steps / "prompt-2.md").read_text()
    assert "ours_feature" in prompt and "theirs_feature" in prompt and "<<<<<<<" in prompt
    assert "Guardrails for this fix" in prompt and "git restore --source=HEAD" in prompt
    rejected = state.tasks[task.id].attempts[1].failure
    assert rejected is not None and rejected.kind is FailureKind.fix_rejected
    assert "`theirs_feature` (defined by the base branch) is gone after the fix" in rejected.evidence
    kept = git(git_repo, "rev-parse", rejected_ref(task.id, 2))
    assert git(git_repo, "rev-parse", f"{kept}^1") == pre_fix, "the fixer's merge commit is kept under the ref"
    assert git(git_repo, "rev-parse", f"{kept}^2") == theirs
    assert state.tasks[task.id].attempts[2].fix == attempt.fix, "the retry is verified against the same sides"

    state = tick_until(world, "the good fix ready", lambda s: s.tasks[task.id].status is Status.ready)
    assert "`theirs_feature` (defined by the base branch) is gone" in (steps / "prompt-3.md").read_text()
    assert git(git_repo, "show", f"{task.branch}:m.py") == BOTH.strip()
    assert git(git_repo, "merge-base", "--is-ancestor", theirs, task.branch) == ""


def test_a_ci_fix_that_inserts_a_placeholder_is_rejected(git_repo: Path, tmux_socket: str, tmp_path: Path) -> None:
    _setup(git_repo)
    steps = tmp_path / "steps"
    ci = 'python3 -c "import m; assert m.double(2) == 4"'
    world, _clock, _ = steps_world(git_repo, tmux_socket, steps, ci=ci)
    buggy = BASE + "\n\ndef double(x):\n    return x * 3\n"
    stub = BASE + "\n\ndef double(x):\n    pass  # TODO\n"
    step(steps, 1, f"commit({{'m.py': {buggy!r}}}, 'double')\n")
    step(steps, 2, f"commit({{'m.py': {stub!r}}}, 'silence it')\n")
    step(steps, 3, f"commit({{'m.py': {buggy.replace('x * 3', 'x * 2')!r}}}, 'fix double')\n")
    task = spawn(world)
    state = tick_until(world, "the CI fixer judged", lambda s: len(s.tasks[task.id].attempts) == 3)
    first, second = state.tasks[task.id].attempts[:2]
    assert first.failure is not None and first.failure.kind is FailureKind.ci_failed
    assert second.fix is not None and second.fix.kind is FailureKind.ci_failed
    assert "AssertionError" in (steps / "prompt-2.md").read_text(), "the CI output is the fixer's evidence"
    assert second.failure is not None and second.failure.kind is FailureKind.fix_rejected
    assert "`double` replaced by a placeholder body" in second.failure.evidence
    assert git(git_repo, "rev-parse", task.branch) == second.fix.head, "the branch is back at its pre-fix head"
    assert "silence it" in git(git_repo, "log", "-1", "--format=%s", rejected_ref(task.id, 2))
    state = tick_until(world, "the good fix ready", lambda s: s.tasks[task.id].status is Status.ready)
    assert len(state.tasks[task.id].attempts) == 3
