"""Which notifier the monitor uses, from ``[slack]`` and the environment: the one place that reads the Slack
secrets, so the rest of swarm only ever sees a ``Notifier``.

A bot token and a channel give threads (:class:`SlackNotifier`); only an incoming webhook gives flat
messages (:class:`SlackWebhookNotifier`); nothing configured keeps the console notifier, the default.
slack-sdk costs about 0.1-0.15 s to import, and most commands that build a World (spawn, status) never
notify: the Slack notifiers are built, and slack-sdk imported, at the first message (:class:`LazyNotifier`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from monitor.world.notify import ConsoleNotifier, Notifier
from orchestrator.config import Settings
from registry.models import OutboxMessage

STATE_FILE = "slack.json"


class LazyNotifier:
    """A notifier built at its first use."""

    def __init__(self, build: Callable[[], Notifier], wants_events: bool = False) -> None:
        self._build = build
        self._notifier: Notifier | None = None
        self.wants_events = wants_events

    @property
    def notifier(self) -> Notifier:
        if self._notifier is None:
            self._notifier = self._build()
        return self._notifier

    def send(self, message: OutboxMessage) -> None:
        self.notifier.send(message)


def _secrets(settings: Settings, environ: Mapping[str, str] | None) -> tuple[str, str]:
    env = os.environ if environ is None else environ
    slack = settings.slack
    return env.get(slack.token_env, "").strip(), env.get(slack.webhook_url_env, "").strip()


def notifier_from(
    settings: Settings, state_dir: Path, environ: Mapping[str, str] | None = None, *, lazy: bool = True
) -> Notifier:
    """The notifier for this configuration; ``state_dir`` is ``.swarm/`` (Slack's threads live there).
    ``lazy``: wrap a Slack notifier in :class:`LazyNotifier` (the secrets are read now either way)."""
    slack = settings.slack
    token, webhook_url = _secrets(settings, environ)
    build: Callable[[], Notifier]
    if token and slack.channel:
        def build() -> Notifier:
            from monitor.world.slack import SlackNotifier

            return SlackNotifier(token, slack.channel, state_dir / STATE_FILE, api_url=slack.api_url,
                                 timeout=slack.timeout, token_env=slack.token_env)
    elif webhook_url:
        def build() -> Notifier:
            from monitor.world.slack import SlackWebhookNotifier

            return SlackWebhookNotifier(webhook_url, state_dir / STATE_FILE, timeout=slack.timeout,
                                        url_env=slack.webhook_url_env)
    else:
        return ConsoleNotifier()
    threads = bool(token and slack.channel)  # a thread per task: every event of the task goes there
    return LazyNotifier(build, wants_events=threads) if lazy else build()


def slack_check(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """``swarm doctor``'s Slack line: (ok, one line with the fix when it is not ok)."""
    slack = settings.slack
    token, webhook_url = _secrets(settings, environ)
    if not (token or webhook_url or slack.channel):
        return True, "slack: not configured — notifications go to the console"
    from monitor.world.slack_check import check

    return check(token, slack.channel, api_url=slack.api_url, timeout=slack.timeout, token_env=slack.token_env,
                 webhook_url=webhook_url, webhook_url_env=slack.webhook_url_env)


__all__ = ["LazyNotifier", "notifier_from", "slack_check"]
