"""`swarm`: the user's command line. One thin function per subcommand; the wiring of real adapters is
in ``wiring.py``. Exit codes: 0 success, 1 operational failure, 2 bad usage or configuration."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from monitor.agent_run import LOG
from monitor.durations import parse_duration
from monitor.heartbeat import monitor_line
from monitor.redact import RedactingFilter
from monitor.runner import LaunchError
from monitor.transcript import readable
from monitor.world.git import GitError
from orchestrator import status as status_view
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, ConfigError, load
from orchestrator.wiring import UsageError, load_world, utc_now
from registry.models import Task
from registry.store import RegistryError

app = typer.Typer(
    no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    help="Run a fleet of coding agents on one repository.",
)
monitor_app = typer.Typer(no_args_is_help=True, help="The token-free supervisor.")
registry_app = typer.Typer(no_args_is_help=True, help="Registry maintenance.")
app.add_typer(monitor_app, name="monitor")
app.add_typer(registry_app, name="registry")
systemd_app = typer.Typer(no_args_is_help=True, help="Run the monitor as systemd user services.")
app.add_typer(systemd_app, name="systemd")
discover_app = typer.Typer(no_args_is_help=True, help="Turn outside reports into tasks.")
app.add_typer(discover_app, name="discover")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"swarm {version('swarm')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            print("swarm (not installed: `pip install -e .` gives it a version)")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the monitor does.")] = False,
    _version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                           help="Print swarm's version and exit.")] = False,
) -> None:
    setup_logging(verbose)
    # The values of swarm's secrets (default variable names; a loaded config adds its own in build_world)
    # are masked in every log line, prompt and notification of this process.
    from orchestrator.config import Settings
    from orchestrator.wiring import register_secrets

    register_secrets(Settings())


@app.command()
def init(
    forge: Annotated[str, typer.Option(help="local | github")] = "local",
    repo: Annotated[str, typer.Option(help="OWNER/NAME on GitHub (with --forge github)")] = "",
    force: Annotated[bool, typer.Option(help="Overwrite an existing swarm.toml")] = False,
) -> None:
    """Write swarm.toml and create .swarm/ (git-excluded) in the current repository."""
    from orchestrator.init import init_repo

    for line in init_repo(Path.cwd(), forge, repo, force):
        console.print(line, markup=False, highlight=False)


@app.command()
def spawn(
    title: Annotated[str, typer.Option(help="Short title of the task")],
    prompt: Annotated[str, typer.Option(help="The task's prompt")] = "",
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from this file")] = None,
    agent: Annotated[str, typer.Option(help="Agent profile (default: routing for the kind)")] = "",
    kind: Annotated[str, typer.Option(help="Task kind, used for routing")] = "default",
    after: Annotated[list[str] | None, typer.Option(help="Start only after this task is merged")] = None,
    accept: Annotated[list[str] | None, typer.Option(help="An acceptance criterion (repeatable): in the "
                                                           "prompt and the PR body")] = None,
    link: Annotated[list[str] | None, typer.Option(help="Where the task comes from (repeatable): in the "
                                                         "PR body")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the task as JSON")] = False,
) -> None:
    """Start one agent on a task (queued while dependencies or max_parallel hold it)."""
    title = task_ops.check_title(title)
    if bool(prompt) == bool(prompt_file):
        raise UsageError("give exactly one of --prompt TEXT or --prompt-file FILE")
    if prompt_file is not None:
        try:
            prompt = prompt_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--prompt-file {prompt_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"--prompt-file {prompt_file}: not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                             "(e.g. iconv -t UTF-8)") from None
    settings, world = load_world()
    chosen = agent or settings.routing.get(kind, settings.routing["default"])
    task = task_ops.spawn(world, title=title, prompt=prompt, agent=chosen, kind=kind, after=after or [],
                          base_branch=settings.project.base_branch, acceptance=accept or [], links=link or [])
    if as_json:
        print(json.dumps(status_view.task_json(task), indent=1))
    else:
        print(task.id)
        err.print(f"{task.status.value}: {task.reason} (branch {task.branch}, worktree {task.worktree})",
                  markup=False, highlight=False)


@app.command("submit")
def submit_request(
    request: Annotated[str, typer.Argument(help="What you want built, in your words")] = "",
    file: Annotated[Path | None, typer.Option("--file", help="Read the request from this file ('-': stdin)")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and every prompt; spawn nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Plan a request into tasks (with a model key) and spawn them all, dependencies first."""
    from orchestrator.brain.llm import LlmError, llm_from
    from orchestrator.brain.planner import PlanError
    from orchestrator.submit import SubmitError
    from orchestrator.submit import submit as submit_tasks

    if request and file is not None:
        raise UsageError("give the request as an argument or with --file, not both")
    if file is not None:
        try:
            request = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--file {file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not request.strip():
        raise UsageError("the request is empty: say what you want built (swarm submit \"...\" or --file FILE)")
    settings, world = load_world()
    try:
        report = submit_tasks(world, settings, request, dry_run=dry_run, llm=llm_from(settings))
    except (PlanError, LlmError, SubmitError) as exc:
        raise OperationalError(" ".join(str(exc).split())) from None
    if as_json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print("\n".join(report.lines()))  # plain: a prompt is shown exactly as the agent gets it


@app.command()
def status(
    task: Annotated[str | None, typer.Argument(help="Show one task in detail")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
    watch: Annotated[bool, typer.Option(help="Refresh every 2 s until Ctrl-C")] = False,
    active: Annotated[bool, typer.Option("--active", help="Only tasks still in flight")] = False,
) -> None:
    """The tasks, their state and why."""
    settings, world = load_world()
    if task:
        found = task_ops.get_task(world, task)
        if as_json:
            print(json.dumps(status_view.task_json(found), indent=1))
        else:
            status_view.detail(console, found)
        return

    def current() -> list[Task]:
        listed = sorted(world.registry.read().tasks.values(), key=lambda t: t.created_at)
        return [t for t in listed if not active or t.status.active]

    if as_json:
        print(json.dumps([status_view.task_json(t) for t in current()], indent=1))
    elif watch:
        with Live(status_view.table(current(), utc_now(), console.width), console=console,
                  refresh_per_second=1) as live:
            try:
                while True:
                    time.sleep(2)
                    live.update(status_view.table(current(), utc_now(), console.width))
            except KeyboardInterrupt:
                pass
    else:
        tasks = current()
        if not tasks:
            console.print("no tasks yet: `swarm spawn --title ... --prompt ...`")
        else:
            width = status_view.table_width(console)
            wide = console if console.width == width else Console(soft_wrap=True, width=width)
            wide.print(status_view.table(tasks, utc_now(), width))
        for warning in status_view.blocked(sorted(world.registry.read().tasks.values(), key=lambda t: t.created_at)):
            err.print(warning, markup=False, highlight=False, style="yellow")
        healthy, line = monitor_line(world.layout.state_dir, utc_now(), settings.monitor.interval)
        (console if healthy else err).print(line, markup=False, highlight=False, style=None if healthy else "yellow")


@monitor_app.command("run-once")
def run_once(as_json: Annotated[bool, typer.Option("--json", help="Print the tick's report as JSON")] = False) -> None:
    """One token-free tick (what the systemd timer and cron call), then the chores that are due."""
    from monitor import selfmon
    from orchestrator.maintenance import service_tick, start_self_monitoring

    settings, world = load_world(need_forge=True)
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    start_self_monitoring(settings)
    try:
        report, chores = service_tick(world, settings, stop)
    finally:
        selfmon.flush()  # a one-shot process: what is queued must leave before it exits
    if as_json:
        print(json.dumps({**report.as_dict(), "chores": chores}))
    elif report.skipped:
        err.print("another tick is running; skipped this one")
    else:
        for line in [*report.actions, *chores]:
            console.print(line, markup=False, highlight=False)
        err.print(f"tick done: {report.tasks} active task(s), {len(report.actions)} action(s), "
                  f"{report.notified} notification(s)")


@monitor_app.command()
def daemon(interval: Annotated[str, typer.Option(help="Time between ticks, e.g. 2m")] = "") -> None:
    """Tick forever on APScheduler; SIGTERM finishes the current tick and exits."""
    from monitor.daemon import run_daemon

    settings, world = load_world(need_forge=True)
    try:
        seconds = parse_duration(interval) if interval else settings.monitor.interval
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    if seconds < 1:
        raise UsageError("--interval must be at least 1s")

    from monitor import selfmon
    from orchestrator.maintenance import service_tick, start_self_monitoring

    def tick(stop: threading.Event) -> None:
        report, chores = service_tick(world, settings, stop)
        for line in [*report.actions, *chores]:
            console.print(line, markup=False, highlight=False)

    start_self_monitoring(settings)
    err.print(f"monitor daemon: ticking every {seconds:g}s (Ctrl-C or SIGTERM to stop)")
    try:
        run_daemon(tick, seconds)
    finally:
        selfmon.flush()


@app.command()
def logs(
    task: Annotated[str, typer.Argument(help="Task id (a unique prefix is enough)")],
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default: the latest)")] = None,
    prompt: Annotated[bool, typer.Option(help="Show the attempt's prompt instead of its output")] = False,
    raw: Annotated[bool, typer.Option(help="Print the agent's raw output (its JSON event lines) as written")] = False,
) -> None:
    """The output (or prompt) of a task's attempt, as a readable transcript (``--raw`` for the CLI's own lines)."""
    _settings, world = load_world()
    found = task_ops.get_task(world, task)
    if not found.attempts:
        raise UsageError(f"task {found.id} has not started yet")
    number = attempt or found.attempts[-1].number
    run_dir = world.layout.run_dir(found.id, number)
    path = run_dir / ("prompt.md" if prompt else LOG)
    if not path.exists():
        raise UsageError(f"no {'prompt' if prompt else 'output'} for attempt {number} of {found.id} ({path})")
    text = path.read_text(encoding="utf-8", errors="replace")
    # plain writes, never rich: agent output is data, "[red]" in it stays text
    sys.stdout.write(text if prompt or raw else readable(text, max_lines=1_000_000) + "\n")


@app.command()
def attach(task: Annotated[str, typer.Argument(help="Task id")]) -> None:
    """Attach your terminal to the agent's tmux session (detach with Ctrl-b d)."""
    _settings, world = load_world()
    found = task_ops.get_task(world, task)
    session = found.attempt.session if found.attempt else ""
    if not session or not world.tmux.has_session(session):
        raise OperationalError(f"task {found.id} has no live session; `swarm logs {found.id}` shows its output")
    argv = world.tmux.attach_argv(session)
    os.execvp(argv[0], argv)  # noqa: S606 - argv list, replaces this process with tmux attach


@app.command()
def retry(
    task: Annotated[str, typer.Argument(help="Task id")],
    note: Annotated[str, typer.Option(help="What the agent should do differently (goes into the prompt)")] = "",
) -> None:
    """Start a new attempt now, with your note in its prompt."""
    _settings, world = load_world()
    try:
        found = task_ops.retry(world, task, note)
    except (GitError, LaunchError) as exc:  # a full disk, a broken worktree: nothing was recorded
        raise OperationalError(f"could not retry {task}: {' '.join(str(exc).split())}") from None
    console.print(f"{found.id}: {found.status.value} (attempt {len(found.attempts)})")


@app.command()
def cancel(task: Annotated[str, typer.Argument(help="Task id")]) -> None:
    """Stop a task's agent and mark it cancelled (the worktree stays until `swarm cleanup`)."""
    _settings, world = load_world()
    found = task_ops.cancel(world, task)
    console.print(f"{found.id}: {found.status.value}")


@app.command()
def cleanup(
    dry_run: Annotated[bool, typer.Option(help="Only say what would be removed")] = False,
    yes: Annotated[bool, typer.Option(help="Also remove orphans without asking")] = False,
) -> None:
    """Remove worktrees and sessions of finished tasks, archive old finished tasks; report orphans and
    remove them with --yes (or after you confirm, on a terminal)."""
    from orchestrator.maintenance import clean_and_archive

    settings, world = load_world()
    lines = clean_and_archive(world, settings, world.clock(), dry_run=dry_run, remove_orphans=yes)
    for line in lines:
        console.print(line, markup=False, highlight=False)
    orphans = [line for line in lines if "`swarm cleanup --yes`" in line]
    ask = orphans and not dry_run and not yes and sys.stdin.isatty()
    if ask and typer.confirm(f"remove these {len(orphans)} orphan(s)?", default=False):
        for line in clean_and_archive(world, settings, world.clock(), remove_orphans=True):
            if line.startswith(("removed orphan", "killed orphan")):
                console.print(line, markup=False, highlight=False)


@app.command()
def doctor() -> None:
    """Check git, tmux, the agent CLIs, the configuration and the registry."""
    from orchestrator.doctor import run_doctor

    ok = True
    for good, line in run_doctor(Path.cwd()):
        mark = Text("ok   ", style="green") if good else Text("FAIL ", style="red")
        console.print(Text.assemble(mark, line), highlight=False)  # advice like [agents.x] is text, not markup
        ok = ok and good
    if not ok:
        raise typer.Exit(1)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the temporary repository for a look afterwards")] = False,
) -> None:
    """The whole lifecycle, offline, in a temporary repository (under a minute)."""
    from orchestrator.demo import run_demo

    raise typer.Exit(run_demo(console, keep=keep))


