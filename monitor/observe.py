"""Gather one Observation per active task: read-only I/O, as cheap as possible on a healthy tick.

One ``tmux list-panes -a`` call for the whole fleet; for a running agent only two ``stat``s and the
branch head; git's heavier questions (divergence, conflicts, merged) only once the agent has exited.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.agent_run import LOG, RESULT, SPEC
from monitor.files import file_size, read_json, read_tail
from monitor.layout import BRANCH_PREFIX, Layout
from monitor.observation import ForgeView, Liveness, Observation, RunResult
from monitor.pricing import codex_default_model, cost_usd, model_from_launch
from monitor.runtime.base import TMUX, Runtime
from monitor.runtime.container import ContainerPane, exit_record
from monitor.transcript import readable
from monitor.world.forge import Forge, ForgeUnavailable
from monitor.world.git import Git, GitError
from monitor.world.tmux import Pane, Tmux, TmuxError
from registry.models import BranchFacts, RegistryState, Status, Task

log = logging.getLogger(__name__)
MAX_CHANGED_FILES = 2000


View = tuple[dict[str, Pane] | None, Liveness | None]


def read_panes(tmux: Tmux | Runtime) -> View:
    """All panes of the agents' tmux server (or containers of an engine), or (None, why they cannot be seen)."""
    try:
        panes = tmux.panes()
    except TmuxError as exc:  # RuntimeUnavailable / RuntimeFailure are TmuxErrors too
        log.warning("%s unreachable: %s", "tmux server" if isinstance(tmux, Tmux) else "container engine", exc)
        return None, Liveness.unknown
    return (panes, None) if panes is not None else (None, Liveness.no_server)


def _cost(report: dict[str, Any], spec: dict[str, Any]) -> tuple[float, bool]:
    """(cost in USD, whether it is known): the CLI's own figure, else its tokens at the model's price."""
    reported = float(report.get("cost_usd", 0.0))
    input_tokens, output_tokens = int(report.get("input_tokens", 0)), int(report.get("output_tokens", 0))
    if reported > 0 or input_tokens + output_tokens == 0:
        return reported, True
    argv, env = list(spec.get("argv") or []), dict(spec.get("env") or {})
    model = str(report.get("model") or "") or model_from_launch(argv, env)
    if not model and report.get("parser") == "codex":
        model = codex_default_model(env)
    priced = cost_usd(model, input_tokens, int(report.get("cached_input_tokens", 0)), output_tokens)
    return (priced, True) if priced is not None else (0.0, False)


def load_result(path: Path) -> RunResult | None:
    data = read_json(path)
    if data is None:
        return None
    return result_from(data, read_json(path.parent / SPEC) or {})


def result_from(data: dict[str, Any], spec: dict[str, Any]) -> RunResult:
    """A ``result.json`` record (written by the wrapper, or made from a container's exit) as a RunResult."""
    report = data.get("report") or {}
    cost, cost_known = _cost(report, spec) if report else (0.0, True)
    return RunResult(
        phase=str(data.get("phase", "agent")),
        exit_code=int(data.get("exit_code", -1)),
        started_at=datetime.fromisoformat(data["started_at"]),
        ended_at=datetime.fromisoformat(data["ended_at"]),
        tool_calls=int(report.get("tool_calls", 0)),
        is_error=bool(report.get("is_error", False)),
        api_error=bool(report.get("api_error", False)),
        max_turns=bool(report.get("max_turns", False)),
        has_result=bool(report.get("has_result", False)),
        killed_by=str(data.get("killed_by", "")),
        error=str(data.get("error", "")),
        final_text=str(report.get("final_text", "")),
        tokens=int(report.get("input_tokens", 0)) + int(report.get("output_tokens", 0)),
        cost_usd=cost,
        cost_known=cost_known,
        failed_commands=int(report.get("failed_commands", 0)),
        failed_command=str(report.get("failed_command", "")),
        context_exhausted=bool(report.get("context_exhausted", False)),
    )


