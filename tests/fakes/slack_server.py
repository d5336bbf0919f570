"""A fake Slack on 127.0.0.1: the Web API methods swarm calls, and incoming webhooks.

Why: the Slack notifiers must be tested with the real slack-sdk clients (``WebClient(base_url=...)`` and
``WebhookClient(url)``), which speak HTTP, parse Slack's answers and raise on its errors. This server answers
like Slack does (HTTP 200 with ``{"ok": false, "error": ...}`` for API errors, 429 with ``Retry-After`` for
rate limits, plain-text bodies for webhooks) and records every request, so a test can assert what was sent
(method, body, headers), and can be told to fail the next calls.

Message metadata as Slack documents it: ``chat.postMessage`` takes ``metadata: {event_type, event_payload}``
(kept by ``chat.update`` unless replaced); ``conversations.history`` (top-level messages and thread
broadcasts, newest first) and ``conversations.replies`` (the parent, then its replies, oldest first) return
it only with ``include_all_metadata``, and take a channel id only (a ``#name`` is ``channel_not_found``).
:meth:`FakeSlack.hold` keeps a request in flight (stored, its answer withheld) until released, so a test can
kill the client mid-request.

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
    metadata: dict[str, Any] | None = None
    broadcast: bool = False


@dataclass
class _Hold:
    method: str
    nth: int  # hold the nth request to ``method`` from now (1: the next one)
    lost: bool  # the request never reaches Slack: nothing is stored
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


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
    """Serves ``/api/<method>`` (``chat.postMessage``, ``chat.update``, ``auth.test``, ``conversations.info``,
    ``conversations.history``, ``conversations.replies``)
    and ``/services/...`` (one incoming webhook). Channels are known by id or name (``#`` optional)."""

    def __init__(self, token: str = DEFAULT_TOKEN, channels: dict[str, str] | None = None) -> None:
        self.token = token
        self.channels = channels if channels is not None else {"C0SWARM01": "swarm"}
        """Channel id → name; the bot is a member of each."""
        self.webhook_path = f"/services/T0FAKE/B0FAKE/{secrets.token_hex(12)}"
        self.messages: dict[str, _Message] = {}
        self._log: list[SlackRequest] = []
        self._faults: list[_Fault] = []
        self._holds: list[_Hold] = []
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

    def hold(self, method: str = "chat.postMessage", nth: int = 1, *, lost: bool = False) -> _Hold:
        """Keep the ``nth`` next request to ``method`` in flight: Slack has it (the message is stored, unless
        ``lost``) but the answer waits for :meth:`release`. ``hold.arrived`` is set when it is held."""
        held = _Hold(method, nth, lost)
        with self._lock:
            self._holds.append(held)
        return held

    def release(self) -> None:
        """Let every held request answer (to a client that may be gone)."""
        with self._lock:
            holds, self._holds = list(self._holds), []
        for held in holds:
            held.released.set()

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
        held = self._take_hold(method) if fault is None else None
        answer: dict[str, Any] | str
        extra: dict[str, str]
        if held is not None and held.lost:
            status, answer, extra = 200, {"ok": False, "error": "request_timeout"}, {}
        else:
            status, answer, extra = self._answer(method, path, body, headers, fault)
        if held is not None:
            held.arrived.set()
            while not held.released.wait(0.05) and not self._stopping.is_set():
                pass
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

    def _take_hold(self, method: str) -> _Hold | None:
        with self._lock:
            for held in self._holds:
                if held.method == method and not held.arrived.is_set():
                    held.nth -= 1
                    if held.nth == 0:
                        return held
        return None

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
        if method in ("conversations.history", "conversations.replies"):
            if channel != body.get("channel"):
                return {"ok": False, "error": "channel_not_found"}  # these take an id, never a #name
            return self._read(method, channel, body)
        metadata = body.get("metadata")
        if isinstance(metadata, str):  # form-encoded: a JSON string
            metadata = json.loads(metadata) if metadata else None
        if metadata is not None and not _valid_metadata(metadata):
            return {"ok": False, "error": "invalid_metadata_format"}
        if method == "chat.postMessage":
            message = self._store(channel, body, metadata)
            return {"ok": True, "channel": channel, "ts": message.ts,
                    "message": _shown(message, with_metadata=message.metadata is not None)}
        if method == "chat.update":
            with self._lock:
                found = self.messages.get(str(body.get("ts", "")))
                if found is None or found.channel != channel:
                    return {"ok": False, "error": "message_not_found"}
                found.text, found.blocks = str(body.get("text", "")), list(body.get("blocks") or [])
                if metadata is not None:
                    found.metadata = metadata
            return {"ok": True, "channel": channel, "ts": found.ts, "text": found.text}
        return {"ok": False, "error": "unknown_method"}

    def _read(self, method: str, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        """``conversations.history`` / ``.replies`` with ``oldest``, ``latest``, ``inclusive``, ``limit`` and
        ``cursor``; metadata only with ``include_all_metadata``."""
        with self._lock:
            mine = [m for m in self.messages.values() if m.channel == channel]
            if method == "conversations.history":
                picked = sorted((m for m in mine if m.thread_ts in (None, m.ts) or m.broadcast),
                                key=lambda m: float(m.ts), reverse=True)
            else:
                ts = str(body.get("ts", ""))
                parent = self.messages.get(ts)
                if parent is None or parent.channel != channel:
                    return {"ok": False, "error": "thread_not_found"}
                root = parent.thread_ts or parent.ts
                picked = sorted((m for m in mine if m.ts == root or m.thread_ts == root), key=lambda m: float(m.ts))
            replies = {m.thread_ts for m in mine if m.thread_ts and m.thread_ts != m.ts}
            counts = {root: sum(1 for m in mine if m.thread_ts == root and m.ts != root) for root in replies}
        inclusive = _true(body.get("inclusive"))
        oldest, latest = body.get("oldest"), body.get("latest")
        if oldest:
            picked = [m for m in picked if float(m.ts) > float(oldest) or (inclusive and m.ts == str(oldest))]
        if latest:
            picked = [m for m in picked if float(m.ts) < float(latest) or (inclusive and m.ts == str(latest))]
        limit = min(int(body.get("limit") or 100), 999)
        start = int(str(body.get("cursor") or "0").removeprefix("next:") or 0)
        page = picked[start:start + limit]
        more = start + limit < len(picked)
        metadata = _true(body.get("include_all_metadata"))
        answer: dict[str, Any] = {"ok": True, "messages": [_shown(m, metadata, counts.get(m.ts, 0)) for m in page],
                                  "has_more": more}
        answer["response_metadata"] = {"next_cursor": f"next:{start + limit}" if more else ""}
        return answer

    def _channel(self, value: str) -> str | None:
        if value in self.channels:
            return value
        name = value.removeprefix("#")
        return next((cid for cid, cname in self.channels.items() if cname == name), None)

    def _store(self, channel: str, body: dict[str, Any], metadata: dict[str, Any] | None = None) -> _Message:
        with self._lock:
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            thread = body.get("thread_ts")
            message = _Message(channel, ts, str(body.get("text", "")), list(body.get("blocks") or []),
                               str(thread) if thread else None, metadata,
                               bool(thread) and _true(body.get("reply_broadcast")))
            self.messages[ts] = message
            return message


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _valid_metadata(metadata: Any) -> bool:
    """Slack's shape: ``{"event_type": str, "event_payload": object}``."""
    return (isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str)
            and bool(metadata["event_type"]) and isinstance(metadata.get("event_payload"), dict))


def _shown(message: _Message, with_metadata: bool, reply_count: int = 0) -> dict[str, Any]:
    """A message as the read methods show it: a bot message, its thread fields, metadata if asked for."""
    shown: dict[str, Any] = {"type": "message", "ts": message.ts, "text": message.text, "bot_id": "B0BOT",
                             "user": "U0BOT"}
    if message.blocks:
        shown["blocks"] = message.blocks
    if message.thread_ts:
        shown["thread_ts"] = message.thread_ts
        if message.broadcast:
            shown["subtype"] = "thread_broadcast"
    elif reply_count:
        shown["thread_ts"], shown["reply_count"] = message.ts, reply_count
    if with_metadata and message.metadata is not None:
        shown["metadata"] = message.metadata
    return shown


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
