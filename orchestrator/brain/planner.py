"""A request becomes a plan: one structured call to the model, then repair, validation and shaping.

Why one call: the plan is a single tool call (``submit_plan``, forced where the model allows forcing) whose
input schema is the plan's shape, so the answer is data, not prose to parse, and its cost is one request.
What the model gets wrong despite the schema is repaired by :mod:`orchestrator.brain.plan_repair`, the result is
validated by the strict pydantic :class:`~orchestrator.brain.plan.Plan`, checked for dependency cycles, and
shaped for parallel work by :mod:`orchestrator.brain.plan_shape`.

An answer that cannot be used is **never half-applied**: the raw answer and the reason go to one
dead-letter file, ``<dead_letter_dir>/<UTC timestamp>-plan.json``, and :class:`PlanError` names it. That is
the only file this module writes, and only on refusal (reliability case 15). A call that got no answer at
all (rate limited, key rejected, network) raises the :class:`~orchestrator.brain.llm.LlmError` as it is: there is
nothing to keep.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.brain.llm import Llm, LlmError
from orchestrator.brain.plan import Plan, Usage
from orchestrator.brain.plan_repair import PlanRejected, normalize
from orchestrator.brain.plan_shape import MAX_TASKS_TO_SHAPE, find_cycle, shape
from orchestrator.config import Settings

log = logging.getLogger(__name__)

PLAN_TOOL = "submit_plan"
MAX_ANSWER_CHARS = 1_000_000  # far above any answer llm.max_tokens allows; more is refused unread
MAX_DEAD_LETTER_CHARS = 4_000_000  # the raw answer kept in a dead-letter, beyond which it is cut


class PlanError(Exception):
    """The model answered, but not with a usable plan; the message is one line naming the dead-letter.

    ``dead_letter`` is the file holding the raw answer and the error; ``usage`` is what the call cost;
    ``retryable`` says whether asking again as it is may help (a model that answered in prose instead of
    calling the tool), as opposed to changing the request or the settings (a cut answer, a cycle).
    """

    def __init__(self, message: str, *, dead_letter: Path | None = None, usage: Usage | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.dead_letter = dead_letter
        self.usage = usage if usage is not None else Usage()
        self.retryable = retryable


# -- what the model is asked ----------------------------------------------------------------------------


def plan_schema(profiles: Collection[str], max_tasks: int) -> dict[str, Any]:
    """The input schema of the ``submit_plan`` tool: the model-written part of :class:`Plan`."""
    strings = {"type": "array", "items": {"type": "string"}}
    agent: dict[str, Any] = {"type": "string", "description": "a profile name, or \"\" to let routing decide"}
    if profiles:
        agent["enum"] = ["", *sorted(profiles)]
    task = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$",
                   "description": "short slug, unique in the plan, e.g. \"csv-export\""},
            "title": {"type": "string", "maxLength": 200},
            "kind": {"type": "string", "description": "routing key, e.g. \"default\", \"bugfix\", \"docs\""},
            "description": {"type": "string", "maxLength": 20000,
                            "description": "what to build and why, with the business context the agent needs"},
            "scope": {**strings, "description": "files or directories this task may change"},
            "acceptance": {**strings, "description": "checkable acceptance criteria"},
            "depends_on": {**strings, "description": "ids of tasks that must be merged before this one starts"},
            "agent": agent,
        },
        "required": ["id", "title", "kind", "description", "scope", "acceptance", "depends_on"],
        "additionalProperties": False,
    }
    contract = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "kind": {"type": "string", "enum": ["function", "data", "api", "file_ownership", "other"]},
            "spec": {"type": "string", "maxLength": 4000,
                     "description": "the exact signature, data shape, endpoint, or \"task-a owns src/x/\""},
            "owner": {"type": "string", "description": "id of the task implementing it, \"\" if shared"},
        },
        "required": ["name", "kind", "spec", "owner"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "the plan in two or three sentences"},
            "contracts": {"type": "array", "items": contract},
            "tasks": {"type": "array", "items": task, "minItems": 1, "maxItems": max_tasks},
        },
        "required": ["summary", "contracts", "tasks"],
        "additionalProperties": False,
    }


def system_prompt(settings: Settings, profiles: Collection[str]) -> str:
    kinds = ", ".join(f"{kind} → {profile}" for kind, profile in sorted(settings.routing.items()))
    names = ", ".join(sorted(profiles)) or "(none configured: leave agent empty)"
    return f"""\
You plan work on one software repository for a fleet of coding agents. Each task you plan is done by one
agent, alone, in its own git worktree and branch, in parallel with the others; a human reviews and merges
each branch. Agents cannot talk to each other: everything a task needs must be in its description or in the
plan's contracts. Answer only by calling the tool {PLAN_TOOL} once.

Plan contract-first:
1. First write the contracts parallel tasks build against: exact function signatures, data shapes (field
   names and types), API endpoints, and file ownership ("csv-export owns src/export/"). Every task gets all
   contracts in its prompt, so two tasks on either side of an interface agree without meeting. Name the
   task that implements each contract as its owner.
2. Then cut the work into well-scoped tasks, each worth an agent session (not a one-line change, not a
   whole project): a clear description with the business context and why, the files or directories it may
   change (scope; two tasks should not change the same file), checkable acceptance criteria, and depends_on
   for tasks that need another task's work merged first (no cycles). Prefer tasks that can run in parallel.
3. At most {settings.llm.max_tasks} tasks. Use short slug ids ("csv-export").

