"""Crash-safe storage of the registry in one JSON file.

The only write API is ``Registry.update(fn)``: an exclusive ``flock`` on a sidecar lock file, then
temp file → fsync → ``os.replace`` → fsync of the directory, with the previous good copy kept as
``registry.json.bak``. A registry that does not parse is never reset: reads fall back to the backup with
a loud warning, and writes stop with an error until the human restores it (``swarm registry restore``).
A registry that parses but is wrong is damaged too, never "empty": one without the keys every write puts
in it (``{}``), or with a serial below its backup's (an older or emptied copy put over it). The new file
is written in full before the backup is touched, so a full disk leaves both the old file and its backup
as they were.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from registry.models import SCHEMA_VERSION, RegistryState, Task

log = logging.getLogger(__name__)

TMP_PREFIX = ".registry.json.tmp-"
REQUIRED_KEYS = ("schema_version", "serial", "tasks")  # every write puts them in; a file without them is damaged


class RegistryError(Exception):
    """A registry problem the user has to look at; the message says what to do."""


class RegistryCorrupt(RegistryError):
    pass


class RegistryTooNew(RegistryError):
    pass


class Registry:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / "registry.json"
        self.backup = state_dir / "registry.json.bak"
        self.lock_path = state_dir / "registry.lock"
        # Both caches rely on records being immutable (frozen models, copy-on-write transitions):
        # the state parsed from exactly these bytes, and each task's JSON keyed by the task object.
        self._parsed: tuple[bytes, RegistryState] | None = None
        self._task_json: dict[str, tuple[Task, bytes]] = {}
        # the backup's serial, keyed by its (inode, size, mtime): compared with the main file's on each read
        self._backup_serial_cache: tuple[tuple[int, int, int], int | None] | None = None

    # -- reading -------------------------------------------------------------------------------------

    def read(self) -> RegistryState:
        """The current state; the backup (with a warning) when the main file is damaged."""
        state, _raw, problem = self._load()
        if problem:
            log.warning("%s", problem)
        return state

    def _parse(self, raw: bytes, path: Path) -> RegistryState:
        if self._parsed is not None and self._parsed[0] == raw:
            return self._parsed[1]
        try:
            state = RegistryState.model_validate_json(raw)
        except ValidationError as exc:
            version = _declared_schema_version(raw)
            if version is not None and version > SCHEMA_VERSION:
                # A newer swarm's file (new fields fail validation here) is not damage: refuse it as too
                # new instead of falling back to an older backup that `restore` would put over it.
                raise _too_new(path, version) from None
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "top level"
            raise RegistryCorrupt(f"{path} is not a valid registry ({where}: {first['msg']})") from None
        missing = [key for key in REQUIRED_KEYS if key not in state.model_fields_set]
        if missing and state.schema_version <= SCHEMA_VERSION:
            raise RegistryCorrupt(
                f"{path} is not a valid registry (missing {', '.join(missing)}: swarm always writes "
                f"{', '.join(REQUIRED_KEYS)}, so this is not an empty registry but a damaged one)"
            )
        self._parsed = (raw, state)
        return state

    def _backup_serial(self) -> int | None:
        """The serial the backup declares; None without a backup or when it has none (damaged)."""
        try:
            st = os.stat(self.backup)
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._backup_serial_cache is not None and self._backup_serial_cache[0] == key:
            return self._backup_serial_cache[1]
        try:
            serial = _declared_int(self.backup.read_bytes(), "serial")
        except FileNotFoundError:
            return None
        self._backup_serial_cache = (key, serial)
        return serial

    def _remember_backup_serial(self, serial: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(self.backup)
            self._backup_serial_cache = ((st.st_ino, st.st_size, st.st_mtime_ns), serial)

    def _parse_main(self, raw: bytes) -> RegistryState:
        """The main file's state, damaged (:class:`RegistryCorrupt`) when it is older than its own backup."""
        state = self._parse(raw, self.path)
        backup_serial = self._backup_serial()
        if backup_serial is not None and state.serial < backup_serial:
            raise RegistryCorrupt(
                f"{self.path} has serial {state.serial}, lower than its backup's ({backup_serial}): it is an "
                "older or emptied copy, not the current registry"
            )
        return state

    def _load(self) -> tuple[RegistryState, bytes | None, str]:
        """(state, raw bytes of a healthy main file or None, warning text if the backup was used)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            if self.backup.exists():
                state = self._parse(self.backup.read_bytes(), self.backup)
                return state, None, f"{self.path} is missing; showing the backup {self.backup.name}"
            return RegistryState(), None, ""
        try:
            return self._parse_main(raw), raw, ""
        except RegistryCorrupt as main_error:
            if not self.backup.exists():
                raise RegistryCorrupt(
                    f"{main_error}; no backup exists. Nothing was changed: repair the file by hand "
                    "(tasks are never reset automatically)"
                ) from None
            try:
                state = self._parse(self.backup.read_bytes(), self.backup)
            except RegistryCorrupt as backup_error:
                raise RegistryCorrupt(
                    f"{main_error}; the backup is damaged too ({backup_error}). Nothing was changed"
                ) from None
            return state, None, (
                f"WARNING: {main_error}. Showing the last good copy {self.backup.name} "
                f"(serial {state.serial}). Writes are refused until you run `swarm registry restore`"
            )

    def check_writable(self) -> None:
        """Raise the error an update would raise (damaged file, newer schema) without writing."""
        self._writable()

    def _writable(self) -> tuple[RegistryState, bytes | None]:
        state, raw, problem = self._load()
        if problem:
            raise RegistryCorrupt(problem.removeprefix("WARNING: "))
        if state.schema_version > SCHEMA_VERSION:
            raise _too_new(self.path, state.schema_version)
        return state, raw

    # -- writing -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def update(self, fn: Callable[[RegistryState], RegistryState]) -> RegistryState:
        """Apply ``fn`` to the current state and store the result atomically; returns the new state.

        When ``fn`` returns the very state it was given, nothing is written.
        """
        with self.locked():
            self._sweep_temp_files()
            state, raw = self._writable()
            new = fn(state)
            if new is state:
                return state
            new = new.model_copy(update={"serial": state.serial + 1, "schema_version": SCHEMA_VERSION})
            data = self._serialize(new)
            # The new file is complete on disk before the backup changes: a full disk (ENOSPC) or an I/O
            # error while writing it leaves registry.json and registry.json.bak exactly as they were.
            tmp = self._write_temp(data)
            try:
                if raw is not None:
                    self._keep_backup(raw)
                    self._remember_backup_serial(state.serial)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            self._fsync_dir()
            self._parsed = (data, new)
            return new

    def _serialize(self, state: RegistryState) -> bytes:
        """The state as JSON, one task per line; only tasks whose record changed are dumped again."""
        parts = []
        fresh: dict[str, tuple[Task, bytes]] = {}
        for task_id, task in state.tasks.items():
            cached = self._task_json.get(task_id)
            encoded = cached[1] if cached is not None and cached[0] is task else task.model_dump_json().encode()
            fresh[task_id] = (task, encoded)
            parts.append(json.dumps(task_id).encode() + b": " + encoded)
        self._task_json = fresh
        head = state.model_copy(update={"tasks": {}}).model_dump_json().encode()
        body = b"{\n" + b",\n".join(parts) + b"\n}" if parts else b"{}"
        return head.replace(b'"tasks":{}', b'"tasks":' + body, 1) + b"\n"

    def _keep_backup(self, raw: bytes) -> None:
        """The file about to be replaced becomes the backup: a hard link (no copy) where possible."""
        link = self.dir / f"{TMP_PREFIX}{os.getpid()}-bak-{secrets.token_hex(4)}"
        try:
            os.link(self.path, link)
        except OSError:
            self._write_atomic(self.backup, raw)
            return
        try:
            os.replace(link, self.backup)
        finally:
            # rename() does nothing when both names already link the same file (after a failed
            # update): the link must not stay behind as a stray.
            with contextlib.suppress(FileNotFoundError):
                link.unlink()

    def restore_backup(self) -> RegistryState:
        """Replace a damaged registry.json with the backup (keeping the damaged file aside).

        Refused when registry.json is healthy: a backup is never put over a newer (or equal) registry,
        nor over one written by a newer swarm."""
        with self.locked():
            try:
                backup_raw = self.backup.read_bytes()
            except FileNotFoundError:
                raise RegistryError(f"{self.backup} does not exist: there is no backup to restore") from None
            state = self._parse(backup_raw, self.backup)
            if state.schema_version > SCHEMA_VERSION:
                raise _too_new(self.backup, state.schema_version)
            try:
                current: RegistryState | None = self._parse(self.path.read_bytes(), self.path)
            except (FileNotFoundError, RegistryCorrupt):
                current = None
            except RegistryTooNew as exc:
                raise RegistryTooNew(f"{exc}; not putting the older backup over it") from None
            if current is not None and current.schema_version > SCHEMA_VERSION:
                raise RegistryTooNew(f"{_too_new(self.path, current.schema_version)}; not putting the older "
                                     "backup over it")
            if current is not None and current.serial >= state.serial:
                raise RegistryError(
                    f"{self.path} is healthy and not older than the backup (serial {current.serial} vs "
                    f"{state.serial}); nothing was restored (a backup never replaces a newer registry)"
                )
            if self.path.exists():
                aside = self.dir / f"registry.json.damaged-{secrets.token_hex(3)}"
                os.replace(self.path, aside)
                log.warning("kept the damaged registry as %s", aside.name)
            self._write_atomic(self.path, backup_raw)
            return state

    def _write_temp(self, data: bytes) -> Path:
        """``data`` in a new temp file beside the registry, fsynced; nothing is left behind on error."""
        tmp = self.dir / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return tmp

    def _write_atomic(self, target: Path, data: bytes) -> None:
        tmp = self._write_temp(data)
        try:
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _sweep_temp_files(self) -> None:
        """Temp files can only be strays here: every writer holds the lock while its temp file exists."""
        for stray in self.dir.glob(f"{TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                stray.unlink()
                log.info("removed stray temp file %s", stray.name)


def _declared_schema_version(raw: bytes) -> int | None:
    """The ``schema_version`` a file claims, read without validating the rest; None if there is none."""
    return _declared_int(raw, "schema_version")


def _declared_int(raw: bytes, key: str) -> int | None:
    """The integer a file's top-level ``key`` holds, read without validating the rest; None if none."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _too_new(path: Path, version: int) -> RegistryTooNew:
    return RegistryTooNew(
        f"{path} has schema_version {version}, newer than this swarm understands ({SCHEMA_VERSION}); "
        "upgrade swarm. The registry was not changed"
    )
