"""`swarm serve`: one long-running process that reconciles on a timer, reacts to local events through the
socket under ``.swarm/`` and to GitHub webhooks over HTTP, and stops cleanly on SIGTERM (the running tick
finishes its current step, uvicorn closes its connections, the socket and ``serve.json`` are removed).

Events only wake ticks; ticks stay the only writers. Restarting loses nothing that matters: the first tick
runs at start and reconciles every task, whatever happened while the service was down.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from monitor.durations import parse_duration
from monitor.tick import TickReport, World, run_tick
from orchestrator.config import Settings
from orchestrator.errors import OperationalError
from orchestrator.serve import health
from orchestrator.serve.events import EventSocket
from orchestrator.serve.reconcile import Reconciler
from orchestrator.serve.webhooks import DELIVERIES_FILE, DeliveryLog, WebhookHandler

log = logging.getLogger(__name__)


class ServeError(OperationalError):
    """The service cannot start (port in use, socket directory not private); exit 1 with the message."""


def bind_http(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a port in use is one clear line, not a traceback after a tick."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it, a response sent as headers then body waits ~40 ms on
    # Nagle and the client's delayed ACK (measured: 44 ms per refused webhook, 0.6 ms with it).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); another `swarm serve` or "
                         "program uses it: stop it or choose --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def settle_for(settings: Settings) -> float:
    """How long an event tick waits for more events. GitHub sends a CI result as several deliveries within a
    second (check runs, the suite, a status), and every tick reads the open PRs: one tick for them all. The
    local forge's events (an agent's or a job's exit) come alone."""
    return 1.0 if settings.project.forge == "github" else 0.05


def webhook_secret(settings: Settings) -> Callable[[], bytes]:
    name = settings.github.webhook_secret_env

    def read() -> bytes:
        return os.environ.get(name, "").strip().encode()

    return read