@app.command("review-run", hidden=True)
def review_run(
    task: Annotated[str, typer.Argument()],
    lens: Annotated[str, typer.Option()],
    head: Annotated[str, typer.Option()],
    repo: Annotated[Path, typer.Option()],
) -> None:
    """One AI review lens as a check job (started by the monitor): exit 0 approves, 1 requests changes,
    75 could not judge (the model API failed; the monitor runs it again next tick)."""
    from monitor.world.jobs import TEMPFAIL, job_name
    from orchestrator.brain import review as reviewing
    from orchestrator.brain.llm import LlmError, llm_from

    settings, world = load_world(repo)
    found = task_ops.get_task(world, task)
    llm = llm_from(settings)
    if llm is None:
        err.print(f"swarm review: no API key in ${settings.llm.api_key_env}", markup=False)
        raise typer.Exit(TEMPFAIL)
    try:
        result = reviewing.review_lens(llm, settings, world.git, found, lens, head,
                                       world.forge.base_ref(found.base_branch))
    except LlmError as exc:
        err.print(f"swarm review: {exc}", markup=False)
        raise typer.Exit(TEMPFAIL) from None
    reviewing.save(world.layout.job_dir(found.id, head, job_name(f"swarm:{lens}")), result)
    reviewing.record_usage(world.registry, found.id, result.usage)
    print(result.text())
    raise typer.Exit(0 if result.approved else 1)


