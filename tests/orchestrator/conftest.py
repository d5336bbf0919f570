"""Fixtures shared by the orchestrator's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.fakes.messages_api import ScriptedMessagesServer, Turn

Start = Callable[[Sequence[Turn]], ScriptedMessagesServer]


@pytest.fixture
def start_api() -> Iterator[Start]:
    """Start scripted Messages APIs on 127.0.0.1 (one per call); all are stopped after the test."""
    servers: list[ScriptedMessagesServer] = []

    def start(script: Sequence[Turn]) -> ScriptedMessagesServer:
        server = ScriptedMessagesServer(script).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
