"""`swarm submit`: one request in, a set of well-scoped tasks out, all spawned or none.

Why this shape: a request ("add CSV export for the accounting team") usually becomes several tasks for
several agents, some depending on others, all needing the same business context and agreeing on the same
interfaces. Doing that by hand is what ``swarm spawn`` leaves to the human; ``submit`` does it with the
planner (one model call) and deterministic code around it:

1. select the business context for the request (``context.py``: relevance within a budget, learnings in);
2. with a model key: ``make_plan`` (its raw answer is dead-lettered under ``.swarm/dead-letter/`` when it
   cannot be used); without one: a single task whose prompt is the request plus the context, and the report
   says so — swarm works without a key, it just does not plan;
3. route each task: the planner's suggested agent only when it names a configured profile, else
   ``[routing]`` by the task's kind;
4. write each prompt (``prompts.py``);
5. check **everything** that could stop a spawn before the first one: the plan's dependencies (known ids,
   no cycle), every routed profile and its binary on PATH, the base branch, the prompt sizes. A plan that
   cannot be spawned whole is not spawned at all;
6. spawn in dependency order, mapping plan ids to registry ids for ``after`` (the monitor starts a task
   only once everything in its ``after`` is merged). If a spawn still fails midway (a disk error, a race),
   the tasks already created are cancelled, and the error says so;
7. split the planning spend evenly over the tasks (``llm_tokens`` / ``llm_cost_usd``), so ``swarm status``
   shows what each task really cost, and record a ``submitted`` event.

``--dry-run`` does 1–5 and prints the plan and every prompt; it spawns nothing and writes no task.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.agents import AgentProfile
from monitor.retry import with_footer
from monitor.tick import World
from orchestrator import tasks as task_ops
from orchestrator.brain.context import SelectedContext, select_context
from orchestrator.brain.llm import Llm
from orchestrator.brain.plan import Plan, PlannedTask, Usage
from orchestrator.brain.prompts import single_prompt, task_prompt
from orchestrator.config import Settings
from orchestrator.wiring import UsageError
from registry.models import RegistryState

NO_KEY_NOTE = "no API key: one task, no planning"
DEAD_LETTER = "dead-letter"
TITLE_LIMIT = 80
DESCRIPTION_LIMIT = 20000  # PlannedTask.description's limit; the prompt keeps the whole request


class SubmitError(Exception):
    """The plan could not be turned into tasks; one line, saying what was (or was not) left behind."""


@dataclass(frozen=True)
class SubmittedTask:
    """One task of the plan as it was (or, on a dry run, would be) spawned."""

    planned: PlannedTask
    agent: str
    prompt: str  # the body handed to spawn; the agent gets it with the common footer
    task_id: str | None = None  # the registry id once spawned
    status: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.planned.id, "title": self.planned.title, "kind": self.planned.kind,
            "agent": self.agent, "scope": list(self.planned.scope), "acceptance": list(self.planned.acceptance),
            "depends_on": list(self.planned.depends_on), "task_id": self.task_id, "status": self.status or None,
            "reason": self.reason or None, "prompt": with_footer(self.prompt),
        }


@dataclass
class SubmitReport:
    request: str
    dry_run: bool
    planned: bool  # False: no model key, one task without planning
    plan: Plan
    context: SelectedContext
    tasks: list[SubmittedTask]
    usage: Usage = field(default_factory=Usage)
    notes: list[str] = field(default_factory=list)  # what swarm decided (rerouting, no key)
    problems: list[str] = field(default_factory=list)  # dry run: what would stop a real submit

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "planned": self.planned,
            "message": None if self.planned else NO_KEY_NOTE,
            "summary": self.plan.summary,
            "context": {"files_used": self.context.files_used, "files_skipped": self.context.files_skipped,
                        "truncated": self.context.truncated, "tokens": self.context.tokens},
            "tasks": [t.as_dict() for t in self.tasks],
            "contracts": [c.model_dump() for c in self.plan.contracts],
            "notes": [*self.notes, *self.plan.notes],
            "problems": self.problems,
            "usage": {**self.usage.model_dump(), "tokens": self.usage.tokens},
        }

    def lines(self, *, prompts: bool | None = None) -> list[str]:
        """The report for people; the prompts are shown on a dry run (or when asked)."""
        out: list[str] = []
        if not self.planned:
            out.append(NO_KEY_NOTE)
        if self.plan.summary.strip():
            out.append(f"plan: {self.plan.summary.strip()}")
        used = ", ".join(self.context.files_used) or "none"
        cut = f" (truncated: {', '.join(self.context.truncated)})" if self.context.truncated else ""
        skipped = f"; skipped: {', '.join(self.context.files_skipped)}" if self.context.files_skipped else ""
        learned = "; learnings included" if self.context.learnings else ""
        out.append(f"context: {used}{cut}{skipped}{learned}")
        if self.usage.tokens:
            out.append(f"planning: {self.usage.tokens} tokens, ${self.usage.cost_usd:.4f}, split over "
                       f"{len(self.tasks)} task(s)")
        out.append(f"tasks ({len(self.tasks)}):")
        for number, task in enumerate(self.tasks, 1):
            planned = task.planned
            out.append(f"  {number}. {planned.id}: {planned.title}")
            out.append(f"     kind {planned.kind}, agent {task.agent}; depends on: "
                       f"{', '.join(planned.depends_on) or '-'}")
            if planned.scope:
                out.append(f"     scope: {', '.join(planned.scope)}")
            for criterion in planned.acceptance:
                out.append(f"     accept: {criterion}")
            if task.task_id:
                out.append(f"     -> {task.task_id}: {task.status}" + (f" ({task.reason})" if task.reason else ""))
        if self.plan.contracts:
            out.append("contracts:")
            for contract in self.plan.contracts:
                first = contract.spec.strip().splitlines()[0] if contract.spec.strip() else ""
                owner = f"; owner {contract.owner}" if contract.owner else "; shared"
                out.append(f"  - {contract.name} ({contract.kind}{owner}): {first}")
        notes = [*self.notes, *self.plan.notes]
        if notes:
            out.append("notes:")
            out += [f"  - {note}" for note in notes]
        for problem in self.problems:
            out.append(f"would fail: {problem}")
        if self.dry_run:
            out.append("dry run: nothing was spawned")
        show_prompts = self.dry_run if prompts is None else prompts
        if show_prompts:
            for task in self.tasks:
                out += ["", f"===== prompt of {task.planned.id} (agent {task.agent}) =====",
                        with_footer(task.prompt).rstrip()]
        return out


# ------------------------------------------------------------------------------------------ planning


def title_of(request: str) -> str:
    """A short title from the request's first line (cut at a word)."""
    first = " ".join(request.strip().splitlines()[0].split()) if request.strip() else "task"
    if len(first) <= TITLE_LIMIT:
        return first
    cut = first[:TITLE_LIMIT].rsplit(" ", 1)[0] or first[:TITLE_LIMIT]
    return cut.rstrip(" ,.;:") + "…"


