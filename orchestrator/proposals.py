"""Proposed tasks that wait for a person: nothing read from a meeting is spawned without a yes.

Kept in ``.swarm/proposals.json`` (written atomically, under ``.swarm/proposals.lock``, so discovery and a
human's approve never lose each other's change). A proposal is ``pending`` until a person approves it
(`swarm proposals approve ID`: spawned through the same code as `swarm spawn`) or drops it. Ids are short
and never reused (``p1``, ``p2``, ...) so they can be typed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.agent_run import write_json_atomic
from monitor.fence import Fence
from monitor.redact import redact
from orchestrator.errors import UsageError
from registry.models import OutboxMessage

if TYPE_CHECKING:
    from monitor.tick import World
    from orchestrator.config import Settings

STATE_NAME = "proposals.json"
LOCK_NAME = "proposals.lock"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Proposal(_Record):
    id: str
    kind: str  # "request" | "bug"
    title: str
    description: str
    acceptance: tuple[str, ...] = ()
    quotes: tuple[str, ...]
    source: str  # the notes file, relative to the repository
    created_at: datetime
    status: Literal["pending", "approved", "dropped"] = "pending"
    task_id: str = ""
    decided_at: datetime | None = None


class ProposalState(_Record):
    next: int = 1
    proposals: tuple[Proposal, ...] = ()


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_NAME


def load(state_dir: Path) -> ProposalState:
    try:
        return ProposalState.model_validate(json.loads(state_path(state_dir).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return ProposalState()
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise UsageError(f"{state_path(state_dir)} is not readable ({type(exc).__name__}); move it away to start "
                         "a new list") from None


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update(state_dir: Path, change: Callable[[ProposalState], ProposalState]) -> ProposalState:
    with _locked(state_dir):
        new = change(load(state_dir))
        write_json_atomic(state_path(state_dir), new.model_dump(mode="json"))
        return new


def add(state_dir: Path, drafts: Sequence[Proposal]) -> list[Proposal]:
    """Store new pending proposals (their ids are given here); returns them as stored."""
    added: list[Proposal] = []

    def change(state: ProposalState) -> ProposalState:
        number = state.next
        for draft in drafts:
            added.append(draft.model_copy(update={"id": f"p{number}", "status": "pending"}))
            number += 1
        return state.model_copy(update={"next": number, "proposals": (*state.proposals, *added)})

    update(state_dir, change)
    return added


def find(state: ProposalState, given: str) -> Proposal:
    given = given.strip().lower()
    for proposal in state.proposals:
        if proposal.id == given or proposal.id == f"p{given}":
            return proposal
    raise UsageError(f"no proposal {given!r} (see `swarm proposals`)")


def mark(state_dir: Path, proposal_id: str, status: Literal["approved", "dropped"], now: datetime,
         task_id: str = "") -> Proposal:
    """Record the person's answer; a proposal is answered once."""
    done: list[Proposal] = []

    def change(state: ProposalState) -> ProposalState:
        found = find(state, proposal_id)
        if found.status != "pending":
            raise UsageError(f"proposal {found.id} is already {found.status}"
                             + (f" (task {found.task_id})" if found.task_id else ""))
        new = found.model_copy(update={"status": status, "task_id": task_id, "decided_at": now})
        done.append(new)
        return state.model_copy(update={"proposals": tuple(new if p.id == found.id else p
                                                           for p in state.proposals)})

    update(state_dir, change)
    return done[0]


def task_prompt(proposal: Proposal) -> str:
    """The agent's prompt: the request as the model summarised it, with the lines it came from fenced (they
    are what people said or wrote, not instructions to the agent)."""
    fence = Fence()
    quotes = "\n".join(f"> {q}" for q in proposal.quotes)
    parts = [
        f"{'Fix this bug' if proposal.kind == 'bug' else 'Build this request'}, raised in the team's notes "
        f"({proposal.source}) and approved by a person: {proposal.title}",
        proposal.description,
        fence.preamble() + " Here they are the lines of the notes it came from.",
        fence.wrap(f"notes {proposal.source}", quotes, 3000),
    ]
    return "\n\n".join(p for p in parts if p.strip()) + "\n"


def pending_message(added: Sequence[Proposal], now: datetime) -> OutboxMessage:
    """One message listing the new proposals and how to answer them."""
    lines = [f"{len(added)} new proposal(s) from meeting notes — nothing starts until you approve"]
    for p in added[:20]:
        lines.append(f"  {p.id} [{p.kind}] {p.title} (from {p.source})")
        if p.quotes:
            lines.append(f"      \"{p.quotes[0][:160]}\"")
    lines.append("  swarm proposals approve ID...   |   swarm proposals drop ID...")
    first, last = added[0].id, added[-1].id
    data = {"event": "proposals", "task_id": "", "title": "New proposals", "status": "pending",
            "reason": f"{len(added)} proposal(s) wait for you", "proposals": [p.id for p in added],
            "commands": ["swarm proposals", f"swarm proposals approve {first}"]}
    return OutboxMessage(key=f"proposals:{first}-{last}", task_id="proposals", kind="proposals",
                         text=redact("\n".join(lines)), data=data, created_at=now)


def _set(state_dir: Path, proposal_id: str, **values: object) -> Proposal:
    done: list[Proposal] = []

    def change(state: ProposalState) -> ProposalState:
        new = find(state, proposal_id).model_copy(update=values)
        done.append(new)
        return state.model_copy(update={"proposals": tuple(new if p.id == new.id else p for p in state.proposals)})

    update(state_dir, change)
    return done[0]


def approve(world: World, settings: Settings, proposal_id: str) -> Proposal:
    """Spawn the proposal's task through the same code as `swarm spawn` (it waits like any task for a slot
    and the budget). Marked approved first, so two approvals never make two tasks; back to pending if the
    task cannot be created."""
    from orchestrator.tasks import spawn

    state_dir = world.layout.state_dir
    now = world.clock()
    proposal = mark(state_dir, proposal_id, "approved", now)
    kind = settings.discovery.notes_kind
    try:
        task = spawn(world, title=proposal.title, prompt=task_prompt(proposal),
                     agent=settings.routing.get(kind, settings.routing["default"]), kind=kind, after=(),
                     base_branch=settings.project.base_branch, acceptance=proposal.acceptance,
                     links=(f"proposal {proposal.id} from {proposal.source}",))
    except Exception:
        _set(state_dir, proposal.id, status="pending", decided_at=None)
        raise
    world.events.append(now, task.id, "proposal_approved", proposal=proposal.id, source=proposal.source)
    return _set(state_dir, proposal.id, task_id=task.id)


def drop(state_dir: Path, proposal_id: str, now: datetime) -> Proposal:
    return mark(state_dir, proposal_id, "dropped", now)