kind is a routing key choosing the agent; configured routes: {kinds}. Use "default" unless another
route fits. agent may name one of the configured agent profiles ({names}) when a task clearly suits it;
otherwise leave it "" and routing decides.
"""


def user_prompt(request: str, context: str) -> str:
    parts = [f"<request>\n{request.strip()}\n</request>"]
    if context.strip():
        parts.append("Business context (notes, roadmap, decisions, domain rules; use what is relevant):\n"
                     f"<context>\n{context.strip()}\n</context>")
    parts.append(f"Plan this request: call {PLAN_TOOL}.")
    return "\n\n".join(parts)


# -- the call and what is done with its answer -------------------------------------------------------


def make_plan(
    llm: Llm,
    request: str,
    context: str,
    settings: Settings,
    profiles: Collection[str],
    *,
    dead_letter_dir: Path,
    now: datetime | None = None,
) -> tuple[Plan, Usage]:
    """Plan ``request`` with one model call; the validated, shaped plan and what the call cost.

    Raises :class:`PlanError` (with a dead-letter) when the model answered unusably, and
    :class:`~orchestrator.brain.llm.LlmError` when it did not answer at all.
    """
    names = sorted(profiles)
    schema = plan_schema(names, settings.llm.max_tasks)
    try:
        data, usage, raw = llm.structured(system_prompt(settings, names), user_prompt(request, context), PLAN_TOOL,
                                          schema, max_tokens=settings.llm.max_tokens)
    except LlmError as exc:
        if exc.raw is None:
            raise
        path = write_dead_letter(dead_letter_dir, raw=exc.raw, error=str(exc), model=llm.model, request=request,
                                 usage=exc.usage, now=now)
        raise PlanError(f"{exc} (the answer is kept in {path})", dead_letter=path, usage=exc.usage,
                        retryable=exc.retryable) from None
    try:
        plan = _plan_of(data, raw, settings, names)
    except (PlanRejected, ValidationError) as exc:
        reason = describe(exc) if isinstance(exc, ValidationError) else str(exc)
        details = _errors(exc) if isinstance(exc, ValidationError) else []
        path = write_dead_letter(dead_letter_dir, raw=raw, error=reason, model=llm.model, request=request,
                                 usage=usage, now=now, details=details)
        raise PlanError(f"the model's plan was refused: {reason} (answer and error kept in {path})",
                        dead_letter=path, usage=usage) from None
    log.info("planned %d task(s) for %d+%d tokens ($%.4f); %d note(s)", len(plan.tasks), usage.input_tokens,
             usage.output_tokens, usage.cost_usd, len(plan.notes))
    return plan, usage


def _plan_of(data: Any, raw: str, settings: Settings, profiles: Collection[str]) -> Plan:
    if len(raw) > MAX_ANSWER_CHARS:  # checked before any work on it: bounded time and memory
        raise PlanRejected(f"the answer is {len(raw):,} characters, over the {MAX_ANSWER_CHARS:,} a plan may "
                           "have; narrow the request")
    fixed, notes = normalize(data, profiles)
    if isinstance(fixed, dict) and isinstance(fixed.get("tasks"), list) and len(fixed["tasks"]) > MAX_TASKS_TO_SHAPE:
        raise PlanRejected(f"the model planned {len(fixed['tasks'])} tasks (at most {MAX_TASKS_TO_SHAPE} are "
                           "considered); narrow the request")
    plan = Plan.model_validate(fixed)
    cycle = find_cycle({t.id: t.depends_on for t in plan.tasks})
    if cycle:
        raise PlanRejected(f"the tasks depend on each other in a cycle ({' → '.join(cycle)})")
    plan = plan.model_copy(update={"notes": tuple(notes)})
    return shape(plan, min_task_chars=settings.llm.min_task_chars, max_tasks=settings.llm.max_tasks)


def describe(exc: ValidationError) -> str:
    """The first validation error as one line: ``tasks.0.title: Field required (and 2 more)``."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(the plan)"
    message = " ".join(str(first["msg"]).removeprefix("Value error, ").split())
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message[:300]}{extra}"


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"loc": ".".join(str(p) for p in e["loc"]), "msg": str(e["msg"])[:500]}
            for e in exc.errors(include_url=False, include_input=False)[:50]]


def write_dead_letter(
    directory: Path,
    *,
    raw: str,
    error: str,
    model: str,
    request: str,
    usage: Usage,
    now: datetime | None = None,
    details: list[dict[str, str]] | None = None,
) -> Path:
    """Keep a refused answer and why in a new ``<UTC timestamp>-plan.json``; returns its path."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    record = {
        "written_at": when.isoformat(),
        "model": model,
        "error": error,
        "errors": details or [],
        "usage": usage.model_dump(),
        "request": request,
        "raw_chars": len(raw),
        "raw_truncated": len(raw) > MAX_DEAD_LETTER_CHARS,
        "raw": raw[:MAX_DEAD_LETTER_CHARS],
    }
    directory.mkdir(parents=True, exist_ok=True)
    stamp = when.strftime("%Y%m%dT%H%M%S.%fZ")
    for n in range(1, 1000):
        path = directory / (f"{stamp}-plan.json" if n == 1 else f"{stamp}-{n}-plan.json")
        try:
            with path.open("x", encoding="utf-8") as handle:  # never overwrites an earlier dead-letter
                json.dump(record, handle, ensure_ascii=False, indent=1)
                handle.write("\n")
        except FileExistsError:
            continue
        log.warning("plan refused (%s); answer kept in %s", error, path)
        return path
    raise OSError(f"{directory}: cannot name a new dead-letter file for {stamp}")


__all__ = ["MAX_ANSWER_CHARS", "PLAN_TOOL", "PlanError", "make_plan", "plan_schema", "system_prompt",
           "user_prompt", "write_dead_letter"]
