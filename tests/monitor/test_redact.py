"""Redaction by value: every configured secret is masked, whatever its shape."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from monitor.redact import MASK, RedactingFilter, clear_secret_values, redact, register_secret_env


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    clear_secret_values()
    yield
    clear_secret_values()


def test_a_registered_value_is_masked_wherever_it_appears_also_inside_json() -> None:
    env = {"SENTRY_AUTH_TOKEN": "abc123def456", "SLACK_WEBHOOK_URL": 'https://chat.example.net/h/"q"\\x'}
    assert redact("token abc123def456 here") == "token abc123def456 here", "not a known shape"
    register_secret_env(env, env)
    assert redact("token abc123def456 here") == f"token {MASK} here"
    quoted = json.dumps({"evidence": f"posted to {env['SLACK_WEBHOOK_URL']}"})
    assert env["SLACK_WEBHOOK_URL"] not in redact(quoted) and MASK in redact(quoted)
    assert "chat.example.net" not in redact(quoted)


def test_empty_short_and_unset_values_are_not_registered() -> None:
    env = {"A": "", "B": "main", "C": " 1234567 ", "D": "\n12345678\n"}
    assert register_secret_env([*env, "UNSET"], env) == 1  # only D (its newline dropped)
    assert redact("main 1234567 12345678") == f"main 1234567 {MASK}"


def test_a_value_inside_a_longer_one_does_not_leave_the_rest_visible() -> None:
    env = {"SHORT": "tok-12345678", "LONG": "https://u:tok-12345678@host.example/x"}
    register_secret_env(env, env)
    assert redact(f"use {env['LONG']}") == f"use {MASK}"


def test_the_logging_filter_masks_values() -> None:
    env = {"SENTRY_AUTH_TOKEN": "abc123def456"}
    register_secret_env(env, env)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "failed with %s", ("abc123def456",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == f"failed with {MASK}"
