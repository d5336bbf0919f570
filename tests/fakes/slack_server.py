"""A fake Slack on 127.0.0.1: the Web API methods swarm calls, and incoming webhooks.

Why: the Slack notifiers must be tested with the real slack-sdk clients (``WebClient(base_url=...)`` and
``WebhookClient(url)``), which speak HTTP, parse Slack's answers and raise on its errors. This server answers
like Slack does (HTTP 200 with ``{"ok": false, "error": ...}`` for API errors, 429 with ``Retry-After`` for
rate limits, plain-text bodies for webhooks) and records every request, so a test can assert what was sent
(method, body, headers), and can be told to fail the next calls.

Usage::

    with FakeSlack() as slack:
        client = WebClient(token=slack.token, base_url=slack.api_url)
        slack.fail_next("ratelimited", retry_after=30)
        ...
        [post] = slack.calls("chat.postMessage")
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

DEFAULT_TOKEN = "xoxb-" + "1" * 10 + "-" + "2" * 13 + "-" + "FakeSlackBotToken0123456"
"""The bot token the fake accepts unless given another (shaped like a real bot token)."""

WEBHOOK = "webhook"
"""The ``method`` recorded for an incoming-webhook POST."""


@dataclass(frozen=True)
class SlackRequest:
    """One request the fake answered (faulted ones included)."""

    method: str
    """The API method (``chat.postMessage``) or :data:`WEBHOOK`."""
    body: dict[str, Any]
    """JSON body, or form and query parameters (single values)."""
    headers: dict[str, str]
    raw: str
    """The request as received (path, headers, body), to grep for anything that must not be there."""
    status: int
    fault: str | None = None


@dataclass
class _Fault:
    kind: str  # "ratelimited", "5xx", an API error code, or "hang"
    count: int
    retry_after: int = 30
    status: int = 500
    seconds: float = 0.0
    methods: tuple[str, ...] = ()


@dataclass
class _Message:
    channel: str
    ts: str
    text: str
    blocks: list[Any] = field(default_factory=list)
    thread_ts: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that timed out and hung up (``hang`` faults) is expected."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall per answer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake keeps its own request log."""


