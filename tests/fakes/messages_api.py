"""A scripted Anthropic Messages API on 127.0.0.1, for driving the real Claude Code CLI in tests.

Why: the end-to-end tests run the real ``claude`` binary (npm ``@anthropic-ai/claude-code``) so that the
monitor is tested against what a real agent really prints and really does to a repository. The CLI talks
to whatever ``ANTHROPIC_BASE_URL`` names; this server answers there with a fixed script instead of a model,
so a test decides exactly which tools the agent calls (the CLI then really executes them: files get
written, ``git commit`` runs) and nothing leaves the machine.

Usage::

    script = [
        [tool_use("Write", {"file_path": str(repo / "a.py"), "content": "x = 1\\n"})],
        [tool_use("Bash", {"command": "git add a.py && git commit -qm 'Add a'"})],
        [text("Added a.py and committed it.")],
    ]
    with ScriptedMessagesServer(script) as api:
        env["ANTHROPIC_BASE_URL"] = api.url
        ...run claude...
    assert len(api.agent_requests) == 3

Each agent turn (see below) consumes the next entry of the script: a list of content blocks that the
"model" answers with, or an :class:`ApiError` (answered with that HTTP status and the real API's error
body). Mind that the CLI retries failed requests by itself and each retry is an agent request of its own
(see :func:`api_error` for how many it makes and ``times`` to make an error last). When the script is
exhausted every further agent turn gets ``exhausted`` (by default the final text "done").
A turn's ``stop_reason`` is ``tool_use`` when it holds a tool_use block, else ``end_turn``; an
:func:`answer` turn gives its own ``stop_reason`` and token counts (e.g. ``"max_tokens"`` for a cut answer).

How agent turns are told from the CLI's side requests
------------------------------------------------------
The rule: **a POST to ``/v1/messages`` (any query string, e.g. ``?beta=true``) whose body carries a
non-empty ``tools`` list is an agent turn**; every other request is a side request and never touches the
script. Every request of Claude Code's agent loop sends its tool definitions (Bash, Write, Edit, ...), and
its side calls send none. What was seen with 2.1.330: with ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``
(as the tests run it) it sent nothing but agent turns, in print mode and in interactive mode alike.
Without that variable, interactive mode also asks, on the first prompt, for a session title: ``tools: []``,
a system prompt "You are naming a coding session ...", and ``output_config.format`` a JSON schema with a
``title``. The system prompt was not used for the rule: its wording changes from release to release, and
in print mode it differs from interactive mode ("You are a Claude agent, built on Anthropic's Claude Agent
SDK." against "You are Claude Code, Anthropic's official CLI for Claude."). A sub-agent started with the
Task tool would send tools too and so consume script turns; a script that calls no Task never sees one.

Side requests are answered sensibly: ``/v1/messages`` with a short text (``side_text``, or a JSON object
fitting the schema when ``output_config.format`` is a ``json_schema``); ``/v1/messages/count_tokens`` with a
rough ``input_tokens``; GET/HEAD probes with ``200 {}``; other POST paths with ``404`` and a
real-API-shaped ``not_found_error``.

Wire format: ``stream: true`` is answered with Server-Sent Events framed as the real API frames them
(``event: NAME\\ndata: JSON\\n\\n``; ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta`` with ``text_delta`` / ``input_json_delta``, ``content_block_stop``,
``message_delta`` with ``stop_reason`` and ``usage``, ``message_stop``) over chunked transfer encoding;
``stream: false`` with one JSON message.

Requests the real API refuses are refused here too, before the script is touched, with its status and error
body (``400``, ``invalid_request_error``): a ``/v1/messages`` request without ``max_tokens`` ("max_tokens:
Field required"), and a ``tool_choice`` of type ``tool`` naming a tool the request does not send ("Tool 'X'
not found in provided tools"). See :func:`invalid_request`.

Every request is recorded in :attr:`ScriptedMessagesServer.log` (method, path, parsed body). Set
``SWARM_FAKE_API_DEBUG=1`` to also print each one to stderr while developing.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Block = dict[str, Any]
"""One content block of an answer: ``{"type": "text", ...}`` or ``{"type": "tool_use", ...}``."""


@dataclass(frozen=True)
class ApiError:
    """A scripted turn answered with an HTTP error status and the real API's error body."""

    status: int
    message: str = "scripted failure"
    error_type: str | None = None  # default derived from status, as the real API names them
    times: int | None = 1
    """How many agent requests this entry answers before the script moves on; None: all that follow."""

    @property
    def type_name(self) -> str:
        if self.error_type:
            return self.error_type
        return _ERROR_TYPES.get(self.status, "api_error")


@dataclass(frozen=True)
class Answer:
    """A scripted turn whose ``stop_reason`` and usage are given instead of derived from the blocks.

    For clients that must react to them: ``stop_reason="max_tokens"`` (a truncated answer),
    ``"refusal"``, or exact token counts to check cost accounting. ``None`` keeps the derived value.
    """

    blocks: Sequence[Block]
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


