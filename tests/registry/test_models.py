"""Registry records: validation, immutability and the JSON round trip the store relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from registry.models import (
    SCHEMA_VERSION,
    Attempt,
    Failure,
    FailureKind,
    OutboxMessage,
    RegistryState,
    Status,
)
from tests.registry.test_store import make_task

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def make_attempt(number: int = 1, **fields: object) -> Attempt:
    attempt = Attempt(number=number, session=f"s-{number}", prompt_path=f"/p/{number}.md", started_at=NOW)
    return attempt.model_copy(update=fields) if fields else attempt


@pytest.mark.parametrize("task_id", ["a", "0", "fix-login-42", "a" * 63])
def test_valid_task_ids(task_id: str) -> None:
    assert make_task(task_id).id == task_id


@pytest.mark.parametrize("task_id", ["", "-leading-dash", "Upper", "has space", "under_score", "a" * 64, "é"])
def test_invalid_task_ids_are_rejected(task_id: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="task id"):
        make_task(task_id)


def test_records_are_frozen_and_reject_unknown_fields() -> None:
    task = make_task()
    with pytest.raises(pydantic.ValidationError):
        task.title = "changed"  # type: ignore[misc]
    data = task.model_dump()
    data["surprise"] = 1
    with pytest.raises(pydantic.ValidationError, match="surprise"):
        type(task).model_validate(data)


def test_with_task_returns_a_new_state_and_leaves_the_old_one_alone() -> None:
    empty = RegistryState()
    one = empty.with_task(make_task("a"))
    two = one.with_task(make_task("b"))
    assert empty.tasks == {}
    assert set(one.tasks) == {"a"}
    assert set(two.tasks) == {"a", "b"}
    replaced = two.with_task(make_task("a", title="new title"))
    assert replaced.tasks["a"].title == "new title"
    assert two.tasks["a"].title == "Task a"


def test_enqueue_ignores_a_message_with_a_known_key() -> None:
    message = OutboxMessage(key="k1", task_id="a", kind="failed", text="boom", created_at=NOW)
    state = RegistryState().enqueue(message)
    assert state.enqueue(message.model_copy(update={"text": "again"})) is state
    assert [m.text for m in state.outbox] == ["boom"]
    assert len(state.enqueue(message.model_copy(update={"key": "k2"})).outbox) == 2


def test_attempt_helpers() -> None:
    task = make_task(attempts=(make_attempt(1, tokens=100, cost_usd=0.1), make_attempt(2, tokens=50)))
    assert task.attempt is not None
    assert task.attempt.number == 2
    assert task.tokens == 150
    assert task.cost_usd == 0.1
    ended = task.with_attempt(task.attempt.model_copy(update={"exit_code": 1}))
    assert [a.exit_code for a in ended.attempts] == [None, 1]
    assert make_task().attempt is None


def test_status_properties() -> None:
    assert {s for s in Status if s.active} == {Status.queued, Status.running, Status.checking, Status.ready}
    assert {s for s in Status if s.holds_slot} == {Status.running}


def test_json_round_trip_is_exact() -> None:
    failure = Failure(kind=FailureKind.died, summary="exited", evidence="tail ✗", at=NOW)
    attempt = make_attempt(1, ended_at=NOW + timedelta(minutes=5), failure=failure, cost_usd=1.25)
    state = RegistryState(
        serial=7,
        tasks={"a": make_task("a", status=Status.failed, attempts=(attempt,), checks={"ci": "fail"})},
        outbox=(OutboxMessage(key="k", task_id="a", kind="failed", text="t", created_at=NOW),),
    )
    again = RegistryState.model_validate_json(state.model_dump_json(indent=1))
    assert again == state
    assert again.schema_version == SCHEMA_VERSION
    assert again.tasks["a"].attempts[0].failure == failure
    assert again.tasks["a"].created_at.tzinfo is not None