def single_task_plan(request: str, context: SelectedContext) -> Plan:
    """The plan without a model: one task carrying the request."""
    title = title_of(request)
    description = request.strip()
    if len(description) > DESCRIPTION_LIMIT:
        description = description[: DESCRIPTION_LIMIT - 20] + "\n[... cut ...]"
    planned = PlannedTask(id=task_ops.slugify(title), title=title, description=description)
    return Plan(tasks=(planned,), context_used=tuple(context.files_used))


def configured_profiles(settings: Settings, profiles: Mapping[str, AgentProfile]) -> dict[str, AgentProfile]:
    """The profiles the user set up: declared in ``[agents]`` or named by ``[routing]`` (a built-in profile
    nobody mentioned is not a choice: its CLI is probably not installed)."""
    wanted = set(settings.agents) | set(settings.routing.values())
    return {name: profile for name, profile in profiles.items() if name in wanted}


def route(task: PlannedTask, settings: Settings, configured: Mapping[str, AgentProfile]) -> tuple[str, str]:
    """(the agent for ``task``, a note when the planner's suggestion was not taken)."""
    by_kind = settings.routing.get(task.kind, settings.routing["default"])
    if not task.agent or task.agent == by_kind:
        return by_kind, ""
    if task.agent in configured:
        return task.agent, ""
    return by_kind, (f"task {task.id}: the planner suggested agent {task.agent!r}, which is not a configured "
                     f"profile; routed by kind {task.kind!r} to {by_kind!r}")


