"""The command line a user meets first: --version, completion, init anywhere in the repository, a state
directory git never shows, dependencies by prefix, refusals of bad input in one line, and no pretending
when tmux is missing. Every test runs the real `swarm` in a subprocess on a real repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from registry.models import RegistryState, Status, Task
from registry.store import Registry
from tests.conftest import git
from tests.worlds import write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
HOSTILE = "Fix [/] and [red]colour[/red] in [agents.claude]"
NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def swarm(
    repo: Path, *args: str, check: int = 0, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "COLUMNS")}
    result = subprocess.run([*SWARM, *args], cwd=repo, capture_output=True, text=True, timeout=60,
                            env={**environ, **(env or {})}, input=stdin)
    assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("swarm: error: "), result.stderr
    return lines[0]


@pytest.fixture
def repo(git_repo: Path, tmux_socket: str) -> Path:
    write_config(git_repo, tmux_socket)
    return git_repo


def put(repo: Path, *tasks: Task) -> None:
    def add(state: RegistryState) -> RegistryState:
        for task in tasks:
            state = state.with_task(task)
        return state

    Registry(repo / ".swarm").update(add)


def task(task_id: str, status: Status, title: str = "T", reason: str = "") -> Task:
    return Task(id=task_id, title=title, prompt="p", agent="scripted", status=status, base_branch="main",
                branch=f"swarm/{task_id}", worktree=f"/nonexistent/{task_id}", created_at=NOW, updated_at=NOW,
                reason=reason or status.value)


# -- version and completion -----------------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    out = swarm(tmp_path, "--version").stdout
    assert out.startswith("swarm ") and len(out.splitlines()) == 1


def test_shell_completion_prints_a_script_and_completes_commands(tmp_path: Path) -> None:
    # typer detects the shell from the process tree (not reliable under pytest-xdist); name it instead
    script = swarm(tmp_path, "--show-completion", "bash",
                   env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}).stdout
    assert "complete " in script and "_COMPLETE=complete_bash" in script
    prog = script.split("complete -o default -F ", 1)[1].split()[1]  # the program name the script completes
    env = {f"_{prog.upper().replace('-', '_')}_COMPLETE": "complete_bash", "COMP_WORDS": f"{prog} sta",
           "COMP_CWORD": "1"}
    assert "status" in swarm(tmp_path, env=env).stdout.split()


# -- init ------------------------------------------------------------------------------------------------


def test_init_from_a_subdirectory_writes_at_the_top(git_repo: Path) -> None:
    sub = git_repo / "src" / "deep"
    sub.mkdir(parents=True)
    out = swarm(sub, "init").stdout
    assert (git_repo / "swarm.toml").is_file() and not (sub / "swarm.toml").exists()
    assert (git_repo / ".swarm").is_dir() and not (sub / ".swarm").exists()
    assert str(git_repo / "swarm.toml") in out
    assert git(git_repo, "status", "--porcelain") == "?? swarm.toml"


def test_init_force_keeps_a_backup_of_the_old_file(git_repo: Path) -> None:
    config = git_repo / "swarm.toml"
    swarm(git_repo, "init")
    config.write_text(config.read_text() + "\n# my own edits\n")
    mine = config.read_text()
    out = swarm(git_repo, "init", "--force").stdout
    assert (git_repo / "swarm.toml.bak").read_text() == mine and "swarm.toml.bak" in out
    assert "# my own edits" not in config.read_text()
    config.write_text(mine + "# second\n")
    swarm(git_repo, "init", "--force")
    assert (git_repo / "swarm.toml.bak.2").read_text() == mine + "# second\n", "an older backup is never lost"
    assert (git_repo / "swarm.toml.bak").read_text() == mine


def test_a_repository_with_no_commits_gets_advice_that_fixes_it(tmp_path: Path, tmux_socket: str) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    out = swarm(repo, "init").stdout
    assert 'base_branch = "trunk"' in (repo / "swarm.toml").read_text(), "the unborn branch is the base"
    assert "no commits yet" in out and "git commit --allow-empty" in out
    write_config(repo, tmux_socket)
    line = one_line_error(swarm(repo, "spawn", "--title", "T", "--prompt", "p", check=2))
    assert "no commits yet" in line and "git commit --allow-empty" in line
    doctor = swarm(repo, "doctor", check=1).stdout
    assert "base branch: the repository has no commits yet" in doctor
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial commit")
    git(repo, "branch", "-m", "main")
    assert swarm(repo, "spawn", "--title", "T", "--prompt", "scenario: commit").stdout.strip().startswith("t-")


# -- .swarm/ is never shown by git ------------------------------------------------------------------------


def clone_with_committed_config(tmp_path: Path, git_repo: Path, tmux_socket: str) -> Path:
    write_config(git_repo, tmux_socket)
    (git_repo / ".git" / "info" / "exclude").write_text("")
    git(git_repo, "add", "swarm.toml")
    git(git_repo, "commit", "-q", "-m", "swarm config")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(git_repo), str(clone))
    return clone


def test_a_fresh_clone_with_a_committed_config_never_shows_the_state_dir(
    tmp_path: Path, git_repo: Path, tmux_socket: str
) -> None:
    clone = clone_with_committed_config(tmp_path, git_repo, tmux_socket)
    assert not (clone / ".swarm").exists()
    swarm(clone, "spawn", "--title", "T", "--prompt", "scenario: commit")
    assert (clone / ".swarm" / "registry.json").is_file()
    assert git(clone, "status", "--porcelain") == "", "no ?? .swarm/"
    swarm(clone, "monitor", "run-once")
    assert git(clone, "status", "--porcelain") == ""


def test_the_state_dir_of_a_linked_worktree_is_excluded_in_the_common_git_dir(
    tmp_path: Path, git_repo: Path, tmux_socket: str
) -> None:
    clone = clone_with_committed_config(tmp_path, git_repo, tmux_socket)
    linked = tmp_path / "linked"
    git(clone, "worktree", "add", "-q", "-b", "side", str(linked))
    swarm(linked, "status")
    assert (linked / ".swarm").is_dir()
    assert ".swarm/" in (clone / ".git" / "info" / "exclude").read_text().splitlines()
    assert git(linked, "status", "--porcelain") == ""


# -- spawn: dependencies, titles, prompt files, tmux ----------------------------------------------------------


def test_after_takes_a_prefix_like_every_other_command(repo: Path) -> None:
    put(repo, task("export-csv-1a2b", Status.running), task("export-pdf-3c4d", Status.running))
    new = swarm(repo, "spawn", "--title", "Docs", "--prompt", "p", "--after", "export-csv", "--json").stdout
    assert '"export-csv-1a2b"' in new and '"queued"' in new
    line = one_line_error(swarm(repo, "spawn", "--title", "D", "--prompt", "p", "--after", "export", check=2))
    assert "--after export: matches export-csv-1a2b, export-pdf-3c4d" in line


@pytest.mark.parametrize("status", [Status.failed, Status.cancelled])
def test_after_a_failed_or_cancelled_task_is_refused(repo: Path, status: Status) -> None:
    put(repo, task("broken-9f9f", status))
    line = one_line_error(swarm(repo, "spawn", "--title", "D", "--prompt", "p", "--after", "broken", check=2))
    assert f"--after broken-9f9f: that task is {status.value} and will never merge" in line
    assert "swarm retry broken-9f9f" in line


@pytest.mark.parametrize(("title", "said"), [
    ("two\nlines", "line break"),
    ("bell\x07", "control character (U+0007)"),
    ("escape \x1b[31m red", "control character (U+001B)"),
    ("x" * 10_000, "10000 characters; keep it to 200 at most"),
])
def test_bad_titles_are_one_line_errors(repo: Path, title: str, said: str) -> None:
    line = one_line_error(swarm(repo, "spawn", "--title", title, "--prompt", "p", check=2))
    assert said in line and len(line) < 300


def test_a_prompt_file_that_is_not_utf8_is_a_one_line_error(repo: Path) -> None:
    (repo / "task.md").write_bytes(b"Fix the caf\xe9 page\n")
    line = one_line_error(swarm(repo, "spawn", "--title", "T", "--prompt-file", "task.md", check=2))
    assert "--prompt-file task.md: not UTF-8 text" in line


def test_spawn_without_tmux_refuses_instead_of_pretending(repo: Path, tmp_path: Path) -> None:
    """Refused before anything is written: a task "queued" or "running" with no tmux would never start."""
    bin_dir = tmp_path / "bin-without-tmux"
    bin_dir.mkdir()
    for tool in ("git", "sh", "env"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    result = swarm(repo, "spawn", "--title", "T", "--prompt", "scenario: commit", check=2, env={"PATH": str(bin_dir)})
    line = one_line_error(result)
    assert "tmux is not installed" in line and result.stdout == ""
    assert swarm(repo, "status", "--json").stdout.strip() == "[]"


def test_spawn_prints_a_reason_with_brackets_as_text(repo: Path) -> None:
    put(repo, task("dep-0001", Status.running, reason="agent working"))
    result = swarm(repo, "spawn", "--title", HOSTILE, "--prompt", "p", "--after", "dep-0001")
    assert "queued: waiting for dep-0001 (running)" in result.stderr
    shown = swarm(repo, "status", result.stdout.strip()).stdout
    assert shown.startswith(HOSTILE)


# -- configuration refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "said"), [
    ('stuck_after = "0"', "monitor.stuck_after: 0s would kill agents that are only thinking"),
    ('attempt_timeout = "10s"', "monitor.attempt_timeout: 10s would kill agents"),
    ('tmux_socket = ""', "monitor.tmux_socket: '' is not a tmux socket name"),
])
def test_config_values_that_would_harm_are_refused_in_one_line(repo: Path, line: str, said: str) -> None:
    config = repo / "swarm.toml"
    key = line.split(" ")[0]
    text = "\n".join(x for x in config.read_text().splitlines() if not x.startswith(key))
    config.write_text(text.replace("[monitor]", f"[monitor]\n{line}"))
    assert said in one_line_error(swarm(repo, "status", check=2))


# -- text in square brackets, everywhere rich renders --------------------------------------------------------


def test_doctor_advice_keeps_square_brackets(repo: Path) -> None:
    config = repo / "swarm.toml"
    config.write_text(config.read_text().replace('default = "scripted"', 'default = "ghost"')
                      + '\n[agents.ghost]\ncommand = ["no-such-agent-cli"]\nprompt = "stdin"\n')
    out = swarm(repo, "doctor", check=1).stdout
    assert "install it or change [agents.ghost]" in out


def test_cleanup_and_submit_dry_run_show_hostile_titles_as_text(repo: Path) -> None:
    put(repo, task("fix-and-colour-0bad", Status.cancelled, title=HOSTILE, reason="cancelled [/] by [red]x"))
    swarm(repo, "cleanup", "--dry-run")
    swarm(repo, "cleanup")
    plan = swarm(repo, "submit", f"{HOSTILE}\n\nAnd [bold]more[/bold].", "--dry-run").stdout
    assert HOSTILE in plan and "[bold]more[/bold]" in plan


def test_status_flags_a_task_waiting_on_a_dependency_that_failed_later(repo: Path) -> None:
    put(repo, task("first-0001", Status.failed),
        task("second-0002", Status.queued).model_copy(update={"after": ("first-0001",)}))
    warning = swarm(repo, "status").stderr
    assert ("WARNING: second-0002 waits for first-0001, which is failed and will never merge: "
            "`swarm retry first-0001`, or `swarm cancel second-0002`") in warning
