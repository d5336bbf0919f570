"""A fake Sentry on 127.0.0.1: the Web API subset discovery reads, and the envelope ingest sentry-sdk sends to.

Why: Sentry discovery and the monitor's self-monitoring must be tested with the real clients (httpx and
sentry-sdk) against something that answers like Sentry does — the same JSON shapes, bearer-token auth,
``Link`` header cursor pagination with ``results="true|false"``, and the failures (401, 403, 429 with
``Retry-After``, 5xx, bodies that are not JSON, slow answers) — without any network.

Usage::

    with FakeSentry() as fake:                       # org "acme", project "shop" (id 42)
        fake.add_issue(101, "ZeroDivisionError: division by zero", count=40, event=make_event(...))
        client = SentryClient(fake.url, fake.token, "acme")
        sentry_sdk.init(dsn=fake.dsn)                # events and check-ins land in fake.envelope_items

Web API (every request needs ``Authorization: Bearer <token>``, 401 otherwise):

- ``GET /api/0/projects/{org}/{project}/`` (slug or id),
- ``GET /api/0/organizations/{org}/issues/?project=&query=&environment=&sort=&limit=&cursor=``: ``query``
  defaults to ``is:unresolved`` and understands ``is:unresolved|resolved|regressed``, ``firstSeen:-24h`` /
  ``+24h`` (m, h, d, w), ``level:X`` and free words (in the title); other ``key:value`` terms are a 400.
  Pages hold ``min(limit, page_size)`` issues; the ``Link`` header always has both links, as Sentry's does.
- ``GET /api/0/organizations/{org}/issues/{id}/events/latest/`` (404 when the issue has no event).

Ingest: ``POST /api/{project_id}/envelope/`` (gzip or plain) is parsed into :class:`EnvelopeItem` s.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_TOKEN = "sntryu_" + "5e" * 32
"""The auth token the fake accepts unless given another (shaped like a Sentry user token)."""
PUBLIC_KEY = "0123456789abcdef0123456789abcdef"

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str  # the raw query string
    params: dict[str, list[str]]
    status: int
    authorization: str | None
    fault: str | None = None


@dataclass(frozen=True)
class EnvelopeItem:
    type: str
    headers: dict[str, Any]
    payload: Any  # parsed JSON, or the raw bytes


@dataclass
class _Fault:
    remaining: int
    kind: str  # "status", "bad_json", "delay"
    prefix: str
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0


@dataclass
class _Issue:
    data: dict[str, Any]
    environment: str
    event: dict[str, Any] | None = field(default=None)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_event(
    exc_type: str, value: str, frames: Sequence[tuple[str, str, int, str, bool]], *, message: str = "",
    environment: str = "production", release: str = "shop@1.2.3", event_id: str = "9f" * 16,
) -> dict[str, Any]:
    """An event as ``.../events/latest/`` returns it; ``frames`` are (filename, function, line, code, in_app),
    oldest first, as Sentry orders them."""
    built = [{
        "filename": name, "absPath": f"/srv/shop/{name}", "module": name.removesuffix(".py").replace("/", "."),
        "function": function, "lineNo": line, "colNo": None, "inApp": in_app,
        "context": [[line - 1, "    # the line before"], [line, code], [line + 1, "    # the line after"]],
    } for name, function, line, code, in_app in frames]
    entries: list[dict[str, Any]] = [{"type": "exception", "data": {"values": [
        {"type": exc_type, "value": value, "mechanism": {"type": "generic", "handled": False},
         "stacktrace": {"frames": built}}]}}]
    if message:
        entries.append({"type": "message", "data": {"formatted": message}})
    return {
        "id": event_id, "eventID": event_id, "groupID": "0", "title": f"{exc_type}: {value}", "message": message,
        "dateCreated": _iso(datetime.now(UTC)), "platform": "python", "type": "error",
        "tags": [{"key": "environment", "value": environment}, {"key": "release", "value": release}],
        "entries": entries,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSentry) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up during ``delay_next`` is expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    protocol_version = "HTTP/1.1"
    timeout = 30

    def _serve(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake keeps its own request log."""