class FakeSlack:
    """Serves ``/api/<method>`` (``chat.postMessage``, ``chat.update``, ``auth.test``, ``conversations.info``)
    and ``/services/...`` (one incoming webhook). Channels are known by id or name (``#`` optional)."""

    def __init__(self, token: str = DEFAULT_TOKEN, channels: dict[str, str] | None = None) -> None:
        self.token = token
        self.channels = channels if channels is not None else {"C0SWARM01": "swarm"}
        """Channel id → name; the bot is a member of each."""
        self.webhook_path = f"/services/T0FAKE/B0FAKE/{secrets.token_hex(12)}"
        self.messages: dict[str, _Message] = {}
        self._log: list[SlackRequest] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """``WebClient``'s ``base_url``."""
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{self.webhook_path}"

    def start(self) -> FakeSlack:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="fake-slack", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------------- faults

    def fail_next(self, kind: str, count: int = 1, *, retry_after: int = 30, status: int = 500,
                  seconds: float = 0.0, methods: tuple[str, ...] = ()) -> None:
        """Answer the next ``count`` requests (of ``methods``, default any) with a fault instead:
        ``"ratelimited"`` (HTTP 429 + ``Retry-After``), ``"5xx"`` (``status``, an HTML page), ``"hang"`` (hold
        the answer ``seconds``, then answer normally), or any API error code such as ``"invalid_auth"`` or
        ``"channel_not_found"`` (HTTP 200, ``ok: false``; for a webhook, the status Slack uses for it)."""
        with self._lock:
            self._faults.append(_Fault(kind, count, retry_after, status, seconds, methods))

    def delete_message(self, ts: str) -> None:
        """As if someone deleted it in Slack: ``chat.update`` then answers ``message_not_found``."""
        with self._lock:
            del self.messages[ts]

    # ---------------------------------------------------------------------------------------- records

    @property
    def requests(self) -> list[SlackRequest]:
        with self._lock:
            return list(self._log)

    def calls(self, method: str, *, ok: bool = True) -> list[dict[str, Any]]:
        """The bodies of the requests to ``method`` (with ``ok``: only those answered with success)."""
        return [r.body for r in self.requests if r.method == method and (not ok or (r.status == 200
                                                                                      and r.fault is None))]

    # ---------------------------------------------------------------------------------------- serving

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and (not fault.methods or method in fault.methods):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _serve(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length) if length > 0 else b""
        path, _, query = handler.path.partition("?")
        headers = {k: v for k, v in handler.headers.items()}
        body = _parse(raw_body, headers.get("Content-Type", ""), query)
        method = WEBHOOK if path.startswith("/services/") else path.removeprefix("/api/")
        raw = f"{handler.command} {handler.path}\n" + "".join(f"{k}: {v}\n" for k, v in headers.items()) + \
            raw_body.decode("utf-8", errors="replace")
        fault = self._take_fault(method)
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.seconds)
            fault = None
        status, answer, extra = self._answer(method, path, body, headers, fault)
        with self._lock:
            self._log.append(SlackRequest(method, body, headers, raw, status, fault.kind if fault else None))
        data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        kind = "text/plain" if isinstance(answer, str) else "application/json; charset=utf-8"
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", extra.pop("Content-Type", kind))
            handler.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _answer(self, method: str, path: str, body: dict[str, Any], headers: dict[str, str], fault: _Fault | None,
                ) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
        webhook = method == WEBHOOK
        if fault is not None:
            if fault.kind == "ratelimited":
                answer: dict[str, Any] | str = "rate_limited" if webhook else {"ok": False, "error": "ratelimited"}
                return 429, answer, {"Retry-After": str(fault.retry_after)}
            if fault.kind == "5xx":
                return fault.status, "<html><body>Slack is having trouble</body></html>", {"Content-Type": "text/html"}
            if webhook:
                return _WEBHOOK_STATUS.get(fault.kind, 400), fault.kind, {}
            return 200, {"ok": False, "error": fault.kind}, {}
        if webhook:
            if path != self.webhook_path:
                return 404, "no_service", {}
            self._store("webhook", body)
            return 200, "ok", {}
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "not_authed" if "Authorization" not in headers else "invalid_auth"}, {}
        return 200, self._api(method, body), {}

    def _api(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake Team", "user": "swarm-bot",
                    "team_id": "T0FAKE", "user_id": "U0BOT", "bot_id": "B0BOT"}
        channel = self._channel(str(body.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": channel, "name": self.channels[channel], "is_member": True}}
        if method == "chat.postMessage":
            message = self._store(channel, body)
            return {"ok": True, "channel": channel, "ts": message.ts, "message": {"text": message.text}}
        if method == "chat.update":
            with self._lock:
                found = self.messages.get(str(body.get("ts", "")))
                if found is None or found.channel != channel:
                    return {"ok": False, "error": "message_not_found"}
                found.text, found.blocks = str(body.get("text", "")), list(body.get("blocks") or [])
            return {"ok": True, "channel": channel, "ts": found.ts, "text": found.text}
        return {"ok": False, "error": "unknown_method"}

    def _channel(self, value: str) -> str | None:
        if value in self.channels:
            return value
        name = value.removeprefix("#")
        return next((cid for cid, cname in self.channels.items() if cname == name), None)

    def _store(self, channel: str, body: dict[str, Any]) -> _Message:
        with self._lock:
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            thread = body.get("thread_ts")
            message = _Message(channel, ts, str(body.get("text", "")), list(body.get("blocks") or []),
                               str(thread) if thread else None)
            self.messages[ts] = message
            return message


_WEBHOOK_STATUS = {"invalid_token": 403, "action_prohibited": 403, "no_service": 404, "channel_not_found": 404,
                   "no_team": 404, "team_disabled": 403, "channel_is_archived": 410, "invalid_payload": 400,
                   "invalid_blocks": 400}


def _parse(raw: bytes, content_type: str, query: str) -> dict[str, Any]:
    body: dict[str, Any] = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type and text:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            body.update(parsed)
    elif "x-www-form-urlencoded" in content_type:
        body.update({k: v[-1] for k, v in urllib.parse.parse_qs(text).items()})
    if isinstance(body.get("blocks"), str):  # form-encoded blocks arrive as a JSON string
        body["blocks"] = json.loads(body["blocks"])
    return body
