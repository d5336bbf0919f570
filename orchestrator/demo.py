"""`swarm demo`: the whole lifecycle, offline, in a temporary repository, in well under a minute.

Four tasks on a small shop repository, with the real monitor, real git worktrees and a real (private)
tmux server; the agent is the demo stand-in in ``demo_agent.py``. Shown: three agents in parallel (a
fourth queued), one agent killed mid-task and respawned, one whose first commit fails CI and whose retry
prompt carries the CI output, one phantom success caught, all ending ``ready``. Exit 0 only if all of
that really happened.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from monitor.tick import World, run_tick
from monitor.world.notify import ConsoleNotifier
from orchestrator import tasks as task_ops
from orchestrator.config import CONFIG_NAME, load
from orchestrator.wiring import build_world
from registry.models import FailureKind, Status

CHECK_PY = '''\
"""The shop's CI: checks every feature module that exists on this branch."""
import importlib
import sys

failures = []


def check(module, expression, expected):
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        return
    got = eval(expression, vars(mod))
    if got != expected:
        failures.append(f"{module}: {expression} returned {got!r}, expected {expected!r}")


check("export", "to_csv([[1, 'a'], [2, 'b']])", "1,a\\n2,b")
check("totals", "invoice_total([(2, 9.5), (1, 1.25)])", 20.25)
check("discount", "pro_discount(100)", 85)
check("currency", "format_currency(1234)", "$12.34")
for failure in failures:
    print("FAIL", failure)
print(f"{4 - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
'''

TASKS = [
    ("Add CSV export of invoices", "export",
     "Pro customers want CSV export of invoices. Add export.py with to_csv(rows) -> str."),
    ("Add invoice totals", "slow", "Add totals.py with invoice_total(lines) for (quantity, price) pairs."),
    ("Add the Pro plan discount", "discount",
     "Pro plan customers get a discount. Add discount.py with pro_discount(price). The CI knows the rate."),
    ("Format prices as currency", "phantom", "Add currency.py with format_currency(cents) -> '$12.34'."),
]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repository(root: Path, socket: str) -> Path:
    repo = root / "shop"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "swarm demo")
    _git(repo, "config", "user.email", "demo@swarm.invalid")
    (repo / "README.md").write_text("# shop\n\nA tiny shop, for the swarm demo.\n")
    (repo / "check.py").write_text(CHECK_PY)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "The shop")
    python = shlex.quote(sys.executable)
    (repo / CONFIG_NAME).write_text(f"""\
# The demo's own configuration: the agent is the demo stand-in, not a real coding agent.
[project]
base_branch = "main"
forge = "local"

[agents.demo]
command = [{sys.executable!r}, "-m", "orchestrator.demo_agent"]
prompt = "stdin"
parser = "claude"

[routing]
default = "demo"

[monitor]
max_attempts = 3
max_parallel = 3
stuck_after = "2m"
attempt_timeout = "5m"
tmux_socket = "{socket}"

[local]
ci = "{python} check.py"
ci_timeout = "1m"
""".replace("'", '"'))
    (repo / ".git" / "info" / "exclude").write_text(".swarm/\nswarm.toml\n")
    return repo


class Timeline:
    def __init__(self, console: Console, world: World, t0: datetime) -> None:
        self.console = console
        self.world = world
        self.t0 = t0
        self.seen = 0

    def show_new(self) -> None:
        events = list(self.world.events.read())
        for event in events[self.seen:]:
            at = datetime.fromisoformat(event["at"])
            detail = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("at", "task", "event") and v != "")
            self.console.print(
                f"  [dim]{(at - self.t0).total_seconds():5.1f}s[/] {escape(str(event['task']).ljust(34))} "
                f"[bold]{escape(event['event'])}[/] [dim]{escape(detail[:110])}[/]", highlight=False, soft_wrap=True)
        self.seen = len(events)


def run_demo(console: Console, keep: bool = False, deadline: float = 90.0) -> int:
    root = Path(tempfile.mkdtemp(prefix="swarm-demo-"))
    socket = f"swarm-demo-{root.name[-8:]}"
    repo = make_repository(root, socket)
    settings = load(repo / CONFIG_NAME)
    world = build_world(repo, settings, ConsoleNotifier(console.file))
    console.print(f"[bold]swarm demo[/] — repository {escape(str(repo))}, tmux socket {socket}\n")
    started = time.monotonic()
    t0 = world.clock()
    timeline = Timeline(console, world, t0)
    ids = {}
    max_running = 0
    killed = False
    try:
        for title, scenario, prompt in TASKS:
            task = task_ops.spawn(world, title=title, prompt=f"{prompt}\n\ndemo-scenario: {scenario}\n",
                                  agent="demo", kind="default", after=[], base_branch="main")
            ids[scenario] = task.id
        while time.monotonic() - started < deadline:
            state = world.registry.read()
            max_running = max(max_running, sum(1 for t in state.tasks.values() if t.status is Status.running))
            slow = state.tasks[ids["slow"]]
            if not killed and slow.attempt and slow.attempt.number == 1 and slow.attempt.log_size > 600:
                world.tmux.kill(slow.attempt.session)
                killed = True
                console.print(f"  [red]demo: killed the agent of {slow.id} mid-task (a simulated crash)[/]")
            if all(state.tasks[i].status is Status.ready for i in ids.values()):
                break
            run_tick(world)
            timeline.show_new()
            time.sleep(0.5)
        timeline.show_new()
        return _verdict(console, world, ids, max_running, time.monotonic() - started)
    finally:
        world.tmux.kill_server()
        if keep:
            console.print(f"\nkept {root}", markup=False)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _verdict(console: Console, world: World, ids: dict[str, str], max_running: int, seconds: float) -> int:
    state = world.registry.read()
    tasks = {scenario: state.tasks[task_id] for scenario, task_id in ids.items()}

    def kinds(scenario: str) -> list[FailureKind]:
        return [a.failure.kind for a in tasks[scenario].attempts if a.failure]

    retry_prompt = ""
    discount = tasks["discount"]
    if len(discount.attempts) > 1:
        retry_prompt = Path(discount.attempts[1].prompt_path).read_text(encoding="utf-8")
    claims = [
        ("all four tasks ended ready", all(t.status is Status.ready for t in tasks.values())),
        (f"three agents ran in parallel (max seen: {max_running})", max_running >= 3),
        ("the killed agent was seen as died and respawned", kinds("slow")[:1] == [FailureKind.died]),
        ("the first discount commit failed CI", kinds("discount")[:1] == [FailureKind.ci_failed]),
        ("its retry prompt carried the CI output", "expected 85" in retry_prompt),
        ("the phantom success was caught", kinds("phantom")[:1] == [FailureKind.phantom]),
        ("the clean task needed one attempt", len(tasks["export"].attempts) == 1),
    ]
    console.print()
    for claim, held in claims:
        console.print(f"  {'[green]✓[/]' if held else '[red]✗[/]'} {claim}")
    ok = all(held for _, held in claims)
    console.print(f"\n{'[green]demo passed[/]' if ok else '[red]demo FAILED[/]'} in {seconds:.1f}s")
    return 0 if ok else 1
