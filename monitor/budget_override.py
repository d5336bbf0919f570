"""The human's changes to the budget, kept in ``.swarm/budget.json`` (never in their swarm.toml).

``swarm budget set per_day_usd 40`` replaces a limit until set again; ``swarm budget --raise-day 20`` adds
$20 to today's limit only (a raise names its day, or its week's Monday, and is ignored after). The tick reads
the file each time, so a raise lets a running daemon resume work at its next tick. Written atomically under
a lock, so two commands never lose each other's change.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from monitor.agent_run import write_json_atomic
from monitor.budget import Limits, Verdict, period_starts, verdict
from monitor.files import read_json
from monitor.policy import Policy
from registry.models import RegistryState

OVERRIDE_FILE = "budget.json"
KEYS = ("per_task_usd", "per_day_usd", "per_week_usd", "per_task_tokens", "per_day_tokens", "per_week_tokens")


def read_override(state_dir: Path) -> dict[str, Any]:
    return read_json(state_dir / OVERRIDE_FILE) or {}


def effective(limits: Limits, override: dict[str, Any], now: datetime, zone: tzinfo | None) -> Limits:
    """The configured limits with the human's settings and today's (this week's) raises applied."""
    values: dict[str, Any] = {}
    sets = override.get("set")
    if isinstance(sets, dict):
        for key in KEYS:
            value = sets.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                values[key] = int(value) if key.endswith("tokens") else float(value)
    result = replace(limits, **values)
    day, week = period_starts(now, zone)
    raises = override.get("raise")
    if isinstance(raises, dict):
        for period, start in (("day", day.date()), ("week", week.date())):
            entry = raises.get(period)
            if not isinstance(entry, dict) or entry.get("date") != start.isoformat():
                continue
            usd_key, tokens_key = f"per_{period}_usd", f"per_{period}_tokens"
            usd, tokens = float(entry.get("usd", 0) or 0), int(entry.get("tokens", 0) or 0)
            if usd and getattr(result, usd_key):
                result = replace(result, **{usd_key: getattr(result, usd_key) + usd})
            if tokens and getattr(result, tokens_key):
                result = replace(result, **{tokens_key: getattr(result, tokens_key) + tokens})
    return result


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "budget.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_override(state_dir: Path, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    with _locked(state_dir):
        data = change(read_override(state_dir))
        write_json_atomic(state_dir / OVERRIDE_FILE, data)
        return data


def set_limit(state_dir: Path, key: str, value: float) -> dict[str, Any]:
    def change(data: dict[str, Any]) -> dict[str, Any]:
        sets = dict(data.get("set") or {})
        sets[key] = int(value) if key.endswith("tokens") else float(value)
        return {**data, "set": sets}

    return update_override(state_dir, change)


def add_raise(state_dir: Path, period: str, start: date, usd: float, tokens: int) -> dict[str, Any]:
    """Add to the raise of this ``period`` ("day" | "week") starting ``start``; a raise of an older period
    is replaced."""
    def change(data: dict[str, Any]) -> dict[str, Any]:
        raises = dict(data.get("raise") or {})
        old = raises.get(period)
        same = isinstance(old, dict) and old.get("date") == start.isoformat()
        base = old if same and isinstance(old, dict) else {}
        raises[period] = {"date": start.isoformat(), "usd": float(base.get("usd", 0) or 0) + usd,
                          "tokens": int(base.get("tokens", 0) or 0) + tokens}
        return {**data, "raise": raises}

    return update_override(state_dir, change)


def zone_of(name: str) -> tzinfo | None:
    """``[budget] timezone`` as a zone; "" (or a name this machine does not know) is the machine's own."""
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def budget_verdict(state_dir: Path, policy: Policy, state: RegistryState, now: datetime) -> Verdict | None:
    """Today's verdict with the human's overrides applied; None when no day or week limit is set at all."""
    zone = zone_of(policy.timezone)
    limits = effective(policy.budget, read_override(state_dir), now, zone)
    if not limits.any:
        return None
    return verdict(state, limits, now, zone)
