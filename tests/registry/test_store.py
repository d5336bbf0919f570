"""Fault cases of the crash-safe registry store and the event log.

Damaged files, a newer schema, writers killed mid-write, a full or failing disk, concurrent writers:
each test pins down what the store promises in that case (nothing lost, nothing reset, nothing left
behind) so a change that breaks a promise fails here.
"""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import random
import signal
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.events import EventLog
from registry.models import SCHEMA_VERSION, RegistryState, Task
from registry.store import TMP_PREFIX, Registry, RegistryCorrupt, RegistryError, RegistryTooNew
from tests.tinydisk import fill, tiny_disk

# Fork: the children start in milliseconds with everything already imported (a fresh interpreter
# needs ~0.5 s to import pydantic, too slow for 60 kill rounds).
FORK = multiprocessing.get_context("fork")


def make_task(task_id: str = "t1", *, prompt: str = "Do the thing.", **fields: Any) -> Task:
    """A valid task; ``fields`` override any attribute."""
    now = datetime.now(UTC)
    task = Task(
        id=task_id,
        title=f"Task {task_id}",
        prompt=prompt,
        agent="claude-code",
        base_branch="main",
        branch=f"swarm/{task_id}",
        worktree=f"/srv/worktrees/{task_id}",
        created_at=now,
        updated_at=now,
    )
    return task.model_copy(update=fields) if fields else task


def add(task: Task) -> Callable[[RegistryState], RegistryState]:
    return lambda state: state.with_task(task)


def must_not_run(state: RegistryState) -> RegistryState:
    raise AssertionError("update() called fn although it must refuse to write")


def stray_temp_files(state_dir: Path) -> list[Path]:
    return sorted(state_dir.glob(f"{TMP_PREFIX}*"))


def warnings_from_store(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "registry.store" and r.levelno >= logging.WARNING]


@pytest.fixture
def seeded(tmp_path: Path) -> Registry:
    """A registry written twice: registry.json at serial 2 and registry.json.bak at serial 1."""
    registry = Registry(tmp_path)
    registry.update(add(make_task("first")))
    registry.update(add(make_task("second")))
    assert registry.backup.exists()
    return registry


# -- 1. a damaged registry.json -------------------------------------------------------------------------

DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda good: b"",
    "truncated": lambda good: good[: len(good) // 2],
    "last-byte-missing": lambda good: good.rstrip()[:-1],
    "not-json": lambda good: b"this is not json\n",
    "binary": lambda good: b"\xff\xfe\x00\x00garbage\x00",
    "json-list": lambda good: b"[]",
    "wrong-types": lambda good: b'{"serial": "many", "tasks": {"t1": 5}}',
    "bad-task-id": lambda good: good.replace(b'"second"', b'"Not A Valid Id"'),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_registry_reads_the_backup_with_a_warning_and_refuses_writes(
    seeded: Registry, damage: Callable[[bytes], bytes], caplog: pytest.LogCaptureFixture
) -> None:
    good_backup = seeded.backup.read_bytes()
    damaged = damage(seeded.path.read_bytes())
    seeded.path.write_bytes(damaged)
    caplog.set_level(logging.WARNING, logger="registry.store")

    state = seeded.read()

    assert state == RegistryState.model_validate_json(good_backup)
    assert state.serial == 1
    assert set(state.tasks) == {"first"}
    [warning] = warnings_from_store(caplog)
    assert "registry.json.bak" in warning
    assert "swarm registry restore" in warning

    with pytest.raises(RegistryCorrupt, match="restore"):
        seeded.update(must_not_run)
    assert seeded.path.read_bytes() == damaged
    assert seeded.backup.read_bytes() == good_backup
    assert stray_temp_files(seeded.dir) == []


def test_damaged_registry_without_a_backup_is_an_error_for_reads_too(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.update(add(make_task()))
    assert not registry.backup.exists()
    damaged = registry.path.read_bytes()[:-10]
    registry.path.write_bytes(damaged)

    with pytest.raises(RegistryCorrupt, match="no backup"):
        registry.read()
    with pytest.raises(RegistryCorrupt):
        registry.update(add(make_task("other")))
    assert registry.path.read_bytes() == damaged
    assert not registry.backup.exists()


def test_damaged_registry_and_damaged_backup_is_an_error(seeded: Registry) -> None:
    seeded.path.write_bytes(b"{")
    seeded.backup.write_bytes(b"")
    with pytest.raises(RegistryCorrupt, match="backup is damaged too"):
        seeded.read()
    with pytest.raises(RegistryCorrupt):
        seeded.restore_backup()
    assert seeded.path.read_bytes() == b"{"


def test_missing_registry_with_a_backup_reads_the_backup_and_refuses_writes(
    seeded: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    seeded.path.unlink()
    caplog.set_level(logging.WARNING, logger="registry.store")
    assert seeded.read().serial == 1
    assert any("missing" in w for w in warnings_from_store(caplog))
    with pytest.raises(RegistryCorrupt):
        seeded.update(add(make_task("third")))
    assert not seeded.path.exists()


def test_restore_backup_puts_the_backup_back_and_keeps_the_damaged_file(
    seeded: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    good_backup = seeded.backup.read_bytes()
    damaged = seeded.path.read_bytes()[:100]
    seeded.path.write_bytes(damaged)
    caplog.set_level(logging.WARNING, logger="registry.store")

    restored = seeded.restore_backup()

    assert restored.serial == 1
    assert seeded.path.read_bytes() == good_backup
    [aside] = seeded.dir.glob("registry.json.damaged-*")
    assert aside.read_bytes() == damaged
    assert any(aside.name in w for w in warnings_from_store(caplog))
    caplog.clear()
    assert seeded.read() == restored
    assert warnings_from_store(caplog) == []
    after = seeded.update(add(make_task("third")))
    assert after.serial == 2
    assert set(after.tasks) == {"first", "third"}
    assert stray_temp_files(seeded.dir) == []


# -- 2. a registry written by a newer swarm -------------------------------------------------------------


def test_newer_schema_is_readable_but_never_written(seeded: Registry, caplog: pytest.LogCaptureFixture) -> None:
    current = seeded.read()
    newer = current.model_copy(update={"schema_version": SCHEMA_VERSION + 1})
    seeded.path.write_bytes(newer.model_dump_json(indent=1).encode())
    before_main, before_backup = seeded.path.read_bytes(), seeded.backup.read_bytes()
    caplog.set_level(logging.WARNING, logger="registry.store")

    state = seeded.read()
    assert state.schema_version == SCHEMA_VERSION + 1
    assert state.tasks == current.tasks
    assert warnings_from_store(caplog) == []

    with pytest.raises(RegistryTooNew, match="upgrade swarm"):
        seeded.update(must_not_run)
    assert seeded.path.read_bytes() == before_main
    assert seeded.backup.read_bytes() == before_backup


def test_newer_schema_with_unknown_fields_is_too_new_not_corrupt(seeded: Registry) -> None:
    """A newer swarm adds fields; this one must say "upgrade", not "corrupt, restore the backup" (a
    restore would put the older backup over the newer registry)."""
    data = json.loads(seeded.path.read_bytes())
    data["schema_version"] = SCHEMA_VERSION + 1
    data["workers"] = {"host-a": 4}
    data["tasks"]["first"]["priority"] = 3
    seeded.path.write_text(json.dumps(data))
    before_main, before_backup = seeded.path.read_bytes(), seeded.backup.read_bytes()

    with pytest.raises(RegistryTooNew, match="upgrade swarm"):
        seeded.read()
    with pytest.raises(RegistryTooNew):
        seeded.update(add(make_task("third")))
    assert seeded.path.read_bytes() == before_main
    assert seeded.backup.read_bytes() == before_backup


def test_unknown_fields_at_the_current_schema_are_corrupt(seeded: Registry) -> None:
    data = json.loads(seeded.path.read_bytes())
    data["surprise"] = True
    seeded.path.write_text(json.dumps(data))
    with pytest.raises(RegistryCorrupt):
        seeded.update(add(make_task("third")))


# -- 3. a writer killed at random points ------------------------------------------------------------------

KILL_ROUNDS = 60
BIG_PROMPT_CHARS = 250_000  # four such tasks: a ~1 MB registry, so every write takes a few ms


def _endless_writer(state_dir: str, seed: int) -> None:
    """Update the registry in a loop until killed: one of four tasks gets a fresh large prompt each time."""
    registry = Registry(Path(state_dir))
    rng = random.Random(seed)
    while True:
        slot = rng.randrange(4)
        prompt = chr(ord("a") + rng.randrange(26)) * BIG_PROMPT_CHARS
        registry.update(add(make_task(f"big-{slot}", prompt=prompt)))


def test_writer_killed_at_random_points_never_damages_the_registry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry(tmp_path)
    rng = random.Random(20240601)
    caplog.set_level(logging.WARNING, logger="registry.store")
    last_serial = 0
    kills_mid_write = 0
    writer_writes = 0

    for round_ in range(KILL_ROUNDS):
        writer = FORK.Process(target=_endless_writer, args=(str(tmp_path), round_), daemon=True)
        writer.start()
        time.sleep(rng.uniform(0, 0.08))
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=10)
        assert writer.exitcode == -signal.SIGKILL, f"round {round_}: the writer died on its own"

        kills_mid_write += bool(stray_temp_files(tmp_path))
        caplog.clear()
        state = registry.read()
        assert warnings_from_store(caplog) == [], f"round {round_}: read() fell back to the backup"
        if registry.path.exists():
            # The main file itself parses (read() gave no warning) and so does the backup.
            assert RegistryState.model_validate_json(registry.path.read_bytes()) == state
        if registry.backup.exists():
            backup = RegistryState.model_validate_json(registry.backup.read_bytes())
            assert backup.serial in (state.serial - 1, state.serial)
        assert state.serial >= last_serial, f"round {round_}: serial went back"
        writer_writes += state.serial - last_serial

        after = registry.update(add(make_task("parent", notes=(f"round {round_}",))))
        assert after.serial == state.serial + 1
        assert stray_temp_files(tmp_path) == [], "update() must sweep the killed writer's temp files"
        last_serial = after.serial

    # Typically ~100 writes by the killed writers and ~25 kills leaving a temp file behind.
    assert writer_writes >= 10, "the writers hardly ever got to write: the test proved little"
    assert kills_mid_write > 0, "no kill landed during a write: the test proved little"


# -- 4. a full or failing disk ------------------------------------------------------------------------------


def _fail_on_call(
    real: Callable[..., Any], number: int, err: int, *, only: Callable[[int], bool] = lambda fd: True
) -> Callable[..., Any]:
    """A stand-in for ``os.write``/``os.fsync`` raising ``OSError(err)`` on its ``number``-th call
    (counting only calls whose fd passes ``only``)."""
    calls = 0

    def fake(fd: int, *args: Any) -> Any:
        nonlocal calls
        if only(fd):
            calls += 1
            if calls == number:
                raise OSError(err, os.strerror(err))
        return real(fd, *args)

    return fake


def _is_regular_file(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


# An update with a backup writes two files: the backup first (call 1), then the new registry (call 2).
# The backup is a hard link of the previous file (no write), so the writes and fsyncs below are the new
# registry's own.
DISK_FAULTS = {
    "ENOSPC-writing-registry": ("write", 1, errno.ENOSPC, _is_regular_file),
    "EIO-writing-registry": ("write", 1, errno.EIO, _is_regular_file),
    "EIO-fsync-registry": ("fsync", 1, errno.EIO, _is_regular_file),
    "ENOSPC-fsync-registry": ("fsync", 1, errno.ENOSPC, _is_regular_file),
}


@pytest.mark.parametrize(("call", "number", "err", "only"), DISK_FAULTS.values(), ids=DISK_FAULTS.keys())
def test_disk_error_keeps_the_old_registry_and_leaves_no_temp_file(
    seeded: Registry,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    number: int,
    err: int,
    only: Callable[[int], bool],
) -> None:
    old_main, old_backup = seeded.path.read_bytes(), seeded.backup.read_bytes()
    old = RegistryState.model_validate_json(old_main)

    with monkeypatch.context() as patch:
        patch.setattr(f"registry.store.os.{call}", _fail_on_call(getattr(os, call), number, err, only=only))
        with pytest.raises(OSError) as raised:
            seeded.update(add(make_task("third", prompt="x" * 10_000)))
    assert raised.value.errno == err

    assert seeded.path.read_bytes() == old_main
    assert stray_temp_files(seeded.dir) == []
    # The new file is written in full before the backup changes: the backup is untouched.
    assert seeded.backup.read_bytes() == old_backup
    # Once the disk recovers, the next update continues from the old state.
    after = seeded.update(add(make_task("third")))
    assert after.serial == old.serial + 1
    assert set(after.tasks) == {"first", "second", "third"}
    assert stray_temp_files(seeded.dir) == []


def test_disk_error_on_the_first_write_creates_no_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr("registry.store.os.write", _fail_on_call(os.write, 1, errno.ENOSPC))
        with pytest.raises(OSError, match="No space"):
            registry.update(add(make_task()))
    assert not registry.path.exists()
    assert not registry.backup.exists()
    assert stray_temp_files(tmp_path) == []
    assert registry.read() == RegistryState()


def test_short_writes_are_completed(seeded: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.write`` may write less than asked (a signal, a nearly full disk): the rest must follow."""
    real_write = os.write
    monkeypatch.setattr("registry.store.os.write", lambda fd, data: real_write(fd, bytes(data[:1000])))
    new = seeded.update(add(make_task("third", prompt="y" * 20_000)))
    monkeypatch.undo()
    assert seeded.read() == new
    assert new.tasks["third"].prompt == "y" * 20_000


def test_fn_raising_writes_nothing_and_releases_the_lock(seeded: Registry) -> None:
    before = seeded.path.read_bytes()

    def broken(state: RegistryState) -> RegistryState:
        raise ValueError("bug in the caller")

    with pytest.raises(ValueError, match="bug in the caller"):
        seeded.update(broken)
    assert seeded.path.read_bytes() == before
    assert seeded.update(add(make_task("third"))).serial == 3


# -- 5. concurrent writers -----------------------------------------------------------------------------------

UPDATES_PER_WRITER = 300


def _counting_writer(state_dir: str, name: str, start: Any) -> None:
    registry = Registry(Path(state_dir))
    start.wait()
    for i in range(UPDATES_PER_WRITER):

        def bump(state: RegistryState, i: int = i) -> RegistryState:
            counter = state.tasks["counter"]
            return state.with_task(counter.model_copy(update={"notes": (*counter.notes, f"{name}-{i}")}))

        registry.update(bump)


def test_two_processes_updating_concurrently_lose_no_update(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.update(add(make_task("counter")))
    start = FORK.Event()
    writers = [FORK.Process(target=_counting_writer, args=(str(tmp_path), name, start)) for name in ("a", "b")]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0

    state = registry.read()
    notes = state.tasks["counter"].notes
    assert len(notes) == 2 * UPDATES_PER_WRITER
    for name in ("a", "b"):
        assert [n for n in notes if n.startswith(f"{name}-")] == [f"{name}-{i}" for i in range(UPDATES_PER_WRITER)]
    assert state.serial == 1 + 2 * UPDATES_PER_WRITER
    assert stray_temp_files(tmp_path) == []


# -- 6. serial, backup and no-op updates -------------------------------------------------------------------


def test_update_returning_the_same_state_writes_nothing(seeded: Registry) -> None:
    before = seeded.path.read_bytes()
    before_backup = seeded.backup.read_bytes()
    before_mtime = seeded.path.stat().st_mtime_ns
    time.sleep(0.01)  # a write now would show in mtime

    result = seeded.update(lambda state: state)

    assert result.serial == 2
    assert seeded.path.read_bytes() == before
    assert seeded.path.stat().st_mtime_ns == before_mtime
    assert seeded.backup.read_bytes() == before_backup
    assert seeded.read().serial == 2


def test_no_op_update_on_an_empty_directory_creates_no_registry(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "state")
    assert registry.update(lambda state: state) == RegistryState()
    assert not registry.path.exists()
    assert not registry.backup.exists()


def test_each_write_bumps_the_serial_by_one_and_keeps_the_previous_version(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert registry.read().serial == 0
    previous: bytes | None = None
    for n in range(1, 6):
        state = registry.update(add(make_task(f"task-{n}")))
        assert state.serial == n
        assert registry.read() == state
        assert set(state.tasks) == {f"task-{i}" for i in range(1, n + 1)}
        if previous is None:
            assert not registry.backup.exists()
        else:
            assert registry.backup.read_bytes() == previous
            assert RegistryState.model_validate_json(previous).serial == n - 1
        previous = registry.path.read_bytes()


def test_serial_and_schema_version_are_set_by_the_store_not_by_fn(seeded: Registry) -> None:
    state = seeded.update(lambda s: s.model_copy(update={"serial": 99, "schema_version": 0}))
    assert state.serial == 3
    assert state.schema_version == SCHEMA_VERSION
    assert seeded.read() == state


def test_update_sweeps_stray_temp_files_even_without_writing(seeded: Registry) -> None:
    stray = seeded.dir / f"{TMP_PREFIX}12345-deadbeef"
    stray.write_bytes(b"half a registry")
    seeded.update(lambda state: state)
    assert not stray.exists()


# -- 7. the event log ----------------------------------------------------------------------------------------


def test_event_log_round_trip(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "state" / "events.jsonl")
    at = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
    log.append(at, "t1", "launched", attempt=1, session="swarm-t1-1")
    log.append(at, "t2", "failed", kind="died", summary="agent exited — no output ✗", when=at)
    log.append(at, "t1", "ready", checks=["ci", "review"])

    assert list(log.read()) == [
        {"at": at.isoformat(), "task": "t1", "event": "launched", "attempt": 1, "session": "swarm-t1-1"},
        {
            "at": at.isoformat(),
            "task": "t2",
            "event": "failed",
            "kind": "died",
            "summary": "agent exited — no output ✗",
            "when": str(at),
        },
        {"at": at.isoformat(), "task": "t1", "event": "ready", "checks": ["ci", "review"]},
    ]


def test_event_log_filters_by_task(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    now = datetime.now(UTC)
    for i in range(6):
        log.append(now, f"t{i % 3}", "tick", n=i)
    assert [e["n"] for e in log.read(task="t1")] == [1, 4]
    assert list(log.read(task="nobody")) == []
    assert len(list(log.read())) == 6


def test_event_log_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert list(EventLog(tmp_path / "nothing.jsonl").read()) == []


@pytest.mark.parametrize("cut", [1, 5, 20], ids=["newline", "inside-ascii", "inside-text"])
def test_event_log_skips_a_torn_last_line(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    now = datetime.now(UTC)
    log.append(now, "t1", "first")
    log.append(now, "t1", "second", detail="some words here to cut")
    path.write_bytes(path.read_bytes()[:-cut])
    events = [e["event"] for e in log.read()]
    assert events == (["first", "second"] if cut == 1 else ["first"])


def test_event_log_skips_a_line_cut_inside_a_multibyte_character(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    now = datetime.now(UTC)
    log.append(now, "t1", "first")
    log.append(now, "t1", "second", summary="check ✓")
    data = path.read_bytes()
    cut = data.rindex("✓".encode()) + 2  # the first two of the character's three bytes
    path.write_bytes(data[:cut])
    assert [e["event"] for e in log.read()] == ["first"]
    assert [e["event"] for e in log.read(task="t1")] == ["first"]


def test_event_log_append_after_a_torn_line_is_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    now = datetime.now(UTC)
    log.append(now, "t1", "first")
    log.append(now, "t1", "torn")
    path.write_bytes(path.read_bytes()[:-10])
    log.append(now, "t1", "after-crash")
    log.append(now, "t1", "later")
    assert [e["event"] for e in log.read()] == ["first", "after-crash", "later"]


def test_event_log_ignores_lines_that_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    now = datetime.now(UTC)
    log.append(now, "t1", "first")
    with path.open("ab") as handle:
        handle.write(b'[1, 2]\nnull\n"text"\n\n')
    log.append(now, "t1", "second")
    assert [e["event"] for e in log.read(task="t1")] == ["first", "second"]


def _appender(path: str, name: str, count: int) -> None:
    log = EventLog(Path(path))
    for i in range(count):
        log.append(datetime.now(UTC), name, "tick", n=i, padding="p" * (i % 50) * 40)


def test_event_log_concurrent_appends_keep_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writers = [FORK.Process(target=_appender, args=(str(path), name, 300)) for name in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    # Whole lines only; a blank line may appear where an append raced another one (read() skips it).
    lines = [line for line in path.read_bytes().splitlines() if line]
    assert len(lines) == 600
    assert all(isinstance(json.loads(line), dict) for line in lines)
    log = EventLog(path)
    for name in ("a", "b"):
        assert [e["n"] for e in log.read(task=name)] == list(range(300))


def test_backup_is_copied_when_hard_links_are_not_supported(seeded: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = seeded.path.read_bytes()

    def no_links(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported here")

    monkeypatch.setattr("registry.store.os.link", no_links)
    new = seeded.update(add(make_task("third")))

    assert seeded.backup.read_bytes() == previous
    assert RegistryState.model_validate_json(seeded.path.read_bytes()) == new
    assert stray_temp_files(seeded.dir) == []


def test_unchanged_tasks_are_not_serialised_again(seeded: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded.update(add(make_task("third")))  # warms the per-task cache
    dumped: list[str] = []
    original = Task.model_dump_json

    def spy(self: Task, **kwargs: object) -> str:
        dumped.append(self.id)
        return original(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Task, "model_dump_json", spy)
    new = seeded.update(add(make_task("fourth")))

    assert dumped == ["fourth"]
    assert Registry(seeded.dir).read() == new  # a fresh reader parses what the cached path wrote


# -- 8. a registry that parses but is wrong ------------------------------------------------------------------

# each gets the registry's previous version (serial 1)
WRONG: dict[str, Callable[[bytes], bytes]] = {
    "empty-object": lambda older: b"{}",
    "no-schema-version": lambda older: b'{"tasks": {}, "serial": 0}',
    "no-serial": lambda older: b'{"schema_version": 1, "tasks": {}}',
    "no-tasks": lambda older: b'{"schema_version": 1, "serial": 7}',
    "valid-but-serial-0": lambda older: RegistryState().model_dump_json().encode(),
    "older-copy": lambda older: older,
}


@pytest.mark.parametrize("wrong", WRONG.values(), ids=WRONG.keys())
def test_a_registry_that_parses_but_is_wrong_is_damaged_not_empty(
    seeded: Registry, wrong: Callable[[bytes], bytes], caplog: pytest.LogCaptureFixture
) -> None:
    good_main, good_backup = seeded.path.read_bytes(), seeded.backup.read_bytes()
    # a writer always leaves a backup one serial behind; make it the newest good copy (as after a write
    # that was then clobbered by the wrong file)
    seeded.backup.write_bytes(good_main)
    bad = wrong(good_backup)
    seeded.path.write_bytes(bad)
    caplog.set_level(logging.WARNING, logger="registry.store")

    state = Registry(seeded.dir).read()  # a fresh process: no cache to hide behind

    assert set(state.tasks) == {"first", "second"}, "a wrong registry must not read as no tasks"
    assert state.serial == 2
    [warning] = warnings_from_store(caplog)
    assert "swarm registry restore" in warning
    with pytest.raises(RegistryCorrupt, match="restore"):
        seeded.update(must_not_run)
    with pytest.raises(RegistryCorrupt):
        seeded.check_writable()
    assert seeded.path.read_bytes() == bad
    assert seeded.backup.read_bytes() == good_main, "the good backup was overwritten by the wrong registry"
    assert good_backup != good_main

    restored = seeded.restore_backup()
    assert restored.serial == 2 and set(restored.tasks) == {"first", "second"}
    assert seeded.update(add(make_task("third"))).serial == 3


def test_a_wrong_registry_names_what_is_missing(seeded: Registry) -> None:
    seeded.path.write_bytes(b'{"tasks": {}, "serial": 0}')
    with pytest.raises(RegistryCorrupt, match="missing schema_version"):
        seeded.update(must_not_run)


def test_a_wrong_registry_without_a_backup_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.path.write_bytes(b"{}")
    with pytest.raises(RegistryCorrupt, match="no backup"):
        registry.read()
    with pytest.raises(RegistryCorrupt):
        registry.update(add(make_task()))
    assert registry.path.read_bytes() == b"{}"


def test_a_missing_registry_without_a_backup_is_still_a_fresh_start(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "state")
    assert registry.read() == RegistryState()
    state = registry.update(add(make_task()))
    assert state.serial == 1


def test_the_writer_always_writes_the_required_keys(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.update(lambda s: s.model_copy(update={"outbox": ()}).with_task(make_task()))
    registry.update(lambda s: s.model_copy(update={"tasks": {}}))  # every task removed: still not "{}"
    data = json.loads(registry.path.read_bytes())
    assert {"schema_version", "serial", "tasks", "outbox"} <= set(data)
    assert data["tasks"] == {} and data["serial"] == 2
    assert Registry(tmp_path).read().serial == 2  # an empty but written registry is healthy


def test_restore_refuses_to_put_an_older_backup_over_a_healthy_registry(seeded: Registry) -> None:
    main, backup = seeded.path.read_bytes(), seeded.backup.read_bytes()
    with pytest.raises(RegistryError, match="nothing was restored"):
        seeded.restore_backup()
    assert seeded.path.read_bytes() == main and seeded.backup.read_bytes() == backup
    assert list(seeded.dir.glob("registry.json.damaged-*")) == []


def test_restore_refuses_to_put_an_older_backup_over_a_newer_swarms_registry(seeded: Registry) -> None:
    data = json.loads(seeded.path.read_bytes())
    data["schema_version"] = SCHEMA_VERSION + 1
    data["workers"] = {"host-a": 4}
    seeded.path.write_text(json.dumps(data))
    main = seeded.path.read_bytes()
    with pytest.raises(RegistryTooNew, match="not putting the older backup over it"):
        seeded.restore_backup()
    assert seeded.path.read_bytes() == main


def test_restore_without_a_backup_says_so(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.path.write_bytes(b"{")
    with pytest.raises(RegistryError, match="no backup to restore"):
        registry.restore_backup()
    assert registry.path.read_bytes() == b"{"


def test_reading_a_healthy_registry_stays_cheap(seeded: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup's serial is compared on every read, but the backup is parsed only when it changed."""
    seeded.read()
    calls: list[bytes] = []
    real = json.loads

    def spy(raw: bytes) -> Any:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr("registry.store.json.loads", spy)
    for _ in range(5):
        seeded.read()
    seeded.update(add(make_task("third")))
    seeded.read()
    assert calls == []


# -- 9. a real full disk (a tiny tmpfs) --------------------------------------------------------------------


def test_a_really_full_disk_leaves_the_registry_and_its_backup_intact(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "state", "256k") as state_dir:
        registry = Registry(state_dir)
        registry.update(add(make_task("first")))
        registry.update(add(make_task("second")))
        old_main, old_backup = registry.path.read_bytes(), registry.backup.read_bytes()
        filler = fill(state_dir)

        with pytest.raises(OSError) as raised:
            registry.update(add(make_task("third", prompt="x" * 20_000)))
        assert raised.value.errno == errno.ENOSPC
        assert registry.path.read_bytes() == old_main
        assert registry.backup.read_bytes() == old_backup
        assert stray_temp_files(state_dir) == []
        assert Registry(state_dir).read().serial == 2

        filler.unlink()  # the disk has room again: the next write carries on from the old state
        after = registry.update(add(make_task("third")))
        assert after.serial == 3 and set(after.tasks) == {"first", "second", "third"}
        assert registry.backup.read_bytes() == old_main
