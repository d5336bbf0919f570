"""`swarm status` as people see it: every id and status whole at 60, 80 and 120 columns, piped output sized
to its content, a real terminal (tmux at 80 columns), text in square brackets shown as text, and a line
saying whether the monitor ticks."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from monitor.heartbeat import record_tick
from orchestrator.status import table
from registry.models import Attempt, Failure, FailureKind, RegistryState, Status, Task
from registry.store import Registry
from tests.waiting import wait_for
from tests.worlds import write_config

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
LONG_ID = "add-a-very-long-feature-title-for-the-checko-ab12"  # the longest a slug gets: 40 + "-" + 4 hex
HOSTILE = "Fix [/] and [red]colour[/red] in [agents.claude] [bold]"


def make(task_id: str, status: Status, reason: str, title: str = "T", created: datetime = NOW) -> Task:
    attempts = (Attempt(number=1, session=f"swarm-{task_id}", prompt_path="/p", started_at=created,
                        tokens=123_456, cost_usd=1.5,
                        failure=Failure(kind=FailureKind.died, summary="exit 1 [/] in [red]x[/red]", at=created)),)
    return Task(id=task_id, title=title, prompt="p", agent="claude", status=status, base_branch="main",
                branch=f"swarm/{task_id}", worktree=f"/wt/{task_id}", attempts=attempts, created_at=created,
                updated_at=created, reason=reason)


TASKS = [
    make(LONG_ID, Status.checking, "waiting for CI on head 1234567 — the build of the whole shop takes long"),
    make("fix-x-0001", Status.cancelled, "cancelled by the human"),
    make("docs-for-the-new-export-endpoint-and-cli-99ff", Status.running, "agent working [/] (output 2m ago)"),
]


def render(width: int) -> str:
    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(table(TASKS, NOW, width))
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_every_id_and_status_is_whole_at_any_width(width: int) -> None:
    out = render(width)
    assert max(len(line) for line in out.splitlines()) <= width, out
    for task in TASKS:
        row = next((line for line in out.splitlines() if task.id in line), None)
        assert row is not None, f"{task.id} cut at {width} columns:\n{out}"
        assert task.status.value in row, f"status of {task.id} missing at {width} columns:\n{out}"


def test_columns_are_dropped_not_squeezed_and_the_reason_stays_when_it_can() -> None:
    narrow, medium, wide = render(60), render(80), render(120)

    def header(out: str) -> list[str]:
        return next(line for line in out.splitlines() if "task" in line).replace("┃", " ").split()

    assert header(narrow) == ["task", "status"]
    assert header(medium) == ["task", "status", "reason"] and "waiting for" in medium, "the reason stays at 80"
    assert header(wide) == ["task", "status", "att", "agent", "age", "cost", "reason"]
    assert "claude" in wide and "$1.50" in wide
    assert "waiting for CI" in wide
    full = render(400)
    assert "123,456" in full and "the build of the whole shop takes long" in full


def test_bracketed_text_in_cells_is_shown_as_text() -> None:
    out = render(400)
    assert "agent working [/] (output 2m ago)" in out


# -- through the real command line ------------------------------------------------------------------


@pytest.fixture
def repo(git_repo: Path, tmux_socket: str) -> Path:
    write_config(git_repo, tmux_socket)
    registry = Registry(git_repo / ".swarm")
    now = datetime.now(UTC)
    tasks = [make(t.id, t.status, t.reason, created=now - timedelta(minutes=5)) for t in TASKS]

    def add(state: RegistryState) -> RegistryState:
        for task in tasks:
            state = state.with_task(task)
        return state

    registry.update(add)
    return git_repo


def swarm(
    repo: Path, *args: str, env: dict[str, str] | None = None, check: int = 0
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=60,
                            env={**environ, **(env or {})})
    assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize("columns", ["60", "80", "120"])
def test_status_at_a_given_width_keeps_ids_and_statuses(repo: Path, columns: str) -> None:
    out = swarm(repo, "status", env={"COLUMNS": columns}).stdout
    assert max(len(line) for line in out.splitlines()) <= int(columns), out
    for task in TASKS:
        assert any(task.id in line and task.status.value in line for line in out.splitlines()), out


def test_piped_status_is_as_wide_as_its_content(repo: Path) -> None:
    out = swarm(repo, "status").stdout  # stdout is a pipe, no $COLUMNS
    lines = out.splitlines()
    assert "the build of the whole shop takes long" in out and "123,456" in out, "nothing cut when piped"
    assert max(len(line) for line in lines) < 200
    assert all(line == line.rstrip() or line.startswith(("┃", "│", "┏", "┡", "└")) for line in lines)


def test_status_on_a_real_80_column_terminal(repo: Path, tmux_socket: str) -> None:
    """What a user sees: `swarm status` in a tmux pane 80 columns wide, read back with capture-pane."""
    socket = f"{tmux_socket}-view"
    command = " ".join([*(f"'{part}'" for part in SWARM), "status", ";", "echo", "STATUS-DONE", ";", "sleep", "60"])
    tmux = ["tmux", "-L", socket]
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "40", "-c", str(repo), command], env=env,
                   check=True)
    try:
        screen = wait_for(lambda: (lambda s: s if "STATUS-DONE" in s else "")(
            subprocess.run([*tmux, "capture-pane", "-p", "-J"], capture_output=True, text=True).stdout),
            "swarm status to finish in the pane", timeout=30)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    for task in TASKS:
        assert any(task.id in line and task.status.value in line for line in screen.splitlines()), screen
    assert "reason" in screen


def test_status_task_shows_hostile_text_as_text(repo: Path) -> None:
    registry = Registry(repo / ".swarm")
    hostile = make("fix-and-colour-0bad", Status.failed, "failed: [/] [red]boom", title=HOSTILE)
    registry.update(lambda s: s.with_task(hostile))
    shown = swarm(repo, "status", hostile.id, env={"FORCE_COLOR": "1", "TERM": "xterm"}).stdout
    plain = swarm(repo, "status", hostile.id).stdout
    assert HOSTILE in plain and "failed: [/] [red]boom" in plain and "exit 1 [/] in [red]x[/red]" in plain
    assert "\x1b[31mcolour" not in shown, "a title's [red] must not colour it"
    listed = swarm(repo, "status", env={"COLUMNS": "200"}).stdout
    assert "failed: [/] [red]boom" in listed


def test_status_says_when_the_monitor_last_ticked_and_warns_when_it_stopped(repo: Path) -> None:
    never = swarm(repo, "status")
    assert "no tick has run yet" in never.stderr and "swarm monitor daemon" in never.stderr
    record_tick(repo / ".swarm", datetime.now(UTC) - timedelta(minutes=1))
    recent = swarm(repo, "status")
    assert "monitor: last tick 1m" in recent.stdout and "WARNING" not in recent.stderr
    record_tick(repo / ".swarm", datetime.now(UTC) - timedelta(minutes=11))  # interval 5m: two missed
    stale = swarm(repo, "status")
    assert "WARNING: monitor: last tick 11m" in stale.stderr and "not running" in stale.stderr


def test_a_tick_records_its_time(repo: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    swarm(repo, "monitor", "run-once")
    from monitor.heartbeat import last_tick

    when = last_tick(repo / ".swarm")
    assert when is not None and when >= before
    assert "monitor: last tick" in swarm(repo, "status").stdout
