"""The ASGI application of `swarm serve` (Starlette): ``POST /webhooks/github`` and ``GET /healthz``.

Routes are plain Starlette routes built here; the dashboard adds its pages to the same list
(``build_app(..., routes=[...])``), so one process and one port serve both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from orchestrator.serve.webhooks import WebhookHandler


def webhook_route(handler: WebhookHandler) -> Route:
    async def github(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > handler.max_body):
            return JSONResponse({"error": f"body over {handler.max_body} bytes"}, status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > handler.max_body:
                return JSONResponse({"error": f"body over {handler.max_body} bytes"}, status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, reason = handler.check(bytes(body), headers)
        if status == 204:
            return Response(status_code=204, headers={"X-Swarm-Reason": reason})
        if status != 202:
            return JSONResponse({"error": reason}, status_code=status)
        work = BackgroundTask(handler.handle, headers.get("x-github-event", ""),
                              headers.get("x-github-delivery", ""), bytes(body), headers.get("content-type", ""))
        return JSONResponse({"status": reason}, status_code=202, background=work)

    return Route("/webhooks/github", github, methods=["POST"])


def health_route(status: Callable[[], dict[str, Any]]) -> Route:
    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True, **status()})

    return Route("/healthz", healthz, methods=["GET"])


def build_app(handler: WebhookHandler, status: Callable[[], dict[str, Any]],
              routes: Sequence[BaseRoute] = ()) -> Starlette:
    return Starlette(routes=[webhook_route(handler), health_route(status), *routes])
