"""The monitor's slow chores, run after a tick when they are due: the daily cleanup and archive, and Sentry
discovery every ``[sentry] discover_every``. When each last ran is kept in ``.swarm/maintenance.json``, so
one-shot ticks from a timer and the daemon share one schedule. A chore that fails is logged and retried
at the next tick; it never fails the tick. The daily cleanup never touches a worktree holding uncommitted
or untracked work (only an interactive `swarm cleanup` saves such work to a ref and removes the worktree).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from monitor.agent_run import write_json_atomic
from monitor.tick import TickReport, World, run_tick
from orchestrator.config import Settings
from registry.archive import archive_finished

log = logging.getLogger(__name__)


def _state_path(world: World) -> Path:
    return world.layout.state_dir / "maintenance.json"


def _last(world: World) -> dict[str, str]:
    try:
        data = json.loads(_state_path(world).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _due(last: dict[str, str], chore: str, every: float, now: datetime) -> bool:
    if every <= 0:
        return False
    try:
        return now - datetime.fromisoformat(last[chore]) >= timedelta(seconds=every)
    except (KeyError, ValueError):
        return True


def clean_and_archive(world: World, settings: Settings, now: datetime, *, dry_run: bool = False,
                      remove_orphans: bool = False, keep_dirty: bool = False) -> list[str]:
    """Remove what finished tasks left, report orphans, archive old finished tasks. A dirty worktree's work
    is saved to ``refs/swarm/leftovers/<task>`` before it goes, or with ``keep_dirty`` the worktree stays."""
    from orchestrator.cleanup import run_cleanup

    lines = list(run_cleanup(world, dry_run=dry_run, remove_orphans=remove_orphans, keep_dirty=keep_dirty))
    older = timedelta(seconds=settings.cleanup.archive_after)
    if dry_run:
        from registry.archive import due

        count = len(due(world.registry.read(), now, older))
        lines.append(f"would archive {count} finished task(s) older than {older.days} day(s)")
    else:
        moved = archive_finished(world.registry, world.layout.state_dir / "runs", now, older)
        lines.append(f"archived {len(moved)} finished task(s) older than {older.days} day(s)"
                     + (f": {', '.join(t.id for t in moved[:10])}" if moved else ""))
    return lines


def run_due(world: World, settings: Settings, extra: dict[str, tuple[float, Callable[[], list[str]]]] | None = None,
            ) -> list[str]:
    """Run each chore whose time has come; returns what was done, one line each."""
    now = world.clock()
    last = _last(world)
    chores: dict[str, tuple[float, Callable[[], list[str]]]] = {
        # unattended: a worktree with uncommitted work is left exactly as it is
        "cleanup": (settings.cleanup.every, lambda: clean_and_archive(world, settings, now, keep_dirty=True)),
        **(extra or {}),
    }
    done: list[str] = []
    for chore, (every, run) in chores.items():
        if not _due(last, chore, every, now):
            continue
        try:
            done += [f"{chore}: {line}" for line in run()]
        except Exception as exc:  # a chore never fails the tick; it is tried again next time
            log.warning("%s failed: %s", chore, exc)
            done.append(f"{chore}: failed: {exc}")
            continue
        last[chore] = now.isoformat()
        try:
            write_json_atomic(_state_path(world), dict(last))
        except OSError as exc:  # a full disk: the chore is simply due again next time
            log.warning("could not record when %s ran (%s): %s", chore, _state_path(world), exc)
            for stray in _state_path(world).parent.glob(f".{_state_path(world).name}.tmp-*"):
                stray.unlink(missing_ok=True)
    return done


def start_self_monitoring(settings: Settings) -> bool:
    """sentry-sdk for the monitor's own errors and check-ins, when ``[sentry] dsn_env`` names a DSN."""
    from monitor import selfmon

    secrets = [os.environ.get(name, "") for name in settings.secret_env_names()]
    return selfmon.init(os.environ.get(settings.sentry.dsn_env, "").strip(), environment=settings.sentry.environment,
                        release="swarm@0.1.0", secret_values=[s for s in secrets if s])


def discovery_chore(world: World, settings: Settings) -> tuple[float, Callable[[], list[str]]]:
    def run() -> list[str]:
        from orchestrator.discovery.sentry import discover

        return discover(world, settings, dry_run=False, now=world.clock()).lines()

    every = settings.sentry.discover_every if settings.sentry.org and settings.sentry.project else 0.0
    return every, run


def github_chore(world: World, settings: Settings) -> tuple[float, Callable[[], list[str]]]:
    """Issue intake and the `/swarm` commands of the repository's comments, every ``[github] intake_every``."""
    def run() -> list[str]:
        from orchestrator.discovery.comment_commands import discover_github

        report, commands = discover_github(world, settings, dry_run=False, now=world.clock())
        return [*report.lines(), *commands]

    every = settings.github.intake_every if settings.project.forge == "github" else 0.0
    return every, run


def service_tick(world: World, settings: Settings, stop: threading.Event) -> tuple[TickReport, list[str]]:
    """What the timer and the daemon run: one tick inside a cron check-in (when self-monitoring is on), then
    the chores that are due (not when the tick was skipped or asked to stop)."""
    from monitor import selfmon

    with selfmon.tick_checkin(settings.sentry.monitor_slug, settings.monitor.interval):
        report = run_tick(world, stop)
    if report.skipped or stop.is_set():
        return report, []
    from orchestrator.after_merge import safe_check

    chores = safe_check(world, settings, world.clock())  # [after_merge]: a swarm PR merged in this tick
    return report, chores + run_due(world, settings, {"sentry": discovery_chore(world, settings),
                                             "github": github_chore(world, settings),
                                             "notes": notes_chore(world, settings)})


def notes_chore(world: World, settings: Settings) -> tuple[float, Callable[[], list[str]]]:
    """Meeting notes every ``[discovery] notes_every``: new proposals, never tasks (a person approves)."""
    def run() -> list[str]:
        from orchestrator.brain.llm import llm_from
        from orchestrator.discovery.notes import discover_notes

        return discover_notes(world, settings, llm_from(settings), world.clock()).lines()

    return (settings.discovery.notes_every if settings.discovery.notes else 0.0), run
