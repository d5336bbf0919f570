"""Slack notifiers: the human hears about ready PRs and stuck or failed tasks where they already are.

Why this module exists: the outbox (``flush_outbox``) promises that a notification is never lost and never
sent twice; Slack has no idempotency key, answers ``ratelimited`` with a ``Retry-After``, and can be down or
misconfigured. This module turns Slack's answers into :class:`NotifyError` values the tick understands (wait,
retry next tick, or "the human must fix the token": ``permanent``), sends outbox messages as Block Kit
with the plain text as fallback (the layouts: :mod:`monitor.world.slack_layouts`), and remembers between
one-shot ticks (``.swarm/slack.json``) which thread belongs to which task and which keys Slack already
accepted.

Exactly once with a bot token: a process can die anywhere in a post's round trip (Slack may have the message
while its answer never arrived). So each post is recorded as *in flight* in ``slack.json`` (fsynced) before
it is sent, and carries the message's key in Slack message ``metadata`` (``{event_type, event_payload}``).
Before an in-flight message is sent again, it is looked for where it would be: a reply in the task's thread
(``conversations.replies``), a task's first message in the channel's history (``conversations.history``),
both with ``include_all_metadata``. Found: it is recorded as delivered, not posted. This needs the
``channels:history`` scope (``groups:history`` for a private channel); without it, or when ``slack.channel``
is a ``#name`` whose id is not known yet, the re-send goes out (at least once) with a warning. An incoming
webhook cannot be read back: webhook delivery stays at least once.

- :class:`SlackNotifier` (bot token + channel): one parent message per task whose status line is kept
  current with ``chat.update``; every event of the task is a reply in its thread; "ready" is also broadcast.
- :class:`SlackWebhookNotifier` (incoming webhook only): flat messages, same layouts.
- :func:`check`: the one line of ``swarm doctor``.

Nothing here sleeps: slack-sdk's retry handlers are switched off (its rate-limit handler would sleep for
``Retry-After`` inside the tick) and every request is bounded by ``timeout``.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse, WebClient
from slack_sdk.webhook import WebhookClient

from monitor.redact import redact
from monitor.world.notify import NotifyError
from monitor.world.slack_layouts import (
    HEADER_CHARS,
    MAX_BLOCKS,
    SECTION_CHARS,
    blocks_for,
    escape,
    fallback_text,
    parent_for,
    status_line,
)
from monitor.world.slack_state import KEEP_SENT, KEEP_THREADS, SlackState, parent_key
from registry.models import OutboxMessage

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
TOKEN_ENV = "SLACK_BOT_TOKEN"  # the name of the variable, never a token
EVENT_TYPE = "swarm_notification"  # the metadata event type swarm's messages carry (their key in the payload)
LOOKUP_MARGIN = 3600.0  # seconds before the in-flight record that a lookup reads back (clock skew with Slack)
LOOKUP_PAGES = 10
LOOKUP_PAGE = 200
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")

# Slack's answers that only the human can fix, with the fix ({env}: the variable, {channel}: slack.channel).
_PERMANENT = {
    "invalid_auth": "the bot token in {env} was rejected: export a valid bot token (xoxb-...) of your Slack app",
    "not_authed": "no bot token was sent: export the Slack app's bot token in {env}",
    "account_inactive": "the bot token in {env} belongs to a deactivated app: reinstall the app, export its token",
    "token_revoked": "the bot token in {env} was revoked: reinstall the Slack app and export its new token",
    "token_expired": "the bot token in {env} expired: export a fresh token (or turn off token rotation)",
    "missing_scope": "the bot token lacks the chat:write scope: add it (OAuth & Permissions) and reinstall the app",
    "channel_not_found": "channel {channel} not found: set slack.channel in swarm.toml to a channel id (C0123...) "
                         "the bot can see",
    "not_in_channel": "the bot is not a member of {channel}: invite it there (/invite @your-app)",
    "is_archived": "channel {channel} is archived: unarchive it or set another slack.channel",
    "restricted_action": "the workspace does not let the bot post in {channel}: ask an admin or pick another channel",
}
_WEBHOOK_PERMANENT = {
    "invalid_token": "the incoming webhook in {env} was revoked: create a new one and export its URL",
    "no_service": "the incoming webhook in {env} is disabled or removed: create a new one and export its URL",
    "no_team": "the incoming webhook in {env} points at a missing workspace: create a new one",
    "team_disabled": "the workspace of the webhook in {env} is disabled",
    "channel_not_found": "the channel of the webhook in {env} no longer exists: create a new webhook",
    "channel_is_archived": "the channel of the webhook in {env} is archived: unarchive it or create a new webhook",
    "action_prohibited": "an admin restricted posting to the channel of the webhook in {env}",
    "posting_to_general_channel_denied": "the webhook in {env} may not post to #general: pick another channel",
    "no_active_hooks": "incoming webhooks are turned off for the app of {env}: turn them on again",
}
_BAD_LAYOUT = {"invalid_blocks", "invalid_blocks_format", "too_many_blocks", "msg_too_long", "invalid_attachments"}
_THREAD_GONE = {"message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found"}
_BAD_METADATA = {"invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large",
                 "metadata_must_be_sent_from_app"}
_NOT_THERE = {"thread_not_found", "message_not_found", "channel_not_found"}


class SlackError(NotifyError):
    """Slack answered with an error code (``ratelimited``, ``invalid_auth``, ...)."""

    def __init__(self, message: str, code: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message, retry_after=retry_after, permanent=permanent)
        self.code = code


def _metadata(key: str, task_id: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"key": key, "task": task_id}}


def _carries(found: Any, key: str) -> bool:
    """Whether a message read back from Slack carries swarm's metadata with ``key``."""
    metadata = found.get("metadata") if isinstance(found, dict) else None
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("key") == key


