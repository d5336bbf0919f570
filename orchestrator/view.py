"""What the commands that only read the registry need (`swarm status`): the repository, its settings,
layout and registry, without building the world (tmux, git, the runner, the forge), which loads most of
the monitor. ``wiring`` builds the world on top of these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.layout import Layout
from monitor.redact import register_secret_env
from monitor.statedir import ensure_state_dir
from orchestrator.config import CONFIG_NAME, ConfigError, Settings, load
from orchestrator.errors import UsageError
from registry.archive import archive_dir, find_archived
from registry.models import Task
from registry.store import Registry


def find_repo(start: Path | None = None) -> Path:
    """The directory holding swarm.toml, searching upwards from ``start`` (default: the cwd)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    raise ConfigError(f"no {CONFIG_NAME} in {here} or its parents: run `swarm init` in your repository first")


def utc_now() -> datetime:
    return datetime.now(UTC)


def register_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Mask the values of every configured secret (and the model key) wherever redact() runs."""
    register_secret_env([*settings.secret_env_names(), settings.llm.api_key_env], environ)


@dataclass(frozen=True)
class View:
    layout: Layout
    registry: Registry


def load_view(start: Path | None = None) -> tuple[Settings, View]:
    """The settings and a registry to read, prepared as ``build_world`` prepares them (the state directory
    exists and is git-excluded; the configured secrets are masked)."""
    repo = find_repo(start)
    settings = load(repo / CONFIG_NAME)
    layout = Layout.for_repo(repo, settings.project.worktree_root)
    ensure_state_dir(layout.state_dir)
    register_secrets(settings)
    return settings, View(layout=layout, registry=Registry(layout.state_dir))


def find_task(registry: Registry, state_dir: Path, task_id: str) -> Task:
    """The task with this id or unique id prefix; else a usage error that says where it went (archived)."""
    state = registry.read()
    task = state.tasks.get(task_id)
    if task is None:
        matches = [t for t in state.tasks if t.startswith(task_id)]
        if len(matches) == 1:
            return state.tasks[matches[0]]
        hint = f" (did you mean {', '.join(matches[:5])}?)" if matches else " (see `swarm status`)"
        old = find_archived(state_dir, task_id)
        if old is not None:
            hint = (f": it {old.status.value} and was archived to {archive_dir(state_dir)} "
                    f"(its prompts and logs are under archive/runs/{old.id})")
        raise UsageError(f"no task {task_id!r}{hint}")
    return task
