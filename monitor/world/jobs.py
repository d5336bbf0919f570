"""Check jobs (local CI, local reviewers, swarm's AI review lenses) as both forges read them: a job runs
once per head SHA in a tmux session through the agent-run wrapper, and its ``result.json`` is the verdict.
When the task's agent ran in a container, its CI and local reviewers run in one like it (the wrapper runs
:mod:`monitor.runtime.checkjob`); the AI review lenses stay on the host (:func:`is_lens_job`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from monitor.agent_run import LOG, RESULT
from monitor.files import read_json, read_tail
from monitor.layout import Layout, job_session_for
from monitor.observation import Review
from monitor.redact import redact
from monitor.world.tmux import Pane
from registry.models import Task


class JobRunner(Protocol):
    def launch_job(self, task: Task, sha: str, job: str, command: str, timeout: float) -> None: ...

LENS_PREFIX = "swarm:"  # reviewers named "swarm:<lens>" are swarm's own AI review lenses
TEMPFAIL = 75  # a job that could not judge (the model API was down): no verdict, run again next tick


def job_name(reviewer: str) -> str:
    """The job (directory and session) name of a reviewer: ``review-<slug>``."""
    slug = "".join(c if c.isalnum() else "-" for c in reviewer.lower()).strip("-")[:30] or "reviewer"
    return f"review-{slug}"


def is_lens_job(job: str) -> bool:
    """Whether a job (by its name) is one of swarm's AI review lenses (``review-swarm-<lens>``)."""
    return job.startswith(job_name(LENS_PREFIX + "x")[:-1])


def job_state(layout: Layout, task_id: str, head: str, job: str, panes: Mapping[str, Pane] | None) -> tuple[str, str]:
    """("pass" | "fail" | "pending" | "not_started", output tail) of one job at ``head``."""
    job_dir = layout.job_dir(task_id, head, job)
    result = read_json(job_dir / RESULT)
    if result is not None and result.get("exit_code") == TEMPFAIL:
        return "not_started", ""  # started again by the forge; the runner replaces the old run
    if result is not None:
        output = read_tail(job_dir / LOG, lines=80)
        if result.get("error"):
            output = f"{output}\n{result['error']}"
        return ("pass" if result.get("exit_code") == 0 else "fail"), output
    pane = (panes or {}).get(job_session_for(task_id, job))
    if (job_dir / "run.json").exists() and pane is not None and not pane.dead:
        return "pending", ""
    if panes is None and (job_dir / "run.json").exists():
        return "pending", ""  # tmux unreachable: do not start it twice
    return "not_started", ""


def fill(command: str, task_id: str, head: str) -> str:
    """A reviewer command with its ``{task}`` and ``{head}`` placeholders filled."""
    return command.replace("{task}", task_id).replace("{head}", head)


class LensJobs:
    """swarm's AI review lenses on a forge that has its own reviewers (GitHub): started as check jobs,
    their verdicts read from ``result.json``, their findings (``review.json``) posted once per head."""

    POSTED = "posted"

    def __init__(self, layout: Layout, runner: JobRunner, commands: Mapping[str, str], timeout: float) -> None:
        self.layout = layout
        self.runner = runner
        self.commands = dict(commands)  # "swarm:<lens>" -> command with {task} and {head}
        self.timeout = timeout

    def view(self, task: Task, head: str, panes: Mapping[str, Pane] | None
             ) -> tuple[tuple[Review, ...], tuple[str, ...], tuple[str, ...]]:
        reviews: list[Review] = []
        not_started: list[str] = []
        to_post: list[str] = []
        for name in self.commands:
            state, output = job_state(self.layout, task.id, head, job_name(name), panes)
            if state in ("pass", "fail"):
                reviews.append(Review(name, "APPROVED" if state == "pass" else "CHANGES_REQUESTED", output))
                job_dir = self.layout.job_dir(task.id, head, job_name(name))
                if (job_dir / "review.json").exists() and not (job_dir / self.POSTED).exists():
                    to_post.append(name)
            elif state == "not_started":
                not_started.append(name)
        return tuple(reviews), tuple(not_started), tuple(to_post)

    def start(self, task: Task, head: str, names: Sequence[str]) -> None:
        for name in names:
            if name in self.commands:
                self.runner.launch_job(task, head, job_name(name), fill(self.commands[name], task.id, head),
                                       self.timeout)

    def review(self, task: Task, head: str, name: str) -> tuple[str, str, list[dict[str, Any]]] | None:
        """(body, event, inline comments) of a lens's review at ``head``, or None."""
        data = read_json(self.layout.job_dir(task.id, head, job_name(name)) / "review.json")
        if data is None:
            return None
        approved = data.get("verdict") == "approve"
        findings = [f for f in data.get("findings") or [] if isinstance(f, dict)]
        lines = [f"**{name}** {'approves' if approved else 'requests changes'} at `{head[:10]}`",
                 str(data.get("summary", ""))]
        lines += [f"- `{f.get('path', '')}:{f.get('line', 0)}` [{f.get('severity', '')}] {f.get('message', '')}"
                  for f in findings]
        comments = [{"path": str(f["path"]), "line": int(f["line"]), "body": f"[{f.get('severity', '')}] "
                     f"{f.get('message', '')}"} for f in findings if f.get("path") and f.get("line")]
        return redact("\n".join(lines)), "APPROVE" if approved else "REQUEST_CHANGES", comments

    def mark_posted(self, task: Task, head: str, name: str) -> None:
        (self.layout.job_dir(task.id, head, job_name(name)) / self.POSTED).write_text("posted\n", encoding="utf-8")
