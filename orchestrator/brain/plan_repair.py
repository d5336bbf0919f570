"""Repairing a model's plan before validation: the slips LLMs make while meaning the right thing.

Why a module of its own: the planner's call to the model is I/O; what follows is a pure function of the
answer, tested as tables without a server. :func:`normalize` works on the raw tool input *before* pydantic
sees it and fixes integer ids, ids that are not slugs, an object keyed by id where a list was asked, a
single string where a list was asked, fields nobody asked for, agent names that are not configured
profiles, and dependencies on ids that do not exist. Each fix is recorded as a plan note, so the user sees
what swarm changed. What it cannot fix (missing titles, wrong types) is left for pydantic to refuse: a
plan is repaired or refused whole, never guessed at. Shaping a valid plan is :mod:`orchestrator.brain.plan_shape`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Mapping
from typing import Any, get_args

from orchestrator.brain.plan import Contract, PlannedTask

_ID_LEN = 40

_TASK_FIELDS = frozenset(PlannedTask.model_fields)
_CONTRACT_FIELDS = frozenset(Contract.model_fields)
_CONTRACT_KINDS = frozenset(get_args(Contract.model_fields["kind"].annotation))
_MODEL_PLAN_FIELDS = ("summary", "tasks", "contracts")  # context_used and notes are swarm's to fill


class PlanRejected(ValueError):
    """The answer cannot be turned into a runnable plan; the message is one line saying why."""


# -- normalize ------------------------------------------------------------------------------------------


def slugify(value: str) -> str:
    """A plan id: lowercase ASCII letters, digits and dashes, at most 40 ("" when nothing is left)."""
    ascii_only = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")[:_ID_LEN].rstrip("-")


def normalize(data: Any, profiles: Collection[str]) -> tuple[Any, list[str]]:
    """The raw tool input with the usual slips fixed, and notes saying what was changed."""
    notes: list[str] = []
    data = _maybe_json(data)
    if not isinstance(data, dict):
        return data, notes  # pydantic says what it should have been
    if "tasks" not in data and len(data) == 1:  # {"plan": {...}}
        (key, inner), = data.items()
        inner = _maybe_json(inner)
        if isinstance(inner, dict) and "tasks" in inner:
            notes.append(f"the plan came wrapped in {key!r}: unwrapped")
            data = inner
    extra = sorted(str(k) for k in data if k not in _MODEL_PLAN_FIELDS)
    if extra:
        notes.append(f"dropped unknown field(s) of the plan: {', '.join(extra)}")
    plan: dict[str, Any] = {}
    if "summary" in data:
        plan["summary"] = _text(data["summary"])
    plan["tasks"], lookup = _tasks(data.get("tasks"), profiles, notes)
    if "contracts" in data:
        plan["contracts"] = _contracts(data["contracts"], lookup, notes)
    return plan, notes


def _maybe_json(value: Any) -> Any:
    """A JSON document sent as a string where an object or list was asked, parsed; else ``value``."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return value


def _strings(value: Any, *, split_lines: bool = False) -> Any:
    """A list of strings from a list, a keyed object, a single string (or None)."""
    value = _maybe_json(value)
    if value is None:
        return []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, str):
        lines = [ln.strip().lstrip("-*•").strip() for ln in value.splitlines()] if split_lines else [value]
        return [ln for ln in lines if ln]
    if isinstance(value, list | tuple):
        return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
    return value


def _looks_like_task(value: dict[str, Any]) -> bool:
    return "title" in value or "description" in value


def _task_entries(value: Any, notes: list[str]) -> list[tuple[list[Any], Any]]:
    """The tasks with the ids they may be referred to by (a key of a keyed object is one of them)."""
    value = _maybe_json(value)
    if value is None:
        return []
    if isinstance(value, dict):
        if _looks_like_task(value):
            notes.append("the tasks came as one object instead of a list: read as a list of one")
            return [([value.get("id")], value)]
        notes.append("the tasks came as an object keyed by id instead of a list: read as a list")
        entries: list[tuple[list[Any], Any]] = []
        for key, item in value.items():
            if isinstance(item, dict) and item.get("id") in (None, ""):
                item = {**item, "id": key}
            entries.append(([key, item.get("id") if isinstance(item, dict) else None], item))
        return entries
    if isinstance(value, list):
        return [([item.get("id") if isinstance(item, dict) else None], item) for item in value]
    return [([], value)]  # pydantic refuses it


