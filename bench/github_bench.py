"""What a GitHub tick costs: requests, GraphQL points and seconds for 100 and 1,000 open PRs with nothing changed.

Why: the GitHub forge promises that a healthy tick reads every open pull request with one GraphQL query per
50 PRs, so that a fleet of hundreds of PRs stays far inside GitHub's hourly rate limit. This benchmark holds
the monitor to the issue's figures on the fake GitHub (``tests/fakes/github_server.py``: real PyGithub and
httpx over HTTP, GraphQL executed against GitHub's real schema, a real bare repository as ``origin``):

* GitHub requests per tick with nothing changed ≤ 2 + ⌈open PRs / 50⌉;
* at most 2 GraphQL points per page of 50 PRs, charged by GitHub's documented formula (the fake computes it
  from the document: the requests needed to fill each connection, summed, / 100, rounded, at least 1);
* per hour, with a reconcile every minute and every 10 minutes, against a tick every 30 s (the ratio), and
  whether 1,000 PRs reconciled every minute fit in GitHub's 5,000 points an hour;
* with `swarm serve` and webhooks: what an event tick (one task, ``run_tick(world, only=...)``) costs, and per
  hour, with one webhook per PR an hour and a reconcile every 10 minutes (and every minute), against polling
  every 30 s: the ratio;
* ≥ 20× fewer requests than a per-PR REST poll at 100 PRs. The poll is what a naive monitor does for each
  task (PyGithub on the same fake): the PR, its head's check runs, its head's combined status and its
  reviews, four requests per PR (``get_repo`` and ``get_commit`` are lazy: no request of their own). It uses no
  conditional requests (PyGithub sends no ``If-None-Match``): on GitHub a 304 is not counted against the
  rate limit, but it is still a round trip.

Every PR has one commit of its own, a successful check run on its head and an APPROVED review, and the
settings ask for one approval (``[done] reviews = 1``), so the tick reads and judges CI and reviews. The
tasks are written straight into the registry as ``ready`` (empty worktree directories: the observer only
checks that they exist and reads branch heads from git). The first tick does one-time work (branch facts,
the task's checks and reason written once) and is reported apart; the measured ticks must leave every task
``ready`` with no action, or the benchmark fails instead of printing a flattering figure.

The pages of a tick are read at once (at most ``READERS`` in flight) from the cursors the previous tick saw;
the first tick has none and reads them one after another, so it is reported apart.

Tick time includes the fake's own work: it runs in this process (a server thread, the same GIL) and executes
GraphQL in Python, which real GitHub does elsewhere. The seconds the tick's GitHub reads take (``prefetch``:
the base fetch and the GraphQL pages, wall time) are reported apart, so "tick minus reads" is the monitor's
own cost. Real GitHub adds tens to hundreds of milliseconds per request, paid per request: four per PR for
the poll, one per 50 PRs for the tick, and for the tick in rounds of ``READERS`` pages at once. Here the
fake answers one GraphQL call at a time (one lock, one GIL), so concurrency shows in round trips only.

Run: ``.venv/bin/python bench/github_bench.py [--quick] [--json]`` (``--quick``: 10 and 100 PRs only).
Import: ``from bench.github_bench import github_figures`` → a dict of figures (seconds, request counts);
``bench/run.py`` prints them with the other benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from github import Auth, Github

from monitor.tick import World, run_tick
from monitor.world.github import READERS, GitHubForge
from orchestrator.config import CONFIG_NAME, load
from orchestrator.wiring import build_world
from registry.models import Attempt, PullRequest, RegistryState, Status, Task
from registry.store import Registry

if TYPE_CHECKING:
    from tests.fakes.github_server import FakeGitHub

SIZES = (100, 1000)
QUICK_SIZES = (10, 100)
POINTS_PER_HOUR = 5000  # GitHub's GraphQL budget for a user token
INTERVALS = (("every 30 s", 30.0), ("reconcile 1 min", 60.0), ("reconcile 10 min", 600.0))
POLL = 30.0  # the seconds of the polling that the reconcile intervals are compared with
FIT_AT = (1000, 60.0)  # the question: 1,000 PRs reconciled every minute within 5,000 points an hour
TARGET_RATIO = 20.0
RATIO_AT = 100  # the open PRs at which the ratio target applies
PAGE = 50  # open PRs per GraphQL page, as the budget counts them
OPEN_PULLS_OPERATION = "SwarmOpenPulls"
OWNER, NAME = "acme", "bench"
REPO = f"{OWNER}/{NAME}"
TOKEN_ENV = "GITHUB_TOKEN"
IDENTITY = "swarm-bench <bench@swarm.invalid>"
REVIEWER = "reviewer"


def budget(prs: int) -> int:
    """The issue's ceiling for a tick with nothing changed: 2 + ⌈open PRs / 50⌉ requests."""
    return 2 + math.ceil(prs / PAGE)


