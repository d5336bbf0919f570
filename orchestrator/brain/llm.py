"""The orchestrator's one door to the model: the Anthropic Messages API behind a small class.

Why a wrapper and not the SDK everywhere: every caller (the planner, retry prompts, reviews) needs the
same three things the SDK leaves to us — structured output through a *forced* tool call, token usage
turned into dollars, and failures turned into one actionable line (``LlmError``) instead of a dozen SDK
exception classes. The SDK still does what it does well: bounded retries with backoff on 429/5xx/529 and
connection errors (``max_retries``), and a per-request ``timeout``.

``anthropic`` is imported inside :class:`Llm` only, so ``import orchestrator.brain.llm`` (and so every command
that never talks to a model, and the monitor) does not pay for loading it.

The key never appears in an error message: every message is written here from the status and the API's
error type, and any text taken from an answer is scrubbed of the key before it is used.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.brain.plan import Usage

if TYPE_CHECKING:
    from orchestrator.config import Settings

log = logging.getLogger(__name__)

# Dollars per million tokens (input, output): Anthropic's list prices as published on platform.claude.com
# (the "Pricing" page and each model's page), read 2026-11. A model id matches after its date suffix
# ("-20250929"), "-latest" and a "[1m]"-style tag are removed; nothing is matched by a looser prefix, so a new
# release is never priced as its older sibling. Cache reads and writes are counted at the input rate (swarm
# asks for no prompt caching). Models whose price is tiered or was not confirmed (Haiku 5.5, Opus 4.7,
# Fable 5.2, ...) are left out on purpose and get the default.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-fable-5": (10.0, 50.0),
    "claude-fable-5-1": (10.0, 50.0),
    "claude-mythos-5": (10.0, 50.0),
    "claude-opus-5-5": (4.0, 20.0),
    "claude-opus-5": (5.0, 25.0),
    "claude-opus-4-8": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4-0": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-5-5": (2.0, 10.0),
    "claude-sonnet-5": (2.0, 10.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4-0": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-opus": (15.0, 75.0),
}
# An unknown model (a new release, a proxy's alias) is priced as the most expensive model ever listed, so a
# budget check errs on the side of stopping early rather than overspending.
DEFAULT_PRICE_PER_MTOK: tuple[float, float] = (15.0, 75.0)

# Models that answer a forced tool_choice with a 400 ("What's new in Claude Opus 5.5": forced tool use
# returns an error, on Fable 5.1 too). For them, and for any model whose 400 says so, structured() asks with
# tool_choice "auto" and an instruction instead, and still insists on the tool call in the answer.
NO_FORCED_TOOL: frozenset[str] = frozenset({"claude-opus-5-5", "claude-fable-5-1", "claude-sonnet-5-5"})
_MODEL_SUFFIX = re.compile(r"(\[[^\]]*\])$|(-\d{8}|-latest)$")

DEFAULT_BASE_URL = "https://api.anthropic.com"
_MAX_DETAIL = 300  # characters of the API's own error message kept in ours


def model_family(model: str) -> str:
    """``model`` without its date, "-latest" or "[1m]" suffix: "claude-sonnet-4-5-20250929" → "claude-sonnet-4-5"."""
    family = model.strip()
    while (shorter := _MODEL_SUFFIX.sub("", family)) != family:
        family = shorter
    return family


def price(model: str, usage_in: int, usage_out: int) -> float:
    """Dollars for one call of ``model`` with these token counts (see :data:`PRICES_PER_MTOK`)."""
    per_in, per_out = PRICES_PER_MTOK.get(model_family(model), DEFAULT_PRICE_PER_MTOK)
    return round((usage_in * per_in + usage_out * per_out) / 1_000_000, 6)


class LlmError(Exception):
    """A model call that gave no usable answer; the message is one line saying what to do.

    ``raw`` is whatever the model did answer (the tool input as JSON, or its text) when there was an
    answer, so the caller can dead-letter it; ``usage`` is what the failed call cost (zero when no answer
    came back); ``retryable`` says whether trying again later may help.
    """

    def __init__(self, message: str, *, raw: str | None = None, usage: Usage | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.raw = raw
        self.usage = usage if usage is not None else Usage()
        self.retryable = retryable


class Llm:
    """The Anthropic Messages API for one model: structured output through one tool call, and plain text.

    The tool call is forced (``tool_choice`` of type ``tool``) where the model allows it; a model that
    refuses forcing (see :data:`NO_FORCED_TOOL`, or a 400 naming ``tool_choice``) is asked with ``auto`` and an
    instruction, for this and every later call, and its answer is held to the same checks.
    """

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        max_tokens: int = 8192,
        key_env: str = "ANTHROPIC_API_KEY",
    ) -> None:
        import anthropic  # here, not at module level: see the module docstring

        self.model = model
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.key_env = key_env  # named in the message of a 401
        self._key = api_key
        self._force_tools = model_family(model) not in NO_FORCED_TOOL  # cleared when the API refuses forcing
        self._anthropic = anthropic
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout,
                                           max_retries=max_retries)
        self.base_url = str(self._client.base_url).rstrip("/")

    # -- the two kinds of call --------------------------------------------------------------------------

    def structured(self, system: str, user: str, tool_name: str, schema: dict[str, Any], *,
                   max_tokens: int | None = None) -> tuple[Any, Usage, str]:
        """Force a call of tool ``tool_name`` (input schema ``schema``) and return its input.

        Returns (the tool input as parsed JSON, usage, the input serialized as JSON for a dead-letter).
        The input is **not** validated against ``schema``: the model may still answer off-schema, so the
        caller normalizes and validates it.
        """
        tool = {"name": tool_name, "description": f"Answer by calling {tool_name} exactly once.",
                "input_schema": schema}
        response = None
        if self._force_tools:
            try:
                response = self._send(system, user, max_tokens, tools=[tool],
                                      tool_choice={"type": "tool", "name": tool_name})
            except self._anthropic.BadRequestError as exc:
                detail = self._detail(exc).lower()
                if "tool_choice" not in detail and "forced" not in detail:
                    raise self._translate(exc) from None
                log.info("model %s refuses a forced tool_choice; asking with tool_choice auto", self.model)
                self._force_tools = False
            except self._anthropic.APIError as exc:
                raise self._translate(exc) from None
        if response is None:  # the model cannot be forced: ask, and check the answer as strictly
            insist = f"\n\nAnswer only by calling the tool {tool_name}, exactly once, with no other text."
            response = self._create(system + insist, user, max_tokens, tools=[tool], tool_choice={"type": "auto"})
        usage = self._usage(response)
        calls = [b for b in response.content if getattr(b, "type", None) == "tool_use"]
        chosen = next((b for b in calls if getattr(b, "name", None) == tool_name), None)
        raw = json.dumps(chosen.input, ensure_ascii=False) if chosen is not None else self._text_of(response)
        self._check_stop(response, raw, usage)
        if chosen is None:
            names = ", ".join(sorted({str(getattr(b, "name", "?")) for b in calls})) or "none"
            raise LlmError(
                f"the model did not call the tool {tool_name} (tools called: {names}; stop_reason "
                f"{response.stop_reason}); try again, or try another llm.model",
                raw=raw, usage=usage, retryable=True)
        return chosen.input, usage, raw

    def text(self, system: str, user: str, *, max_tokens: int | None = None) -> tuple[str, Usage]:
        """A plain text answer (e.g. a rewritten retry prompt)."""
        response = self._create(system, user, max_tokens)
        usage = self._usage(response)
        answer = self._text_of(response)
        self._check_stop(response, answer, usage)
        if not answer.strip():
            raise LlmError(f"the model answered with no text (stop_reason {response.stop_reason}); try again",
                           raw=answer, usage=usage, retryable=True)
        return answer, usage

    # -- plumbing ---------------------------------------------------------------------------------------

    def _create(self, system: str, user: str, max_tokens: int | None, **extra: Any) -> Any:
        """One Messages call; every SDK failure becomes an :class:`LlmError`."""
        try:
            return self._send(system, user, max_tokens, **extra)
        except self._anthropic.APIError as exc:
            raise self._translate(exc) from None

    def _send(self, system: str, user: str, max_tokens: int | None, **extra: Any) -> Any:
        limit = max_tokens if max_tokens is not None else self.max_tokens
        return self._client.messages.create(
            model=self.model,
            max_tokens=limit,
            system=system,
            messages=[{"role": "user", "content": user}],
            **extra,
        )

    def _translate(self, exc: Exception) -> LlmError:
        """One actionable line for an SDK failure (raised after the SDK's own retries ran out)."""
        sdk = self._anthropic
        where = f"the model API ({self.base_url})"
        if isinstance(exc, sdk.APITimeoutError):
            return LlmError(f"{where} did not answer within {self.timeout:g}s (llm.timeout); try again later "
                            "or raise llm.timeout", retryable=True)
        if isinstance(exc, sdk.APIConnectionError):
            return LlmError(f"cannot reach {where}: {self._scrub(str(exc))}; check the network or "
                            "ANTHROPIC_BASE_URL", retryable=True)
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            detail = self._detail(exc)
            if status == 401:
                return LlmError(f"{where} rejected the key in ${self.key_env} (401 authentication_error); "
                                f"set a valid key in {self.key_env} (llm.api_key_env)")
            if status == 403:
                return LlmError(f"{where} refused the key in ${self.key_env} (403{detail}); check the key's "
                                "workspace and permissions")
            if status == 404:
                return LlmError(f"{where} does not know model {self.model!r} (404{detail}); fix llm.model in "
                                "swarm.toml")
            if status == 413:
                return LlmError(f"{where} refused the request as too large (413); lower context.budget_tokens "
                                "or shorten the request")
            if status == 429:
                return LlmError(f"{where} rate limited the request (429{detail}) after "
                                f"{self._retries()}; try again later", retryable=True)
            if status == 529:
                return LlmError(f"{where} is overloaded (529{detail}) after {self._retries()}; try again later",
                                retryable=True)
            if status >= 500:
                return LlmError(f"{where} failed with {status}{detail} after {self._retries()}; try again later",
                                retryable=True)
            return LlmError(f"{where} refused the request ({status}{detail}); check llm.model and llm.max_tokens")
        return LlmError(f"{where} failed: {type(exc).__name__}: {self._scrub(str(exc))}")

    def _retries(self) -> str:
        n = self._client.max_retries
        return f"{n} retr{'y' if n == 1 else 'ies'}"

    def _detail(self, exc: Any) -> str:
        """``: <error type>: <message>`` from the API's error body, short and scrubbed ("" when absent)."""
        body = getattr(exc, "body", None)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return ""
        parts = [str(error.get(k)) for k in ("type", "message") if error.get(k)]
        text = " ".join(": ".join(parts).split())  # one line
        return f" {self._scrub(text)[:_MAX_DETAIL]}" if text else ""

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[key]") if self._key else text

    def _check_stop(self, response: Any, raw: str, usage: Usage) -> None:
        reason = response.stop_reason
        if reason in ("max_tokens", "model_context_window_exceeded"):
            raise LlmError(
                f"the model's answer was cut off at {usage.output_tokens} output tokens (stop_reason {reason}); "
                "raise llm.max_tokens or ask for less", raw=self._scrub(raw), usage=usage)
        if reason == "refusal":
            raise LlmError("the model refused to answer (stop_reason refusal); rephrase the request",
                           raw=self._scrub(raw), usage=usage)

    def _usage(self, response: Any) -> Usage:
        used = response.usage
        tokens_in = sum(int(getattr(used, name, 0) or 0)
                        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        tokens_out = int(used.output_tokens or 0)
        cost = price(self.model, tokens_in, tokens_out)
        return Usage(input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost)

    @staticmethod
    def _text_of(response: Any) -> str:
        return "".join(str(getattr(b, "text", "")) for b in response.content if getattr(b, "type", None) == "text")


def llm_from(settings: Settings, environ: Mapping[str, str] | None = None) -> Llm | None:
    """The configured model, or None when ``$<llm.api_key_env>`` holds no key (the offline paths apply).

    The base URL comes from ``ANTHROPIC_BASE_URL`` when set, as the SDK and Claude Code read it.
    """
    env = os.environ if environ is None else environ
    key = env.get(settings.llm.api_key_env, "").strip()
    if not key:
        return None
    # Explicit even when unset, so a mapping passed in is the whole truth (the SDK would read os.environ).
    base_url = env.get("ANTHROPIC_BASE_URL", "").strip() or DEFAULT_BASE_URL
    return Llm(key, settings.llm.model, base_url=base_url, timeout=settings.llm.timeout,
               max_tokens=settings.llm.max_tokens, key_env=settings.llm.api_key_env)


__all__ = ["DEFAULT_PRICE_PER_MTOK", "NO_FORCED_TOOL", "PRICES_PER_MTOK", "Llm", "LlmError", "llm_from",
           "model_family", "price"]