def _tasks(value: Any, profiles: Collection[str], notes: list[str]) -> tuple[list[Any], dict[str, str]]:
    """The tasks, and every way the answer referred to a task (old id, its slug, the key) → its new id."""
    entries = _task_entries(value, notes)
    taken: set[str] = set()
    lookup: dict[str, str] = {}
    out: list[Any] = []
    for index, (aliases, raw) in enumerate(entries):
        if not isinstance(raw, dict):
            out.append(raw)
            continue
        new_id = _new_id(raw, index, taken, notes)
        for alias in (*aliases, raw.get("id")):
            if isinstance(alias, str | int) and not isinstance(alias, bool) and str(alias).strip():
                lookup.setdefault(str(alias), new_id)
                lookup.setdefault(slugify(str(alias)) or new_id, new_id)
        out.append({**raw, "id": new_id})
    lookup.update({t["id"]: t["id"] for t in out if isinstance(t, dict)})  # a new id always means itself
    return [_task(t, lookup, profiles, notes) if isinstance(t, dict) else t for t in out], lookup


def _new_id(raw: dict[str, Any], index: int, taken: set[str], notes: list[str]) -> str:
    given = raw.get("id")
    source = str(given) if isinstance(given, str | int) and not isinstance(given, bool) else ""
    base = slugify(source) or slugify(str(raw.get("title") or "")) or f"task-{index + 1}"
    new_id, n = base, 2
    while new_id in taken:
        suffix = f"-{n}"
        new_id, n = base[: _ID_LEN - len(suffix)].rstrip("-") + suffix, n + 1
    taken.add(new_id)
    if source and new_id != source:
        notes.append(f"task id {source[:60]!r} renamed to {new_id!r}")
    elif not source:
        notes.append(f"task {index + 1} had no id: named {new_id!r}")
    return new_id


def _task(raw: dict[str, Any], lookup: Mapping[str, str], profiles: Collection[str], notes: list[str]) -> Any:
    task_id = raw["id"]
    extra = sorted(str(k) for k in raw if k not in _TASK_FIELDS)
    if extra:
        notes.append(f"dropped unknown field(s) of task {task_id!r}: {', '.join(extra)}")
    task: dict[str, Any] = {k: v for k, v in raw.items() if k in _TASK_FIELDS}
    for key in ("title", "description", "kind", "agent"):
        if key in task:
            task[key] = _text(task[key])
    if task.get("kind") in (None, ""):
        task.pop("kind", None)
    agent = task.get("agent")
    if agent is None:
        task.pop("agent", None)
    elif isinstance(agent, str) and agent and agent not in profiles:
        notes.append(f"task {task_id!r}: agent {agent[:40]!r} is not a configured profile; routing picks one")
        task["agent"] = ""
    for key in ("scope", "acceptance"):
        if key in task:
            task[key] = _strings(task[key], split_lines=key == "acceptance")
    if "depends_on" in task:
        task["depends_on"] = _dependencies(task_id, _strings(task["depends_on"]), lookup, notes)
    return task


def _dependencies(task_id: str, refs: Any, lookup: Mapping[str, str], notes: list[str]) -> Any:
    if not isinstance(refs, list):
        return refs
    kept: list[str] = []
    for ref in refs:
        if not isinstance(ref, str):
            return refs  # pydantic refuses it
        target = lookup.get(ref) or lookup.get(slugify(ref) or "\0")
        if target is None:
            notes.append(f"task {task_id!r}: dropped dependency on unknown task {ref[:60]!r}")
        elif target == task_id:
            notes.append(f"task {task_id!r}: dropped its dependency on itself")
        elif target not in kept:
            kept.append(target)
    return kept


def _contracts(value: Any, ids: Mapping[str, str], notes: list[str]) -> Any:
    value = _maybe_json(value)
    if value is None:
        return []
    if isinstance(value, dict):
        if "spec" in value:
            value = [value]
        else:
            notes.append("the contracts came as an object keyed by name instead of a list: read as a list")
            value = [{"name": k, **v} if isinstance(v, dict) and "name" not in v else v for k, v in value.items()]
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for raw in value:
        if not isinstance(raw, dict):
            out.append(raw)
            continue
        name = str(raw.get("name") or "?")[:60]
        extra = sorted(str(k) for k in raw if k not in _CONTRACT_FIELDS)
        if extra:
            notes.append(f"dropped unknown field(s) of contract {name!r}: {', '.join(extra)}")
        contract = {k: _text(v) for k, v in raw.items() if k in _CONTRACT_FIELDS}
        if contract.get("kind") is None:
            contract.pop("kind", None)
        elif contract["kind"] not in _CONTRACT_KINDS:
            notes.append(f"contract {name!r}: kind {str(contract['kind'])[:40]!r} read as 'other'")
            contract["kind"] = "other"
        owner = contract.get("owner")
        if owner is None:
            contract.pop("owner", None)
        elif isinstance(owner, str) and owner:
            resolved = ids.get(owner) or ids.get(slugify(owner) or "\0")
            if resolved is None:
                notes.append(f"contract {name!r}: owner {owner[:60]!r} is not a task of the plan; made shared")
            contract["owner"] = resolved or ""
        out.append(contract)
    return out


__all__ = ["PlanRejected", "normalize", "slugify"]
