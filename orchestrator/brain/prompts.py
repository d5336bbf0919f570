"""The first prompt of each planned task: everything an agent needs to do its part and nothing else.

Why a template and not a second model call: the plan already holds the thinking (description, scope,
acceptance criteria, contracts); what remains is putting it in front of the agent in a fixed order, with
the things every agent must know and keeps forgetting. Deterministic text is free, reviewable and
testable. In order:

1. the task itself (what, why, scope, acceptance criteria, what it depends on), and where it sits in the
   plan, so parallel agents do not do each other's work;
2. the shared contracts, all of them, the ones this task implements marked as its own: parallel tasks
   meet only through these, so each must be built exactly as written;
3. the business context chosen again for *this* task (its title and description against the context
   files) within a per-task share of the budget, the learnings always in;
4. how done is judged, as the monitor judges it (commits on the branch, no conflict with the base, CI,
   reviews, screenshots of UI changes), with this repository's settings; the agent commits and does not
   push: the monitor pushes and opens the pull request;
5. the guardrails learned the hard way, from agents that "fixed" a conflict by discarding other work,
   replaced code with stubs, or committed code calling functions that did not exist.

Context files are the user's own, so they are trusted, but they stay inside labelled blocks, apart from
the instructions. The runner appends the common footer (``monitor.retry.FOOTER``) to every prompt.
"""

from __future__ import annotations

from monitor.layout import SCREENSHOT_DIR
from orchestrator.brain.context import SelectedContext, reselect
from orchestrator.brain.plan import Contract, Plan, PlannedTask
from orchestrator.config import Settings

TASK_CONTEXT_SHARE = 0.5  # each task's context gets this share of context.budget_tokens

GUARDRAILS = (
    "Never run `git restore --source=HEAD`, `git checkout -- <path>`, `git reset --hard`, `git clean` or "
    "`git stash` over changes you did not make: other work in this branch (from merged tasks or a previous "
    "attempt) is not yours to discard.",
    "Never replace an existing implementation with `pass  # TODO`, `...`, `raise NotImplementedError`, a stub "
    "or a placeholder to make something compile or a test pass; if you cannot finish a part, leave the "
    "existing code as it is and say so in your final message.",
    "When resolving a merge conflict, keep the more complete side of each hunk (usually both sides' additions); "
    "never resolve by taking one side wholesale; then read each resolved file back and check that the "
    "functions and classes both sides defined still exist (the supervisor verifies this and rejects the fix).",
    "After editing, verify that every function, class, module and file you call, import or reference "
    "really exists with that name and signature (search for it, import it, run it).",
    "Run the tests (and the linters the project uses) before committing, and commit only when they pass; "
    "never delete, skip or weaken a test to make it pass.",
    "Stay within the scope of this task; another agent may be changing other parts of the repository now.",
)


def task_budget(settings: Settings) -> int:
    """Tokens of business context in one task's prompt."""
    return int(settings.context.budget_tokens * TASK_CONTEXT_SHARE)


