"""Shaping a valid plan into one that runs well in parallel: merge, sequence, cap.

Why: a plan can be valid and still bad to run. An agent session per three-line change wastes more than it
saves, so trivial tasks (description and criteria under ``llm.min_task_chars``) are merged into a
neighbour. Two agents editing one file in parallel end in a merge conflict, so tasks whose scopes overlap
(same file, one path inside the other, a glob that may match) and are not already ordered get a
dependency edge and run in sequence. And the plan is held to ``llm.max_tasks``.

The cap's rule: up to twice ``max_tasks``, the smallest tasks are merged into a neighbour until the plan
fits (work is kept, only regrouped); beyond that the plan was cut too fine to regroup blindly and is refused
(:class:`~orchestrator.brain.plan_repair.PlanRejected`), so the user raises the cap or narrows the request
instead of getting a muddle. A merge never creates a dependency cycle and never makes a description longer
than the model allows; contract owners and dependencies follow a merged task. Every change is a plan note.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.brain.plan import Plan, PlannedTask
from orchestrator.brain.plan_repair import PlanRejected

MAX_TASKS_TO_SHAPE = 200  # bounds the work of shaping; more tasks than this is refused outright
MAX_DESCRIPTION = 20000  # PlannedTask.description's max_length
_GLOB = re.compile(r"[*?\[]")


# -- graph ----------------------------------------------------------------------------------------------


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as [a, b, ..., a], or None (edges to ids outside the graph are ignored)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in graph:
        if state.get(start):
            continue
        path = [start]
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(graph[start]))]
        state[start] = 1
        while stack:
            node, edges = stack[-1]
            nxt = next((e for e in edges if e in graph and state.get(e) != 2), None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            else:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(graph[nxt])))
    return None


def _reaches(graph: Mapping[str, Sequence[str]], start: str, goal: str) -> bool:
    """Whether ``start`` depends, directly or not, on ``goal``."""
    seen, todo = {start}, list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


# -- shape ----------------------------------------------------------------------------------------------


@dataclass
class _Draft:
    id: str
    title: str
    kind: str
    description: str
    scope: list[str]
    acceptance: list[str]
    depends_on: list[str]
    agent: str
    absorbed: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.description) + sum(len(a) for a in self.acceptance)

    def merged_description(self, other: _Draft) -> str:
        return f"{self.description}\n\nAlso ({other.title}): {other.description}"


def _norm_path(path: str) -> str:
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return "" if path in (".", "/") else path.strip("/")


def _within(inner: str, outer: str) -> bool:
    """``inner`` is ``outer`` or under it ("" is the whole repository)."""
    return not outer or inner == outer or inner.startswith(outer + "/")


def _glob_dir(pattern: str) -> str:
    """The directory a glob cannot leave: "src/api/*.py" → "src/api", "*.css" → "" (anywhere)."""
    stem = _GLOB.split(pattern, 1)[0]
    return stem.rsplit("/", 1)[0] if "/" in stem else ""


def paths_overlap(a: str, b: str) -> bool:
    """Same file, one path inside the other, or a glob that may match the other ("" or "." = the repo).

    Errs towards "overlap": a false overlap costs some parallelism, a missed one a merge conflict.
    """
    a, b = _norm_path(a), _norm_path(b)
    glob_a, glob_b = bool(_GLOB.search(a)), bool(_GLOB.search(b))
    if not glob_a and not glob_b:
        return _within(a, b) or _within(b, a)
    if glob_a and glob_b:
        da, db = _glob_dir(a), _glob_dir(b)
        return _within(da, db) or _within(db, da)
    pattern, path = (a, b) if glob_a else (b, a)
    return fnmatch.fnmatchcase(path, pattern) or _within(_glob_dir(pattern), path)


def _shared_path(a: _Draft, b: _Draft) -> tuple[str, str] | None:
    for pa in a.scope:
        for pb in b.scope:
            if pa.strip() and pb.strip() and paths_overlap(pa, pb):  # "" says nothing; "." is the repo
                return pa, pb
    return None


def _graph(drafts: Sequence[_Draft]) -> dict[str, list[str]]:
    return {d.id: d.depends_on for d in drafts}


def _can_merge(drafts: Sequence[_Draft], victim: _Draft, target: _Draft) -> bool:
    if len(target.merged_description(victim)) > MAX_DESCRIPTION:
        return False
    graph = {d.id: [target.id if e == victim.id else e for e in d.depends_on] for d in drafts if d is not victim}
    graph[target.id] = [e for e in dict.fromkeys([*graph[target.id], *victim.depends_on]) if e != target.id]
    graph = {k: [e for e in v if e != k] for k, v in graph.items()}
    return find_cycle(graph) is None


def _merge_target(drafts: Sequence[_Draft], victim: _Draft) -> _Draft | None:
    """The neighbour to merge ``victim`` into: a direct dependency either way, then a task sharing files,
    then the task before it, then the one after; the first that stays acyclic and within size."""
    others = [d for d in drafts if d is not victim]
    at = drafts.index(victim)
    ranked = [
        *[d for d in reversed(others) if d.id in victim.depends_on],
        *[d for d in others if victim.id in d.depends_on],
        *[d for d in others if _shared_path(d, victim)],
        *([drafts[at - 1]] if at > 0 else []),
        *([drafts[at + 1]] if at + 1 < len(drafts) else []),
    ]
    tried: set[str] = set()
    for candidate in ranked:
        if candidate.id not in tried:
            tried.add(candidate.id)
            if _can_merge(drafts, victim, candidate):
                return candidate
    return None


def _merge(drafts: list[_Draft], victim: _Draft, target: _Draft, owners: list[str]) -> None:
    target.description = target.merged_description(victim)
    target.scope = list(dict.fromkeys([*target.scope, *victim.scope]))
    target.acceptance = list(dict.fromkeys([*target.acceptance, *victim.acceptance]))
    target.depends_on = [e for e in dict.fromkeys([*target.depends_on, *victim.depends_on]) if e != target.id]
    target.absorbed.append(victim.id)
    drafts.remove(victim)
    for d in drafts:
        if victim.id in d.depends_on:
            d.depends_on = [e for e in dict.fromkeys(target.id if e == victim.id else e for e in d.depends_on)
                            if e != d.id]
    owners[:] = [target.id if owner == victim.id else owner for owner in owners]


def _merge_smallest(drafts: list[_Draft], candidates: Iterable[_Draft],
                    owners: list[str]) -> tuple[_Draft, _Draft] | None:
    """Merge the smallest of ``candidates`` that has a neighbour to go into; (victim, target) or None."""
    for victim in sorted(candidates, key=lambda d: d.size):
        target = _merge_target(drafts, victim)
        if target is not None:
            _merge(drafts, victim, target, owners)
            return victim, target
    return None


def shape(plan: Plan, *, min_task_chars: int, max_tasks: int) -> Plan:
    """``plan`` merged, sequenced and capped as the module docstring says; what changed is in its notes."""
    if len(plan.tasks) > MAX_TASKS_TO_SHAPE:
        raise PlanRejected(f"the model planned {len(plan.tasks)} tasks (at most {MAX_TASKS_TO_SHAPE} are "
                           "considered); narrow the request")
    notes = list(plan.notes)
    drafts = [_Draft(t.id, t.title, t.kind, t.description, list(t.scope), list(t.acceptance), list(t.depends_on),
                     t.agent) for t in plan.tasks]
    owners = [c.owner for c in plan.contracts]  # contract owners follow their task into a merge

    while len(drafts) > 1:  # trivial tasks into a neighbour
        merged = _merge_smallest(drafts, [d for d in drafts if d.size < min_task_chars], owners)
        if merged is None:
            break
        victim, target = merged
        notes.append(f"merged trivial task {victim.id!r} ({victim.size} characters of description and "
                     f"criteria, under llm.min_task_chars = {min_task_chars}) into {target.id!r}")

    if len(drafts) > 2 * max_tasks:
        raise PlanRejected(f"the model planned {len(drafts)} tasks, more than twice llm.max_tasks = {max_tasks}: "
                           "too many to regroup; raise llm.max_tasks or split the request")
    while len(drafts) > max_tasks:
        merged = _merge_smallest(drafts, list(drafts), owners)
        if merged is None:
            raise PlanRejected(f"the model planned {len(drafts)} tasks, over llm.max_tasks = {max_tasks}, and "
                               "they cannot be merged without a dependency cycle; raise llm.max_tasks")
        victim, target = merged
        notes.append(f"merged task {victim.id!r} into {target.id!r} to stay within llm.max_tasks = {max_tasks}")

    for j, later in enumerate(drafts):  # parallel edits of one file end in conflicts: run them in sequence
        for earlier in drafts[:j]:
            shared = _shared_path(earlier, later)
            graph = _graph(drafts)
            if shared and not _reaches(graph, later.id, earlier.id) and not _reaches(graph, earlier.id, later.id):
                later.depends_on.append(earlier.id)
                notes.append(f"task {later.id!r} now waits for {earlier.id!r}: both touch "
                             f"{shared[0]!r}{'' if shared[0] == shared[1] else f' / {shared[1]!r}'}")

    tasks = [PlannedTask(id=d.id, title=d.title, kind=d.kind, description=d.description, scope=tuple(d.scope),
                         acceptance=tuple(d.acceptance), depends_on=tuple(d.depends_on), agent=d.agent)
             for d in drafts]
    contracts = [c.model_copy(update={"owner": owner}) for c, owner in zip(plan.contracts, owners, strict=True)]
    return Plan(summary=plan.summary, tasks=tuple(tasks), contracts=tuple(contracts),
                context_used=plan.context_used, notes=tuple(notes))


__all__ = ["MAX_TASKS_TO_SHAPE", "find_cycle", "paths_overlap", "shape"]
