"""Crash-safe storage of the registry in one JSON file.

The only write API is ``Registry.update(fn)``: an exclusive ``flock`` on a sidecar lock file, then
temp file → fsync → ``os.replace`` → fsync of the directory, with the previous good copy kept as
``registry.json.bak``. A registry that does not parse is never reset: reads fall back to the backup with
a loud warning, and writes stop with an error until the human restores it (``swarm registry restore``).
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
        self._parsed = (raw, state)
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
            return self._parse(raw, self.path), raw, ""
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
            if raw is not None:
                self._keep_backup(raw)
            data = self._serialize(new)
            self._write_atomic(self.path, data)
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
        """Replace a damaged registry.json with the backup (keeping the damaged file aside)."""
        with self.locked():
            state = self._parse(self.backup.read_bytes(), self.backup)
            if self.path.exists():
                aside = self.dir / f"registry.json.damaged-{secrets.token_hex(3)}"
                os.replace(self.path, aside)
                log.warning("kept the damaged registry as %s", aside.name)
            self._write_atomic(self.path, self.backup.read_bytes())
            return state

    def _write_atomic(self, target: Path, data: bytes) -> None:
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
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
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
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    version = data.get("schema_version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _too_new(path: Path, version: int) -> RegistryTooNew:
    return RegistryTooNew(
        f"{path} has schema_version {version}, newer than this swarm understands ({SCHEMA_VERSION}); "
        "upgrade swarm. The registry was not changed"
    )
