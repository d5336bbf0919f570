"""The dashboard's routes: the board (``/``), a task (``/tasks/ID``), their HTML fragments and event
streams, the three actions (POST, CSRF-checked), the login form, and the two static files.

Every handler goes through :class:`Dashboard`, which holds what the pages need (the state directory, the
settings, the guard, the actions). Reads happen on the threadpool (a registry parse of 1,000 tasks is
milliseconds, but it must not stall the event loop that also answers webhooks)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from monitor.agent_run import LOG
from monitor.budget_override import OVERRIDE_FILE
from monitor.heartbeat import LAST_TICK
from monitor.layout import Layout
from orchestrator.config import Settings
from orchestrator.dashboard import pages
from orchestrator.dashboard.actions import ActionRefused, Actions
from orchestrator.dashboard.auth import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, Guard
from orchestrator.dashboard.board import board
from orchestrator.dashboard.detail import task_page, transcript
from orchestrator.dashboard.stream import Streams, signature
from orchestrator.errors import OperationalError
from orchestrator.serve.health import WEBHOOK_FILE
from orchestrator.wiring import policy_from
from registry.models import TASK_ID_RE, Task
from registry.store import Registry, RegistryError

log = logging.getLogger(__name__)
SAID = {"retried": "Retry started.", "cancelled": "Task cancelled.", "submitted": "Request submitted.",
         "merge": "Approved for the merge train.",
        "signed-in": "Signed in."}
Handler = Callable[[Request], Awaitable[Response]]


MAX_FORM = 64 * 1024
_LOCAL_PATH = re.compile(r"/(?:[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)?")


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the only kind these pages send), bounded; the first value of each field."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=10)
    except ValueError:  # more fields than any of these forms has
        return {}
    return {name: values[0] for name, values in fields.items()}


class Dashboard:
    def __init__(self, layout: Layout, settings: Settings, guard: Guard, actions: Actions,
                 interval: float, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.layout = layout
        self.settings = settings
        self.guard = guard
        self.actions = actions
        self.interval = interval
        self.clock = clock
        self.registry = Registry(layout.state_dir)
        self.policy = policy_from(settings)
        self.streams = Streams(stopping=stopping)

    # -- what the pages show -------------------------------------------------------------------------

    def board_context(self) -> dict[str, Any]:
        return {"board": board(self.registry.read(), self.layout.state_dir, self.clock(), policy=self.policy,
                               interval=self.interval),
                "can_submit": self.actions.can_submit()}

    def task(self, task_id: str) -> Task | None:
        if not TASK_ID_RE.match(task_id):
            return None
        return self.registry.read().tasks.get(task_id)

    def task_context(self, task: Task) -> dict[str, Any]:
        return {"page": task_page(self.layout, task, self.clock(), self.policy.max_attempts,
                                   self.policy.merge_mode)}

    def board_files(self) -> dict[str, list[Path]]:
        d = self.layout.state_dir
        return {"board": [d / "registry.json", d / LAST_TICK, d / WEBHOOK_FILE, d / "github.json",
                          d / OVERRIDE_FILE]}

    def task_files(self, task_id: str) -> Callable[[], dict[str, list[Path]]]:
        """What a task page watches: the registry, and its current attempt's output (looked up again only
        when the registry changed: a poll is two stats, not a registry read)."""
        d = self.layout.state_dir
        registry = [d / "registry.json", d / LAST_TICK]
        seen: dict[str, Any] = {"registry": None, "log": []}

        def watch() -> dict[str, list[Path]]:
            now = signature(registry[:1])
            if now != seen["registry"]:
                seen["registry"] = now
                task = self.task(task_id)
                seen["log"] = [self.layout.run_dir(task_id, task.attempt.number) / LOG] \
                    if task is not None and task.attempt is not None else []
            return {"task": registry, "tail": seen["log"]}

        return watch

    # -- plumbing ------------------------------------------------------------------------------------

    def page(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        nonce, new = self.guard.csrf_nonce(request)
        said = SAID.get(request.query_params.get("said", ""), "")
        response = pages.html(name, {"csrf_field": CSRF_FIELD, "csrf": self.guard.csrf_token(nonce),
                                     "said": said, "signed": bool(self.guard.token()), **context}, status)
        if new:
            response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="strict", path="/")
        return response

    def guarded(self, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            if not self.guard.may_read(request):
                given = request.query_params.get("token", "")
                if given and self.guard.token_matches(given):  # a link with the token: sign in, drop it
                    return self.signed_in(request.url.path)
                if self.guard.token():
                    return self.page(request, "login.html", {"next": request.url.path, "wrong": False}, 401)
                return pages.text("this dashboard answers only on a loopback address (Host header)", 403)
            try:
                return await handler(request)
            except RegistryError as exc:
                return self.page(request, "error.html", {"message": str(exc)}, 503)
            except Exception:
                log.exception("dashboard: %s failed", request.url.path)
                return self.page(request, "error.html",
                                 {"message": "the page failed; the service's log has the details"}, 500)

        return run

    # -- handlers ------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return self.page(request, "board.html", await run_in_threadpool(self.board_context))

    async def board_fragment(self, request: Request) -> Response:
        return self.page(request, "_board.html", await run_in_threadpool(self.board_context))

    async def task_view(self, request: Request) -> Response:
        task = await run_in_threadpool(self.task, request.path_params["task_id"])
        if task is None:
            return self.page(request, "error.html", {"message": "no such task (it may have been archived)"}, 404)
        return self.page(request, "task.html", await run_in_threadpool(self.task_context, task))

    async def task_fragment(self, request: Request) -> Response:
        task = await run_in_threadpool(self.task, request.path_params["task_id"])
        if task is None:
            return pages.text("no such task", 404)
        name = "_task_head.html" if request.query_params.get("part") == "head" else "_task.html"
        return self.page(request, name, await run_in_threadpool(self.task_context, task))

    async def tail_fragment(self, request: Request) -> Response:
        task = await run_in_threadpool(self.task, request.path_params["task_id"])
        if task is None:
            return pages.text("no such task", 404)
        number, text = await run_in_threadpool(transcript, self.layout, task)
        return self.page(request, "_tail.html", {"number": number, "transcript": text})

    def stream(self, watch: Callable[[], dict[str, list[Path]]]) -> Handler:
        async def events(request: Request) -> Response:
            if self.streams.open >= self.streams.limit:
                return pages.text("too many open dashboard pages; close some", 503)
            headers = {**pages.HEADERS, "X-Accel-Buffering": "no"}
            return StreamingResponse(self.streams.events(watch, request.receive),
                                     media_type="text/event-stream", headers=headers)

        return events

    async def board_events(self, request: Request) -> Response:
        return await self.stream(self.board_files)(request)

    async def task_events(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        return await self.stream(self.task_files(task_id))(request)

    async def act(self, request: Request) -> Response:
        try:
            return await self._act(request)
        except Exception:
            log.exception("dashboard: %s failed", request.url.path)
            return pages.text("the action failed; the service's log has the details", 500)

    async def _act(self, request: Request) -> Response:
        form = await read_form(request)
        allowed, why = self.guard.may_act(request, form.get(CSRF_FIELD, ""))
        if not allowed:
            return pages.text(f"refused: {why}", 403)
        action = request.path_params.get("action", "submit")
        task_id = request.path_params.get("task_id", "")
        back = f"/tasks/{quote(task_id)}" if task_id else "/"
        try:
            if action == "retry":
                await run_in_threadpool(self.actions.retry, task_id, form.get("note", ""))
                said = "retried"
            elif action == "cancel":
                await run_in_threadpool(self.actions.cancel, task_id)
                said = "cancelled"
            elif action == "merge":
                await run_in_threadpool(self.actions.merge, task_id)
                said = "merge"
            elif action == "submit":
                await run_in_threadpool(self.actions.submit, form.get("request", ""))
                said = "submitted"
            else:
                return pages.text("no such action", 404)
        except (ActionRefused, OperationalError) as exc:
            status = 409 if isinstance(exc, ActionRefused) else 500
            return self.page(request, "error.html", {"message": str(exc), "back": back}, status)
        return RedirectResponse(f"{back}?said={said}", status_code=303)

    async def login(self, request: Request) -> Response:
        next_path = request.query_params.get("next", "/")
        given = request.query_params.get("token", "")
        if request.method == "POST":
            form = await read_form(request)
            given, next_path = form.get("token", ""), form.get("next", "/")
        if not _LOCAL_PATH.fullmatch(next_path):  # only this site's own paths: no open redirect ("//", "/\\")
            next_path = "/"
        if not self.guard.token():
            return RedirectResponse("/", status_code=303)
        if not self.guard.token_matches(given):
            return self.page(request, "login.html", {"next": next_path, "wrong": bool(given)}, 401)
        return self.signed_in(next_path)

    def signed_in(self, path: str) -> Response:
        response = RedirectResponse(f"{path}?said=signed-in", status_code=303)
        response.set_cookie(SESSION_COOKIE, self.guard.session_value(), httponly=True, samesite="strict", path="/")
        return response

    async def static(self, request: Request) -> Response:
        return pages.static(request.path_params["name"])


def dashboard_routes(dashboard: Dashboard) -> list[BaseRoute]:
    d = dashboard
    g = d.guarded
    return [
        Route("/", g(d.index), methods=["GET"]),
        Route("/fragment/board", g(d.board_fragment), methods=["GET"]),
        Route("/events", g(d.board_events), methods=["GET"]),
        Route("/tasks/{task_id}", g(d.task_view), methods=["GET"]),
        Route("/tasks/{task_id}/fragment", g(d.task_fragment), methods=["GET"]),
        Route("/tasks/{task_id}/tail", g(d.tail_fragment), methods=["GET"]),
        Route("/tasks/{task_id}/events", g(d.task_events), methods=["GET"]),
        Route("/tasks/{task_id}/{action}", d.act, methods=["POST"]),
        Route("/submit", d.act, methods=["POST"]),
        Route("/login", d.login, methods=["GET", "POST"]),
        Route("/static/{name}", d.static, methods=["GET"]),
        Route("/favicon.ico", lambda _request: Response(status_code=204), methods=["GET"]),  # browsers ask
    ]
