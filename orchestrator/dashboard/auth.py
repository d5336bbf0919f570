"""Who may look and who may act, decided per request without any state but two secrets.

- The serve token (``[serve] token_env``): when set, every dashboard page, fragment and stream needs it. A
  browser shows it once (``?token=`` or the login form) and gets a session cookie holding an HMAC of the
  token, never the token itself; scripts send ``Authorization: Bearer``. Compared with ``hmac.compare_digest``.
- CSRF: a random per-browser nonce in a cookie (SameSite=Strict, HttpOnly) and, in every form, the HMAC of
  that nonce under a per-process key. Another site can neither read the cookie nor compute the HMAC, so a
  forged POST answers 403. A restarted service has a new key: the page says to reload.
- Host check: on a loopback bind without a token, a request whose Host is not a loopback name is refused,
  so a web page that re-points its own DNS name at 127.0.0.1 cannot read the board.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

SESSION_COOKIE = "swarm_session"
CSRF_COOKIE = "swarm_csrf"
CSRF_FIELD = "csrf"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass
class Guard:
    """The dashboard's checks. ``token`` is read on every request (the variable may be set after start by a
    systemd reload, never logged); ``loopback`` is whether the service listens on loopback only."""

    token: Callable[[], str]
    loopback: bool
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def session_value(self) -> str:
        """What the session cookie holds: an HMAC of the token, so the cookie does not reveal it."""
        return _digest(self.token().encode(), "swarm-dashboard-session")

    def token_matches(self, given: str) -> bool:
        token = self.token()
        return bool(token) and hmac.compare_digest(given.strip().encode(), token.encode())

    def may_read(self, request: Request) -> bool:
        token = self.token()
        if not token:
            return self.loopback and self.host_ok(request)
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and self.token_matches(auth[7:]):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self.session_value().encode())

    def host_ok(self, request: Request) -> bool:
        """Without a token the page is served only under a loopback Host (no DNS rebinding)."""
        host = request.headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]", 1)[0] + "]"
        return name.lower() in LOOPBACK_NAMES

    def csrf_nonce(self, request: Request) -> tuple[str, bool]:
        """(the browser's nonce, whether it is new and must be set as a cookie)."""
        nonce = request.cookies.get(CSRF_COOKIE, "")
        if len(nonce) == 32 and all(c in "0123456789abcdef" for c in nonce):
            return nonce, False
        return secrets.token_hex(16), True

    def csrf_token(self, nonce: str) -> str:
        return _digest(self.key, f"csrf:{nonce}")

    def csrf_ok(self, request: Request, given: str) -> bool:
        nonce = request.cookies.get(CSRF_COOKIE, "")
        if not nonce or not given:
            return False
        return hmac.compare_digest(given.encode(), self.csrf_token(nonce).encode())

    def may_act(self, request: Request, csrf: str) -> tuple[bool, str]:
        """(allowed, why not): a reader of the page, with a valid CSRF token; beyond loopback never without
        the token (the service refuses to start that way; this holds if it was started some other way)."""
        if not self.loopback and not self.token():
            return False, "actions need the serve token on a non-loopback address"
        if not self.may_read(request):
            return False, "not signed in"
        if not self.csrf_ok(request, csrf):
            return False, "the form's CSRF token is missing or stale: reload the page and try again"
        return True, ""