# ------------------------------------------------------------------------------------------ clients


def _sdk_logger() -> logging.Logger:
    """slack-sdk logs request URLs (a webhook URL is a secret) and a second error line for every failure we
    already report as one line: its logger stays silent."""
    logger = logging.getLogger(f"{__name__}.sdk")
    logger.setLevel(logging.CRITICAL)
    return logger


def _retry_after(headers: Any, default: float | None) -> float | None:
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            try:
                return max(1.0, float(value[0] if isinstance(value, list) else value))
            except (TypeError, ValueError):
                return default
    return default


def _timeout(seconds: float) -> int:
    return max(1, math.ceil(seconds))  # slack-sdk's clients take whole seconds


def _unreachable(what: str, exc: Exception, secrets: tuple[str, ...]) -> NotifyError:
    detail = str(exc) or type(exc).__name__
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "[REDACTED]")
    return NotifyError(f"slack: {what} did not answer ({redact(detail)[:200]}); retrying next tick", retry_after=0.0)


class SlackNotifier:
    """A bot token and a channel: one thread per task, its parent's status line kept current."""

    wants_events = True  # every event of a task is a reply in its thread

    def __init__(self, token: str, channel: str, state_path: Path | None, *, api_url: str = DEFAULT_API_URL,
                 timeout: float = 10.0, token_env: str = TOKEN_ENV) -> None:
        self.channel = channel
        self.token_env = token_env
        self.state = SlackState(state_path)
        self._token = token
        self.client = WebClient(token=token, base_url=api_url, timeout=_timeout(timeout), retry_handlers=[],
                                logger=_sdk_logger())

    def send(self, message: OutboxMessage) -> None:
        if self.state.was_sent(message.key):
            log.info("slack: %s was delivered before the outbox recorded it; not sending it twice", message.key)
            return
        channel, thread_ts = self._thread(message)
        flight = self.state.flight(message.key)
        if flight is not None and self._posted_reply(flight, message.key):
            log.info("slack: %s reached Slack before its sender died; not sending it twice", message.key)
            self.state.mark_sent(message.key, message.created_at.isoformat())
            return
        self.state.begin(message.key, channel=channel, thread_ts=thread_ts)
        self._post(channel=channel, thread_ts=thread_ts, text=fallback_text(message), blocks=blocks_for(message),
                   reply_broadcast=message.kind == "ready" or None, unfurl_links=False, unfurl_media=False,
                   metadata=_metadata(message.key, message.task_id))
        self.state.mark_sent(message.key, message.created_at.isoformat())

    def _thread(self, message: OutboxMessage) -> tuple[str, str]:
        """The task's thread, its status line updated first (idempotent), or a new parent message."""
        text, blocks = parent_for(message)
        known = self.state.thread(message.task_id, self.channel)
        if known is not None:
            channel, ts = known
            try:
                self._call("chat.update", lambda kw: self.client.chat_update(**kw),
                           {"channel": channel, "ts": ts, "text": text, "blocks": blocks})
                return known
            except SlackError as exc:
                if exc.code not in _THREAD_GONE:
                    raise
                log.info("slack: the thread of %s is gone (%s); starting a new one", message.task_id, exc.code)
        at = message.created_at.isoformat()
        flight = self.state.flight(parent_key(message.task_id))
        if flight is not None and flight.get("configured") == self.channel:
            found = self._posted_parent(flight)
            if found is not None:
                log.info("slack: the thread of %s reached Slack before its sender died; using it", message.task_id)
                self.state.set_thread(message.task_id, self.channel, found[0], found[1], at)
                return found
        key = f"{parent_key(message.task_id)}:{secrets.token_hex(4)}"  # this parent, not an older one
        self.state.begin(parent_key(message.task_id), configured=self.channel, key=key)
        answer = self._post(channel=self.channel, text=text, blocks=blocks, unfurl_links=False,
                            metadata=_metadata(key, message.task_id))
        channel, ts = str(answer["channel"]), str(answer["ts"])
        self.state.set_thread(message.task_id, self.channel, channel, ts, at)
        return channel, ts

    # -- reading back a post whose answer never came -------------------------------------------------

    def _posted_reply(self, flight: dict[str, Any], key: str) -> bool:
        """Whether the in-flight reply ``key`` is in the thread it was posted to."""
        channel, thread_ts = flight.get("channel"), flight.get("thread_ts")
        if not isinstance(channel, str) or not isinstance(thread_ts, str):
            return False
        found = self._look_up("conversations.replies", lambda kw: self.client.conversations_replies(**kw),
                              {"channel": channel, "ts": thread_ts}, flight, key)
        return found is not None

    def _posted_parent(self, flight: dict[str, Any]) -> tuple[str, str] | None:
        """The (channel id, ts) of the task's in-flight first message, if it is in the channel's history."""
        key, channel = flight.get("key"), self._channel_id()
        if not isinstance(key, str):
            return None
        if channel is None:
            log.warning("slack: cannot look for a message whose answer never came in %s (a name): it may be "
                        "sent twice; set slack.channel to the channel's id (C0123...) for exactly-once",
                        self.channel)
            return None
        found = self._look_up("conversations.history", lambda kw: self.client.conversations_history(**kw),
                              {"channel": channel}, flight, key)
        return (channel, str(found["ts"])) if found is not None else None

    def _channel_id(self) -> str | None:
        if CHANNEL_ID.fullmatch(self.channel):
            return self.channel
        return self.state.channels.get(self.channel)

    def _look_up(self, method: str, call: Callable[[dict[str, Any]], SlackResponse], where: dict[str, Any],
                 flight: dict[str, Any], key: str) -> dict[str, Any] | None:
        """The message carrying ``key`` in the pages of ``method`` since the post (None: not there).

        A rate limit or an outage raises (the message stays queued, nothing is sent); only a missing
        read scope falls back to sending it again, with a warning."""
        at = flight.get("at")
        oldest = f"{float(at) - LOOKUP_MARGIN:.6f}" if isinstance(at, int | float) else None
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES):
            kwargs = {**where, "include_all_metadata": True, "limit": LOOKUP_PAGE, "oldest": oldest,
                      "cursor": cursor}
            try:
                page = self._call(method, call, {k: v for k, v in kwargs.items() if v is not None})
            except SlackError as exc:
                if exc.code in _NOT_THERE:
                    return None
                if exc.code == "missing_scope":
                    log.warning("slack: the bot token cannot read %s back (add the channels:history scope, or "
                                "groups:history for a private channel): %s may be sent twice", self.channel, key)
                    return None
                raise
            messages = page.get("messages")
            for found in messages if isinstance(messages, list) else []:
                if _carries(found, key):
                    return dict(found)
            meta = page.get("response_metadata")
            cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
            if not page.get("has_more") or not cursor:
                return None
        log.warning("slack: %s not found in the last %d messages read; sending it", key, LOOKUP_PAGES * LOOKUP_PAGE)
        return None

    def _post(self, **kwargs: Any) -> SlackResponse:
        return self._call("chat.postMessage", lambda kw: self.client.chat_postMessage(**kw), kwargs)

    def _call(self, method: str, call: Callable[[dict[str, Any]], SlackResponse], kwargs: dict[str, Any]
              ) -> SlackResponse:
        try:
            for _ in range(3):
                try:
                    return call(kwargs)
                except SlackApiError as exc:
                    error = self._error(method, exc.response)
                    if error.code in _BAD_LAYOUT and "blocks" in kwargs:
                        log.warning("slack: %s refused the layout (%s); sending the plain text", method, error.code)
                        kwargs = {k: v for k, v in kwargs.items() if k != "blocks"}
                    elif error.code in _BAD_METADATA and "metadata" in kwargs:
                        log.warning("slack: %s refused the message metadata (%s); sending without it (a crash "
                                    "mid-send may then cost a duplicate)", method, error.code)
                        kwargs = {k: v for k, v in kwargs.items() if k != "metadata"}
                    else:
                        raise error from None
            return call(kwargs)
        except SlackApiError as exc:
            raise self._error(method, exc.response) from None
        except NotifyError:
            raise
        except Exception as exc:  # timeouts, refused connections, DNS: Slack (or the way to it) is down
            raise _unreachable(method, exc, (self._token,)) from None

    def _error(self, method: str, response: SlackResponse) -> SlackError:
        return api_error(method, response.status_code, str(response.get("error", "") or ""), response.headers,
                         env=self.token_env, channel=self.channel)


