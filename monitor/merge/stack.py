"""Stacked dependent tasks, as pure decisions over the registry: when a dependent may start on its dependency's
branch instead of waiting for the merge, when a stacked branch must follow its dependency (restack), and how a
stack reads in `swarm status`.

Definitions (the README's ``[plan]`` section says the same):

- A dependency's **checked head** (``Task.passed_head``) is the latest head at which its own definition-of-done
  items other than the human's part all passed: commits on the branch, no conflict with its base (and up to date
  where required), the pull request open and showing that head, CI green (or no CI). Reviews, screenshots and
  the merge are not required.
- A queued task **stacks** on a dependency when stacking is on for it (``[plan] stack``: "contracts" = the
  dependency owns a contract of the plan, true = any dependency), every other dependency is merged, and the
  dependency is running, checking or ready with a checked head. The task then branches from that head, its base
  branch is the dependency's branch (its PR targets it), and ``stack_base_sha`` records the head.
- A stacked task **restacks** when its dependency merged (onto the dependency's base; the PR is retargeted) or
  when the dependency has a newer checked head (onto that head), and only while no agent of its own runs (a
  running attempt is never disturbed: the restack waits for it to end).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from registry.models import Status, Task

STACKABLE = (Status.running, Status.checking, Status.ready)  # a dependency in these states may carry a stack
RESTACKABLE = (Status.checking, Status.ready)  # a dependent in these states has no agent at work in its worktree


@dataclass(frozen=True)
class Restack:
    """Bring a stacked branch onto ``onto`` (a commit): rebase the commits after ``old`` (or merge), push with a
    lease, retarget the PR to ``base_branch``. ``stacked_on`` is the dependency afterwards (None: unstacked)."""

    task_id: str
    onto: str  # a commit sha, or a branch name (resolved through the forge's view of it) when unstacking
    old: str  # the dependency head the branch was built on
    base_branch: str
    stacked_on: str | None
    why: str


def stacks_on(task: Task, dep: str, mode: str) -> bool:
    """Whether stacking is on for ``task`` over its dependency ``dep`` (``[plan] stack`` as a policy mode)."""
    return mode == "all" or (mode == "contracts" and dep in task.contract_deps)


def stack_target(task: Task, tasks: Mapping[str, Task], mode: str) -> tuple[Task | None, str]:
    """The dependency a queued task can start on now (or None), and otherwise why it waits for it ("" when
    stacking does not apply: the task waits for its dependencies' merges as before)."""
    if mode == "off":
        return None, ""
    open_deps = [tasks[d] for d in task.after if d in tasks and tasks[d].status is not Status.merged]
    if len(open_deps) != 1 or any(d not in tasks for d in task.after):
        return None, ""
    dep = open_deps[0]
    if not stacks_on(task, dep.id, mode) or dep.status not in STACKABLE:
        return None, ""
    if not dep.passed_head:
        return None, f"stacks on {dep.id} once its branch passes its own checks"
    return dep, ""


def plan_restacks(tasks: Mapping[str, Task]) -> tuple[list[Restack], dict[str, str]]:
    """The restacks due now, and why the other stacked tasks wait for theirs."""
    due: list[Restack] = []
    waiting: dict[str, str] = {}
    for task in sorted(tasks.values(), key=lambda t: t.created_at):
        if task.stacked_on is None or not task.status.active:
            continue
        dep = tasks.get(task.stacked_on)
        old = task.stack_base_sha or ""
        if dep is None:  # archived: its merge was seen long ago; go home
            action = Restack(task.id, task.stack_home or task.base_branch, old, task.stack_home or task.base_branch,
                             None, f"{task.stacked_on} is gone from the registry")
        elif dep.status is Status.merged:
            parent = next((t for t in tasks.values() if t.branch == dep.base_branch and t.status.active), None)
            action = Restack(task.id, dep.base_branch, old, dep.base_branch, parent.id if parent else None,
                             f"{dep.id} merged into {dep.base_branch}")
        elif dep.passed_head and dep.passed_head != task.stack_base_sha:
            action = Restack(task.id, dep.passed_head, old, dep.branch, dep.id,
                             f"{dep.id} has a new checked head {dep.passed_head[:10]}")
        else:
            continue
        if task.status not in RESTACKABLE:
            waiting[task.id] = f"restack waits for the agent to finish ({action.why})"
            continue
        due.append(action)
    return due, waiting


def stack_position(task: Task, tasks: Mapping[str, Task]) -> str:
    """"on #12 (task-x, ready)" or "on task-x (running)"; "" for a task that is not stacked."""
    if task.stacked_on is None:
        return ""
    dep = tasks.get(task.stacked_on)
    if dep is None:
        return f"on {task.stacked_on}"
    where = f"#{dep.pr.number} ({dep.id}, {dep.status.value})" if dep.pr else f"{dep.id} ({dep.status.value})"
    return f"on {where}"


def stack_wait(task: Task, tasks: Mapping[str, Task]) -> str:
    """Why a stacked task cannot land yet: its dependency has to merge first (the merge order)."""
    dep = tasks.get(task.stacked_on or "")
    if dep is None or dep.status is Status.merged or not task.status.active:
        return ""
    return f"lands after {dep.id} merges (its PR targets {dep.branch} until then)"


def stack_json(task: Task, tasks: Mapping[str, Task]) -> dict[str, object] | None:
    """The stack part of `swarm status --json` (None when the task is not stacked)."""
    if task.stacked_on is None:
        return None
    dep = tasks.get(task.stacked_on)
    return {
        "on": task.stacked_on,
        "pr": dep.pr.number if dep is not None and dep.pr else None,
        "base_branch": task.base_branch,
        "base_sha": task.stack_base_sha,
        "position": stack_position(task, tasks),
        "waits": stack_wait(task, tasks),
    }
