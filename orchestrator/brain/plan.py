"""The shape of a plan: what the planner returns and what `swarm submit` turns into tasks.

One module for the data so that the planner (which asks the model and repairs its answer), the prompt
writer and `submit` agree on it without importing each other. Validation is strict: a plan that does not
fit after repair is refused as a whole, never half-applied.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PLAN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contract(Strict):
    """An interface parallel tasks build against: injected into every task's prompt."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["function", "data", "api", "file_ownership", "other"] = "other"
    spec: str = Field(min_length=1, max_length=4000)  # a signature, a data shape, "task-a owns src/x/"
    owner: str = ""  # the plan id of the task that implements it ("" = shared)


class PlannedTask(Strict):
    id: str  # a plan-local id ("csv-export"); submit maps it to a registry task id
    title: str = Field(min_length=1, max_length=200)
    kind: str = "default"  # routing key
    description: str = Field(min_length=1, max_length=20000)  # what to build and why (business context)
    scope: tuple[str, ...] = ()  # files or modules the task may touch
    acceptance: tuple[str, ...] = ()  # acceptance criteria
    depends_on: tuple[str, ...] = ()  # plan ids that must be merged first
    agent: str = ""  # the planner's suggestion; used only when it names a configured profile

    @field_validator("id")
    @classmethod
    def _plan_id(cls, value: str) -> str:
        if not PLAN_ID_RE.match(value):
            raise ValueError(f"task id {value!r}: use lowercase letters, digits and dashes (≤ 40)")
        return value


class Plan(Strict):
    summary: str = ""
    tasks: tuple[PlannedTask, ...] = Field(min_length=1)
    contracts: tuple[Contract, ...] = ()
    context_used: tuple[str, ...] = ()  # the context files selected for the request (filled by swarm)
    notes: tuple[str, ...] = ()  # what swarm changed: merged, sequenced, capped, rerouted


class Usage(Strict):
    """Tokens and dollars of one or more model calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens,
                     cost_usd=round(self.cost_usd + other.cost_usd, 6))
