"""The scripted Messages API refuses what the real one refuses, with the real error shape.

Why: a fake that answers any body lets a client pass its tests while the real API would answer 400 to every
call (a request without ``max_tokens``, a forced ``tool_choice`` naming a tool that was not sent).
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import ToolParam

from tests.fakes.messages_api import ScriptedMessagesServer, invalid_request, text, tool_use

KEY = "sk-ant-api03-fakecheck0000000000000"
TOOL: ToolParam = {"name": "review", "description": "answer", "input_schema": {"type": "object", "properties": {}}}


@pytest.fixture
def api() -> Iterator[ScriptedMessagesServer]:
    with ScriptedMessagesServer([[tool_use("review", {})], [text("fine")]]) as server:
        yield server


def client(api: ScriptedMessagesServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=api.url, max_retries=0)


def test_a_request_without_max_tokens_is_a_400_invalid_request_error(api: ScriptedMessagesServer) -> None:
    answer = httpx.post(f"{api.url}/v1/messages", headers={"x-api-key": KEY}, json={
        "model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], "tools": [TOOL]})
    assert answer.status_code == 400
    assert answer.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                        "message": "max_tokens: Field required"}}
    assert api.turns_left == 2 and api.agent_requests == []  # refused before the script was touched


def test_a_tool_choice_naming_a_tool_not_sent_is_refused(api: ScriptedMessagesServer) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(api).messages.create(model="claude-sonnet-4-5", max_tokens=100, tools=[TOOL],
                                    tool_choice={"type": "tool", "name": "verdict"},
                                    messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 400
    assert refused.value.body == {"type": "error", "error": {
        "type": "invalid_request_error", "message": "Tool 'verdict' not found in provided tools"}}
    assert api.turns_left == 2
    answer = client(api).messages.create(model="claude-sonnet-4-5", max_tokens=100, tools=[TOOL],
                                         tool_choice={"type": "tool", "name": "review"},
                                         messages=[{"role": "user", "content": "hi"}])
    assert answer.content[0].type == "tool_use" and api.turns_left == 1  # a valid request still works


@pytest.mark.parametrize(("body", "expected"), [
    ({"max_tokens": 1, "messages": []}, None),
    ({"messages": []}, "max_tokens: Field required"),
    ({"max_tokens": 1, "tool_choice": {"type": "auto"}, "tools": [TOOL]}, None),
    ({"max_tokens": 1, "tool_choice": {"type": "tool", "name": "review"}}, "Tool 'review' not found in provided tools"),
    ({"max_tokens": 1, "tool_choice": {"type": "tool", "name": "review"}, "tools": [TOOL]}, None),
])
def test_invalid_request_rules(body: dict[str, object], expected: str | None) -> None:
    assert invalid_request(body) == expected
