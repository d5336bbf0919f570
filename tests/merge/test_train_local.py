"""The merge train on the local forge, through real ticks (real git, real tmux, CI run as a local job):
`swarm merge` approvals land one at a time after CI passed on a head up to date with the base; a second
approved task that conflicts with the first, or whose updated head fails CI, is handed to the fixer and
never merged; the human is told when the train lands and when it stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.merging import MergeError, request_merge
from orchestrator.status import task_json
from registry.models import FailureKind, Status, Task
from tests.merge.steps import git, spawn, step, steps_world, tick_until

QUEUE = '\n[merge]\nmode = "queue"\nmethod = "merge"\n'
# CI imports every module at the top of the worktree: a name one branch removes and another uses fails it
CI = "python3 ci_check.py"
CI_CHECK = """import importlib, os
if __name__ == "__main__":
    for name in sorted(os.listdir()):
        if name.endswith(".py") and name != "ci_check.py":
            importlib.import_module(name[:-3])
"""
BY_BRANCH = """branch = subprocess.run(["git", "branch", "--show-current"], capture_output=True, text=True).stdout
"""


def _setup(repo: Path) -> None:
    (repo / "m.py").write_text("def helper():\n    return 1\n")
    (repo / "ci_check.py").write_text(CI_CHECK)
    git(repo, "add", "m.py", "ci_check.py")
    git(repo, "commit", "-qm", "m")


def _waiting(task: Task) -> str:
    return task.merge_request.waiting if task.merge_request is not None else ""


def _is_ancestor(repo: Path, older: str, newer: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=repo).returncode == 0


def test_swarm_merge_refuses_clearly(git_repo: Path, tmux_socket: str, tmp_path: Path) -> None:
    world, _clock, _ = steps_world(git_repo, tmux_socket, tmp_path / "steps")
    with pytest.raises(MergeError, match=r'merge mode is manual: set \[merge\] mode = "queue"'):
        request_merge(git_repo, "nope", "alice")
    world, _clock, _ = steps_world(git_repo, tmux_socket, tmp_path / "steps", extra=QUEUE)
    with pytest.raises(MergeError, match="no task 'nope'"):
        request_merge(git_repo, "nope", "alice")
    task = spawn(world)  # no step: it commits nothing and is never ready
    with pytest.raises(MergeError, match=f"task {task.id} is running.*only a ready task"):
        request_merge(git_repo, task.id, "alice")


def test_an_approved_task_lands_and_a_second_whose_updated_head_fails_ci_goes_to_the_fixer(
        git_repo: Path, tmux_socket: str, tmp_path: Path) -> None:
    _setup(git_repo)
    steps = tmp_path / "steps"
    world, _clock, notifier = steps_world(git_repo, tmux_socket, steps, ci=CI, extra=QUEUE)
    # A renames helper (CI passes alone); B adds a module that uses helper (CI passes alone)
    step(steps, 2, "import time\ntime.sleep(60)\n")  # the fixer: it is enough that it started
    step(steps, 1, BY_BRANCH +
                   "if 'rename' in branch:\n"
                   "    commit({'m.py': 'def helper2():\\n    return 2\\n'}, 'rename helper')\n"
                   "else:\n"
                   "    commit({'b.py': 'from m import helper\\nVALUE = helper()\\n'}, 'use helper')\n")
    a = spawn(world, "Rename helper")
    b = spawn(world, "Use helper")
    state = tick_until(world, "both ready", lambda s: all(s.tasks[t.id].status is Status.ready for t in (a, b)),
                       timeout=90)
    b_head = git(git_repo, "rev-parse", b.branch)
    request_merge(git_repo, a.id, "alice")
    message = request_merge(git_repo, b.id, "bob")
    assert message.startswith(f"{b.id}: approved by bob for {b_head[:7]}; 2nd in the merge train")
    state = tick_until(world, "A merged", lambda s: s.tasks[a.id].status is Status.merged)
    assert git(git_repo, "show", "main:m.py") == "def helper2():\n    return 2"
    assert state.tasks[b.id].merge_request is not None

    state = tick_until(world, "B waits for its gate", lambda s: _waiting(s.tasks[b.id]).startswith(
        "1st in train; waiting for CI on"))
    updated = git(git_repo, "rev-parse", b.branch)
    shown = task_json(state.tasks[b.id], state.tasks)["merge"]
    assert shown["position"] == 1 and shown["by"] == "bob" and shown["via"] == "cli"
    assert shown["waiting"] == f"1st in train; waiting for CI on {updated[:7]}"
    assert _is_ancestor(git_repo, b_head, updated) and _is_ancestor(git_repo, "main", updated), "brought up to date"
    state = tick_until(world, "B handed to the fixer", lambda s: s.tasks[b.id].status is Status.running
                       and len(s.tasks[b.id].attempts) == 2, timeout=90)
    fixer = state.tasks[b.id].attempts[1]
    assert fixer.fix is not None and fixer.fix.kind is FailureKind.ci_failed
    failed = state.tasks[b.id].attempts[0].failure
    assert failed is not None and "ImportError" in failed.evidence
    assert state.tasks[b.id].merge_request is None, "a fixed head needs a new approval"
    assert not _is_ancestor(git_repo, fixer.fix.head, "main") and not _is_ancestor(git_repo, b_head, "main")
    kinds = [(m.kind, m.data.get("status")) for m in notifier.sent if m.kind == "train"]
    assert ("train", "stopped") in kinds and ("train", "landed") in kinds
    landed = next(m for m in notifier.sent if m.data.get("status") == "landed")
    assert a.id in landed.text and b.id not in landed.text


def test_two_approved_tasks_that_conflict_the_second_goes_to_the_fixer_never_merged(
        git_repo: Path, tmux_socket: str, tmp_path: Path) -> None:
    _setup(git_repo)
    steps = tmp_path / "steps"
    world, _clock, notifier = steps_world(git_repo, tmux_socket, steps, ci=CI, extra=QUEUE)
    step(steps, 1, BY_BRANCH + "value = 2 if 'two' in branch else 3\n"
                   "commit({'m.py': f'def helper():\\n    return {value}\\n'}, f'helper returns {value}')\n")
    step(steps, 2, "import time\ntime.sleep(60)\n")
    a = spawn(world, "Return two")
    b = spawn(world, "Return three")
    tick_until(world, "both ready", lambda s: all(s.tasks[t.id].status is Status.ready for t in (a, b)), timeout=90)
    b_head = git(git_repo, "rev-parse", b.branch)
    request_merge(git_repo, b.id, "bob")  # approved first: it goes first
    request_merge(git_repo, a.id, "alice")
    state = tick_until(world, "B merged", lambda s: s.tasks[b.id].status is Status.merged)
    waiting = state.tasks[a.id].merge_request
    assert waiting is not None and waiting.waiting == "1st in train; next: bring it up to date with main"
    state = tick_until(world, "A handed to the fixer", lambda s: len(s.tasks[a.id].attempts) == 2, timeout=60)
    fixer = state.tasks[a.id].attempts[1]
    assert fixer.fix is not None and fixer.fix.kind is FailureKind.conflict
    prompt = Path(fixer.prompt_path).read_text()
    assert "<<<<<<<" in prompt and "return 2" in prompt and "return 3" in prompt
    assert git(git_repo, "show", "main:m.py") == "def helper():\n    return 3"
    assert _is_ancestor(git_repo, b_head, "main")
    assert not _is_ancestor(git_repo, git(git_repo, "rev-parse", a.branch), "main")
    assert any(m.kind == "train" and m.data.get("status") == "stopped" and a.id in m.text for m in notifier.sent)


def test_swarm_merge_on_the_command_line_lands_the_task(git_repo: Path, tmux_socket: str, tmp_path: Path) -> None:
    _setup(git_repo)
    steps = tmp_path / "steps"
    world, _clock, _ = steps_world(git_repo, tmux_socket, steps, ci=CI, extra=QUEUE.replace('"merge"', '"squash"'))
    step(steps, 1, "commit({'c.py': 'C = 1\\n'}, 'add c')\n")
    task = spawn(world, "Add c")
    tick_until(world, "ready", lambda s: s.tasks[task.id].status is Status.ready)
    swarm = str(Path(sys.executable).parent / "swarm")
    done = subprocess.run([swarm, "merge", task.id[:8], "--by", "carol"], cwd=git_repo, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert f"{task.id}: approved by carol" in done.stdout and "1st in the merge train" in done.stdout
    again = subprocess.run([swarm, "merge", "no-such-task"], cwd=git_repo, capture_output=True, text=True)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1] == "swarm: error: no task 'no-such-task' (see `swarm status`)"
    subprocess.run([swarm, "monitor", "run-once"], cwd=git_repo, check=True, capture_output=True)
    state = world.registry.read()
    assert state.tasks[task.id].status is Status.merged
    assert git(git_repo, "log", "-1", "--format=%s%n%P", "main").splitlines()[0] == f"Add c (swarm task {task.id})"
    assert len(git(git_repo, "log", "-1", "--format=%P", "main").split()) == 1, "squash: one parent"
    assert git(git_repo, "show", "main:c.py") == "C = 1"