class FakeSentry:
    def __init__(self, token: str = DEFAULT_TOKEN, *, org: str = "acme", project: str = "shop",
                 project_id: int = 42, page_size: int = 2, clock: Callable[[], datetime] | None = None) -> None:
        self.token = token
        self.org = org
        self.project = project
        self.project_id = project_id
        self.page_size = page_size
        self.clock = clock or (lambda: datetime.now(UTC))
        self.internal_errors: list[str] = []
        self._lock = threading.RLock()
        self._issues: dict[str, _Issue] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RequestRecord] = []
        self._items: list[EnvelopeItem] = []
        self._bodies: list[bytes] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSentry is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def dsn(self) -> str:
        return self.url.replace("http://", f"http://{PUBLIC_KEY}@") + f"/{self.project_id}"

    def start(self) -> FakeSentry:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="fake-sentry", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSentry:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------- set-up

    def add_issue(
        self, issue_id: int | str, title: str, *, count: int = 20, users: int = 5, culprit: str = "shop.cart in total",
        first_seen: datetime | None = None, last_seen: datetime | None = None, status: str = "unresolved",
        substatus: str = "new", level: str = "error", environment: str = "production",
        event: dict[str, Any] | None = None, short_id: str | None = None,
    ) -> dict[str, Any]:
        now = self.clock()
        issue_id = str(issue_id)
        data = {
            "id": issue_id, "shortId": short_id or f"SHOP-{issue_id}", "title": title, "culprit": culprit,
            "permalink": f"https://{self.org}.sentry.example/issues/{issue_id}/", "level": level,
            "status": status, "substatus": substatus, "statusDetails": {}, "isUnhandled": True,
            "count": str(count), "userCount": users, "type": "error", "platform": "python",
            "firstSeen": _iso(first_seen or now - timedelta(hours=2)), "lastSeen": _iso(last_seen or now),
            "project": {"id": str(self.project_id), "slug": self.project, "name": self.project},
            "metadata": {"title": title},
        }
        with self._lock:
            self._issues[issue_id] = _Issue(data, environment, event)
        return data

    def update_issue(self, issue_id: int | str, *, event: dict[str, Any] | None = None, **fields: Any) -> None:
        """Change fields of an issue; ``last_seen``/``first_seen`` take datetimes, ``count`` an int."""
        with self._lock:
            issue = self._issues[str(issue_id)]
            for key, value in fields.items():
                if key in ("last_seen", "first_seen"):
                    issue.data["lastSeen" if key == "last_seen" else "firstSeen"] = _iso(value)
                elif key == "count":
                    issue.data["count"] = str(value)
                elif key == "users":
                    issue.data["userCount"] = value
                else:
                    issue.data[key] = value
            if event is not None:
                issue.event = event

    def remove_event(self, issue_id: int | str) -> None:
        with self._lock:
            self._issues[str(issue_id)].event = None

    def fail_next(self, n: int, status: int, path_prefix: str = "/api/0/", retry_after: str | None = None) -> None:
        """The next ``n`` requests under ``path_prefix`` answer ``status`` (with ``Retry-After`` if given)."""
        with self._lock:
            self._faults.append(_Fault(n, "status", path_prefix, status=status, retry_after=retry_after))

    def bad_json_next(self, n: int, path_prefix: str = "/api/0/") -> None:
        """The next ``n`` requests under ``path_prefix`` answer 200 with an HTML page."""
        with self._lock:
            self._faults.append(_Fault(n, "bad_json", path_prefix))

    def delay_next(self, n: int, seconds: float, path_prefix: str = "/api/0/") -> None:
        with self._lock:
            self._faults.append(_Fault(n, "delay", path_prefix, seconds=seconds))

    # --------------------------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def api_requests(self, path_part: str = "") -> list[RequestRecord]:
        return [r for r in self.requests if r.path.startswith("/api/0/") and path_part in r.path]

    @property
    def envelope_items(self) -> list[EnvelopeItem]:
        with self._lock:
            return list(self._items)

    @property
    def raw_envelopes(self) -> bytes:
        """Every envelope body received, decompressed: grep it for what must not have been sent."""
        with self._lock:
            return b"\n".join(self._bodies)

    def events(self) -> list[dict[str, Any]]:
        return [i.payload for i in self.envelope_items if i.type == "event" and isinstance(i.payload, dict)]

    def checkins(self) -> list[dict[str, Any]]:
        return [i.payload for i in self.envelope_items if i.type == "check_in" and isinstance(i.payload, dict)]

    def wait_for(self, predicate: Callable[[FakeSentry], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    # ------------------------------------------------------------------------------------ serving

    def _fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and path.startswith(fault.prefix):
                    fault.remaining -= 1
                    return fault
        return None

    def _serve(self, handler: _Handler) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        params = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        auth = handler.headers.get("authorization")
        status, headers, payload, fault = 500, {}, b"", None
        try:
            found = self._fault(parsed.path)
            fault = found.kind if found else None
            if found is not None and found.kind == "delay":
                time.sleep(found.seconds)
                found = None
            if found is not None and found.kind == "status":
                status, payload = found.status, json.dumps({"detail": f"fault {found.status}"}).encode()
                headers = {"Retry-After": found.retry_after} if found.retry_after else {}
            elif found is not None and found.kind == "bad_json":
                status, headers, payload = 200, {"Content-Type": "text/html"}, b"<html>Sentry is down</html>"
            elif handler.command == "POST" and re.fullmatch(r"/api/\d+/envelope/", parsed.path):
                status, payload = self._ingest(handler, body)
            elif auth != f"Bearer {self.token}":
                status, payload = 401, json.dumps({"detail": "Invalid token"}).encode()
            else:
                status, headers, payload = self._api(parsed.path, params)
        except Exception as exc:  # the fake's own bug: answer 500 and keep it for the test to see
            self.internal_errors.append(repr(exc))
            status, payload = 500, b'{"detail": "fake error"}'
        with self._lock:
            self._requests.append(RequestRecord(handler.command, parsed.path, parsed.query, params, status, auth,
                                                fault))
        handler.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _api(self, path: str, params: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        org = re.escape(self.org)
        if match := re.fullmatch(rf"/api/0/projects/{org}/([^/]+)/", path):
            if match.group(1) not in (self.project, str(self.project_id)):
                return 404, {}, b'{"detail": "The requested resource does not exist"}'
            return 200, {}, json.dumps({"id": str(self.project_id), "slug": self.project, "name": self.project,
                                        "organization": {"slug": self.org}}).encode()
        if match := re.fullmatch(rf"/api/0/organizations/{org}/issues/(\d+)/events/latest/", path):
            with self._lock:
                issue = self._issues.get(match.group(1))
                event = None if issue is None else issue.event
            if event is None:
                return 404, {}, b'{"detail": "Event not found"}'
            return 200, {}, json.dumps(event).encode()
        if path == f"/api/0/organizations/{self.org}/issues/":
            return self._list(path, params)
        return 404, {}, b'{"detail": "The requested resource does not exist"}'

    def _matches(self, issue: _Issue, terms: list[str], now: datetime) -> bool | str:
        data = issue.data
        for term in terms:
            key, _, value = term.partition(":")
            if not value:
                if key.lower() not in data["title"].lower():
                    return False
            elif key == "is":
                ok = {"unresolved": data["status"] == "unresolved", "resolved": data["status"] == "resolved",
                      "regressed": data["substatus"] == "regressed"}.get(value)
                if ok is None:
                    return f"Invalid value '{value}' for 'is:' search"
                if not ok:
                    return False
            elif key == "firstSeen":
                match = re.fullmatch(r"([+-])(\d+)([mhdw])", value)
                if match is None:
                    return f"Invalid format for \"firstSeen\": {value}"
                limit = now - timedelta(seconds=int(match.group(2)) * _UNITS[match.group(3)])
                seen = datetime.fromisoformat(data["firstSeen"])
                if (seen < limit) if match.group(1) == "-" else (seen >= limit):
                    return False
            elif key == "level":
                if data["level"] != value:
                    return False
            else:
                return f"the fake does not know the search key {key!r}"
        return True

    def _list(self, path: str, params: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        query = params.get("query", ["is:unresolved"])[0]
        projects = params.get("project", [])
        if projects and projects != [str(self.project_id)]:
            return 403, {}, b'{"detail": "You do not have permission to perform this action."}'
        environments = params.get("environment", [])
        now = self.clock()
        with self._lock:
            issues = list(self._issues.values())
        chosen = []
        for issue in issues:
            verdict = self._matches(issue, query.split(), now)
            if isinstance(verdict, str):
                return 400, {}, json.dumps({"detail": verdict}).encode()
            if verdict and (not environments or issue.environment in environments):
                chosen.append(issue.data)
        sort = params.get("sort", ["date"])[0]
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "freq": lambda d: int(d["count"]), "user": lambda d: d["userCount"], "new": lambda d: d["firstSeen"]}
        chosen.sort(key=keys.get(sort, lambda d: d["lastSeen"]), reverse=True)
        size = min(int(params.get("limit", ["100"])[0]), self.page_size)
        offset = int(params.get("cursor", ["0:0:0"])[0].split(":")[1])
        page = chosen[offset:offset + size]

        def link(at: int, rel: str, results: bool, previous: int) -> str:
            cursor = f"0:{at}:{previous}"
            query_string = urllib.parse.urlencode({**{k: v[0] for k, v in params.items()}, "cursor": cursor})
            return (f'<{self.url}{path}?{query_string}>; rel="{rel}"; results="{str(results).lower()}"; '
                    f'cursor="{cursor}"')

        header = ", ".join([link(max(0, offset - size), "previous", offset > 0, 1),
                            link(offset + size, "next", offset + size < len(chosen), 0)])
        return 200, {"Link": header}, json.dumps(page).encode()

    def _ingest(self, handler: _Handler, body: bytes) -> tuple[int, bytes]:
        if handler.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        elif handler.headers.get("content-encoding") == "br":
            import brotli  # type: ignore[import-not-found]

            body = brotli.decompress(body)
        items: list[EnvelopeItem] = []
        lines = body.split(b"\n", 1)
        header = json.loads(lines[0] or b"{}")
        rest = lines[1] if len(lines) > 1 else b""
        while rest.strip():
            item_header_raw, _, rest = rest.partition(b"\n")
            item_header = json.loads(item_header_raw)
            if "length" in item_header:
                raw, rest = rest[:item_header["length"]], rest[item_header["length"]:]
                rest = rest.removeprefix(b"\n")
            else:
                raw, _, rest = rest.partition(b"\n")
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = raw
            items.append(EnvelopeItem(str(item_header.get("type")), item_header, payload))
        with self._lock:
            self._bodies.append(body)
            self._items.extend(items)
        return 200, json.dumps({"id": header.get("event_id")}).encode()
