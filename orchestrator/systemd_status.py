"""`swarm doctor`'s systemd line: is the monitor's timer (or daemon) installed, running and healthy here?

Why this module exists: :mod:`orchestrator.systemd` renders and writes the units; this one only asks the
user's systemd manager about them afterwards (``systemctl --user show``, ``loginctl``) and turns the answer
into one line with the fix: not installed, not loaded, inactive, not enabled, the tmux unit failed, no
lingering, or the last tick failed. Nothing here writes or starts anything, and a machine where systemctl
cannot be asked (a container, an SSH session without a user bus) gets a hint instead of a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from monitor.world import proc
from orchestrator.config import Settings
from orchestrator.systemd_names import unit_names, user_unit_dir

SystemctlRunner = Callable[[Sequence[str]], proc.Result]


def _run_systemctl(argv: Sequence[str]) -> proc.Result:
    return proc.run(argv, timeout=10)


def _show(run: SystemctlRunner, units: Sequence[str], props: str) -> dict[str, dict[str, str]] | str:
    """``systemctl --user show`` per unit id, or the reason it cannot be asked here."""
    try:
        result = run(["systemctl", "--user", "show", *units, f"--property=Id,{props}"])
    except (OSError, proc.ProcTimeout) as exc:
        return str(exc)
    if not result.ok:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return lines[0] if lines else f"exit status {result.returncode}"
    shown: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", result.stdout.strip()):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in fields:
            shown[fields["Id"]] = fields
    return shown


def _when(value: str) -> str:
    return value if value and value not in ("n/a", "0") else "never"


def _linger(run: SystemctlRunner) -> bool | None:
    try:
        result = run(["loginctl", "show-user", str(os.getuid()), "--property=Linger", "--value"])
    except (OSError, proc.ProcTimeout):
        return None
    return result.stdout.strip() == "yes" if result.ok else None


def timer_status(
    repo: Path, settings: Settings, *, unit_dir: Path | None = None, systemctl: SystemctlRunner | None = None,
) -> tuple[bool, str]:
    """One doctor line: is the timer (or the daemon) installed, active, enabled, lingering, and did its
    last tick succeed; with the fix when not."""

    run = systemctl or _run_systemctl
    unit_dir = unit_dir or user_unit_dir()
    names = unit_names(repo, settings)
    use_daemon = not (unit_dir / names.timer).is_file() and (unit_dir / names.daemon).is_file()
    unit = names.daemon if use_daemon else names.timer
    if not (unit_dir / unit).is_file():
        return False, (f"systemd: {names.timer} is not installed in {unit_dir} — run `swarm systemd install` "
                       "(or tick from cron, or keep `swarm monitor daemon` running)")
    shown = _show(run, [unit, names.service, names.tmux], "LoadState,ActiveState,UnitFileState,LastTriggerUSec,"
                  "NextElapseUSecRealtime,ActiveEnterTimestamp,Result,ExecMainStatus")
    if isinstance(shown, str):
        return True, (f"systemd: {unit} is installed; `systemctl --user` cannot be asked here ({shown}) — "
                      f"check with `systemctl --user status {unit}` in your login session")
    state = shown.get(unit, {})
    if state.get("LoadState") != "loaded":
        return False, (f"systemd: {unit} is installed but not loaded — "
                       f"systemctl --user daemon-reload && systemctl --user enable --now {names.tmux} {unit}")
    if state.get("ActiveState") != "active":
        return False, (f"systemd: {unit} is {state.get('ActiveState', 'unknown')} — "
                       f"systemctl --user enable --now {names.tmux} {unit}; journalctl --user -u {unit}")
    if state.get("UnitFileState") != "enabled":
        return False, (f"systemd: {unit} is active but not enabled (gone after a reboot) — "
                       f"systemctl --user enable {unit}")
    if shown.get(names.tmux, {}).get("ActiveState") == "failed":
        return False, (f"systemd: {names.tmux} failed, so no tick can start — journalctl --user -u {names.tmux} "
                       f"-n 20, then systemctl --user restart {names.tmux}")
    if _linger(run) is False:
        return False, f"systemd: {unit} runs only while you are logged in — loginctl enable-linger"
    if use_daemon:
        return True, f"systemd: {unit} active since {_when(state.get('ActiveEnterTimestamp', ''))}"
    last = _when(state.get("LastTriggerUSec", ""))
    tick = shown.get(names.service, {})
    result = tick.get("Result", "success")
    if last != "never" and result != "success":
        return False, (f"systemd: {unit}: the last tick ({last}) failed ({result}, status "
                       f"{tick.get('ExecMainStatus', '?')}) — journalctl --user -u {names.service} -n 50")
    return True, f"systemd: {unit} active, last tick {last}, next {_when(state.get('NextElapseUSecRealtime', ''))}"