def task_id(n: int) -> str:
    return f"bench-{n:04d}"


# -- the stage --------------------------------------------------------------------------------------


@dataclass
class Stage:
    """N open PRs on the fake, N ready tasks in the registry, and the World a tick runs on."""

    world: World
    forge: GitHubForge
    fake: FakeGitHub
    numbers: dict[str, int]  # task id → PR number
    setup_s: float


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["git", "-c", "user.name=swarm-bench", "-c", "user.email=bench@swarm.invalid", *args],
                          cwd=cwd, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} exited {done.returncode}: {done.stderr.decode().strip()}")
    return done.stdout.decode().strip()


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n%s\n" % (len(raw), raw)


def _make_remote(tmp: Path, prs: int) -> tuple[Path, Path, str, dict[str, str]]:
    """(repo, bare remote, main's commit, task id → branch head): ``prs`` branches ``swarm/bench-NNNN`` with
    one commit each, made by one ``git fast-import``; the bare clone carries them all to ``origin``."""
    repo, bare = tmp / "repo", tmp / "remote.git"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# bench\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "initial")
    main = _git(repo, "rev-parse", "HEAD")
    stamp = f"{int(time.time())} +0000"
    stream = bytearray()
    for n in range(prs):
        tid = task_id(n)
        stream += f"commit refs/heads/swarm/{tid}\ncommitter {IDENTITY} {stamp}\n".encode()
        stream += _data(f"Bench task {n}")
        stream += f"from {main}\nM 100644 inline tasks/{tid}.txt\n".encode()
        stream += _data(f"task {n}\n")
    _git(repo, "fast-import", "--quiet", stdin=bytes(stream))
    _git(tmp, "clone", "-q", "--bare", str(repo), str(bare))  # main and every swarm/ branch
    _git(repo, "remote", "add", "origin", str(bare))
    _git(repo, "fetch", "-q", "origin")
    heads = {}
    listed = _git(repo, "for-each-ref", "--format=%(objectname) %(refname:strip=2)", "refs/heads/swarm/")
    for line in listed.split("\n"):
        sha, branch = line.split(" ", 1)
        heads[branch.removeprefix("swarm/")] = sha
    if len(heads) != prs:
        raise RuntimeError(f"made {len(heads)} branches, wanted {prs}")
    return repo, bare, main, heads


