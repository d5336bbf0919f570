"""Where everything lives: state under ``.swarm/`` beside the repository's ``.git``, worktrees outside the
repository, and the names derived from a task id (branch, session). One place, so no module guesses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

AGENT_SESSION_PREFIX = "swarm-"
JOB_SESSION_PREFIX = "swarmjob-"
BRANCH_PREFIX = "swarm/"
SCREENSHOT_DIR = ".swarm-screenshots"


@dataclass(frozen=True)
class Layout:
    repo: Path
    worktree_root: Path

    @classmethod
    def for_repo(cls, repo: Path, worktree_root: str = "") -> Layout:
        repo = repo.resolve()
        root = Path(worktree_root).expanduser() if worktree_root else repo.parent / f"{repo.name}.swarm"
        if not root.is_absolute():
            root = repo / root
        return cls(repo=repo, worktree_root=root.resolve())

    @property
    def state_dir(self) -> Path:
        return self.repo / ".swarm"

    @property
    def events_path(self) -> Path:
        return self.state_dir / "events.jsonl"

    @property
    def tick_lock(self) -> Path:
        return self.state_dir / "tick.lock"

    @property
    def runs_dir(self) -> Path:
        """Prompts, run specs and agents' logs: 0700, so its files are private whatever their mode."""
        return self.state_dir / "runs"

    def task_dir(self, task_id: str) -> Path:
        return self.runs_dir / task_id

    def run_dir(self, task_id: str, attempt: int) -> Path:
        return self.task_dir(task_id) / str(attempt)

    def job_dir(self, task_id: str, sha: str, job: str) -> Path:
        return self.task_dir(task_id) / "checks" / sha[:12] / job

    def worktree(self, task_id: str) -> Path:
        return self.worktree_root / task_id


def branch_for(task_id: str) -> str:
    return f"{BRANCH_PREFIX}{task_id}"


def session_for(task_id: str) -> str:
    return f"{AGENT_SESSION_PREFIX}{task_id}"


def job_session_for(task_id: str, job: str) -> str:
    return f"{JOB_SESSION_PREFIX}{task_id}-{job}"
