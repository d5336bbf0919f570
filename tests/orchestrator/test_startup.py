"""Each command loads only what it uses: `swarm --version` loads typer and no model, SDK or monitor code;
`swarm status` reads the registry without the world (git, tmux, forge) or any SDK. Checked on the modules
a real `swarm` process has loaded when it exits (the time itself is measured by bench/startup_bench.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.cli.entry import exit_code
from orchestrator.config import ConfigError
from orchestrator.errors import OperationalError, UsageError
from registry.store import RegistryError
from tests.worlds import write_config

SDKS = {"github", "anthropic", "slack_sdk", "sentry_sdk", "apscheduler", "jinja2", "httpx", "starlette", "uvicorn"}
REPORT = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
    "from orchestrator.cli import main\n"
    "main()\n"
)


def loaded(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    done = subprocess.run([sys.executable, "-c", REPORT, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    return done, set(json.loads(line.removeprefix("MODULES ")))


def tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_version_loads_typer_and_nothing_of_swarm_s_own_weight(tmp_path: Path) -> None:
    done, modules = loaded(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("swarm ")
    heavy = tops(modules) & (SDKS | {"pydantic", "rich", "git", "monitor", "registry"})
    assert not heavy, f"swarm --version loaded {sorted(heavy)}"
    assert not {m for m in modules if m.startswith(("orchestrator.brain", "orchestrator.wiring"))}


def test_status_reads_the_registry_without_the_world_or_an_sdk(git_repo: Path) -> None:
    write_config(git_repo, "swarm-unused-socket")
    done, modules = loaded(git_repo, "status")
    assert done.returncode == 0, done.stderr
    assert "no tasks yet" in done.stdout
    assert not tops(modules) & (SDKS | {"git"}), sorted(tops(modules) & (SDKS | {"git"}))
    unwanted = {"orchestrator.wiring", "orchestrator.tasks", "monitor.tick", "monitor.runner", "monitor.world.tmux"}
    assert not modules & unwanted, sorted(modules & unwanted)
    assert (git_repo / ".swarm").is_dir()  # prepared as for every other command


def test_errors_map_to_exit_codes() -> None:
    assert exit_code(UsageError("x")) == 2
    assert exit_code(ConfigError("x")) == 2
    assert exit_code(OperationalError("x")) == 1
    assert exit_code(RegistryError("x")) == 1
    assert exit_code(ValueError("x")) is None