def _write_config(repo: Path, fake: FakeGitHub) -> None:
    (repo / CONFIG_NAME).write_text(f"""
[project]
base_branch = "main"
forge = "github"

[monitor]
tmux_socket = "swarm-ghbench-{secrets.token_hex(4)}"

[github]
repo = "{REPO}"
api_url = "{fake.url}"
token_env = "{TOKEN_ENV}"
ci_grace = "0s"
timeout = "30s"

[done]
reviews = 1
""")
    (repo / ".git" / "info").mkdir(parents=True, exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text(".swarm/\nswarm.toml\n")


def _ready_task(tid: str, number: int, url: str, main: str, worktree: Path, now: datetime) -> Task:
    started = now - timedelta(hours=1)
    attempt = Attempt(number=1, session=f"swarm-{tid}", prompt_path=str(worktree / "prompt.md"), started_at=started,
                      launched_at=started, ended_at=now - timedelta(minutes=30), start_head=main, exit_code=0)
    return Task(id=tid, title=f"Bench task {tid}", prompt="Benchmark task: nothing changes.", agent="claude",
                status=Status.ready, base_branch="main", branch=f"swarm/{tid}", worktree=str(worktree),
                attempts=(attempt,), pr=PullRequest(number=number, url=url), reason="ready for review",
                created_at=started, updated_at=now)


@contextlib.contextmanager
def _token(value: str) -> Iterator[None]:
    before = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = before


@contextlib.contextmanager
def stage(prs: int) -> Iterator[Stage]:
    """A fake GitHub with ``prs`` open, green, approved PRs and a World whose tasks are all ready on them."""
    from tests.fakes.github_server import FakeGitHub

    tmp = Path(tempfile.mkdtemp(prefix="swarm-ghbench-"))
    forge: GitHubForge | None = None
    try:
        with FakeGitHub() as fake, _token(fake.token):
            start = time.perf_counter()
            repo, bare, main, heads = _make_remote(tmp, prs)
            fake.add_repo(OWNER, NAME, bare)
            numbers: dict[str, int] = {}
            for tid, sha in heads.items():
                numbers[tid] = fake.open_pr(REPO, f"swarm/{tid}", title=f"Bench task {tid}")
                fake.add_check_run(REPO, sha, "tests", conclusion="success")
                fake.add_review(REPO, numbers[tid], REVIEWER, "APPROVED", body="LGTM", commit_id=sha)
            _write_config(repo, fake)
            now = datetime.now(UTC)
            tasks = {}
            for tid, number in numbers.items():
                worktree = tmp / "worktrees" / tid
                worktree.mkdir(parents=True)
                tasks[tid] = _ready_task(tid, number, f"{fake.url}/{REPO}/pull/{number}", main, worktree, now)
            world = build_world(repo, load(repo / CONFIG_NAME), _quiet_notifier())

            def seed(state: RegistryState) -> RegistryState:
                return state.model_copy(update={"tasks": tasks})

            Registry(world.layout.state_dir).update(seed)
            if not isinstance(world.forge, GitHubForge):
                raise RuntimeError(f"expected the GitHub forge, got {type(world.forge).__name__}")
            forge = world.forge
            yield Stage(world, forge, fake, numbers, time.perf_counter() - start)
    finally:
        if forge is not None:
            forge.api.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _quiet_notifier() -> Any:
    from bench.common import QuietNotifier

    return QuietNotifier()


# -- the tick ---------------------------------------------------------------------------------------


def _kinds(fake: FakeGitHub) -> Counter[str]:
    return Counter(record.kind for record in fake.requests)


def _not_ready(world: World, actions: Sequence[str], when: str) -> None:
    """Fail loudly unless every task is still ready and the tick took no action: the figure must be honest."""
    state = world.registry.read()
    moved = [t for t in state.tasks.values() if t.status is not Status.ready]
    if moved or actions:
        sample = "; ".join(f"{t.id}: {t.status} ({t.reason})" for t in moved[:3])
        raise RuntimeError(f"{when}: {len(moved)} of {len(state.tasks)} tasks left 'ready' and the tick took "
                           f"{len(actions)} action(s) {list(actions)[:3]}; {sample}")


def tick_figures(st: Stage, ticks: int) -> dict[str, Any]:
    """One warm-up tick, then ``ticks`` measured ticks: GitHub requests by kind, seconds, git calls."""
    from bench.common import CallCounter, _stats

    world, fake = st.world, st.fake
    prs = len(st.numbers)
    fake.reset_log()
    warm_counter = CallCounter()
    with warm_counter.installed():
        start = time.perf_counter()
        report = run_tick(world)
        warm_up = time.perf_counter() - start
    warm_kinds = _kinds(fake)
    _not_ready(world, report.actions, "the first tick")
    serial = world.registry.read().serial

    warm_points = sum(points for _, points in fake.graphql_points)
    graphql_s: list[float] = []
    real_prefetch = st.forge.prefetch

    def timed_prefetch(tasks: Sequence[Task]) -> None:  # the tick's GitHub reads: wall time, pages at once
        begin = time.perf_counter()
        try:
            real_prefetch(tasks)
        finally:
            graphql_s.append(time.perf_counter() - begin)

    samples: list[float] = []
    waits: list[float] = []
    per_tick: list[Counter[str]] = []
    points: list[int] = []
    in_flight = 0
    operations: Counter[str] = Counter()
    counter = CallCounter()
    with counter.installed(), mock.patch.object(st.forge, "prefetch", timed_prefetch):
        for n in range(ticks):
            fake.reset_log()
            graphql_s.clear()
            start = time.perf_counter()
            report = run_tick(world)
            samples.append(time.perf_counter() - start)
            waits.append(sum(graphql_s))
            records = fake.requests
            per_tick.append(Counter(r.kind for r in records))
            points.append(sum(cost for _, cost in fake.graphql_points))
            in_flight = max(in_flight, fake.most_in_flight("graphql"))
            operations.update(f"{r.kind} {r.operation or r.method + ' ' + r.path}" for r in records)
            if report.skipped or report.tasks != prs:
                raise RuntimeError(f"tick {n + 2} saw {report.tasks} of {prs} tasks (skipped: {report.skipped})")
            _not_ready(world, report.actions, f"tick {n + 2}")
    if fake.internal_errors:
        raise RuntimeError(f"the fake GitHub failed inside: {fake.internal_errors[-1]}")
    totals = [sum(c.values()) for c in per_tick]
    median, p95 = _stats(samples)
    wait_median, _ = _stats(waits)
    return {
        "ticks": ticks,
        "tick_requests": sum(totals) / ticks,
        "tick_requests_max": max(totals),
        "tick_requests_detail": ", ".join(f"{op} ×{k / ticks:g}" for op, k in operations.most_common()) or "none",
        "tick_median_s": median,
        "tick_p95_s": p95,
        "tick_graphql_median_s": wait_median,
        "tick_points": sum(points) / ticks,
        "tick_points_max": max(points),
        "pages": operations[f"graphql {OPEN_PULLS_OPERATION}"] / ticks,
        "graphql_in_flight": in_flight,
        "warm_up_points": warm_points,
        "warm_up_s": warm_up,
        "warm_up_requests": sum(warm_kinds.values()),
        "warm_up_git_calls": warm_counter.total("git"),
        "warm_up_calls_detail": warm_counter.describe(),
        "git_calls_per_tick": counter.total("git") / ticks,
        "tmux_calls_per_tick": counter.total("tmux") / ticks,
        "calls_detail": counter.describe(ticks),
        "registry_writes_per_tick": (world.registry.read().serial - serial) / ticks,
    }


# -- the per-PR REST poll ---------------------------------------------------------------------------


EVENT_SAMPLES = 5
EVENTS_PER_PR_HOUR = 1.0  # webhooks flowing: one event per PR an hour (a push, a CI result, a review)
EVENT_RECONCILES = (("events + reconcile 10 min", 600.0), ("events + reconcile 1 min", 60.0))


def event_figures(st: Stage, samples: int = EVENT_SAMPLES) -> dict[str, Any]:
    """Ticks for one task each (what a webhook wakes in `swarm serve`), spread over the fleet: GitHub requests
    and points each, after a full tick (the open count it keeps decides that one PR is read by number)."""
    from bench.common import _stats

    world, fake = st.world, st.fake
    ids = sorted(st.numbers)
    chosen = [ids[round(i * (len(ids) - 1) / max(1, samples - 1))] for i in range(samples)]
    requests: list[int] = []
    points: list[int] = []
    seconds: list[float] = []
    operations: Counter[str] = Counter()
    for tid in chosen:
        fake.reset_log()
        start = time.perf_counter()
        report = run_tick(world, only={tid})
        seconds.append(time.perf_counter() - start)
        _not_ready(world, report.actions, f"the event tick for {tid}")
        requests.append(len(fake.requests))
        points.append(sum(cost for _, cost in fake.graphql_points))
        operations.update(f"{r.kind} {r.operation or r.method + ' ' + r.path}" for r in fake.requests)
    return {
        "event_ticks": len(chosen),
        "event_requests": sum(requests) / len(chosen),
        "event_requests_max": max(requests),
        "event_points": sum(points) / len(chosen),
        "event_points_max": max(points),
        "event_detail": ", ".join(f"{op} ×{k / len(chosen):g}" for op, k in operations.most_common()) or "none",
        "event_median_s": _stats(seconds)[0],
    }


def event_hourly(prs: int, figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Per hour with webhooks flowing (:data:`EVENTS_PER_PR_HOUR` per PR, each an event tick) and a full
    reconcile every 10 minutes and every minute, against a full tick every 30 s (the ratio of points)."""
    events = prs * EVENTS_PER_PR_HOUR
    poll_requests = figures["tick_requests"] * 3600 / POLL
    poll_points = figures["tick_points"] * 3600 / POLL
    rows = []
    for name, seconds in EVENT_RECONCILES:
        requests = events * figures["event_requests"] + figures["tick_requests"] * 3600 / seconds
        points = events * figures["event_points"] + figures["tick_points"] * 3600 / seconds
        rows.append({"mode": name, "seconds": seconds, "requests": requests, "points": points,
                     "vs_poll_requests": poll_requests / max(requests, 1e-9),
                     "vs_poll_points": poll_points / max(points, 1e-9)})
    return rows


def rest_poll(fake: FakeGitHub, numbers: Sequence[int]) -> tuple[int, int, Counter[str]]:
    """What a per-PR REST monitor reads for each PR: the PR, its head's check runs and combined status,
    its reviews. Returns (check runs, reviews, requests by kind) so the caller can see it read everything."""
    from tests.fakes.github_server import RATE_LIMIT

    fake.set_rate_remaining("core", RATE_LIMIT)  # a fresh hour: 500 PRs × 4 requests fit, several rounds don't
    fake.reset_log()
    gh = Github(auth=Auth.Token(fake.token), base_url=fake.url, seconds_between_requests=0, lazy=True)
    try:
        repo = gh.get_repo(REPO)
        runs = reviews = 0
        for number in numbers:
            pull = repo.get_pull(number)
            commit = repo.get_commit(pull.head.sha)
            runs += sum(1 for run in commit.get_check_runs() if run.conclusion == "success")
            if commit.get_combined_status().state not in ("success", "pending"):
                raise RuntimeError(f"PR #{number}: unexpected combined status")
            reviews += sum(1 for review in pull.get_reviews() if review.state == "APPROVED")
    finally:
        gh.close()
    return runs, reviews, _kinds(fake)


def rest_figures(st: Stage, rounds: int) -> dict[str, Any]:
    from bench.common import _stats

    numbers = sorted(st.numbers.values())
    samples: list[float] = []
    kinds: Counter[str] = Counter()
    for _ in range(rounds):
        start = time.perf_counter()
        runs, reviews, kinds = rest_poll(st.fake, numbers)
        samples.append(time.perf_counter() - start)
        if runs != len(numbers) or reviews != len(numbers):
            raise RuntimeError(f"the REST poll read {runs} green check runs and {reviews} approvals "
                               f"for {len(numbers)} PRs")
    median, _ = _stats(samples)
    return {
        "rest_rounds": rounds,
        "rest_requests": sum(kinds.values()),
        "rest_requests_detail": ", ".join(f"{kind} ×{n}" for kind, n in kinds.most_common()),
        "rest_median_s": median,
    }


# -- all sizes --------------------------------------------------------------------------------------


LATENCY = 0.1  # seconds added to each GraphQL answer to compare reading the pages one by one and at once


def latency_figures(st: Stage, pages: int) -> dict[str, Any]:
    """The tick's GitHub reads (``prefetch``) with :data:`LATENCY` added to every GraphQL answer, as a
    network would: the pages one after another (no cursors kept), then at once (the last tick's cursors)."""
    from bench.common import _stats

    tasks = list(st.world.registry.read().tasks.values())
    kept = st.forge.api.state.page_cursors
    seconds: dict[str, float] = {}
    for name, cursors in (("serial", []), ("concurrent", kept)):
        samples = []
        for _ in range(3):
            st.forge.api.state.set_page_cursors(cursors)
            st.fake.delay_next(pages, LATENCY, path_prefix="/graphql")
            begin = time.perf_counter()
            st.forge.prefetch(tasks)
            samples.append(time.perf_counter() - begin)
        seconds[name] = _stats(samples)[0]
    st.forge.api.state.set_page_cursors(kept)
    return {"latency_s": LATENCY, "reads_serial_s": seconds["serial"], "reads_concurrent_s": seconds["concurrent"]}


def size_figures(prs: int, ticks: int = 5, rest_rounds: int = 1) -> dict[str, Any]:
    with stage(prs) as st:
        figures: dict[str, Any] = {"prs": prs, "budget": budget(prs), "setup_s": st.setup_s}
        figures |= tick_figures(st, ticks)
        figures |= event_figures(st)
        figures |= latency_figures(st, round(figures["pages"]))
        figures |= rest_figures(st, rest_rounds)
    figures["ratio"] = figures["rest_requests"] / max(figures["tick_requests"], 1e-9)
    figures["points_per_page"] = figures["tick_points_max"] / max(figures["pages"], 1)
    figures["hourly"] = hourly(figures["tick_requests"], figures["tick_points"])
    figures["event_hourly"] = event_hourly(prs, figures)
    figures["rest_poll_hourly_requests"] = figures["rest_requests"] * 3600 / POLL
    return figures


def hourly(requests: float, points: float) -> list[dict[str, Any]]:
    """Requests and points an hour for a tick every 30 s and a reconcile every 1 and 10 minutes, and how
    many times fewer points than polling every 30 s each one spends."""
    rows = []
    for name, seconds in INTERVALS:
        rows.append({"interval": name, "seconds": seconds, "requests": requests * 3600 / seconds,
                     "points": points * 3600 / seconds, "vs_poll": seconds / POLL})
    return rows


def old_page_points() -> int:
    """The points a page cost while each review nested ``comments(first: 1) { totalCount }``."""
    import graphql

    from monitor.world.github_query import OPEN_PULLS, PR_FIELDS
    from tests.fakes.github_schema import rate_limit_cost

    nested = PR_FIELDS.replace("  commit { oid }\n}", "  commit { oid }\n  comments(first: 1) { totalCount }\n}")
    document = graphql.parse(OPEN_PULLS.replace(PR_FIELDS, nested))
    return rate_limit_cost(document, {"owner": OWNER, "name": NAME, "cursor": None})[1]


def github_figures(sizes: Sequence[int] = SIZES, ticks: int = 5, rest_rounds: int = 1,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Figures for each size: ``{"sizes": [{"prs": N, "tick_requests": ..., "ratio": ...}, ...], ...}``."""
    rows = []
    for prs in sizes:
        start = time.monotonic()
        rows.append(size_figures(prs, ticks, rest_rounds))
        if progress:
            progress(f"github {prs} PRs: {time.monotonic() - start:.1f} s")
    return {"sizes": rows, "target_ratio": TARGET_RATIO, "ratio_at": RATIO_AT, "page": PAGE,
            "points_per_hour": POINTS_PER_HOUR, "old_page_points": old_page_points()}


# -- the table --------------------------------------------------------------------------------------


def _at_most(value: float, target: float) -> str:
    return f"{'PASS' if value <= target else 'MISS'}  ({value:g} of {target:g})"


def _at_least(value: float, target: float) -> str:
    return f"{'PASS' if value >= target else 'MISS'}  ({value / target:.1f}× the target)"


def rows(figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, verdict / notes) rows, as ``bench/run.py`` prints them."""
    out: list[tuple[str, str, str, str]] = []
    for n, size in enumerate(figures["sizes"]):
        prs = size["prs"]
        head = "4. " if n == 0 else "   "
        out += [
            (f"{head}GitHub, {prs} open PRs, nothing changed: requests/tick", f"{size['tick_requests']:g}",
             f"≤ {size['budget']} (2 + ⌈{prs}/{figures['page']}⌉)",
             f"{_at_most(size['tick_requests_max'], size['budget'])}; {size['tick_requests_detail']}"),
            (f"     tick median of {size['ticks']} / GitHub reads",
             f"{size['tick_median_s']:.3f} / {size['tick_graphql_median_s']:.3f} s", "",
             f"p95 {size['tick_p95_s']:.3f} s; first tick {size['warm_up_s']:.2f} s ({size['warm_up_requests']} "
             f"requests, {size['warm_up_git_calls']} git calls); set-up {size['setup_s']:.1f} s"),
            ("     subprocesses / registry writes per tick",
             f"{size['git_calls_per_tick'] + size['tmux_calls_per_tick']:g} / {size['registry_writes_per_tick']:g}",
             "", size["calls_detail"] or "none"),
            ("     per-PR REST poll: requests / seconds", f"{size['rest_requests']} / {size['rest_median_s']:.3f} s",
             "", f"{size['rest_requests'] / prs:g} per PR; {size['rest_requests_detail']}"),
        ]
        target = f"≥ {figures['target_ratio']:g}×" if prs == figures["ratio_at"] else ""
        verdict = _at_least(size["ratio"], figures["target_ratio"]) if target else ""
        out.append(("     REST poll / tick requests", f"{size['ratio']:.0f}×", target, verdict))
        out += _points_rows(figures, size)
    return out


def _points_rows(figures: dict[str, Any], size: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    prs = size["prs"]
    budget_h = figures["points_per_hour"]
    out = [
        ("     GraphQL points/tick (pages of 50)", f"{size['tick_points']:g}",
         "≤ 2 a page", f"{_at_most(size['points_per_page'], 2)} points a page over {size['pages']:g} pages, "
         f"{size['graphql_in_flight']} in flight at most; first tick (pages one by one) "
         f"{size['warm_up_points']} points; a page nesting each review's comments cost "
         f"{figures['old_page_points']}"),
    ]
    for row in size["hourly"]:
        fits = row["points"] <= budget_h
        verdict = f"{'fits' if fits else 'OVER'} {budget_h:,} points/h ({100 * row['points'] / budget_h:.0f}%)"
        if row["seconds"] != POLL:
            verdict += f"; {row['vs_poll']:g}× fewer than every 30 s"
        target = ""
        if (prs, row["seconds"]) == FIT_AT:
            target = f"≤ {budget_h:,} points/h"
            verdict = f"{'PASS' if fits else 'MISS'}  {verdict}"
        out.append((f"     {row['interval']}: requests / points per hour",
                    f"{row['requests']:,.0f} / {row['points']:,.0f}", target, verdict))
    out.append(("     event tick (one task, `swarm serve`): requests / points", f"{size['event_requests']:g} / "
                f"{size['event_points']:g}", "1 / ≤ 2", f"{_at_most(size['event_points_max'], 2)}; max "
                f"{size['event_requests_max']} requests over {size['event_ticks']} ticks; {size['event_detail']}; "
                f"median {size['event_median_s']:.3f} s"))
    for row in size["event_hourly"]:
        fits = row["points"] <= budget_h
        out.append((f"     {row['mode']}, 1 webhook/PR/h: requests / points per hour",
                    f"{row['requests']:,.0f} / {row['points']:,.0f}", "",
                    f"{'fits' if fits else 'OVER'} {budget_h:,} points/h ({100 * row['points'] / budget_h:.0f}%); "
                    f"polling every 30 s spends {row['vs_poll_requests']:.1f}× the requests, "
                    f"{row['vs_poll_points']:.1f}× the points"))
    out.append((f"     reads with {size['latency_s'] * 1000:.0f} ms a request: one by one / at once",
                f"{size['reads_serial_s']:.2f} / {size['reads_concurrent_s']:.2f} s", "",
                f"{size['pages']:g} pages, {READERS} in flight at most"))
    rest_h = size["rest_poll_hourly_requests"]
    out.append(("     per-PR REST poll every 30 s: requests per hour", f"{rest_h:,.0f}", "",
                f"{rest_h / budget_h:.0f}× the 5,000 REST requests an hour"))
    return out


def report(figures: dict[str, Any]) -> str:
    table = rows(figures)
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    name, value, target = "swarm GitHub benchmark", "figure", "target"
    header = f"{name:<{widths[0]}}  {value:<{widths[1]}}  {target:<{widths[2]}}  verdict / notes"
    lines = [header, "-" * len(header)]
    for name, value, target, note in table:
        lines.append(f"{name:<{widths[0]}}  {value:<{widths[1]}}  {target:<{widths[2]}}  {note}".rstrip())
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"only {' and '.join(map(str, QUICK_SIZES))} PRs")
    parser.add_argument("--sizes", type=int, nargs="+", help=f"open PRs per run (default {SIZES})")
    parser.add_argument("--ticks", type=int, default=5, help="measured ticks per size")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args()
    start = time.monotonic()
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    figures = github_figures(sizes, ticks=3 if args.quick else args.ticks,
                             progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    print(json.dumps(figures, indent=1) if args.json else report(figures))
    print(f"(benchmark took {time.monotonic() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    # Run as a script, the repository root is not on sys.path: `bench` and `tests` are importable once it is.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
