"""`Llm` against a scripted Messages API with the real ``anthropic`` client: what each failure becomes.

Every error must be one line that says what to do and never shows the key; structured output must work
whether or not the model can be forced to call the tool.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from orchestrator.brain.llm import DEFAULT_PRICE_PER_MTOK, Llm, LlmError, llm_from, model_family, price
from orchestrator.config import LlmSettings, Settings
from tests.conftest import REPO_ROOT
from tests.fakes.messages_api import ScriptedMessagesServer, Turn, answer, api_error, text, tool_use

KEY = "sk-ant-api03-secret-key-for-tests"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


Start = Callable[..., ScriptedMessagesServer]


@pytest.fixture
def start_api() -> Iterator[Start]:
    servers: list[ScriptedMessagesServer] = []

    def start(*turns: Turn) -> ScriptedMessagesServer:
        server = ScriptedMessagesServer(turns, side_text="plain answer").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_structured_forces_the_tool_and_returns_input_usage_and_raw(start_api: Start) -> None:
    api = start_api(answer(text("thinking aloud"), tool_use("answer", {"n": 3}), input_tokens=100, output_tokens=20))
    llm = Llm(KEY, "claude-haiku-4-5", base_url=api.url, max_retries=0)
    value, usage, raw = llm.structured("system", "user", "answer", SCHEMA, max_tokens=300)
    assert value == {"n": 3} and raw == '{"n": 3}'
    assert (usage.input_tokens, usage.output_tokens, usage.cost_usd) == (100, 20, price("claude-haiku-4-5", 100, 20))
    request = api.agent_requests[-1]
    assert request["tool_choice"] == {"type": "tool", "name": "answer"} and request["max_tokens"] == 300
    assert request["tools"][0]["input_schema"] == SCHEMA


def test_a_model_that_refuses_forced_tool_use_is_asked_with_auto(start_api: Start) -> None:
    api = start_api(api_error(400, "tool_choice: forced tool use is not supported with this model"),
             [tool_use("answer", {"n": 1})], [tool_use("answer", {"n": 2})])
    llm = Llm(KEY, "claude-sonnet-5", base_url=api.url, max_retries=0)
    assert llm.structured("system", "user", "answer", SCHEMA)[0] == {"n": 1}
    assert llm.structured("system", "user", "answer", SCHEMA)[0] == {"n": 2}
    choices = [r["tool_choice"] for r in api.agent_requests]
    assert choices == [{"type": "tool", "name": "answer"}, {"type": "auto"}, {"type": "auto"}]  # remembered
    assert "Answer only by calling the tool answer" in str(api.agent_requests[1]["system"])


def test_a_model_known_to_refuse_forcing_is_never_forced(start_api: Start) -> None:
    api = start_api([tool_use("answer", {"n": 1})])
    Llm(KEY, "claude-opus-5-5", base_url=api.url, max_retries=0).structured("s", "u", "answer", SCHEMA)
    assert [r["tool_choice"] for r in api.agent_requests] == [{"type": "auto"}]


def test_another_bad_request_is_not_mistaken_for_a_forcing_refusal(start_api: Start) -> None:
    api = start_api(api_error(400, "max_tokens: must be at most 64000"))
    llm = Llm(KEY, "claude-sonnet-4-6", base_url=api.url, max_retries=0)
    with pytest.raises(LlmError, match=r"refused the request \(400 invalid_request_error: max_tokens"):
        llm.structured("s", "u", "answer", SCHEMA)
    assert len(api.agent_requests) == 1


def test_no_tool_call_is_an_error_carrying_the_text(start_api: Start) -> None:
    api = start_api([text("I would rather explain in prose.")])
    with pytest.raises(LlmError) as caught:
        Llm(KEY, "claude-sonnet-4-6", base_url=api.url, max_retries=0).structured("s", "u", "answer", SCHEMA)
    assert "did not call the tool answer" in str(caught.value)
    assert caught.value.raw == "I would rather explain in prose." and caught.value.usage.output_tokens > 0


def test_a_cut_answer_is_an_error_carrying_what_came(start_api: Start) -> None:
    api = start_api(answer(tool_use("answer", {"n": 9}), stop_reason="max_tokens", output_tokens=64))
    with pytest.raises(LlmError) as caught:
        Llm(KEY, "claude-sonnet-4-6", base_url=api.url, max_retries=0).structured("s", "u", "answer", SCHEMA)
    assert "cut off at 64 output tokens" in str(caught.value) and caught.value.raw == '{"n": 9}'
    assert not caught.value.retryable


def test_text_returns_the_answer_and_its_usage(start_api: Start) -> None:
    api = start_api()
    answer_text, usage = Llm(KEY, "claude-sonnet-4-6", base_url=api.url, max_retries=0).text("s", "rewrite this")
    assert answer_text == "plain answer" and usage.input_tokens > 0
    assert "tools" not in api.requests[-1]


def test_a_rejected_key_names_the_variable_and_never_the_key(start_api: Start) -> None:
    api = start_api(api_error(401, f"invalid x-api-key {KEY}"))
    llm = Llm(KEY, "claude-sonnet-4-6", base_url=api.url, max_retries=2, key_env="SWARM_LLM_KEY")
    with pytest.raises(LlmError) as caught:
        llm.structured("s", "u", "answer", SCHEMA)
    assert "rejected the key in $SWARM_LLM_KEY (401" in str(caught.value)
    assert KEY not in str(caught.value) and not caught.value.retryable
    assert len(api.agent_requests) == 1  # a 401 is not retried


def test_a_key_echoed_in_an_error_body_is_scrubbed(start_api: Start) -> None:
    api = start_api(api_error(400, f"bad header {KEY} here"))
    with pytest.raises(LlmError) as caught:
        Llm(KEY, "claude-sonnet-4-6", base_url=api.url, max_retries=0).structured("s", "u", "answer", SCHEMA)
    assert KEY not in str(caught.value) and "bad header [key] here" in str(caught.value)


def test_an_unknown_model_is_named(start_api: Start) -> None:
    api = start_api(api_error(404, "model: claude-nope"))
    with pytest.raises(LlmError, match=r"does not know model 'claude-nope'.*fix llm\.model"):
        Llm(KEY, "claude-nope", base_url=api.url, max_retries=0).structured("s", "u", "answer", SCHEMA)


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(LlmError, match=r"did not answer within 0.5s \(llm.timeout\)") as caught:
            Llm(KEY, "claude-sonnet-4-6", base_url=url, timeout=0.5, max_retries=0).text("s", "u")
    assert caught.value.retryable


def test_a_closed_port_cannot_be_reached() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(LlmError, match=r"cannot reach the model API .*ANTHROPIC_BASE_URL"):
        Llm(KEY, "claude-sonnet-4-6", base_url=f"http://127.0.0.1:{port}", max_retries=0).text("s", "u")


def test_llm_from_reads_the_configured_variable_and_base_url(start_api: Start) -> None:
    api = start_api()
    settings = Settings(llm=LlmSettings(api_key_env="MY_KEY", model="claude-haiku-4-5", max_tokens=1000))
    assert llm_from(settings, {"ANTHROPIC_API_KEY": KEY}) is None  # another variable than the configured one
    assert llm_from(settings, {"MY_KEY": "  "}) is None
    llm = llm_from(settings, {"MY_KEY": KEY, "ANTHROPIC_BASE_URL": api.url})
    assert llm is not None and llm.model == "claude-haiku-4-5" and llm.max_tokens == 1000
    assert llm.text("s", "u")[0] == "plain answer"
    headers = {k.lower(): v for k, v in api.log[-1].headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    default = llm_from(settings, {"MY_KEY": KEY})
    assert default is not None and default.base_url == "https://api.anthropic.com"


def test_price_per_model_family_with_a_conservative_default() -> None:
    assert price("claude-sonnet-4-6", 1_000_000, 1_000_000) == 18.0
    assert price("claude-sonnet-4-5-20250929", 2_000, 1_000) == pytest.approx(0.006 + 0.015)
    assert price("claude-opus-5-5[1m]", 1_000_000, 0) == 4.0
    assert model_family("claude-3-7-sonnet-latest") == "claude-3-7-sonnet"
    unknown = price("claude-opus-9", 1_000_000, 1_000_000)
    assert unknown == sum(DEFAULT_PRICE_PER_MTOK) >= max(price(m, 1_000_000, 1_000_000)
                                                           for m in ("claude-fable-5", "claude-opus-4-1"))


def test_importing_the_module_does_not_load_the_sdk() -> None:
    code = "import sys, orchestrator.brain.llm, orchestrator.brain.planner; sys.exit('anthropic' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0