def api_error(method: str, status: int, code: str, headers: Any, *, env: str, channel: str) -> SlackError:
    """Slack's answer as a NotifyError that says what happens next, on one line."""
    if status == 429 or code in ("ratelimited", "rate_limited"):
        wait = _retry_after(headers, 30.0) or 30.0
        return SlackError(f"slack: {method} rate limited; retrying after {wait:.0f}s", "ratelimited",
                          retry_after=wait)
    if status >= 500 or code in ("internal_error", "fatal_error", "service_unavailable", "request_timeout"):
        shown = code if re.fullmatch(r"[a-z_]{1,60}", code) else "server error"  # not the SDK's page dump
        return SlackError(f"slack: {method} answered HTTP {status} ({shown}); retrying next tick", shown,
                          retry_after=_retry_after(headers, 0.0))
    fix = _PERMANENT.get(code)
    if fix is not None:
        return SlackError(f"slack: {code} — {fix.format(env=env, channel=channel or '(none)')}", code, permanent=True)
    return SlackError(f"slack: {method} failed: {code[:80] or f'HTTP {status}'}", code or str(status))


class SlackWebhookNotifier:
    """Only an incoming webhook: flat messages in the webhook's channel (no threads, no edits).

    At least once: a webhook's messages cannot be read back, so a process killed after Slack took a message
    but before its answer was recorded sends it again at the next tick."""

    def __init__(self, url: str, state_path: Path | None = None, *, timeout: float = 10.0,
                 url_env: str = "SLACK_WEBHOOK_URL") -> None:
        self.url_env = url_env
        self.state = SlackState(state_path)
        self._url = url
        self.client = WebhookClient(url, timeout=_timeout(timeout), retry_handlers=[], logger=_sdk_logger())

    def send(self, message: OutboxMessage) -> None:
        if self.state.was_sent(message.key):
            log.info("slack: %s was delivered before the outbox recorded it; not sending it twice", message.key)
            return
        text = fallback_text(message)
        status, body, headers = self._send(text, blocks_for(message))
        if status == 400 and body in _BAD_LAYOUT:
            log.warning("slack webhook refused the layout (%s); sending the plain text", body)
            status, body, headers = self._send(text, None)
        if status != 200:
            raise self._error(status, body, headers)
        self.state.mark_sent(message.key, message.created_at.isoformat())

    def _send(self, text: str, blocks: list[dict[str, Any]] | None) -> tuple[int, str, Any]:
        try:
            response = self.client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except Exception as exc:  # WebhookClient raises on connection errors and timeouts
            raise _unreachable("the incoming webhook", exc, (self._url,)) from None
        return response.status_code, (response.body or "").strip(), response.headers

    def _error(self, status: int, body: str, headers: Any) -> NotifyError:
        code = body if re.fullmatch(r"[a-z_]{1,60}", body) else ""
        fix = _WEBHOOK_PERMANENT.get(code)
        if fix is not None and status < 500:
            return SlackError(f"slack webhook: {code} — {fix.format(env=self.url_env)}", code, permanent=True)
        return api_error("the incoming webhook", status, code, headers, env=self.url_env, channel="")


__all__ = [  # the layouts lived here before slack_layouts.py: their names stay importable from this module
    "DEFAULT_API_URL", "EVENT_TYPE", "HEADER_CHARS", "KEEP_SENT", "KEEP_THREADS", "MAX_BLOCKS", "SECTION_CHARS",
    "TOKEN_ENV", "SlackError", "SlackNotifier", "SlackState", "SlackWebhookNotifier", "api_error", "blocks_for",
    "escape", "fallback_text", "parent_for", "parent_key", "status_line",
]
