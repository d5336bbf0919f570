"""A scripted OpenAI Responses API on 127.0.0.1, for driving the real Codex CLI in tests.

Why: the end-to-end tests run the real ``codex`` binary (npm ``@openai/codex``) so that the monitor is
tested against what Codex really prints and really does to a repository (its sandbox included). The CLI
talks to a custom model provider (``-c model_providers.local={base_url=..., wire_api="responses"}``); this
server answers there with a fixed script, so a test decides which shell commands the "model" asks for and
the CLI really runs them.

Each ``POST /v1/responses`` (the CLI streams every model turn from there) consumes the next entry of the
script: a list of output items (:func:`exec_command` calls and :func:`message` texts), or a
:class:`ResponsesError` (answered with that HTTP status and an OpenAI-shaped error body; the CLI retries 5xx
by itself, so ``times`` makes an error last). An exhausted script answers the message "done".
Answers are Server-Sent Events as the real API frames them (``response.created``,
``response.output_item.added`` / ``.done`` per item, ``response.completed`` with ``usage``); a
:func:`failed` entry streams ``response.failed`` with an error code instead (e.g.
``context_length_exceeded``). Other paths (``/v1/models`` and the like) answer ``200`` with an empty list.
Every request is kept in :attr:`ScriptedResponsesServer.log`.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Item = dict[str, Any]

_ids = itertools.count(1)


@dataclass(frozen=True)
class ResponsesError:
    """A turn answered with an HTTP error status and an OpenAI-shaped error body."""

    status: int
    message: str = "scripted failure"
    error_type: str = "invalid_request_error"
    code: str | None = None
    times: int | None = 1  # None: every request from here on


@dataclass(frozen=True)
class Failed:
    """A turn whose stream ends with ``response.failed`` carrying ``code`` and ``message``."""

    code: str
    message: str


Turn = Sequence[Item] | ResponsesError | Failed


def message(text: str) -> Item:
    """An assistant message output item."""
    return {
        "type": "message",
        "role": "assistant",
        "id": f"msg_{next(_ids):08d}",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def exec_command(command: str, name: str = "exec_command") -> Item:
    """A function call asking the CLI to run ``command`` in a shell (Codex's ``exec_command`` tool)."""
    return {
        "type": "function_call",
        "id": f"fc_{next(_ids):08d}",
        "call_id": f"call_{next(_ids):08d}",
        "name": name,
        "arguments": json.dumps({"cmd": command}),
        "status": "completed",
    }


def failed(code: str, text: str) -> Failed:
    """A turn that fails in the stream (``response.failed``), e.g. ``failed("context_length_exceeded", ...)``."""
    return Failed(code, text)


def responses_error(
    status: int, text: str = "scripted failure", *, code: str | None = None, times: int | None = 1
) -> ResponsesError:
    """A turn answered with HTTP ``status`` (e.g. 400 with ``code="context_length_exceeded"``, 500)."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return ResponsesError(status, text, kind, code, times)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedResponsesServer:
    """A Responses API answering model turns from ``script``; a context manager serving in a thread."""

    def __init__(self, script: Sequence[Turn], *, host: str = "127.0.0.1", port: int = 0,
                 input_tokens: int = 2000, output_tokens: int = 100, cached_tokens: int = 0) -> None:
        self._script: list[Turn] = list(script)
        self._lock = threading.Lock()
        self.usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "cached_tokens": cached_tokens}
        self.log: list[Request] = []
        self.turns: list[dict[str, Any]] = []
        """The JSON bodies of every POST /v1/responses (model turns, retries included)."""
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The provider's ``base_url`` (with ``/v1``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def turns_left(self) -> int:
        with self._lock:
            return len(self._script)

    def start(self) -> ScriptedResponsesServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ScriptedResponsesServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _next(self, request: Request) -> Turn | None:
        with self._lock:
            self.log.append(request)
            if request.method != "POST" or request.path.split("?", 1)[0].rstrip("/") != "/v1/responses":
                return None
            self.turns.append(request.body if isinstance(request.body, dict) else {})
            if not self._script:
                return [message("done")]
            turn = self._script[0]
            if isinstance(turn, ResponsesError) and turn.times != 1:
                if turn.times is not None:
                    self._script[0] = replace(turn, times=turn.times - 1)
                return turn
            return self._script.pop(0)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(_Handler):
            owner = server

        return Handler


def _response(model: str, status: str, output: list[Item], usage: dict[str, int] | None,
              error: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"resp_{next(_ids):08d}", "object": "response", "created_at": 1700000000, "status": status,
        "model": model, "output": output, "error": error,
    }
    if usage is not None:
        body["usage"] = {
            "input_tokens": usage["input_tokens"],
            "input_tokens_details": {"cached_tokens": usage["cached_tokens"]},
            "output_tokens": usage["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        }
    return body


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedResponsesServer
    protocol_version = "HTTP/1.1"
    timeout = 60
    server_version = "scripted-responses-api"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding") == "zstd" or not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_events(self, events: list[dict[str, Any]]) -> None:
        frames = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(frames)))
        self.end_headers()
        self.wfile.write(frames)
        self.wfile.flush()

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.owner._next(Request(self.command, self.path, None, dict(self.headers.items())))
        self._send_json(200, {"object": "list", "data": [], "models": []})

    def do_POST(self) -> None:
        body = self._read_body()
        turn = self.owner._next(Request("POST", self.path, body, dict(self.headers.items())))
        if turn is None:
            self._send_json(404, {"error": {"message": f"Not found: {self.path}", "type": "invalid_request_error"}})
            return
        if isinstance(turn, ResponsesError):
            error = {"message": turn.message, "type": turn.error_type, "param": None, "code": turn.code}
            self._send_json(turn.status, {"error": error})
            return
        model = str((body or {}).get("model") or "gpt-fake")
        created = _response(model, "in_progress", [], None)
        events: list[dict[str, Any]] = [{"type": "response.created", "response": created}]
        if isinstance(turn, Failed):
            error = {"code": turn.code, "message": turn.message}
            events.append({"type": "response.failed", "response": {**created, "status": "failed", "error": error}})
            self._send_events(events)
            return
        items = [dict(item) for item in turn]
        for index, item in enumerate(items):
            events.append({"type": "response.output_item.added", "output_index": index, "item": item})
            events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        done = _response(model, "completed", items, self.owner.usage)
        done["id"] = created["id"]
        events.append({"type": "response.completed", "response": done})
        self._send_events(events)


__all__ = [
    "Failed",
    "Item",
    "Request",
    "ResponsesError",
    "ScriptedResponsesServer",
    "Turn",
    "exec_command",
    "failed",
    "message",
    "responses_error",
]
