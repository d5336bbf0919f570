"""What an agent's tokens cost, from a price table the user can extend in ``swarm.toml`` (``[pricing]``).

Why: Claude Code reports its own cost, Codex only counts tokens, so a Codex task showed a blank cost and the
footer "$0.00". Known models are priced here (USD per million tokens, standard tier, short context); a model
with no price shows "unknown", never a made-up zero. The model name comes from the CLI's output, else from
the profile's argv (``-m``/``--model``/``-c model=...``) or environment, else from Codex's own config file.

Sources (checked 2026-12): Anthropic's pricing page (platform.claude.com/docs/en/about-claude/pricing) and
OpenAI's model and pricing pages (developers.openai.com/api/docs/pricing); cached input is the cache-read rate.
Left out on purpose: models priced by prompt length (Haiku 5.5: one rate up to 100k tokens, another above), since
one rate would misprice an agent's long prompts. ``orchestrator/llm.py`` keeps its own table for its budget,
which prices an unknown model as the most expensive one instead.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float


BUILTIN: dict[str, Price] = {
    # Anthropic
    "claude-fable-5-1": Price(10.0, 50.0, 0.25),
    "claude-mythos-5-1": Price(10.0, 50.0, 0.25),
    "claude-fable-5": Price(10.0, 50.0, 1.0),
    "claude-mythos-5": Price(10.0, 50.0, 1.0),
    "claude-opus-5-5": Price(4.0, 20.0, 0.20),
    "claude-opus-5": Price(5.0, 25.0, 0.50),
    "claude-opus-4-8": Price(5.0, 25.0, 0.50),
    "claude-opus-4-7": Price(5.0, 25.0, 0.50),
    "claude-opus-4-6": Price(5.0, 25.0, 0.50),
    "claude-opus-4-5": Price(5.0, 25.0, 0.50),
    "claude-opus-4-1": Price(15.0, 75.0, 1.50),
    "claude-opus-4": Price(15.0, 75.0, 1.50),
    "claude-sonnet-5-5": Price(2.0, 10.0, 0.10),
    "claude-sonnet-5": Price(2.0, 10.0, 0.20),
    "claude-sonnet-4-6": Price(3.0, 15.0, 0.30),
    "claude-sonnet-4-5": Price(3.0, 15.0, 0.30),
    "claude-sonnet-4": Price(3.0, 15.0, 0.30),
    "claude-haiku-4-5": Price(1.0, 5.0, 0.10),
    # OpenAI
    "gpt-5.5": Price(5.0, 30.0, 0.50),
    "gpt-5.4": Price(2.50, 15.0, 0.25),
    "gpt-5.4-mini": Price(0.75, 4.50, 0.075),
    "gpt-5.4-nano": Price(0.20, 1.25, 0.02),
    "gpt-5.1": Price(1.25, 10.0, 0.125),
    "gpt-5": Price(1.25, 10.0, 0.125),
    "gpt-5-codex": Price(1.25, 10.0, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
}

# A dated snapshot or alias of a priced model: "claude-sonnet-4-5-20250929", "gpt-5-2025-08-07", "...-latest".
_SNAPSHOT = re.compile(r"(-(\d{8}|\d{4}-\d{2}-\d{2}|latest)|\[[^\]]*\])$")  # also a "[1m]"-style tag

_user: dict[str, Price] = {}


def use_table(table: Mapping[str, Price]) -> None:
    """The user's ``[pricing]`` entries, over the built-in ones (set when ``swarm.toml`` is loaded)."""
    _user.clear()
    _user.update({name.lower(): price for name, price in table.items()})


def price_of(model: str) -> Price | None:
    """The price of ``model`` (the user's table first), also for a dated snapshot of a priced name."""
    name = model.strip().lower().rsplit("/", 1)[-1]  # "openai/gpt-5" and "anthropic/claude-..." too
    for candidate in (name, _SNAPSHOT.sub("", name)):
        for table in (_user, BUILTIN):
            if candidate in table:
                return table[candidate]
    return None


def cost_usd(model: str, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float | None:
    """The cost of one run (``input_tokens`` includes the cached ones), or None when the price is unknown."""
    price = price_of(model) if model else None
    if price is None:
        return None
    cached = min(max(cached_input_tokens, 0), max(input_tokens, 0))
    fresh = max(input_tokens, 0) - cached
    return round((fresh * price.input + cached * price.cached_input + max(output_tokens, 0) * price.output)
                 / 1_000_000, 6)


_MODEL_ENV = ("ANTHROPIC_MODEL", "OPENAI_MODEL", "GEMINI_MODEL")


def model_from_launch(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The model a profile asks for: ``-m M``, ``--model M``, ``--model=M``, ``-c model=M`` or a model variable."""
    for index, part in enumerate(argv):
        following = argv[index + 1] if index + 1 < len(argv) else ""
        if part in ("-m", "--model") and following:
            return following
        if part.startswith("--model="):
            return part.split("=", 1)[1]
        if part in ("-c", "--config") and re.match(r"\s*model\s*=", following):
            return following.split("=", 1)[1].strip().strip("\"'")
    return next((env[name] for name in _MODEL_ENV if env.get(name)), "")


def codex_default_model(env: Mapping[str, str]) -> str:
    """The ``model`` of Codex's own config (``$CODEX_HOME/config.toml``, else ``~/.codex/config.toml``)."""
    home = env.get("CODEX_HOME") or os.environ.get("CODEX_HOME") or str(Path.home() / ".codex")
    try:
        model = tomllib.loads((Path(home) / "config.toml").read_text(encoding="utf-8")).get("model")
    except (OSError, ValueError):
        return ""
    return model if isinstance(model, str) else ""