class Service:
    """The pieces of a running service, wired from a World; ``run`` blocks until SIGTERM/SIGINT or ``stop``."""

    def __init__(self, settings: Settings, world: World, *, host: str, port: int, interval: float,
                 out: Callable[[str], None] = print, chores: bool = True, dashboard: bool = True) -> None:
        self.settings = settings
        self.dashboard = dashboard
        self.world = world
        self.host = host
        self.port = port
        self.interval = interval
        self.out = out
        self.chores = chores
        self.state_dir = world.layout.state_dir
        self.started = datetime.now(UTC)
        self.reconciler = Reconciler(self._tick, interval, settle=settle_for(settings))
        self.events = EventSocket(self.state_dir, self.reconciler.request)
        self.handler = WebhookHandler(
            secret=webhook_secret(settings), deliveries=DeliveryLog(self.state_dir / DELIVERIES_FILE),
            read_state=world.registry.read, wake=self.reconciler.request, on_accepted=self._accepted,
            repo=settings.github.repo, on_issue_event=self._issue_event if settings.project.forge == "github" else None,
        )
        self.server: Any = None

    def _tick(self, stop: threading.Event, only: set[str] | None) -> TickReport:
        if only is not None:
            from orchestrator.after_merge import safe_check

            report = run_tick(self.world, stop, only=only)
            # a push to the base wakes the tasks on it: one that merged may be due a chore ([after_merge])
            lines = [*report.actions, *([] if report.skipped else safe_check(self.world, self.settings,
                                                                            self.world.clock()))]
        elif self.chores:
            from orchestrator.maintenance import service_tick

            report, chores = service_tick(self.world, self.settings, stop)
            lines = [*report.actions, *chores]
        else:
            report = run_tick(self.world, stop)
            lines = report.actions
        for line in lines:
            self.out(line)
        return report

    def _issue_event(self, event: str, payload: dict[str, Any]) -> set[str]:
        """An issue to take, or a `/swarm` comment to obey (orchestrator/discovery); the tasks it touched."""
        from orchestrator.discovery.comment_commands import on_webhook

        return on_webhook(self.world, self.settings, event, payload)

    def _accepted(self, event: str, delivery: str, tasks: int) -> None:
        try:
            health.record_webhook(self.state_dir, event, delivery, tasks, datetime.now(UTC))
        except OSError as exc:
            log.warning("could not record the last webhook: %s", exc.strerror)

    def _heartbeat(self) -> None:
        try:
            health.write_serve(self.state_dir, host=self.host, port=self.port, interval=self.interval,
                               started=self.started, now=datetime.now(UTC))
        except OSError as exc:
            log.warning("could not write %s: %s", health.SERVE_FILE, exc.strerror)

    def status(self) -> dict[str, Any]:
        return {"ticks": self.reconciler.ticks, "event_ticks": self.reconciler.partial_ticks,
                "events": self.events.received, "started_at": self.started.isoformat()}

    def dashboard_routes(self) -> list[Any]:
        """The dashboard's pages on the same app and port (imported here: Jinja2 loads only for serve)."""
        from orchestrator.dashboard.actions import Actions
        from orchestrator.dashboard.auth import Guard, is_loopback
        from orchestrator.dashboard.routes import Dashboard, dashboard_routes

        name = self.settings.serve.token_env
        guard = Guard(token=lambda: os.environ.get(name, "").strip(), loopback=is_loopback(self.host))
        actions = Actions(self.world.layout.repo, self.settings, wake=self.reconciler.request)
        return dashboard_routes(Dashboard(self.world.layout, self.settings, guard, actions, self.interval,
                                          stopping=self.reconciler.stop.is_set))

    def run(self, sock: socket.socket | None = None) -> None:
        import uvicorn

        from orchestrator.serve.app import build_app

        sock = sock or bind_http(self.host, self.port)
        self.port = sock.getsockname()[1]
        try:
            self.events.open()
        except OSError as exc:
            sock.close()
            raise ServeError(f"cannot open the event socket {self.events.path}: {exc}") from None
        routes = self.dashboard_routes() if self.dashboard else []
        config = uvicorn.Config(build_app(self.handler, self.status, routes), log_level="warning",
                                access_log=False, lifespan="off", limit_concurrency=64, timeout_graceful_shutdown=5,
                                server_header=False)
        self.server = _Server(config)
        self._heartbeat()
        self.reconciler.start([(self._heartbeat, health.HEARTBEAT_EVERY)])
        try:
            with self._signals():
                self.server.run(sockets=[sock])
        finally:
            self.reconciler.shutdown()
            self.events.close()
            health.clear_serve(self.state_dir)
            sock.close()

    def stop(self) -> None:
        self.reconciler.stop.set()  # the running tick stops at its next step
        if self.server is not None:
            self.server.should_exit = True

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.warning("received %s: finishing the current tick, then stopping", signal.Signals(signum).name)
            self.stop()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn without its own signal handling: the service's handler stops the ticks too, and the
        process exits 0 instead of re-raising SIGTERM at itself."""

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    return Server


def _Server(config: Any) -> Any:  # a class made on first use: uvicorn is imported lazily
    return _server_class()(config)


def check_exposure(settings: Settings, host: str) -> None:
    """Listening beyond loopback needs the serve token: refused before anything starts (UsageError)."""
    from orchestrator.dashboard.auth import is_loopback
    from orchestrator.errors import UsageError

    name = settings.serve.token_env
    if not is_loopback(host) and not os.environ.get(name, "").strip():
        raise UsageError(f"--host {host} listens beyond this machine: set ${name} (the dashboard's token, "
                         "[serve] token_env) first, or keep the default 127.0.0.1")


def serve(host: str | None = None, port: int | None = None, interval: str = "10m") -> None:
    """`swarm serve`: check the options, wire the world, run until SIGTERM (raises UsageError/OperationalError)."""
    from monitor import selfmon
    from orchestrator.config import CONFIG_NAME, load
    from orchestrator.errors import UsageError
    from orchestrator.maintenance import start_self_monitoring
    from orchestrator.wiring import build_world, find_repo

    try:
        seconds = parse_duration(interval)
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    if seconds < 1:
        raise UsageError("--interval must be at least 1s")
    repo = find_repo()
    settings = load(repo / CONFIG_NAME)
    host = settings.serve.host if host is None else host
    port = settings.serve.port if port is None else port
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: give a port between 1 and 65535 (0: any free port)")
    check_exposure(settings, host)
    world = build_world(repo, settings, need_forge=True)
    running = health.serve_running(world.layout.state_dir, datetime.now(UTC))
    if running is not None and running.get("pid") != os.getpid():
        raise ServeError(f"swarm serve already runs for this repository (pid {running.get('pid')}, port "
                         f"{running.get('port')}): stop it first (kill -TERM {running.get('pid')})")
    service = Service(settings, world, host=host, port=port, interval=seconds,
                      out=lambda line: print(line, flush=True))
    sock = bind_http(host, port)
    start_self_monitoring(settings)
    try:
        secret = bool(webhook_secret(settings)())
        print(f"swarm serve: dashboard at http://{host}:{sock.getsockname()[1]}/ (webhooks at /webhooks/github"
              f"{'' if secret else f', refused until ${settings.github.webhook_secret_env} is set'}), "
              f"events on {service.events.path}, reconcile every {seconds:g}s (Ctrl-C or SIGTERM to stop)",
              file=sys.stderr, flush=True)
        service.run(sock)
    finally:
        selfmon.flush()
