"""The sections of ``swarm.toml`` about how work arrives, lands and is paid for: ``[plan]`` (stacked tasks),
``[merge]`` (the merge train), ``[budget]``, ``[discovery]`` (meeting notes), ``[after_merge]`` and
``[serve]`` (the dashboard). Loaded and checked with the rest by :mod:`orchestrator.config`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from orchestrator.config_base import Duration, Section


class PlanSettings(Section):
    """``[plan]``: stacked starts. A dependent task starts on its dependency's branch once that branch passed its
    own checks, instead of waiting for the merge (monitor/merge/stack.py). ``stack``: "contracts" (default: planned
    tasks whose dependency owns a contract of the plan), true (every task with one unmerged dependency), false."""

    stack: bool | Literal["contracts"] = "contracts"
    restack: Literal["rebase", "merge"] = "rebase"  # how a dependent follows its dependency's new head

    @property
    def stack_mode(self) -> str:
        return "contracts" if self.stack == "contracts" else ("all" if self.stack else "off")


class MergeSettings(Section):
    """How approved PRs land: "manual" (the human merges, as before) or "queue" (the merge train)."""

    mode: Literal["manual", "queue"] = "manual"
    method: Literal["merge", "squash", "rebase"] = "merge"


class BudgetSettings(Section):
    """``[budget]``: spend limits enforced by code (monitor/budget.py); 0 = no limit. A day starts at local
    midnight in ``timezone`` (default: this machine's), a week on Monday."""

    per_task_usd: float = Field(0.0, ge=0)  # over it, a task gets no more retries (one notification)
    per_day_usd: float = Field(0.0, ge=0)  # over it, nothing new starts or respawns until tomorrow or a raise
    per_week_usd: float = Field(0.0, ge=0)
    per_task_tokens: int = Field(0, ge=0)  # [llm] task_token_budget is the older name of this one
    per_day_tokens: int = Field(0, ge=0)
    per_week_tokens: int = Field(0, ge=0)
    timezone: str = ""  # an IANA zone ("Europe/Paris"); "" = the machine's local time

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not a time zone: give an IANA name like \"Europe/Paris\"") from None
        return value


class DiscoverySettings(Section):
    """``[discovery]``: meeting notes and feedback files read into proposals (orchestrator/discovery/notes.py)."""

    notes: list[str] = []  # globs or directories, relative to the repository
    notes_every: Duration = 0.0  # 0 = only `swarm discover notes`; else run by the daemon or the timer
    notes_kind: str = "default"  # the task kind of an approved proposal (routing picks the agent)
    max_note_chars: int = Field(60000, ge=1000)  # per file and run: the rest waits for the next run


class AfterMergeSettings(Section):
    """``[after_merge]``: small follow-up tasks when the base branch moves (orchestrator/after_merge.py)."""

    tasks: list[str] = []  # "changelog", "docs", or a kind of your own with a prompt in [after_merge.prompts]
    docs_command: str = ""  # "docs": the agent runs this command and commits what it changed
    changelog: str = "CHANGELOG.md"
    prompts: dict[str, str] = {}  # kind -> prompt (overrides the built-in ones, or defines a new kind)

    @model_validator(mode="after")
    def _known(self) -> AfterMergeSettings:
        for kind in self.tasks:
            if kind not in ("changelog", "docs") and not self.prompts.get(kind, "").strip():
                raise ValueError(f"tasks: {kind!r} is neither \"changelog\" nor \"docs\"; give it a prompt in "
                                 f"[after_merge.prompts] ({kind} = \"...\")")
        return self


class ServeSettings(Section):
    token_env: str = "SWARM_SERVE_TOKEN"  # the dashboard's token: required to listen beyond loopback
    host: str = "127.0.0.1"  # `swarm serve` defaults, overridden by --host / --port
    port: int = Field(8765, ge=0, le=65535)
