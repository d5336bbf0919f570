"""Rendering: one Jinja2 environment with autoescape on for every template, and a ``finalize`` that passes
every printed value through the secret redaction (``monitor.redact``) — a token an agent printed, or the
value of any configured secret, never reaches a page. Every HTML answer carries the same headers: a
Content-Security-Policy with no inline script (the one script is a static file), no framing, no referrer
(a ``?token=`` link never leaks), and no caching of pages that show the fleet."""

from __future__ import annotations

from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from monitor.redact import redact

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Markup):  # a macro's output: its values went through here already
        return value
    if isinstance(value, str):
        return redact(value)
    return value


ENV = Environment(loader=PackageLoader("orchestrator.dashboard", "templates"),
                  autoescape=select_autoescape(default=True, default_for_string=True), finalize=_finalize,
                  trim_blocks=True, lstrip_blocks=True, auto_reload=False)  # templates ship with the package


def html(name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(ENV.get_template(name).render(**context), status_code=status, headers=dict(HEADERS))


def static(name: str) -> Response:
    """One of the shipped static files (a fixed list: no path from the URL reaches the filesystem)."""
    kind = STATIC.get(name)
    if kind is None:
        return Response("not found", status_code=404, media_type="text/plain", headers=dict(HEADERS))
    body = resources.files("orchestrator.dashboard").joinpath("static", name).read_bytes()
    return Response(body, media_type=kind, headers={**HEADERS, "Cache-Control": "max-age=300"})


def text(message: str, status: int) -> Response:
    return Response(redact(message) + "\n", status_code=status, media_type="text/plain; charset=utf-8",
                    headers=dict(HEADERS))