Turn = Sequence[Block] | ApiError | Answer
"""One entry of a script: the content blocks the model answers with, an :class:`Answer` (blocks with a
given stop_reason and usage), or an :class:`ApiError`."""

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_tool_ids = itertools.count()


def text(value: str) -> Block:
    """A text content block."""
    return {"type": "text", "text": value}


def tool_use(name: str, input: dict[str, Any], id: str | None = None) -> Block:
    """A tool_use content block calling tool ``name`` (e.g. "Write", "Bash") with ``input``."""
    return {
        "type": "tool_use",
        "id": id or f"toolu_{next(_tool_ids):024d}",
        "name": name,
        "input": dict(input),
    }


def answer(
    *blocks: Block,
    stop_reason: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
) -> Answer:
    """A turn answering ``blocks`` with this ``stop_reason`` and these token counts (None: derived)."""
    return Answer(tuple(blocks), stop_reason, input_tokens, output_tokens)


def api_error(status: int, message: str = "scripted failure", *, times: int | None = 1) -> ApiError:
    """A turn answered with HTTP ``status`` (e.g. 400, 500, 529), for ``times`` requests (None: for good).

    The CLI retries by itself, so one failing model turn costs several requests: 2.1.330 sent a 400-answered
    turn 6 times (dropping beta features between tries) before it gave up with ``API Error: 400``, and retries
    5xx/529 up to 10 times with growing delays. Use ``times=None`` for an API that keeps failing.
    """
    if times is not None and times < 1:
        raise ValueError("times must be at least 1, or None")
    return ApiError(status, message, times=times)


