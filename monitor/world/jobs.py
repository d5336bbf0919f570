"""Check jobs (local CI, local reviewers, swarm's AI review lenses) as both forges read them: a job runs
once per head SHA in a tmux session through the agent-run wrapper, and its ``result.json`` is the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.agent_run import LOG, RESULT
from monitor.files import read_json, read_tail
from monitor.layout import Layout, job_session_for
from monitor.world.tmux import Pane

LENS_PREFIX = "swarm:"  # reviewers named "swarm:<lens>" are swarm's own AI review lenses
TEMPFAIL = 75  # a job that could not judge (the model API was down): no verdict, run again next tick


def job_name(reviewer: str) -> str:
    """The job (directory and session) name of a reviewer: ``review-<slug>``."""
    slug = "".join(c if c.isalnum() else "-" for c in reviewer.lower()).strip("-")[:30] or "reviewer"
    return f"review-{slug}"


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
