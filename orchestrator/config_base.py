"""What every ``swarm.toml`` section is built on: a frozen model that refuses unknown keys, and durations
written as ``90s``/``20m``/``2h``. Kept apart so the section modules can share it without importing the
whole settings tree."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from monitor.durations import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
