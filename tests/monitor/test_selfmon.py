"""Self-monitoring with the real sentry-sdk against a fake Sentry ingest on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import selfmon
from tests.fakes.sentry_server import FakeSentry

REPO_ROOT = Path(__file__).resolve().parents[2]
GITHUB_TOKEN = "ghp_" + "Z" * 36
SLACK_TOKEN = "xoxb-" + "9876543210-" * 3 + "xyz"
SHAPELESS = "correct-horse-battery-staple-42"  # a secret that looks like nothing: only its value can mask it


@pytest.fixture
def fake() -> Iterator[FakeSentry]:
    with FakeSentry() as server:
        yield server
    selfmon.shutdown()


def test_without_a_dsn_nothing_is_loaded_and_the_tick_just_runs() -> None:
    code = textwrap.dedent("""
        import sys
        import monitor.tick, monitor.daemon, monitor.selfmon as selfmon
        assert selfmon.init("") is False
        ran = []
        with selfmon.tick_checkin("swarm-monitor", 300):
            ran.append(1)
        selfmon.flush()
        assert ran == [1]
        print("sentry_sdk" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_tick_that_raises_sends_its_exception_scrubbed_and_an_error_check_in(fake: FakeSentry) -> None:
    assert selfmon.init(fake.dsn, environment="prod", release="swarm@0.1.0", secret_values=[SHAPELESS, "short"])
    import sentry_sdk

    options = sentry_sdk.get_client().options
    assert not options["send_default_pii"] and options["include_local_variables"] is False
    assert options["traces_sample_rate"] == 0 and options["trace_propagation_targets"] == []
    assert options["max_request_body_size"] == "never" and options["auto_enabling_integrations"] is False
    sentry_sdk.set_extra("config", {"note": f"webhook token {SLACK_TOKEN}"})
    logging.getLogger("monitor.test").warning("pushing with %s", GITHUB_TOKEN)  # becomes a breadcrumb
    with pytest.raises(RuntimeError, match="push failed"), selfmon.tick_checkin("swarm-monitor", 120):
        password = SHAPELESS  # a local variable: never sent
        raise RuntimeError(f"push failed: https://x:{GITHUB_TOKEN}@github.com (secret {password})")
    selfmon.flush()
    assert fake.wait_for(lambda f: len(f.checkins()) == 2 and len(f.events()) == 1)

    event = fake.events()[0]
    value = event["exception"]["values"][-1]
    assert value["type"] == "RuntimeError"
    assert value["value"] == "push failed: https://x:[REDACTED]@github.com (secret [REDACTED])"
    assert event["environment"] == "prod" and event["release"] == "swarm@0.1.0"
    assert "[REDACTED]" in event["extra"]["config"]["note"]
    assert any(c.get("message") == "pushing with [REDACTED]" for c in event["breadcrumbs"]["values"])
    assert all("vars" not in frame for frame in value["stacktrace"]["frames"])
    raw = fake.raw_envelopes
    for secret in (GITHUB_TOKEN, SLACK_TOKEN, SHAPELESS):
        assert secret.encode() not in raw

    started, ended = fake.checkins()
    assert (started["status"], ended["status"]) == ("in_progress", "error")
    assert started["monitor_slug"] == ended["monitor_slug"] == "swarm-monitor"
    assert started["check_in_id"] == ended["check_in_id"]
    assert started["monitor_config"]["schedule"] == {"type": "interval", "value": 2, "unit": "minute"}
    assert started["monitor_config"]["checkin_margin"] == 2
    assert ended["duration"] >= 0


def test_a_good_tick_checks_in_progress_then_ok(fake: FakeSentry) -> None:
    assert selfmon.init(fake.dsn)
    for _ in range(2):
        with selfmon.tick_checkin("swarm-monitor", 300):
            pass
    selfmon.flush()
    assert fake.wait_for(lambda f: len(f.checkins()) == 4)
    statuses = [(c["status"], c["check_in_id"]) for c in fake.checkins()]
    assert [s for s, _ in statuses] == ["in_progress", "ok", "in_progress", "ok"]
    assert statuses[0][1] == statuses[1][1] != statuses[2][1] == statuses[3][1]  # one id per tick
    assert fake.events() == []


def test_a_handled_exception_can_be_reported(fake: FakeSentry) -> None:
    assert selfmon.init(fake.dsn)
    try:
        raise ValueError(f"tick failed near {SLACK_TOKEN}")
    except ValueError as exc:
        selfmon.capture_exception(exc)
    selfmon.flush()
    assert fake.wait_for(lambda f: len(f.events()) == 1)
    assert fake.events()[0]["exception"]["values"][-1]["value"] == "tick failed near [REDACTED]"


def test_a_one_shot_tick_flushes_before_it_exits(fake: FakeSentry) -> None:
    """A child process that checks in and exits at once (``os._exit`` skips the SDK's own atexit flush):
    only ``flush`` gets the check-ins out before the process is gone."""
    code = textwrap.dedent(f"""
        import os
        import monitor.selfmon as selfmon
        assert selfmon.init({fake.dsn!r})
        try:
            with selfmon.tick_checkin("swarm-monitor", 300):
                raise RuntimeError("the tick broke: {GITHUB_TOKEN}")
        except RuntimeError:
            pass
        with selfmon.tick_checkin("swarm-monitor", 300):
            pass
        selfmon.flush(timeout=5)
        os._exit(0)
    """)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=True, timeout=60)
    assert [c["status"] for c in fake.checkins()] == ["in_progress", "error", "in_progress", "ok"]
    assert [e["exception"]["values"][-1]["value"] for e in fake.events()] == ["the tick broke: [REDACTED]"]
    assert GITHUB_TOKEN.encode() not in fake.raw_envelopes


def test_monitor_config_rounds_the_interval_up_to_whole_minutes() -> None:
    assert selfmon.monitor_config(30)["schedule"] == {"type": "interval", "value": 1, "unit": "minute"}
    config = selfmon.monitor_config(3600, max_runtime_minutes=20)
    assert config == {"schedule": {"type": "interval", "value": 60, "unit": "minute"}, "checkin_margin": 60,
                      "max_runtime": 60}
