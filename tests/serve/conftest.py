"""A real uvicorn serving the webhook app on 127.0.0.1 (a free port), and GitHub-style signing."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from orchestrator.serve.app import build_app
from orchestrator.serve.webhooks import DELIVERIES_FILE, DeliveryLog, WebhookHandler
from registry.models import PullRequest, RegistryState, Status, Task
from tests.conftest import FIXTURES
from tests.waiting import wait_for

SECRET = b"It's a Secret to Everybody"
HOOKS = FIXTURES / "github-webhooks"


def payload(name: str) -> bytes:
    return (HOOKS / f"{name}.json").read_bytes()


def signed_headers(body: bytes, event: str, delivery: str = "", secret: bytes = SECRET) -> dict[str, str]:
    """The headers GitHub sends with a delivery (its documented signature recipe)."""
    return {
        "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/abc123",
    }


def task(task_id: str = "fix-login-1a2b", status: Status = Status.checking, pr: int | None = 7,
         base: str = "main") -> Task:
    now = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
    return Task(id=task_id, title="Fix login", prompt="p", agent="scripted", status=status, base_branch=base,
                branch=f"swarm/{task_id}", worktree=f"/tmp/{task_id}", created_at=now, updated_at=now,
                pr=PullRequest(number=pr, url=f"https://github.com/acme/shop/pull/{pr}") if pr else None)


@dataclass
class Hooked:
    url: str
    handler: WebhookHandler
    woken: list[set[str]] = field(default_factory=list)
    accepted: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    state: RegistryState = field(default_factory=RegistryState)

    def wake(self, ids: set[str]) -> None:
        with self.lock:
            self.woken.append(ids)

    def woken_ids(self) -> set[str]:
        with self.lock:
            return set().union(*self.woken) if self.woken else set()


class Uvicorn:
    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Uvicorn:
        self.thread.start()
        wait_for(lambda: self.server.started, "uvicorn to start")
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[Hooked]:
    """The webhook endpoint on a real uvicorn; the registry holds one task (PR #7, branch of the fixtures)."""
    holder: dict[str, Hooked] = {}

    def accepted(event: str, delivery: str, count: int) -> None:
        holder["h"].accepted.append((event, delivery, count))

    handler = WebhookHandler(secret=lambda: SECRET, deliveries=DeliveryLog(tmp_path / DELIVERIES_FILE),
                             read_state=lambda: holder["h"].state, wake=lambda ids: holder["h"].wake(ids),
                             on_accepted=accepted, repo="acme/shop", max_body=256 * 1024)
    app = build_app(handler, lambda: {})
    with Uvicorn(app) as server:
        h = Hooked(url=f"http://127.0.0.1:{server.port}", handler=handler)
        h.state = RegistryState().with_task(task())
        holder["h"] = h
        yield h


__all__ = ["HOOKS", "SECRET", "Hooked", "Uvicorn", "json", "payload", "signed_headers", "task"]
