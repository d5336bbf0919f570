"""Self-monitoring: the monitor reports its own failures and heartbeats to Sentry (sentry-sdk).

Why: the monitor watches the agents, but nothing watches the monitor. With ``[sentry] dsn_env`` set, every
tick sends a cron check-in (``in_progress``, then ``ok`` or ``error``) with an interval schedule, so Sentry
tells the human when ticks stop arriving (a dead daemon, a disabled timer, a hung tick) — and the tick's and
the daemon's own exceptions arrive as Sentry events.

What leaves the machine is kept small and clean: no PII (``send_default_pii`` off), no local variables
(a frame's locals can hold a token), no request bodies, no tracing, no automatic instrumentation of HTTP
clients (they would add trace headers to GitHub calls), and a ``before_send`` that masks token shapes
(``monitor.redact``) and the exact values of swarm's own secrets in every string of the event: message,
exception values, breadcrumbs, extra, contexts.

``sentry_sdk`` is imported inside the functions only when a DSN is given, so ``import monitor.tick`` and a
setup without a DSN never load it; without ``init`` every function here is a no-op.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

from monitor.redact import MASK, redact

_enabled = False
_secrets: tuple[str, ...] = ()


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            value = value.replace(secret, MASK)
        return redact(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _before_send(event: Any, _hint: Any) -> Any:
    return _scrub(event)


def _before_breadcrumb(crumb: Any, _hint: Any) -> Any:
    return _scrub(crumb)


def init(dsn: str, environment: str = "", release: str = "", *, secret_values: Sequence[str] = ()) -> bool:
    """Start reporting to the Sentry project of ``dsn``; False (and nothing loaded) when ``dsn`` is empty.

    ``secret_values``: the values of swarm's own secrets (the tokens named by ``*_env`` keys), masked
    wherever they appear, even when they do not look like a token."""
    global _enabled, _secrets
    if not dsn.strip():
        return False
    import sentry_sdk

    _secrets = tuple(sorted({s for s in secret_values if len(s) >= 8}, key=len, reverse=True))
    sentry_sdk.init(
        dsn=dsn.strip(),
        environment=environment or None,
        release=release or None,
        # send_default_pii is left unset: unset means False (no PII, and the SDK's default EventScrubber
        # stays on); passing it is deprecated in favour of data_collection in sentry-sdk 2.75, and setting
        # data_collection would switch that scrubber off.
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0,
        trace_propagation_targets=[],
        auto_enabling_integrations=False,
        send_client_reports=False,
        before_send=_before_send,
        before_breadcrumb=_before_breadcrumb,
    )
    _enabled = True
    return True


def enabled() -> bool:
    return _enabled


def monitor_config(interval_seconds: float, max_runtime_minutes: int = 30) -> dict[str, Any]:
    """An interval schedule in whole minutes, with one interval of grace before a check-in counts as missed."""
    minutes = max(1, math.ceil(interval_seconds / 60))
    return {
        "schedule": {"type": "interval", "value": minutes, "unit": "minute"},
        "checkin_margin": minutes,
        "max_runtime": max(max_runtime_minutes, minutes),
    }


@contextlib.contextmanager
def tick_checkin(slug: str, interval_seconds: float, *, max_runtime_minutes: int = 30) -> Iterator[None]:
    """Wrap one tick: ``in_progress`` before, ``ok`` after, ``error`` (and the exception as an event) when it
    raises; the exception is re-raised."""
    if not _enabled:
        yield
        return
    import sentry_sdk
    from sentry_sdk.crons import capture_checkin
    from sentry_sdk.crons.consts import MonitorStatus

    config: Any = monitor_config(interval_seconds, max_runtime_minutes)
    started = time.monotonic()
    check_in_id = capture_checkin(monitor_slug=slug, status=MonitorStatus.IN_PROGRESS, monitor_config=config)
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, Exception):
            sentry_sdk.capture_exception(exc)
        capture_checkin(monitor_slug=slug, check_in_id=check_in_id, status=MonitorStatus.ERROR,
                        duration=time.monotonic() - started, monitor_config=config)
        raise
    capture_checkin(monitor_slug=slug, check_in_id=check_in_id, status=MonitorStatus.OK,
                    duration=time.monotonic() - started, monitor_config=config)


def capture_exception(exc: BaseException) -> None:
    """Report an exception that was handled (e.g. the daemon's failed tick that it logs and survives)."""
    if _enabled:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)


def flush(timeout: float = 2.0) -> None:
    """Send what is queued; call before a one-shot tick exits (the queue is sent by a background thread)."""
    if _enabled:
        import sentry_sdk

        sentry_sdk.flush(timeout=timeout)


def shutdown(timeout: float = 2.0) -> None:
    """Flush, close the client and stop reporting (tests; the end of a process that wants no atexit flush)."""
    global _enabled, _secrets
    if not _enabled:
        return
    import sentry_sdk

    sentry_sdk.get_client().close(timeout=timeout)
    sentry_sdk.get_global_scope().set_client(None)
    _enabled, _secrets = False, ()