def _bullets(items: tuple[str, ...] | list[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _contract(contract: Contract, task: PlannedTask, titles: dict[str, str]) -> str:
    if contract.owner == task.id:
        who = "**owned by this task: you implement it, exactly as specified**"
    elif contract.owner in titles:
        who = (f"owned by task `{contract.owner}` ({titles[contract.owner]}): build against it as specified; "
               "do not implement it yourself")
    else:
        who = "shared: whoever touches it keeps to it"
    spec = contract.spec.strip().replace("```", "'''")
    return f"### {contract.name} ({contract.kind}) — {who}\n\n```\n{spec}\n```"


def contracts_section(plan: Plan, task: PlannedTask) -> str:
    """Every contract of the plan, the ones ``task`` owns marked (and listed first)."""
    if not plan.contracts:
        return ""
    titles = {t.id: t.title for t in plan.tasks}
    ordered = sorted(plan.contracts, key=lambda c: c.owner != task.id)
    body = "\n\n".join(_contract(c, task, titles) for c in ordered)
    return ("## Shared contracts\n\nThe tasks of this plan run in parallel and meet only through these "
            "interfaces. Keep every name, signature and data shape exactly as written; if one is impossible "
            "to keep, say so in your final message instead of changing it.\n\n" + body)


def context_section(context: SelectedContext) -> str:
    if not context.text.strip():
        return ""
    learned = "; the learnings are rules learned from earlier tasks: follow them" if context.learnings else ""
    return (f"## Business context\n\nFrom the project's own notes, chosen for this task (each file is "
            f"delimited{learned}).\n\n" + context.text.strip())


def done_section(settings: Settings) -> str:
    """How the monitor will judge this task, with this repository's settings."""
    done = settings.done
    base = settings.project.base_branch
    lines = []
    if done.commits:
        lines.append(f"new commits on your branch (ahead of `{base}`); uncommitted work is lost when you exit")
    if done.no_conflict:
        lines.append(f"the branch merges into `{base}` without conflicts")
    if done.up_to_date:
        lines.append(f"the branch contains the latest `{base}`")
    if done.ci:
        if settings.project.forge == "github":
            lines.append("CI is green: every check on the pull request passes")
        elif settings.local.ci.strip():
            lines.append(f"CI is green: `{settings.local.ci.strip()}` passes in your worktree")
        else:
            lines.append("the project's tests pass (no CI command is configured: run them yourself)")
    if done.reviews:
        who = f" from {', '.join(done.reviewers)}" if done.reviewers else ""
        lines.append(f"{done.reviews} approving review(s){who} on the latest commit; a review asking for "
                     "changes sends the task back to you")
    if done.screenshots_for:
        globs = ", ".join(f"`{g}`" for g in done.screenshots_for)
        lines.append(f"changes to UI files ({globs}) come with screenshots of the changed screens, saved under "
                     f"`{SCREENSHOT_DIR}/` and committed")
    else:
        lines.append(f"changes to the UI come with screenshots, saved under `{SCREENSHOT_DIR}/` and committed")
    pr = ("the supervisor pushes your branch and opens the pull request" if settings.project.forge == "github"
          else "the supervisor takes the branch from here")
    return ("## How done is judged\n\nA supervisor checks this automatically when you exit; a failed check "
            "comes back to you with its evidence:\n\n" + _bullets(lines)
            + f"\n\nCommit your work on the current branch with `git commit`. Do not push and do not open a pull "
              f"request: {pr}.")


def guardrails_section() -> str:
    return "## Guardrails (learned the hard way)\n\n" + _bullets(GUARDRAILS)


def _plan_section(task: PlannedTask, plan: Plan) -> str:
    others = [t for t in plan.tasks if t.id != task.id]
    if not others:
        return ""
    lines = []
    for other in others:
        scope = f" (scope: {', '.join(other.scope)})" if other.scope else ""
        lines.append(f"`{other.id}`: {other.title}{scope}")
    summary = f"{plan.summary.strip()}\n\n" if plan.summary.strip() else ""
    return (f"## The plan this task is part of\n\n{summary}Other agents work on these tasks; do not do their "
            "part:\n\n" + _bullets(lines))


def task_prompt(task: PlannedTask, plan: Plan, context: SelectedContext, settings: Settings) -> str:
    """The first prompt of ``task`` (the runner adds the common footer)."""
    titles = {t.id: t.title for t in plan.tasks}
    mine = reselect(context, f"{task.title}\n{task.description}", task_budget(settings))
    parts = [f"# Task: {task.title}\n\nYou are a coding agent working in a git worktree of this repository, on "
             f"your own branch. Your task (`{task.id}`, kind {task.kind}):\n\n{task.description.strip()}"]
    if task.scope:
        parts.append("## Scope\n\nChange only these files and modules (and their tests):\n\n"
                     + _bullets([f"`{s}`" for s in task.scope]))
    if task.acceptance:
        parts.append("## Acceptance criteria\n\n" + _bullets(task.acceptance))
    if task.depends_on:
        deps = [f"`{d}`: {titles.get(d, d)}" for d in task.depends_on]
        parts.append(f"## Builds on\n\nThese tasks were merged into `{settings.project.base_branch}` before this "
                     "one started; their work is in your branch, use it:\n\n" + _bullets(deps))
    parts += [_plan_section(task, plan), contracts_section(plan, task), context_section(mine),
              done_section(settings), guardrails_section()]
    return "\n\n".join(p for p in parts if p).rstrip() + "\n"


def single_prompt(request: str, context: SelectedContext, settings: Settings) -> str:
    """The prompt of the one task made without planning (no model key): the request as written, the
    selected context, how done is judged and the guardrails."""
    parts = [f"# Task\n\n{request.strip()}", context_section(context), done_section(settings),
             guardrails_section()]
    return "\n\n".join(p for p in parts if p).rstrip() + "\n"


__all__ = ["GUARDRAILS", "contracts_section", "done_section", "single_prompt", "task_budget", "task_prompt"]
