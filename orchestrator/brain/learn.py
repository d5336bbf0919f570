"""`swarm learn`: what the history says works, as statistics and a few short rules for the next prompts.

Why: every task leaves a record (kind, agent, prompt, attempts with their failure kinds, cost) and a trail in
``events.jsonl``. Read together they say which agent passes which kind of task first time, which failures
keep coming back on which kind, and which prompts (with acceptance criteria, with a link to the source,
short or long) go through. `swarm learn` turns that into a table for the human and into the learnings file
(``context.learnings``), which ``context.py`` puts into every next prompt.

The rules are deterministic and conservative, never written by a model: a rule needs a minimum sample on
each side of a comparison (``Thresholds``) and a clear gap, so a handful of unlucky tasks teaches nothing.

Definitions (per task):
- *first pass*: the task reached ready (or was merged) on attempt 1. From the events when the task has any
  (a task ready at attempt 1 and sent back by a later review still passed first time), else from the record.
  Undecided while attempt 1 neither reached ready nor failed (running, or cancelled on attempt 1).
- *retries*: the failure kinds of the attempts that were followed by another attempt.
- *cost per ready task*: the group's whole spend (failed and cancelled tasks included: they are part of the
  price) over its tasks that are ready or merged now.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from registry.archive import archived
from registry.models import FailureKind, Status, Task

READY = (Status.ready, Status.merged)
SHORT_PROMPT = 500  # characters; prompt length buckets: short < 500 <= medium < 2000 <= long
LONG_PROMPT = 2000
FILE_RE = re.compile(r"\b[\w./-]+\.(?:py|pyi|ts|tsx|js|jsx|go|rs|rb|java|kt|swift|c|cc|cpp|h|hpp|cs|php|sql|"
                     r"css|scss|html|vue|svelte|md|toml|ya?ml|json|sh)\b")
URL_RE = re.compile(r"https?://\S+")
ACCEPTANCE_RE = re.compile(r"(?im)^\s*(?:#+\s*)?acceptance criteria\b")

# What a kind of task should do when one failure kind dominates its retries (rule 3).
ADVICE: dict[str, str] = {
    FailureKind.ci_failed: "run the tests and linters CI runs before committing",
    FailureKind.changes_requested: "follow the codebase's conventions and review your own diff before committing",
    FailureKind.phantom: "commit the work with `git commit` and check `git log` before finishing",
    FailureKind.max_turns: "split them smaller and name the files to touch",
    FailureKind.timeout: "split them smaller and commit in steps",
    FailureKind.stuck: "avoid interactive and never-ending commands (watchers, servers without a timeout)",
    FailureKind.conflict: "keep changes small and rebase on the base branch before committing",
    FailureKind.behind: "keep changes small and rebase on the base branch before committing",
    FailureKind.screenshots_missing: "commit screenshots of changed screens under `.swarm-screenshots/`",
}
DEFAULT_ADVICE = "commit in small, tested steps"

# Prompt features (rule 4): (feature, the value that reads "has it", the advice when having it helps).
BINARY_FEATURES: dict[str, str] = {
    "acceptance criteria": "give every task acceptance criteria",
    "links": "link each task to its source (issue, Sentry event, discussion)",
    "names files": "name the files or modules to change",
}
LENGTH = "prompt length"
LENGTH_ORDER = ("short", "medium", "long")
LENGTH_LABEL = {"short": f"short prompts (< {SHORT_PROMPT} chars)",
                "medium": f"medium prompts ({SHORT_PROMPT}–{LONG_PROMPT} chars)",
                "long": f"long prompts (≥ {LONG_PROMPT} chars)"}


@dataclass(frozen=True)
class Thresholds:
    min_tasks: int = 5  # decided tasks on each side of a comparison, or in a group judged alone
    min_gap: float = 0.25  # first-pass rates must differ by this much for a preference
    low_rate: float = 0.4  # a kind passing first time less often than this gets a rule of its own
    min_retries: int = 5  # retries on a kind before a failure kind can dominate them
    min_share: float = 0.5  # the share of those retries one failure kind needs


@dataclass(frozen=True)
class Outcome:
    """One task, reduced to what the statistics need."""

    task_id: str
    kind: str
    agent: str
    features: tuple[tuple[str, str], ...]
    first_pass: bool | None
    ready: bool
    failed: bool
    retries: tuple[str, ...]
    cost_usd: float
    tokens: int


@dataclass
class GroupStats:
    group: str  # "kind" | "agent" | "kind/agent" | "feature"
    key: str
    tasks: int = 0
    decided: int = 0
    first_pass: int = 0
    ready: int = 0
    failed: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0

    @property
    def first_pass_rate(self) -> float | None:
        return self.first_pass / self.decided if self.decided else None

    @property
    def cost_per_ready(self) -> float | None:
        return round(self.cost_usd / self.ready, 6) if self.ready else None

    def add(self, outcome: Outcome) -> None:
        self.tasks += 1
        if outcome.first_pass is not None:
            self.decided += 1
            self.first_pass += outcome.first_pass
        self.ready += outcome.ready
        self.failed += outcome.failed
        self.retries.update(outcome.retries)
        self.cost_usd = round(self.cost_usd + outcome.cost_usd, 6)

    def as_dict(self) -> dict[str, Any]:
        rate = self.first_pass_rate
        return {
            "group": self.group, "key": self.key, "tasks": self.tasks, "decided": self.decided,
            "first_pass": self.first_pass, "first_pass_rate": round(rate, 4) if rate is not None else None,
            "ready": self.ready, "failed": self.failed, "retries": dict(sorted(self.retries.items())),
            "cost_usd": self.cost_usd, "cost_per_ready": self.cost_per_ready,
        }


@dataclass
class Report:
    tasks: int
    groups: list[GroupStats]
    rules: list[str]
    path: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "groups": [g.as_dict() for g in self.groups], "rules": self.rules,
                "learnings": str(self.path) if self.path else None}


# -- reading the history -------------------------------------------------------------------------------------


def all_tasks(live: Mapping[str, Task], state_dir: Path) -> list[Task]:
    """Archived and live tasks, one record each: the live one wins, else the last archived copy."""
    found: dict[str, Task] = {task.id: task for task in archived(state_dir)}
    found.update(live)
    return sorted(found.values(), key=lambda t: (t.created_at, t.id))


def prompt_features(task: Task) -> tuple[tuple[str, str], ...]:
    prompt = task.prompt
    length = "short" if len(prompt) < SHORT_PROMPT else "medium" if len(prompt) < LONG_PROMPT else "long"
    acceptance = bool(task.acceptance) or bool(ACCEPTANCE_RE.search(prompt))
    links = bool(task.links) or bool(URL_RE.search(prompt)) or "sentry" in prompt.lower()
    files = bool(FILE_RE.search(prompt))
    yes = {True: "yes", False: "no"}
    return (("acceptance criteria", yes[acceptance]), ("links", yes[links]), ("names files", yes[files]),
            (LENGTH, length))


def first_pass_from_events(events: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """Per task with a decisive event: did it reach ready (or merged) before any respawn or failure?"""
    decided: dict[str, bool] = {}
    for event in events:
        task_id, name = event.get("task"), event.get("event")
        if not isinstance(task_id, str) or task_id in decided:
            continue
        if name in ("ready", "merged"):
            decided[task_id] = True
        elif name in ("respawn", "failed"):
            decided[task_id] = False
    return decided


def outcome(task: Task, from_events: bool | None) -> Outcome:
    first = task.attempts[0] if task.attempts else None
    first_pass = from_events
    if first_pass is None:
        if task.status in READY and len(task.attempts) == 1 and first is not None and first.failure is None:
            first_pass = True
        elif first is not None and first.failure is not None:
            first_pass = False
    retries = tuple(a.failure.kind.value for a in task.attempts[:-1] if a.failure is not None)
    return Outcome(
        task_id=task.id, kind=task.kind, agent=task.agent, features=prompt_features(task), first_pass=first_pass,
        ready=task.status in READY, failed=task.status is Status.failed, retries=retries, cost_usd=task.cost_usd,
        tokens=task.tokens,
    )


def outcomes(tasks: Iterable[Task], events: Iterable[Mapping[str, Any]]) -> list[Outcome]:
    decided = first_pass_from_events(events)
    return [outcome(task, decided.get(task.id)) for task in tasks]


# -- statistics ---------------------------------------------------------------------------------------------


def group_stats(results: Iterable[Outcome]) -> list[GroupStats]:
    groups: dict[tuple[str, str], GroupStats] = {}

    def stats(group: str, key: str) -> GroupStats:
        return groups.setdefault((group, key), GroupStats(group, key))

    for result in results:
        stats("kind", result.kind).add(result)
        stats("agent", result.agent).add(result)
        stats("kind/agent", f"{result.kind}/{result.agent}").add(result)
        for feature, value in result.features:
            stats("feature", f"{feature}: {value}").add(result)
    order = {"kind": 0, "agent": 1, "kind/agent": 2, "feature": 3}
    return sorted(groups.values(), key=lambda g: (order[g.group], g.key))


# -- rules --------------------------------------------------------------------------------------------------


def _ratio(stats: GroupStats) -> str:
    return f"{stats.first_pass}/{stats.decided}"


def _rate(stats: GroupStats) -> float:
    return stats.first_pass / stats.decided if stats.decided else 0.0


def routing_rules(groups: list[GroupStats], th: Thresholds) -> list[str]:
    """Per kind: an agent clearly worse than the best one (both with enough decided tasks)."""
    by_kind: dict[str, list[GroupStats]] = {}
    for g in groups:
        if g.group == "kind/agent" and g.decided >= th.min_tasks:
            by_kind.setdefault(g.key.split("/", 1)[0], []).append(g)
    rules = []
    for kind, candidates in sorted(by_kind.items()):
        best = max(candidates, key=lambda g: (_rate(g), g.decided, g.key))
        for worse in sorted(candidates, key=lambda g: (_rate(g), g.key)):
            if worse is not best and _rate(best) - _rate(worse) >= th.min_gap:
                rules.append(
                    f"- Tasks of kind `{kind}` routed to `{worse.key.split('/', 1)[1]}` passed first time "
                    f"{_ratio(worse)}; prefer `{best.key.split('/', 1)[1]}` ({_ratio(best)})."
                )
    return rules


def weak_kind_rules(groups: list[GroupStats], th: Thresholds) -> list[str]:
    return [
        f"- Tasks of kind `{g.key}` passed first time only {_ratio(g)}: split them smaller and give each "
        "acceptance criteria."
        for g in groups if g.group == "kind" and g.decided >= th.min_tasks and _rate(g) < th.low_rate
    ]


def retry_rules(groups: list[GroupStats], th: Thresholds) -> list[str]:
    """Per kind: one failure kind behind most of its retries."""
    rules = []
    for g in groups:
        total = sum(g.retries.values())
        if g.group != "kind" or total < th.min_retries:
            continue
        failure, count = min(g.retries.items(), key=lambda item: (-item[1], item[0]))
        if count / total >= th.min_share:
            rules.append(f"- {count / total:.0%} of the retries on kind `{g.key}` were `{failure}` ({count}/{total}): "
                         f"{ADVICE.get(failure, DEFAULT_ADVICE)}.")
    return rules


def feature_rules(groups: list[GroupStats], th: Thresholds) -> list[str]:
    features = {g.key: g for g in groups if g.group == "feature" and g.decided >= th.min_tasks}
    rules = []
    for feature, advice in BINARY_FEATURES.items():
        yes, no = features.get(f"{feature}: yes"), features.get(f"{feature}: no")
        if yes is not None and no is not None and _rate(yes) - _rate(no) >= th.min_gap:
            rules.append(f"- Prompts with {feature} passed first time {_ratio(yes)}, without {_ratio(no)}: {advice}.")
    buckets = [features[f"{LENGTH}: {b}"] for b in LENGTH_ORDER if f"{LENGTH}: {b}" in features]
    if len(buckets) >= 2:
        best = max(buckets, key=lambda g: (_rate(g), g.decided))
        worst = min(buckets, key=lambda g: (_rate(g), -g.decided))
        if _rate(best) - _rate(worst) >= th.min_gap:
            good, bad = best.key.split(": ", 1)[1], worst.key.split(": ", 1)[1]
            rules.append(f"- {LENGTH_LABEL[bad].capitalize()} passed first time {_ratio(worst)}, "
                         f"{LENGTH_LABEL[good]} {_ratio(best)}: write {good} prompts.")
    return rules


def derive_rules(groups: list[GroupStats], th: Thresholds | None = None) -> list[str]:
    th = th or Thresholds()
    return [*routing_rules(groups, th), *weak_kind_rules(groups, th), *retry_rules(groups, th),
            *feature_rules(groups, th)]


def render(rules: list[str], tasks: int) -> str:
    """The learnings file: empty without rules (nothing useless goes into every prompt)."""
    if not rules:
        return ""
    header = (f"# Learnings from {tasks} past tasks (written by `swarm learn`; rewritten on each run, "
              "so put your own rules in the context files)")
    return header + "\n\n" + "\n".join(rules) + "\n"


# -- the command --------------------------------------------------------------------------------------------


def learn(
    live: Mapping[str, Task], events: Iterable[Mapping[str, Any]], state_dir: Path, learnings: Path | None,
    thresholds: Thresholds | None = None,
) -> Report:
    """Compute the statistics and rules; write them to ``learnings`` (atomically) when a path is given."""
    tasks = all_tasks(live, state_dir)
    groups = group_stats(outcomes(tasks, events))
    rules = derive_rules(groups, thresholds)
    if learnings is not None:
        write_atomic(learnings, render(rules, len(tasks)))
    return Report(tasks=len(tasks), groups=groups, rules=rules, path=learnings)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def table(report: Report) -> Table:
    grid = Table(header_style="bold", expand=False)
    for column in ("group", "tasks", "first pass", "ready", "failed", "retries", "cost/ready"):
        grid.add_column(column, no_wrap=True)
    for g in report.groups:
        rate = g.first_pass_rate
        first = f"{g.first_pass}/{g.decided} ({rate:.0%})" if rate is not None else "–"
        retries = ", ".join(f"{kind} {n}" for kind, n in sorted(g.retries.items(), key=lambda i: (-i[1], i[0])))
        cost = f"${g.cost_per_ready:.2f}" if g.cost_per_ready is not None else "–"
        grid.add_row(Text(f"{g.group} {g.key}"), str(g.tasks), first, str(g.ready), str(g.failed), retries or "–", cost)
    return grid


def lines(report: Report) -> Iterator[str]:
    """What the command says after the table."""
    if report.rules:
        yield from report.rules
        if report.path is not None:
            yield f"wrote {len(report.rules)} rule(s) to {report.path}"
    else:
        th = Thresholds()
        yield (f"no rules yet: a rule needs at least {th.min_tasks} decided tasks per group compared "
               f"(and {th.min_retries} retries for a failure pattern)")
        if report.path is not None:
            yield f"{report.path} left empty"


__all__ = ["GroupStats", "Outcome", "Report", "Thresholds", "derive_rules", "group_stats", "learn", "outcomes"]
