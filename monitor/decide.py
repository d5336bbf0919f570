"""The monitor's judgement, as pure functions: (task, observation, policy, now) → actions.

No I/O and no clock here: everything the decision depends on is passed in, so the whole lifecycle is
tested as tables. This module dispatches a task to its walk and is the one the rest of swarm imports;
the parts live in small modules of their own: ``monitor/decision.py`` (the decision, failure kinds, retry
or fail), ``monitor/decide_running.py`` (a running agent), ``monitor/decide_checking.py`` (the definition
of done) and ``monitor/decide_fleet.py`` (starts, caps, budget holds, outages, clock jumps).
"""

from __future__ import annotations

from datetime import datetime

from monitor.decide_checking import decide_checking
from monitor.decide_fleet import cap_respawns, hold_for_budget, outage_tasks, plan_starts, rebaseline
from monitor.decide_running import classify_exit, decide_running
from monitor.decision import (
    ASKED,
    CLOCK_SLACK,
    HEAD_BOUND,
    JUMP_SLACK,
    TERMINAL,
    Decision,
    _retry_or_fail,
    api_backoff,
    free_api_errors,
)
from monitor.observation import Observation
from monitor.policy import Policy
from registry.models import Status, Task

__all__ = [
    "ASKED",
    "CLOCK_SLACK",
    "HEAD_BOUND",
    "JUMP_SLACK",
    "TERMINAL",
    "Decision",
    "_retry_or_fail",
    "api_backoff",
    "cap_respawns",
    "classify_exit",
    "decide",
    "decide_checking",
    "decide_running",
    "free_api_errors",
    "hold_for_budget",
    "outage_tasks",
    "plan_starts",
    "rebaseline",
]


def decide(task: Task, obs: Observation, policy: Policy, now: datetime) -> Decision:
    if task.status is Status.running:
        return decide_running(task, obs, policy, now)
    if task.status in (Status.checking, Status.ready):
        return decide_checking(task, obs, policy, now)
    return Decision(task.id)