def dependency_order(plan: Plan) -> list[PlannedTask]:
    """The tasks with every dependency before its dependents (plan order otherwise); a plan with a duplicate
    id, an unknown dependency or a cycle is refused."""
    by_id: dict[str, PlannedTask] = {}
    for task in plan.tasks:
        if task.id in by_id:
            raise SubmitError(f"the plan has two tasks with id {task.id!r}; nothing was spawned")
        by_id[task.id] = task
    for task in plan.tasks:
        for dep in task.depends_on:
            if dep not in by_id or dep == task.id:
                raise SubmitError(f"the plan's task {task.id!r} depends on {dep!r}, which is not another task of "
                                  "the plan; nothing was spawned")
    ordered: list[PlannedTask] = []
    placed: set[str] = set()
    while len(ordered) < len(plan.tasks):
        ready = [t for t in plan.tasks if t.id not in placed and all(d in placed for d in t.depends_on)]
        if not ready:
            stuck = ", ".join(t.id for t in plan.tasks if t.id not in placed)
            raise SubmitError(f"the plan's dependencies form a cycle ({stuck}); nothing was spawned")
        for task in ready:
            ordered.append(task)
            placed.add(task.id)
    return ordered


def problems_of(world: World, settings: Settings, tasks: Sequence[SubmittedTask]) -> list[str]:
    """Everything that would make a spawn fail, checked before the first one (so none is half-made)."""
    problems: list[str] = []
    profiles = world.runner.profiles
    for task in tasks:
        profile = profiles.get(task.agent)
        if profile is None:
            problems.append(f"task {task.planned.id}: agent {task.agent!r} is not a configured profile (known: "
                            f"{', '.join(sorted(profiles))}); add [agents.{task.agent}] or fix [routing]")
        elif shutil.which(profile.command[0]) is None:
            problems.append(f"task {task.planned.id}: agent {task.agent!r}: command {profile.command[0]!r} is not "
                            f"installed or not on PATH; install it or set [agents.{task.agent}] command "
                            "(`swarm doctor` checks every profile)")
        if not task.planned.title.strip():
            problems.append(f"task {task.planned.id}: the title is empty")
        size = len(task.prompt.encode())
        if size > task_ops.MAX_PROMPT_BYTES:
            problems.append(f"task {task.planned.id}: the prompt is {size} bytes (limit {task_ops.MAX_PROMPT_BYTES}); "
                            "lower context.budget_tokens or shorten the request")
    base = settings.project.base_branch
    if world.git.head(base) is None:
        problems.append(f"base branch {base!r} does not exist; set project.base_branch in swarm.toml")
    return problems


def prepare(
    world: World, settings: Settings, request: str, llm: Llm | None
) -> tuple[Plan, Usage, SelectedContext, list[SubmittedTask], list[str]]:
    """Context, plan, routing and prompts: everything but the spawning (what a dry run shows)."""
    context = select_context(world.layout.repo, settings.context, request)
    configured = configured_profiles(settings, world.runner.profiles)
    if llm is None:
        plan = single_task_plan(request, context)
        only = plan.tasks[0]
        agent = settings.routing["default"]
        return plan, Usage(), context, [SubmittedTask(only, agent, single_prompt(request, context, settings))], []
    from orchestrator.brain.planner import make_plan

    plan, usage = make_plan(llm, request, context.text, settings, sorted(configured),
                            dead_letter_dir=world.layout.state_dir / DEAD_LETTER)
    plan = plan.model_copy(update={"context_used": tuple(context.files_used)})
    notes: list[str] = []
    tasks: list[SubmittedTask] = []
    for planned in dependency_order(plan):
        agent, note = route(planned, settings, configured)
        if note:
            notes.append(note)
        tasks.append(SubmittedTask(planned, agent, task_prompt(planned, plan, context, settings)))
    return plan, usage, context, tasks, notes


# ------------------------------------------------------------------------------------------ spawning


def split_usage(usage: Usage, parts: int) -> list[tuple[int, float]]:
    """(tokens, dollars) per task: even shares, the remainder tokens to the first tasks; sums to the whole."""
    if parts <= 0:
        return []
    base, extra = divmod(usage.tokens, parts)
    cost = round(usage.cost_usd / parts, 6)
    shares = [(base + (1 if i < extra else 0), cost) for i in range(parts)]
    if shares:  # the rounding remainder of the dollars goes to the first task
        first_tokens, first_cost = shares[0]
        shares[0] = (first_tokens, round(first_cost + usage.cost_usd - cost * parts, 6))
    return shares


def _spawn_all(world: World, settings: Settings, tasks: Sequence[SubmittedTask]) -> dict[str, str]:
    """Spawn in order (dependencies first); on a failure cancel what was created and raise SubmitError."""
    ids: dict[str, str] = {}
    for task in tasks:
        planned = task.planned
        try:
            created = task_ops.spawn(
                world, title=planned.title, prompt=task.prompt, agent=task.agent, kind=planned.kind,
                after=[ids[dep] for dep in planned.depends_on], base_branch=settings.project.base_branch,
            )
        except Exception as exc:
            raise SubmitError(_undo(world, ids, planned.id, exc)) from exc
        ids[planned.id] = created.id
    return ids


