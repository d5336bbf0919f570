"""Meeting notes and feedback → proposals: `swarm discover notes`, and the service every
``[discovery] notes_every``.

Files under the ``[discovery] notes`` paths (globs or directories, relative to the repository: markdown or
text transcripts, support exports) are read once each. ``.swarm/notes.json`` remembers each file's content
hash and the hashes of the lines already read; a file whose hash changed is read again, and only its lines
that were not in an earlier version are sent (an appended transcript sends what was appended; an edited
line counts as new). A file longer than ``max_note_chars`` is sent in parts, one part per run.

With a model key, the model picks out concrete requests and bugs, each with the lines it came from; quotes
that are not in the text sent are dropped (``notes_prompt.py``), and what is left is stored as proposals that
wait for a person (``orchestrator/proposals.py``), with one message listing them. Nothing is spawned here.
Without a key this says so in one line and reads nothing: there is no heuristic pretending to extract.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.agent_run import write_json_atomic
from monitor.fence import Fence
from monitor.locks import try_lock
from monitor.tick import World
from orchestrator import proposals
from orchestrator.budget import check_llm, record_spend
from orchestrator.config import CONFIG_NAME, Settings
from orchestrator.discovery import notes_prompt
from orchestrator.errors import OperationalError, UsageError

if TYPE_CHECKING:
    from orchestrator.brain.llm import Llm

log = logging.getLogger(__name__)
STATE_NAME = "notes.json"
TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".csv", ".json", ".jsonl", ".vtt", ".srt", ".log", ".rst"}
MAX_FILE_BYTES = 5_000_000


@dataclass
class NotesReport:
    read: list[str] = field(default_factory=list)  # files sent to the model this run
    proposed: list[proposals.Proposal] = field(default_factory=list)
    dropped_quotes: int = 0
    waiting: list[str] = field(default_factory=list)  # changed files not read (no key, dry run, an error)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = list(self.notes)
        for p in self.proposed:
            out.append(f"proposed {p.id} [{p.kind}] {p.title} (from {p.source})")
        if self.read:
            out.append(f"read {len(self.read)} notes file(s): {len(self.proposed)} proposal(s)"
                       + (f"; {self.dropped_quotes} quote(s) not found in the notes were dropped"
                          if self.dropped_quotes else ""))
        if self.proposed:
            out.append("nothing starts until you approve: swarm proposals approve ID (or drop ID)")
        if not out:
            out.append("no new or changed notes")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "waiting": self.waiting, "dropped_quotes": self.dropped_quotes,
                "proposals": [p.model_dump(mode="json") for p in self.proposed], "notes": self.notes}


def _line_hash(line: str) -> str:
    return hashlib.sha256(" ".join(line.split()).encode()).hexdigest()[:16]


def note_files(repo: Path, patterns: list[str]) -> list[Path]:
    """The text files the patterns name (a directory: every text file under it), inside the repository."""
    root = repo.resolve()
    found: dict[str, Path] = {}
    for pattern in patterns:
        target = repo / pattern
        candidates = target.rglob("*") if target.is_dir() else repo.glob(pattern)
        for path in candidates:
            try:
                resolved = path.resolve()
                resolved.relative_to(root)
            except (OSError, ValueError):
                continue  # a link out of the repository is not a note
            rel = path.relative_to(repo)
            if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                continue
            if path.suffix.lower() in TEXT_SUFFIXES:
                found[str(rel)] = path
    return [found[k] for k in sorted(found)]


def _load_state(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / STATE_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {"files": {}}
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else {"files": {}}


@contextlib.contextmanager
def _lock(state_dir: Path) -> Iterator[None]:
    with try_lock(state_dir / "notes.lock") as held:
        if not held:
            raise OperationalError("another notes discovery is running (it holds .swarm/notes.lock); this one did "
                                   "nothing")
        yield


@dataclass(frozen=True)
class _Change:
    rel: str
    sha: str
    text: str  # the lines to send
    taken: frozenset[str]  # their hashes
    complete: bool  # every new line is in ``text`` (else the rest waits for the next run)
    changed: bool  # the file was read before


def _changes(repo: Path, settings: Settings, state: dict[str, Any], report: NotesReport) -> list[_Change]:
    out = []
    for path in note_files(repo, settings.discovery.notes):
        rel = str(path.relative_to(repo))
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                report.notes.append(f"{rel}: over {MAX_FILE_BYTES // 1_000_000} MB; skipped")
                continue
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            report.notes.append(f"{rel}: not readable as UTF-8 text ({type(exc).__name__}); skipped")
            continue
        sha = hashlib.sha256(content.encode()).hexdigest()
        record = state["files"].get(rel) or {}
        if record.get("sha256") == sha:
            continue
        seen = set(record.get("lines") or [])
        budget = settings.discovery.max_note_chars
        lines: list[str] = []
        taken: set[str] = set()
        complete, size = True, 0
        for line in content.splitlines():
            digest = _line_hash(line)
            if not line.strip() or digest in seen or digest in taken:
                continue
            if size + len(line) > budget:
                complete = False
                break
            lines.append(line)
            size += len(line) + 1
            taken.add(digest)
        out.append(_Change(rel, sha, "\n".join(lines), frozenset(taken), complete, bool(record)))
    return out


def _remember(state_dir: Path, change: _Change, now: datetime) -> None:
    state = _load_state(state_dir)
    record = state["files"].get(change.rel) or {}
    lines = sorted(set(record.get("lines") or []) | change.taken)
    state["files"][change.rel] = {"sha256": change.sha if change.complete else record.get("sha256", ""),
                                  "lines": lines, "read_at": now.isoformat()}
    write_json_atomic(state_dir / STATE_NAME, state)


def discover_notes(world: World, settings: Settings, llm: Llm | None, now: datetime, *,
                   dry_run: bool = False) -> NotesReport:
    if not settings.discovery.notes:
        raise UsageError(f"no notes to read: set [discovery] notes = [\"docs/meetings\"] in {CONFIG_NAME}")
    report = NotesReport()
    state_dir = world.layout.state_dir
    with _lock(state_dir):
        changes = _changes(world.layout.repo, settings, _load_state(state_dir), report)
        for change in changes:
            if not change.text.strip():  # only removed or blank lines: nothing to read
                if not dry_run:
                    _remember(state_dir, change, now)
                continue
            if dry_run or llm is None:
                report.waiting.append(change.rel)
                continue
            check_llm(settings, state_dir, world.registry, now, "reading notes")
            _read(world, settings, llm, change, now, report)
    if llm is None and report.waiting:
        report.notes.insert(0, f"no model key in ${settings.llm.api_key_env}: {len(report.waiting)} new or changed "
                               "notes file(s) not read (proposals are extracted by the model only)")
    elif dry_run and report.waiting:
        report.notes.insert(0, f"would read {len(report.waiting)} notes file(s): {', '.join(report.waiting)}")
    if report.proposed:
        message = proposals.pending_message(report.proposed, now)
        world.registry.update(lambda s: s.enqueue(message))  # one message with the list (Slack)
        world.events.append(now, "", "proposed", source="notes", proposals=",".join(p.id for p in report.proposed))
    return report


def _read(world: World, settings: Settings, llm: Llm, change: _Change, now: datetime, report: NotesReport) -> None:
    from orchestrator.brain.llm import LlmError

    fence = Fence()
    sent = notes_prompt.sent_text(change.text)
    prompt = notes_prompt.user_prompt(change.rel, change.text, fence, changed=change.changed)
    try:
        data, usage, _raw = llm.structured(notes_prompt.SYSTEM, prompt, notes_prompt.TOOL, notes_prompt.SCHEMA)
    except LlmError as exc:
        record_spend(world.registry, now, exc.usage.tokens, exc.usage.cost_usd, "notes")
        report.waiting.append(change.rel)
        report.notes.append(f"{change.rel}: not read ({exc}); tried again next run")
        return
    record_spend(world.registry, now, usage.tokens, usage.cost_usd, "notes")
    items, dropped = notes_prompt.parse_answer(data, sent)
    report.dropped_quotes += dropped
    drafts = [proposals.Proposal(id="", kind=i.kind, title=i.title, description=i.description,
                                 acceptance=i.acceptance, quotes=i.quotes, source=change.rel, created_at=now)
              for i in items]
    report.proposed += proposals.add(world.layout.state_dir, drafts) if drafts else []
    report.read.append(change.rel)
    _remember(world.layout.state_dir, change, now)
    if dropped:
        log.info("notes %s: %d quote(s) not found in the text were dropped", change.rel, dropped)
