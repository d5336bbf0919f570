"""`swarm doctor`'s Slack line: whether notifications will work with the configured token, channel or
webhook, and the fix when they will not. Kept apart from delivery (:mod:`monitor.world.slack`): it asks
Slack questions (``auth.test``, ``conversations.info``, a read-back) that sending never needs."""

from __future__ import annotations

import re

from monitor.world.notify import NotifyError
from monitor.world.slack import DEFAULT_API_URL, TOKEN_ENV, SlackError, SlackNotifier
from monitor.world.slack_layouts import URL


def check(token: str, channel: str, *, api_url: str = DEFAULT_API_URL, timeout: float = 10.0,
          token_env: str = TOKEN_ENV, webhook_url: str = "", webhook_url_env: str = "SLACK_WEBHOOK_URL",
          ) -> tuple[bool, str]:
    """``swarm doctor``'s line: whether Slack notifications will work, and the fix when they will not."""
    if token and channel:
        return _check_bot(token, channel, api_url, timeout, token_env)
    if channel and not token:
        return False, (f"slack: slack.channel is {channel!r} but {token_env} is empty — export the bot token "
                       f"(xoxb-...) in the monitor's environment")
    if token and not webhook_url:
        return False, f"slack: {token_env} is set but slack.channel is empty — set [slack] channel in swarm.toml"
    if webhook_url:
        if not URL.match(webhook_url):
            return False, f"slack: {webhook_url_env} is not an http(s) URL — export the incoming webhook's URL"
        return True, (f"slack: incoming webhook from {webhook_url_env}: flat messages (not tested: it would post); "
                      f"threads need a bot token and slack.channel")
    return True, "slack: not configured — notifications go to the console"


def _check_bot(token: str, channel: str, api_url: str, timeout: float, token_env: str) -> tuple[bool, str]:
    notifier = SlackNotifier(token, channel, None, api_url=api_url, timeout=timeout, token_env=token_env)
    client = notifier.client
    try:
        who = notifier._call("auth.test", lambda kw: client.auth_test(**kw), {})
    except NotifyError as exc:
        return False, str(exc)
    where = f"slack: bot {who.get('user', '?')} in {who.get('team', '?')}"
    if not re.fullmatch(r"[CGD][A-Z0-9]{6,}", channel):
        return True, f"{where}, posting to {channel} (a name: doctor checks a channel by its id, C0123...)"
    try:
        info = notifier._call("conversations.info", lambda kw: client.conversations_info(**kw), {"channel": channel})
    except SlackError as exc:
        if exc.code == "missing_scope":
            return True, f"{where}, posting to {channel} (not checked: the token lacks channels:read)"
        return False, str(exc)
    except NotifyError as exc:
        return False, str(exc)
    found = info.get("channel")
    found = found if isinstance(found, dict) else {}
    name = f"#{found.get('name', channel)}"
    if found.get("is_member") is False:
        return True, (f"{where}, {name}: the bot is not a member — invite it (/invite @your-app) unless the app has "
                      "chat:write.public")
    return True, f"{where}, posting to {name}{_read_back(notifier, channel)}"


def _read_back(notifier: SlackNotifier, channel: str) -> str:
    """Whether the token can read the channel back (what exactly-once needs); empty when it can."""
    client = notifier.client
    try:
        notifier._call("conversations.history", lambda kw: client.conversations_history(**kw),
                       {"channel": channel, "limit": 1})
    except SlackError as exc:
        if exc.code == "missing_scope":
            return (" (at least once: a tick killed mid-send may post twice — add the channels:history scope, "
                    "groups:history for a private channel, for exactly-once)")
    except NotifyError:
        pass
    return ""
