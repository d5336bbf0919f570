"""`swarm learn`: a synthetic history (registry, archive, events.jsonl) → exact statistics and rules.

The history is built so that each rule family fires once, each threshold is met on one side and missed on
the other (4 decided tasks against a minimum of 5, 40% first pass against "below 40%", 4 retries against a
minimum of 5), and the events decide first pass where they disagree with the record.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.brain.learn import GroupStats, Report, Thresholds, learn
from registry.events import EventLog
from registry.models import Attempt, Failure, FailureKind, Status, Task
from registry.store import Registry
from tests.worlds import write_config

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
F = FailureKind
LONG = "Rewrite the guide. " * 120  # ≥ 2000 characters


@dataclass
class Spec:
    id: str
    kind: str
    agent: str
    failures: tuple[FailureKind, ...] = ()  # of the attempts before the last one (each was retried)
    status: Status = Status.ready
    final: FailureKind | None = None  # the last attempt's failure (a failed task)
    acceptance: bool = False
    links: bool = False
    prompt: str = "Fix the bug."
    events: bool = True
    ready_first: bool = False  # ready on attempt 1, then sent back by a later review


def build(spec: Spec, n: int) -> Task:
    at = T0 + timedelta(hours=n)
    kinds = [*spec.failures, spec.final] if spec.status is Status.failed else [*spec.failures, None]
    attempts = tuple(
        Attempt(number=i + 1, session=f"swarm-{spec.id}", prompt_path="/p", started_at=at, tokens=1000,
                cost_usd=0.5, failure=Failure(kind=kind, summary=kind.value, at=at) if kind else None)
        for i, kind in enumerate(kinds)
    )
    return Task(
        id=spec.id, title=spec.id, prompt=spec.prompt, agent=spec.agent, kind=spec.kind, status=spec.status,
        base_branch="main", branch=f"swarm/{spec.id}", worktree=f"/wt/{spec.id}", attempts=attempts,
        acceptance=("returns 404 for a missing id",) if spec.acceptance else (),
        links=("https://tracker.invalid/1",) if spec.links else (), created_at=at, updated_at=at,
    )


def history(spec: Spec) -> list[tuple[str, dict[str, Any]]]:
    """The events the monitor would have written for ``spec``."""
    out: list[tuple[str, dict[str, Any]]] = [("started", {"attempt": 1, "agent": spec.agent})]
    if spec.ready_first:
        out.append(("ready", {"head": "first"}))
    for number, kind in enumerate(spec.failures, start=2):
        out += [("agent_finished", {"attempt": number - 1}), ("respawn", {"attempt": number, "failure": kind.value})]
    if spec.status in (Status.ready, Status.merged):
        out.append(("ready", {"head": "abc"}))
    if spec.status is Status.merged:
        out.append(("merged", {}))
    if spec.status is Status.failed and spec.final is not None:
        out.append(("failed", {"failure": spec.final.value}))
    return out


SPECS = [
    # bugfix/codex: 2/9 first pass; 4 fixed after a CI failure; 3 failed after three agent errors
    Spec("c1", "bugfix", "codex", status=Status.merged, events=False),  # archived, events lost: the record says
    Spec("c2", "bugfix", "codex"),
    *(Spec(f"c{i}", "bugfix", "codex", failures=(F.ci_failed,)) for i in range(3, 7)),
    *(Spec(f"c{i}", "bugfix", "codex", failures=(F.agent_error, F.agent_error), status=Status.failed,
           final=F.agent_error) for i in range(7, 10)),
    # bugfix/claude: 7/8 first pass, all with acceptance criteria; links on four only (under the minimum)
    *(Spec(f"k{i}", "bugfix", "claude", acceptance=True, links=i <= 4) for i in range(1, 7)),
    Spec("k7", "bugfix", "claude", failures=(F.changes_requested,), acceptance=True, ready_first=True),
    Spec("k8", "bugfix", "claude", failures=(F.phantom,), acceptance=True),
    Spec("r1", "bugfix", "claude", status=Status.running, acceptance=True),  # undecided
    # frontend/claude: 4/10 first pass (not below 40%); 6 of 10 retries are ci_failed
    *(Spec(f"f{i}", "frontend", "claude") for i in range(1, 5)),
    *(Spec(f"f{i}", "frontend", "claude", failures=(F.ci_failed,)) for i in range(5, 7)),
    *(Spec(f"f{i}", "frontend", "claude", failures=(F.ci_failed, F.changes_requested)) for i in range(7, 11)),
    # docs: gemini 0/4 (under the minimum for routing), claude 1/1; the kind 1/5; long prompts; 4 retries only
    *(Spec(f"g{i}", "docs", "gemini", failures=(F.died,), prompt=LONG) for i in range(1, 5)),
    Spec("d1", "docs", "claude", prompt=LONG),
]

EXPECTED_RULES = [
    "- Tasks of kind `bugfix` routed to `codex` passed first time 2/9; prefer `claude` (7/8).",
    "- Tasks of kind `docs` passed first time only 1/5: split them smaller and give each acceptance criteria.",
    "- 50% of the retries on kind `bugfix` were `agent_error` (6/12): commit in small, tested steps.",
    "- 60% of the retries on kind `frontend` were `ci_failed` (6/10): run the tests and linters CI runs before "
    "committing.",
    "- Prompts with acceptance criteria passed first time 7/8, without 7/24: give every task acceptance criteria.",
    "- Long prompts (≥ 2000 chars) passed first time 1/5, short prompts (< 500 chars) 13/27: write short prompts.",
]


@pytest.fixture
def repo(git_repo: Path, tmux_socket: str) -> Path:
    """A configured repository whose .swarm holds the synthetic history (c1 and a stale copy of c2 archived)."""
    write_config(git_repo, tmux_socket)
    state_dir = git_repo / ".swarm"
    tasks = [build(spec, n) for n, spec in enumerate(SPECS)]
    live = {t.id: t for t in tasks if t.id != "c1"}
    Registry(state_dir).update(lambda state: state.model_copy(update={"tasks": live}))
    archive = state_dir / "archive"
    archive.mkdir()
    stale_c2 = live["c2"].model_copy(update={"status": Status.failed, "kind": "stale"})
    (archive / "tasks-2026-10.jsonl").write_text(
        tasks[0].model_dump_json() + "\n" + stale_c2.model_dump_json() + "\n" + "{torn line\n")
    log = EventLog(state_dir / "events.jsonl")
    at = T0
    for spec in SPECS:
        if not spec.events:
            continue
        for name, data in history(spec):
            at += timedelta(seconds=1)
            log.append(at, spec.id, name, **data)
    return git_repo


def run(repo: Path, thresholds: Thresholds | None = None, *, write: bool = True) -> Report:
    state_dir = repo / ".swarm"
    target = repo / ".swarm" / "learnings.md" if write else None
    return learn(Registry(state_dir).read().tasks, EventLog(state_dir / "events.jsonl").read(), state_dir, target,
                 thresholds)


def group(report: Report, name: str, key: str) -> GroupStats:
    [found] = [g for g in report.groups if g.group == name and g.key == key]
    return found


def test_statistics_per_kind_agent_and_feature(repo: Path) -> None:
    report = run(repo)
    assert report.tasks == len(SPECS), "archived and live tasks, each once (the live copy of c2 wins)"
    assert not [g for g in report.groups if g.key == "stale"]

    codex = group(report, "kind/agent", "bugfix/codex")
    assert codex.as_dict() == {
        "group": "kind/agent", "key": "bugfix/codex", "tasks": 9, "decided": 9, "first_pass": 2,
        "first_pass_rate": 0.2222, "ready": 6, "failed": 3, "retries": {"agent_error": 6, "ci_failed": 4},
        "cost_usd": 9.5, "cost_per_ready": 1.583333,  # 19 attempts at $0.50, over 6 ready
    }
    claude = group(report, "kind/agent", "bugfix/claude")
    assert (claude.tasks, claude.decided, claude.first_pass, claude.ready) == (9, 8, 7, 8), "r1 is undecided"
    assert dict(claude.retries) == {"changes_requested": 1, "phantom": 1}
    assert (group(report, "kind", "bugfix").decided, group(report, "kind", "bugfix").first_pass) == (17, 9)
    frontend = group(report, "kind", "frontend")
    assert (frontend.first_pass, frontend.decided, dict(frontend.retries)) == (4, 10, {"ci_failed": 6,
                                                                                       "changes_requested": 4})
    assert (group(report, "agent", "claude").tasks, group(report, "agent", "gemini").first_pass) == (20, 0)
    with_criteria = group(report, "feature", "acceptance criteria: yes")
    assert (with_criteria.first_pass, with_criteria.decided) == (7, 8)
    assert (group(report, "feature", "links: yes").decided, group(report, "feature", "prompt length: long").decided) \
        == (4, 5)
    assert [g.key for g in report.groups if g.group == "kind"] == ["bugfix", "docs", "frontend"]


def test_rules_follow_the_thresholds_and_are_written_for_the_next_prompts(repo: Path) -> None:
    report = run(repo)
    assert report.rules == EXPECTED_RULES
    written = (repo / ".swarm" / "learnings.md").read_text()
    assert written.startswith(f"# Learnings from {len(SPECS)} past tasks")
    assert written.splitlines()[2:] == EXPECTED_RULES
    # the same history gives the same file
    run(repo)
    assert (repo / ".swarm" / "learnings.md").read_text() == written


def test_stricter_thresholds_drop_rules_and_an_empty_set_empties_the_file(repo: Path) -> None:
    report = run(repo, Thresholds(min_tasks=9, min_retries=11))
    # claude has 8 decided bugfix tasks (< 9), docs 5; only bugfix has ≥ 11 retries; of each feature's pair and
    # the length buckets, only one side has 9 decided
    assert report.rules == [
        "- 50% of the retries on kind `bugfix` were `agent_error` (6/12): commit in small, tested steps.",
    ]
    assert run(repo, Thresholds(min_gap=0.9, min_share=0.9, low_rate=0.1)).rules == []
    assert (repo / ".swarm" / "learnings.md").read_text() == "", "no stale rules left in the prompts"


def test_the_events_decide_first_pass_over_the_record(repo: Path) -> None:
    """k7: ready on attempt 1, then sent back: first pass by its events, although attempt 1 holds a failure."""
    report = run(repo, write=False)
    assert group(report, "kind/agent", "bugfix/claude").first_pass == 7
    events = repo / ".swarm" / "events.jsonl"
    events.write_text("".join(line + "\n" for line in events.read_text().splitlines()
                              if '"task": "k7"' not in line))
    assert group(run(repo, write=False), "kind/agent", "bugfix/claude").first_pass == 6, "record: attempt 1 failed"


def test_swarm_learn_prints_the_table_and_rules_and_json(repo: Path) -> None:
    cli = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
    shown = subprocess.run([*cli, "learn"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "kind/agent bugfix/codex" in shown.stdout and "2/9 (22%)" in shown.stdout
    for rule in EXPECTED_RULES:
        assert rule in shown.stdout
    assert f"wrote {len(EXPECTED_RULES)} rule(s) to {repo / '.swarm' / 'learnings.md'}" in shown.stdout
    as_json = subprocess.run([*cli, "learn", "--json"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["rules"] == EXPECTED_RULES and data["tasks"] == len(SPECS)
    assert data["learnings"] == str(repo / ".swarm" / "learnings.md")
    assert {"group": "kind", "key": "docs"}.items() <= next(g for g in data["groups"] if g["key"] == "docs").items()