@dataclass(frozen=True)
class Request:
    """One request as received (``body`` is the parsed JSON, or None)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def is_agent_turn(path: str, body: Any) -> bool:
    """The rule of this module: a POST /v1/messages with a non-empty ``tools`` list is an agent turn."""
    return path.split("?", 1)[0].rstrip("/") == "/v1/messages" and isinstance(body, dict) and bool(body.get("tools"))


def invalid_request(body: Any) -> str | None:
    """The real API's error message for a ``/v1/messages`` body it refuses with 400, or None when it is fine.

    Only what a test may trip by mistake is checked: the required ``max_tokens``, and a forced
    ``tool_choice`` naming a tool that is not among ``tools``.
    """
    if not isinstance(body, dict):
        return None
    if "max_tokens" not in body:
        return "max_tokens: Field required"
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        names = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        if choice.get("name") not in names:
            return f"Tool '{choice.get('name')}' not found in provided tools"
    return None


class ScriptedMessagesServer:
    """A Messages API answering agent turns from ``script``; a context manager that serves in a thread."""

    def __init__(
        self,
        script: Sequence[Turn],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        exhausted: Turn = (),
        side_text: str = "ok",
        api_key: str | None = None,
    ) -> None:
        self.api_key = api_key
        """When set, a GET of ``/v1/models/<id>`` with another ``x-api-key`` answers 401 (for doctor checks)."""
        self._script: list[Turn] = list(script)
        self._exhausted: Turn = exhausted if exhausted else [text("done")]
        self._side_text = side_text
        self._lock = threading.Lock()
        self._message_ids = itertools.count(1)
        self._debug = bool(os.environ.get("SWARM_FAKE_API_DEBUG"))
        self.log: list[Request] = []
        """Every request received, in order."""
        self.requests: list[dict[str, Any]] = []
        """The JSON bodies of every POST /v1/messages (agent turns and side calls)."""
        self.agent_requests: list[dict[str, Any]] = []
        """The JSON bodies of the agent turns only (the requests answered from the script), retries included."""
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def turns_left(self) -> int:
        """Entries of the script not used up yet (an error with ``times=None`` is never used up)."""
        with self._lock:
            return len(self._script)

    def start(self) -> ScriptedMessagesServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ScriptedMessagesServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- answering -------------------------------------------------------------------------------

    def _record(self, request: Request) -> Turn | None:
        """Record ``request``; for an agent turn, pop and return the turn that answers it."""
        with self._lock:
            self.log.append(request)
            if request.method != "POST" or not isinstance(request.body, dict):
                return None
            if request.path.split("?", 1)[0].rstrip("/") == "/v1/messages":
                self.requests.append(request.body)
                problem = invalid_request(request.body)
                if problem is not None:  # refused like the real API, before any turn is used up
                    return ApiError(400, problem, error_type="invalid_request_error")
            if not is_agent_turn(request.path, request.body):
                return None
            self.agent_requests.append(request.body)
            if not self._script:
                return self._exhausted
            turn = self._script[0]
            if isinstance(turn, ApiError) and turn.times != 1:
                if turn.times is not None:
                    self._script[0] = replace(turn, times=turn.times - 1)
                return turn
            return self._script.pop(0)

    def _side_answer(self, body: dict[str, Any]) -> str:
        """The text of a side request's answer: ``side_text``, or JSON fitting a requested schema."""
        output_config = body.get("output_config")
        fmt = output_config.get("format") if isinstance(output_config, dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
            return json.dumps(_schema_instance(fmt["schema"], self._side_text))
        return self._side_text

    def _message(
        self, blocks: Sequence[Block], model: str, input_tokens: int, shape: Answer | None = None
    ) -> dict[str, Any]:
        stop_reason = "tool_use" if any(b.get("type") == "tool_use" for b in blocks) else "end_turn"
        output_tokens = _estimate_tokens(blocks)
        if shape is not None:
            stop_reason = shape.stop_reason if shape.stop_reason is not None else stop_reason
            input_tokens = shape.input_tokens if shape.input_tokens is not None else input_tokens
            output_tokens = shape.output_tokens if shape.output_tokens is not None else output_tokens
        return {
            "id": f"msg_fake{next(self._message_ids):020d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [dict(b) for b in blocks],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output_tokens,
                "service_tier": "standard",
            },
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(_Handler):
            owner = server

        return Handler


def _estimate_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


def _schema_instance(schema: dict[str, Any], text_value: str) -> Any:
    """A small value satisfying a simple JSON schema (required properties only; strings get ``text_value``)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: _schema_instance(properties.get(name) or {}, text_value) for name in schema.get("required") or []}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text_value


def _sse_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The events of a streamed answer, in the real API's order."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            empty = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}
            raw = json.dumps(block["input"])
            for piece in _split(raw, 64):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        elif block["type"] == "text":
            empty = {"type": "text", "text": ""}
            yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}
            for piece in _split(block["text"], 64):
                delta = {"type": "text_delta", "text": piece}
                yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        else:  # pragma: no cover - only text and tool_use are scripted
            raise ValueError(f"cannot stream a {block['type']!r} block")
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _split(value: str, size: int) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedMessagesServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is dropped after this many seconds
    server_version = "scripted-messages-api"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; see SWARM_FAKE_API_DEBUG

    # -- plumbing ---------------------------------------------------------------------------------

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_fake")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error_body(self, status: int, error_type: str, message: str) -> None:
        self._send_json(status, {"type": "error", "error": {"type": error_type, "message": message}})

    def _send_stream(self, message: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", "req_fake")
        self.end_headers()
        for name, data in _sse_events(message):
            frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _debug(self, request: Request, kind: str) -> None:
        if not self.owner._debug:
            return
        body = json.dumps(request.body)
        print(f"[fake-api] {request.method} {request.path} ({kind}) {body[:2000]}", file=sys.stderr, flush=True)

    # -- verbs ------------------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        request = Request(self.command, self.path, None, dict(self.headers.items()))
        self.owner._record(request)
        self._debug(request, "probe")
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.startswith("/v1/models/"):
            given = self.headers.get("x-api-key") or self.headers.get("Authorization", "").removeprefix("Bearer ")
            if self.owner.api_key is not None and given != self.owner.api_key:  # SDK 2.x sends a Bearer header
                self._send_error_body(401, "authentication_error", "invalid x-api-key")
                return
            model = path.rsplit("/", 1)[1]
            self._send_json(200, {"type": "model", "id": model, "display_name": model,
                                  "created_at": "2025-01-01T00:00:00Z"})
            return
        self._send_json(200, {})

    def do_POST(self) -> None:
        body = self._read_body()
        request = Request("POST", self.path, body, dict(self.headers.items()))
        turn = self.owner._record(request)
        path = self.path.split("?", 1)[0].rstrip("/")
        self._debug(request, "agent turn" if turn is not None else "side request")
        payload: dict[str, Any] = body if isinstance(body, dict) else {}
        if path == "/v1/messages/count_tokens":
            self._send_json(200, {"input_tokens": _estimate_tokens(payload.get("messages"))})
            return
        if path != "/v1/messages":
            self._send_error_body(404, "not_found_error", f"Not found: {self.path}")
            return
        if isinstance(turn, ApiError):
            self._send_error_body(turn.status, turn.type_name, turn.message)
            return
        shape = turn if isinstance(turn, Answer) else None
        blocks = turn.blocks if isinstance(turn, Answer) else turn
        if blocks is None:
            blocks = [text(self.owner._side_answer(payload))]
        model = str(payload.get("model") or "claude-fake")
        message = self.owner._message(blocks, model, _estimate_tokens(payload.get("messages")), shape)
        if payload.get("stream"):
            self._send_stream(message)
        else:
            self._send_json(200, message)


__all__ = [
    "Answer",
    "ApiError",
    "Block",
    "Request",
    "ScriptedMessagesServer",
    "Turn",
    "answer",
    "api_error",
    "invalid_request",
    "is_agent_turn",
    "text",
    "tool_use",
]
