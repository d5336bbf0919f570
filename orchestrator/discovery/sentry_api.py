"""Sentry's REST API as discovery uses it: the client, its errors, ``Link``-header paging and the issue searches.

Why a module of its own: everything that talks HTTP to Sentry (the token, bounded retries on 5xx and
timeouts, turning every failure into a one-line message that names the fix, following cursors) stays apart
from what discovery decides (``sentry``) and from what the agent is told (``sentry_prompt``).

Paging: an issue list follows the ``Link`` header's ``rel="next"`` cursor until ``results="false"``, at
most ``MAX_PAGES`` pages, always on our own URL. The token travels only in the ``Authorization: Bearer``
header, never in a URL, a message or a log line.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import random
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor.redact import redact
from orchestrator.config import SentrySettings

MAX_PAGES = 10  # per issue list; past it the report says so and asks for a narrower [sentry] query
PAGE_LIMIT = 100  # issues per page (Sentry's maximum)
_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[A-Za-z]+="[^"]*")*)')
_LINK_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')


class DiscoveryError(Exception):
    """Discovery cannot run: its dedupe file is damaged, or another run holds it."""


class SentryError(DiscoveryError):
    """Sentry failed or refused; the message is one line that names the fix."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


# ------------------------------------------------------------------------------------------ the client


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def next_cursor(link_header: str) -> str | None:
    """The cursor of ``rel="next"`` when it says ``results="true"``; None at the end (Sentry always sends
    both links, and the last page's next link says ``results="false"``)."""
    for match in _LINK.finditer(link_header or ""):
        params = dict(_LINK_PARAM.findall(match.group(2)))
        if params.get("rel") == "next":
            if params.get("results") != "true":
                return None
            return params.get("cursor") or None
    return None