def _undo(world: World, ids: Mapping[str, str], failed: str, exc: Exception) -> str:
    """Cancel the tasks already spawned; the message says what failed and what was done about it."""
    why = " ".join(str(exc).split()) or type(exc).__name__
    if not ids:
        return f"spawning task {failed!r} failed: {why}; nothing was spawned"
    cancelled: list[str] = []
    kept: list[str] = []
    for task_id in ids.values():
        try:
            task_ops.cancel(world, task_id)
            cancelled.append(task_id)
        except Exception:  # the registry may be what failed; the message names the task to cancel by hand
            kept.append(task_id)
    message = f"spawning task {failed!r} failed: {why}"
    if cancelled:
        message += f"; cancelled the {len(cancelled)} task(s) already created ({', '.join(cancelled)}; " \
                   "`swarm cleanup` removes their worktrees)"
    if kept:
        message += f"; could not cancel {', '.join(kept)}: run `swarm cancel` on each"
    return message


def _record_spend(world: World, tasks: Sequence[SubmittedTask], ids: Mapping[str, str], usage: Usage,
                  owners: frozenset[str] = frozenset()) -> None:
    """The planning spend, split over the tasks, and each task's acceptance criteria (for the PR body; the
    prompt has them already, so they are not passed to spawn, which would add them a second time)."""
    shares = dict(zip([t.planned.id for t in tasks], split_usage(usage, len(tasks)), strict=True))
    acceptance = {t.planned.id: t.planned.acceptance for t in tasks}
    # dependencies that own a contract of the plan: [plan] stack = "contracts" starts the dependent on their branch
    contract_deps = {t.planned.id: tuple(ids[d] for d in t.planned.depends_on if d in owners and d in ids)
                     for t in tasks}

    def apply(state: RegistryState) -> RegistryState:
        for plan_id, task_id in ids.items():
            current = state.tasks.get(task_id)
            if current is None:
                continue
            tokens, cost = shares[plan_id]
            state = state.with_task(current.model_copy(update={
                "llm_tokens": current.llm_tokens + tokens,
                "llm_cost_usd": round(current.llm_cost_usd + cost, 6),
                "acceptance": acceptance[plan_id],
                "contract_deps": contract_deps[plan_id],
            }))
        return state

    world.registry.update(apply)


def submit(world: World, settings: Settings, request: str, *, dry_run: bool, llm: Llm | None) -> SubmitReport:
    """Plan ``request`` into tasks and spawn them (all or none), or on ``dry_run`` only say what would be done.

    Raises UsageError (nothing spawned) when a routed agent, its binary or the base branch is missing,
    SubmitError when the plan is unusable or a spawn failed midway (the created tasks are cancelled), and
    lets the planner's PlanError and the model's LlmError through.
    """
    request = request.strip()
    if not request:
        raise UsageError("the request is empty: say what you want built (as an argument or with --file)")
    plan, usage, context, tasks, notes = prepare(world, settings, request, llm)
    problems = problems_of(world, settings, tasks)
    report = SubmitReport(request=request, dry_run=dry_run, planned=llm is not None, plan=plan, context=context,
                          tasks=tasks, usage=usage, notes=notes)
    if dry_run:
        report.problems = problems
        return report
    if problems:
        more = f" (and {len(problems) - 1} more; `swarm submit --dry-run` lists them)" if len(problems) > 1 else ""
        raise UsageError(f"{problems[0]}{more}; nothing was spawned")
    ids = _spawn_all(world, settings, tasks)
    _record_spend(world, tasks, ids, usage, frozenset(c.owner for c in plan.contracts if c.owner))
    first_line = request.splitlines()[0].strip()[:200]
    world.events.append(world.clock(), "", "submitted", request=first_line, tasks=[t.planned.id for t in tasks],
                        task_ids=dict(ids), planned=llm is not None, tokens=usage.tokens, cost_usd=usage.cost_usd)
    state = world.registry.read()
    report.tasks = [
        SubmittedTask(t.planned, t.agent, t.prompt, ids[t.planned.id], state.tasks[ids[t.planned.id]].status.value,
                      state.tasks[ids[t.planned.id]].reason)
        for t in tasks
    ]
    return report


__all__ = [
    "NO_KEY_NOTE", "SubmitError", "SubmitReport", "SubmittedTask", "configured_profiles", "dependency_order",
    "prepare", "route", "single_task_plan", "split_usage", "submit", "title_of",
]