@app.command()
def review(
    task: Annotated[str, typer.Argument(help="Task id (a unique prefix is enough)")],
    lens: Annotated[list[str] | None, typer.Option(help="Lens to run (repeatable; default: the swarm: "
                                                       "reviewers of done.reviewers, else logic)")] = None,
) -> None:
    """Run AI reviewers on the task's current head now; their verdicts count like the monitor's own run."""
    from orchestrator.brain.llm import LlmError, llm_from
    from orchestrator.brain.review import review_now

    settings, world = load_world()
    found = task_ops.get_task(world, task)
    llm = llm_from(settings)
    if llm is None:
        raise UsageError(f"no API key in ${settings.llm.api_key_env}: AI review needs one")
    lenses = lens or [r.removeprefix("swarm:") for r in settings.done.reviewers if r.startswith("swarm:")] or ["logic"]
    try:
        for line in review_now(world, settings, llm, found, lenses):
            console.print(line, markup=False, highlight=False)
    except LlmError as exc:
        raise OperationalError(str(exc)) from None


@app.command()
def learn(
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics and rules as JSON")] = False,
) -> None:
    """Outcome statistics per task kind, agent and prompt feature; rules for the next prompts (context.learnings)."""
    from orchestrator.brain import learn as learning

    settings, world = load_world()
    learnings = world.layout.repo / settings.context.learnings if settings.context.learnings else None
    report = learning.learn(world.registry.read().tasks, world.events.read(), world.layout.state_dir, learnings)
    if as_json:
        print(json.dumps(report.as_dict(), indent=1))
        return
    if report.groups:
        wide = console if console.is_terminal else Console(soft_wrap=True, width=200)
        wide.print(learning.table(report))
    for line in learning.lines(report):
        console.print(line, markup=False, highlight=False)