class SentryClient:
    """The REST calls discovery needs, with bounded retries on 5xx and timeouts, and every failure turned
    into a one-line ``SentryError``. Next pages are asked for with the cursor from the ``Link`` header on
    our own URL, so the token never follows a link to another host."""

    def __init__(
        self, url: str, token: str, org: str, *, timeout: float = 15.0,
        token_env: str = "SENTRY_AUTH_TOKEN",  # noqa: S107 (the variable's name, for messages)
        retries: int = 2, backoff: float = 0.5, transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.org = org
        self.timeout = timeout
        self.token_env = token_env
        self.retries = retries
        self.backoff = backoff
        self.requests = 0
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport, follow_redirects=False,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "swarm"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SentryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _refused(self, response: httpx.Response, what: str, missing: str) -> SentryError:
        status = response.status_code
        if status == 401:
            return SentryError(f"Sentry refused the token in ${self.token_env} (401) while reading {what}: it is "
                               "wrong, expired or revoked; create a new auth token with the project:read and "
                               "event:read scopes", status=status)
        if status == 403:
            return SentryError(f"the token in ${self.token_env} may not read {what} (403): give it the "
                               f"project:read and event:read scopes and access to the organization {self.org!r}",
                               status=status)
        if status == 404:
            return SentryError(f"Sentry found no {what.removeprefix('the ')} (404): {missing}", status=status)
        if status == 429:
            wait = _retry_after(response.headers.get("retry-after"))
            after = f"retry after {wait:.0f} s" if wait is not None else "retry in a minute or more"
            return SentryError(f"Sentry's rate limit was hit while reading {what} (429): {after}; nothing was "
                               "created, the next run carries on", status=status, retry_after=wait)
        detail = ""
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(response.json().get("detail", ""))
        detail = f" ({redact(detail)[:200]})" if detail else ""
        return SentryError(f"Sentry rejected the request for {what} ({status}){detail}: check [sentry] query, "
                           "org and project in swarm.toml", status=status)

    def get(self, path: str, params: dict[str, Any], what: str, missing: str = "") -> httpx.Response:
        """GET with retries on 5xx, timeouts and lost connections; any answer but 200 is a ``SentryError``."""
        problem = SentryError(f"Sentry was not asked for {what}")
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
            self.requests += 1
            try:
                response = self._http.get(path, params=params)
            except httpx.TimeoutException:
                problem = SentryError(f"Sentry did not answer within {self.timeout:g} s while reading {what}: "
                                      "the next run tries again (raise [sentry] timeout if this repeats)")
                continue
            except httpx.TransportError as exc:
                problem = SentryError(f"cannot reach Sentry at {self.url} while reading {what} "
                                      f"({type(exc).__name__}): check [sentry] url and the network")
                continue
            if response.status_code >= 500:
                problem = SentryError(f"Sentry answered {response.status_code} {response.reason_phrase} while "
                                      f"reading {what}: a problem on Sentry's side; the next run tries again",
                                      status=response.status_code)
                continue
            if response.status_code != 200:
                raise self._refused(response, what, missing)
            return response
        raise problem

    def json(self, response: httpx.Response, what: str, kind: type[dict[str, Any]] | type[list[Any]]) -> Any:
        try:
            data = response.json()
        except ValueError:
            kind_seen = response.headers.get("content-type", "no content type")
            raise SentryError(f"Sentry answered {what} with something that is not JSON ({kind_seen}): is "
                              f"[sentry] url ({self.url}) the Sentry server, e.g. https://sentry.io?") from None
        if not isinstance(data, kind):
            raise SentryError(f"Sentry answered {what} with JSON of an unexpected shape ({type(data).__name__}, "
                              f"expected {kind.__name__}): is [sentry] url ({self.url}) the Sentry API?")
        return data

    def project(self, project: str) -> dict[str, Any]:
        what = f"the project {self.org}/{project}"
        response = self.get(f"/api/0/projects/{self.org}/{project}/", {}, what,
                            "check [sentry] org and project in swarm.toml (the slugs in the project's URL)")
        data: dict[str, Any] = self.json(response, what, dict)
        if not str(data.get("id", "")).isdigit():
            raise SentryError(f"Sentry answered {what} without a numeric id: is [sentry] url the Sentry API?")
        return data

    def issues(
        self, project_id: str, query: str, *, environment: str = "", period: str = "24h", sort: str = "freq",
        max_pages: int = MAX_PAGES,
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """Every issue the query finds, following the cursor: (issues, pages read, whether the list is complete)."""
        params: dict[str, Any] = {"project": project_id, "query": query, "statsPeriod": period, "sort": sort,
                                  "limit": PAGE_LIMIT}
        if environment:
            params["environment"] = environment
        found: list[dict[str, Any]] = []
        seen_cursors: set[str] = set()
        for page in range(1, max_pages + 1):
            what = f"the issue list ({query!r}, page {page})"
            response = self.get(f"/api/0/organizations/{self.org}/issues/", params, what,
                                "check [sentry] org in swarm.toml")
            found += [i for i in self.json(response, what, list) if isinstance(i, dict)]
            cursor = next_cursor(response.headers.get("link", ""))
            if cursor is None or cursor in seen_cursors:
                return found, page, True
            seen_cursors.add(cursor)
            params["cursor"] = cursor
        return found, max_pages, False

    def latest_event(self, issue_id: str, environment: str = "") -> dict[str, Any]:
        what = f"the latest event of issue {issue_id}"
        params = {"environment": environment} if environment else {}
        response = self.get(f"/api/0/organizations/{self.org}/issues/{issue_id}/events/latest/", params, what,
                            "the issue has no event left (deleted or past retention)")
        data: dict[str, Any] = self.json(response, what, dict)
        return data


# ----------------------------------------------------------------------------------------- the searches


def relative(seconds: float) -> str:
    """Sentry's relative time (``firstSeen:-24h``): weeks, days, hours or minutes (rounded up)."""
    whole = math.ceil(seconds)
    for size, unit in ((604800, "w"), (86400, "d"), (3600, "h")):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{max(1, math.ceil(whole / 60))}m"


def queries(settings: SentrySettings) -> tuple[str, str]:
    """(new issues, regressed issues), each ``is:unresolved`` + the window or ``is:regressed`` + ``query``."""
    extra = " ".join(settings.query.split())
    new = " ".join(p for p in ("is:unresolved", f"firstSeen:-{relative(settings.first_seen_within)}", extra) if p)
    again = " ".join(p for p in ("is:unresolved", "is:regressed", extra) if p)
    return new, again