class Observer:
    def __init__(
        self, layout: Layout, tmux: Tmux, git: Git, forge: Forge, runtimes: Mapping[str, Runtime] | None = None
    ) -> None:
        self.layout = layout
        self.tmux = tmux
        self.runtimes = {name: rt for name, rt in (runtimes or {}).items() if name != TMUX}
        self.views: dict[str, View] = {}  # other runtimes' containers, read once per tick for the running tasks
        self.git = git
        self.forge = forge
        self.base_heads: dict[str, str | None] = {}

    def observe_all(self, state: RegistryState, now: datetime) -> dict[str, Observation]:
        active = [t for t in state.tasks.values() if t.status in (Status.running, Status.checking, Status.ready)]
        if not active:
            return {}
        panes, blind = read_panes(self.tmux)
        used = {t.attempt.runtime for t in active if t.status is Status.running and t.attempt is not None}
        self.views = {name: read_panes(self.runtimes[name]) for name in sorted(used) if name in self.runtimes}
        try:
            self.forge.prefetch([t for t in active if t.status is not Status.running])
        except ForgeUnavailable as exc:
            log.warning("forge unavailable this tick: %s", exc)
        heads = self.git.branch_heads(BRANCH_PREFIX)  # one git call for every running agent's progress
        bases = {t.base_branch for t in active if t.status is not Status.running}
        self.base_heads = {base: self.git.head(self.forge.base_ref(base)) for base in bases}
        observations = {}
        for task in active:
            try:
                observations[task.id] = self.observe(task, panes, now, heads.get(task.branch), blind)
            except GitError as exc:
                log.warning("task %s: git failed while observing: %s", task.id, exc)
        return observations

    def observe(
        self,
        task: Task,
        panes: Mapping[str, Pane] | None,
        now: datetime,
        head: str | None,
        blind: Liveness | None = None,
    ) -> Observation:
        worktree_exists = Path(task.worktree).is_dir()
        if task.status is Status.running:
            runtime = task.attempt.runtime if task.attempt is not None else TMUX
            if runtime != TMUX:  # the containers of its engine, not the tmux panes
                if runtime not in self.views:
                    self.views[runtime] = (read_panes(self.runtimes[runtime]) if runtime in self.runtimes
                                           else (None, Liveness.unknown))
                panes, blind = self.views[runtime]
            return self._running(task, panes, head, worktree_exists, blind or Liveness.unknown)
        # Check jobs cannot be running on a server that does not exist: the forge may start them again.
        job_panes = {} if blind is Liveness.no_server else panes
        return self._checking(task, job_panes, head, worktree_exists)

    def _facts(self, task: Task, head: str) -> BranchFacts:
        # a stacked branch is judged against the dependency head it is built on: following the dependency's
        # newer heads is the restack's work (monitor/merge), not a conflict or a lag of its own
        stacked = task.stack_base_sha if task.stacked_on else None
        base = stacked or self.forge.base_ref(task.base_branch)
        key = f"{stacked or self.base_heads.get(task.base_branch) or self.git.head(base)}:{head}"
        if task.branch_facts is not None and task.branch_facts.key == key:
            return task.branch_facts
        divergence = self.git.divergence(base, task.branch)
        merged = self.git.is_merged(task.branch, base, tip=head, ahead=divergence.ahead)
        return BranchFacts(
            key=key, merged=merged, ahead=divergence.ahead, behind=divergence.behind,
            conflicts=tuple(self.git.conflicts(base, task.branch)) if not merged else (),
            changed_files=tuple(self.git.changed_files(base, task.branch))[:MAX_CHANGED_FILES],
        )

    def _running(
        self, task: Task, panes: Mapping[str, Pane] | None, head: str | None, worktree_exists: bool, blind: Liveness
    ) -> Observation:
        attempt = task.attempt
        assert attempt is not None
        run_dir = self.layout.run_dir(task.id, attempt.number)
        result = load_result(run_dir / RESULT)
        log_size = file_size(run_dir / LOG)
        pane = panes.get(attempt.session) if panes is not None else None
        if result is None and isinstance(pane, ContainerPane) and pane.dead:
            # a container leaves no result.json: its exit comes from the engine (and OOM from its cgroup)
            spec = read_json(run_dir / SPEC) or {}
            record = exit_record(run_dir, pane, str(spec.get("parser") or "plain"),
                                 attempt.launched_at or attempt.started_at)
            result = result_from(record, spec)
        if result is not None:
            liveness = Liveness.exited
        elif panes is None:
            liveness = blind
        elif pane is None:
            liveness = Liveness.gone
        else:
            liveness = Liveness.exited if pane.dead else Liveness.alive
        obs = Observation(
            liveness=liveness, worktree_exists=worktree_exists, result=result,
            pane_status=pane.dead_status if pane else None, log_size=log_size, head=head,
        )
        if liveness is Liveness.alive or liveness.blind or not worktree_exists:
            return obs
        base = (task.stack_base_sha if task.stacked_on else None) or self.forge.base_ref(task.base_branch)
        ahead = self.git.divergence(base, task.branch).ahead if head else 0
        new_commits = self.git.commits_between(attempt.start_head, head) if head and attempt.start_head else ahead
        transcript = readable(read_tail(run_dir / LOG, lines=400, max_bytes=131072, chars=120000))
        return replace(obs, log_tail=transcript, ahead=ahead, new_commits=new_commits,
                       dirty=tuple(self.git.is_dirty(Path(task.worktree))))

    def _checking(
        self, task: Task, panes: Mapping[str, Pane] | None, head: str | None, worktree_exists: bool
    ) -> Observation:
        if head is None:
            return Observation(liveness=Liveness.exited, worktree_exists=worktree_exists)
        facts = self._facts(task, head)
        try:
            forge = self.forge.view(task, head, panes)
        except ForgeUnavailable as exc:
            forge = ForgeView(supports_pr=self.forge.supports_pr, ci="unknown", unknown_reason=str(exc))
        return Observation(
            liveness=Liveness.exited, worktree_exists=worktree_exists, head=head, ahead=facts.ahead,
            behind=facts.behind, conflicts=facts.conflicts, changed_files=facts.changed_files, merged=facts.merged,
            forge=forge, branch_facts=facts,
        )