@app.command("agent-run", hidden=True)
def agent_run(run_dir: Path) -> None:
    """The wrapper that runs inside each tmux session."""
    from monitor.agent_run import main as wrapper

    raise typer.Exit(wrapper([str(run_dir)]))


@discover_app.command("sentry")
def discover_sentry(
    dry_run: Annotated[bool, typer.Option(help="Say what would be created; create and write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Turn new unresolved Sentry issues of the project into tasks (at most [sentry] max_new_tasks)."""
    from orchestrator.discovery.sentry import DiscoveryError, discover

    settings, world = load_world()
    try:
        report = discover(world, settings, dry_run=dry_run, now=world.clock())
    except DiscoveryError as exc:
        raise OperationalError(str(exc)) from None
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        for line in report.lines():
            console.print(line, markup=False, highlight=False)


@systemd_app.command("install")
def systemd_install(
    print_only: Annotated[bool, typer.Option("--print", help="Only print the units and the commands")] = False,
) -> None:
    """Render the units with this machine's paths into ~/.config/systemd/user and say what to run next."""
    from orchestrator import systemd
    from orchestrator.wiring import find_repo

    repo = find_repo()
    settings = load(repo / CONFIG_NAME)
    for warning in systemd.preflight(settings):
        err.print(warning, markup=False, highlight=False)
    units = systemd.render_units(repo, settings, systemd.default_swarm_argv())
    for line in systemd.install(units, print_only=print_only):
        print(line)


@registry_app.command("restore")
def registry_restore() -> None:
    """Replace a damaged registry.json with the last good copy (the damaged file is kept aside)."""
    _settings, world = load_world()
    state = world.registry.restore_backup()
    console.print(f"restored {len(state.tasks)} task(s) from the backup (serial {state.serial})")


class OperationalError(Exception):
    """Something the user asked for failed (exit 1)."""


def load_credentials(environ: dict[str, str] | None = None) -> list[str]:
    """systemd ``LoadCredential=NAME:path`` puts each secret in a file under ``$CREDENTIALS_DIRECTORY``
    (readable only by this service, never in its environment listing); swarm reads secrets from the
    environment, so each file fills the variable of its name when that is unset. Returns the names."""
    env = os.environ if environ is None else environ
    directory = env.get("CREDENTIALS_DIRECTORY", "")
    loaded = []
    if directory and Path(directory).is_dir():
        for path in sorted(Path(directory).iterdir()):
            if path.is_file() and re.fullmatch(r"[A-Z][A-Z0-9_]*", path.name) and not env.get(path.name):
                env[path.name] = path.read_text(encoding="utf-8").strip()
                loaded.append(path.name)
    return loaded


def main() -> None:
    """Entry point: typer reports its own usage errors (exit 2); ours become one line and an exit code."""
    try:
        load_credentials()
        app()
    except (ConfigError, UsageError) as exc:
        err.print(f"swarm: error: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except (RegistryError, OperationalError) as exc:
        err.print(f"swarm: error: {exc}", markup=False, highlight=False)
        sys.exit(1)
    except OSError as exc:  # ENOSPC, EIO, permissions: the registry write recipe left the old file intact
        where = f" ({exc.filename})" if exc.filename else ""
        err.print(f"swarm: error: {exc.strerror or exc}{where}; nothing was half-written, fix it and run again",
                  markup=False, highlight=False)
        sys.exit(1)
