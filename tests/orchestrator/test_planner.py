"""Reliability case 15: whatever the model answers, `make_plan` returns a valid plan or refuses it whole.

The real ``anthropic`` client talks to a scripted Messages API on 127.0.0.1, so the wire format, the SDK's
retries and its error classes are the real ones. A refused answer leaves exactly one dead-letter file and
nothing else on disk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.brain.llm import Llm, LlmError, price
from orchestrator.brain.plan import Plan, PlannedTask
from orchestrator.brain.plan_repair import normalize
from orchestrator.brain.plan_shape import find_cycle, paths_overlap, shape
from orchestrator.brain.planner import PLAN_TOOL, PlanError, make_plan
from orchestrator.config import LlmSettings, Settings
from tests.fakes.messages_api import ScriptedMessagesServer, Turn, answer, api_error, text, tool_use

KEY = "sk-ant-api03-test-key-never-shown"
MODEL = "claude-sonnet-4-6"
PROFILES = ("claude", "codex")
SETTINGS = Settings()  # max_tasks 8, min_task_chars 200

Start = Callable[[Sequence[Turn]], ScriptedMessagesServer]



def llm_for(server: ScriptedMessagesServer, max_retries: int = 0) -> Llm:
    return Llm(KEY, MODEL, base_url=server.url, timeout=20, max_retries=max_retries)


def words(topic: str, n: int = 260) -> str:
    """A description long enough not to count as trivial (min_task_chars = 200)."""
    filler = f"{topic}: build it carefully with tests and docs for the people who rely on it. "
    return (filler * (n // len(filler) + 1))[:n]


def task(id: Any, *, scope: Sequence[str] = (), depends_on: Any = None, **extra: Any) -> dict[str, Any]:
    return {"id": id, "title": f"Task {id}", "kind": "default", "description": words(str(id)),
            "scope": list(scope), "acceptance": [f"{id} works"], "depends_on": depends_on or [], **extra}


def plan_answer(data: Any) -> list[Turn]:
    return [[tool_use(PLAN_TOOL, data)]]


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def plan_with(
    start_api: Start, tmp_path: Path, data: Any, settings: Settings = SETTINGS
) -> tuple[Plan, ScriptedMessagesServer]:
    api = start_api(plan_answer(data))
    plan, _ = make_plan(llm_for(api), "Add CSV export", "", settings, PROFILES, dead_letter_dir=tmp_path / "dl")
    assert not (tmp_path / "dl").exists(), "a usable plan writes nothing"
    return plan, api


def refused(start_api: Start, tmp_path: Path, script: Sequence[Turn], settings: Settings = SETTINGS,
            max_retries: int = 0) -> tuple[PlanError, dict[str, Any]]:
    """Plan with ``script``, expect a refusal; the error and the one dead-letter, the only file written."""
    api = start_api(script)
    with pytest.raises(PlanError) as caught:
        make_plan(llm_for(api, max_retries), "Add CSV export", "ctx", settings, PROFILES,
                  dead_letter_dir=tmp_path / "dl")
    written = files_under(tmp_path)
    assert len(written) == 1, f"exactly one dead-letter and nothing else: {written}"
    path = written[0]
    assert path.parent == tmp_path / "dl" and path.name.endswith("-plan.json")
    assert caught.value.dead_letter == path and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    return caught.value, json.loads(path.read_text())


# -- answers that are usable as they are, or after repair -------------------------------------------


def test_valid_plan_is_returned_with_usage_and_the_forced_tool_request(start_api: Start, tmp_path: Path) -> None:
    data = {
        "summary": "Export orders as CSV, then document it.",
        "contracts": [{"name": "export_csv", "kind": "function", "spec": "def export_csv(orders) -> str",
                       "owner": "csv-export"}],
        "tasks": [task("csv-export", scope=["src/export.py"], agent="codex"),
                  task("csv-docs", scope=["docs/export.md"], depends_on=["csv-export"])],
    }
    api = start_api([answer(tool_use(PLAN_TOOL, data), input_tokens=1200, output_tokens=800)])
    plan, usage = make_plan(llm_for(api), "Add CSV export", "Customers asked for CSV.", SETTINGS, PROFILES,
                            dead_letter_dir=tmp_path / "dl")

    assert [t.id for t in plan.tasks] == ["csv-export", "csv-docs"]
    assert plan.tasks[1].depends_on == ("csv-export",)
    assert plan.tasks[0].agent == "codex"
    assert plan.contracts[0].owner == "csv-export" and plan.contracts[0].kind == "function"
    assert plan.notes == ()
    assert (usage.input_tokens, usage.output_tokens) == (1200, 800)
    assert usage.cost_usd == pytest.approx(price(MODEL, 1200, 800)) == pytest.approx(0.0156)

    (request,) = api.agent_requests
    assert request["tool_choice"] == {"type": "tool", "name": PLAN_TOOL}
    assert request["tools"][0]["name"] == PLAN_TOOL
    assert request["tools"][0]["input_schema"]["properties"]["tasks"]["maxItems"] == 8
    assert request["model"] == MODEL and request["max_tokens"] == SETTINGS.llm.max_tokens
    system = request["system"] if isinstance(request["system"], str) else json.dumps(request["system"])
    assert "codex" in system and "contract" in system.lower()
    assert "Customers asked for CSV." in json.dumps(request["messages"])
    headers = {k.lower(): v for k, v in api.log[-1].headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert not (tmp_path / "dl").exists()


def test_integer_and_non_slug_ids_become_slugs_and_dependencies_follow(start_api: Start, tmp_path: Path) -> None:
    data = {"tasks": [task(1, scope=["a.py"]), task(2, scope=["b.py"], depends_on=[1]),
                      task("CSV Export!", scope=["c.py"], depends_on=["2", 1])]}
    plan, _ = plan_with(start_api, tmp_path, data)
    assert [t.id for t in plan.tasks] == ["1", "2", "csv-export"]
    assert plan.tasks[1].depends_on == ("1",)
    assert plan.tasks[2].depends_on == ("2", "1")
    assert any("'CSV Export!' renamed to 'csv-export'" in n for n in plan.notes)


def test_object_keyed_by_id_and_single_strings_become_lists(start_api: Start, tmp_path: Path) -> None:
    api_task = task(None, scope=["src/api.py"])
    del api_task["id"]
    ui_task = {**task(None), "scope": "web/app.tsx", "acceptance": "- shows the button\n- downloads a file",
               "depends_on": "api"}
    del ui_task["id"]
    plan, _ = plan_with(start_api, tmp_path, {"tasks": {"api": api_task, "ui": ui_task}, "contracts": []})
    assert [t.id for t in plan.tasks] == ["api", "ui"]
    assert plan.tasks[1].scope == ("web/app.tsx",)
    assert plan.tasks[1].acceptance == ("shows the button", "downloads a file")
    assert plan.tasks[1].depends_on == ("api",)
    assert any("keyed by id" in n for n in plan.notes)


def test_extra_fields_are_dropped_with_a_note(start_api: Start, tmp_path: Path) -> None:
    data = {"summary": "s", "estimate_days": 3, "notes": ["model's own"], "context_used": ["x"],
            "tasks": [task("a", priority="high", estimate=2)],
            "contracts": [{"name": "Row", "kind": "data", "spec": "id: int", "owner": "", "version": 2}]}
    plan, _ = plan_with(start_api, tmp_path, data)
    assert plan.context_used == ()
    assert "model's own" not in plan.notes
    joined = "\n".join(plan.notes)
    assert "context_used, estimate_days, notes" in joined
    assert "of task 'a': estimate, priority" in joined
    assert "of contract 'Row': version" in joined


def test_unknown_profile_is_left_to_routing_and_unknown_dependencies_dropped(start_api: Start,
                                                                            tmp_path: Path) -> None:
    data = {"tasks": [task("a", scope=["a.py"], agent="gpt-engineer"),
                      task("b", scope=["b.py"], agent="codex", depends_on=["a", "zzz", "b"])]}
    plan, _ = plan_with(start_api, tmp_path, data)
    assert plan.tasks[0].agent == "" and plan.tasks[1].agent == "codex"
    assert plan.tasks[1].depends_on == ("a",)
    joined = "\n".join(plan.notes)
    assert "'gpt-engineer' is not a configured profile" in joined
    assert "unknown task 'zzz'" in joined and "on itself" in joined


# -- shaping -------------------------------------------------------------------------------------------


def test_overlapping_scopes_are_sequenced_unless_already_ordered(start_api: Start, tmp_path: Path) -> None:
    data = {"tasks": [task("model", scope=["src/export/csv.py"]),
                      task("api", scope=["src/export"]),                       # a prefix of model's file
                      task("web", scope=["web/app.tsx"]),                      # disjoint: stays parallel
                      task("docs", scope=["./src/export/csv.py"], depends_on=["api"]),  # ordered via api
                      task("style", scope=["web/*.tsx"])]}                      # a glob matching web's file
    plan, _ = plan_with(start_api, tmp_path, data)
    deps = {t.id: t.depends_on for t in plan.tasks}
    assert deps == {"model": (), "api": ("model",), "web": (), "docs": ("api",), "style": ("web",)}
    sequenced = [n for n in plan.notes if "now waits for" in n]
    assert len(sequenced) == 2
    assert "'api' now waits for 'model'" in sequenced[0]


def test_trivial_tasks_are_merged_into_a_neighbour(start_api: Start, tmp_path: Path) -> None:
    tiny = {"id": "typo", "title": "Fix typo", "description": "Fix the typo.", "scope": ["README.md"],
            "acceptance": ["no typo"], "depends_on": ["big"]}
    data = {"tasks": [task("big", scope=["src/a.py"]), tiny, task("after", scope=["src/b.py"], depends_on=["typo"])],
            "contracts": [{"name": "c", "spec": "x", "owner": "typo"}]}
    plan, _ = plan_with(start_api, tmp_path, data)
    assert [t.id for t in plan.tasks] == ["big", "after"]
    big = plan.tasks[0]
    assert "Fix the typo." in big.description and "README.md" in big.scope and "no typo" in big.acceptance
    assert plan.tasks[1].depends_on == ("big",)  # the dependency followed the merge
    assert plan.contracts[0].owner == "big"
    assert any("merged trivial task 'typo'" in n and "'big'" in n for n in plan.notes)


def test_a_plan_over_the_cap_is_merged_down_when_modestly_over(start_api: Start, tmp_path: Path) -> None:
    settings = Settings(llm=LlmSettings(max_tasks=3))
    data = {"tasks": [task(f"t{i}", scope=[f"src/m{i}.py"]) | {"description": words(f"t{i}", 260 + 40 * i)}
                      for i in range(5)]}
    plan, _ = plan_with(start_api, tmp_path, data, settings)
    # the smallest (t0) goes into its next task t1; then the smallest is t2, into the task before it: t1
    assert [t.id for t in plan.tasks] == ["t1", "t3", "t4"]
    assert plan.tasks[0].scope == ("src/m1.py", "src/m0.py", "src/m2.py")  # no work lost
    assert "Also (Task t0)" in plan.tasks[0].description and "Also (Task t2)" in plan.tasks[0].description
    capped = [n for n in plan.notes if "to stay within llm.max_tasks = 3" in n]
    assert capped == ["merged task 't0' into 't1' to stay within llm.max_tasks = 3",
                      "merged task 't2' into 't1' to stay within llm.max_tasks = 3"]


def test_a_plan_far_over_the_cap_is_refused(start_api: Start, tmp_path: Path) -> None:
    settings = Settings(llm=LlmSettings(max_tasks=3))
    data = {"tasks": [task(f"t{i}", scope=[f"src/m{i}.py"]) for i in range(7)]}
    error, letter = refused(start_api, tmp_path, plan_answer(data), settings)
    assert "7 tasks, more than twice llm.max_tasks = 3" in str(error)
    assert json.loads(letter["raw"]) == data


# -- answers that are refused ------------------------------------------------------------------------


def test_missing_required_fields_are_dead_lettered_and_nothing_else_written(start_api: Start,
                                                                           tmp_path: Path) -> None:
    data = {"tasks": [{"id": "a", "scope": ["a.py"]}]}
    error, letter = refused(start_api, tmp_path, plan_answer(data))
    assert "tasks.0.title: Field required (and 2 more)" in str(error)
    assert json.loads(letter["raw"]) == data
    assert {e["loc"] for e in letter["errors"]} == {"tasks.0.title", "tasks.0.description", "tasks"}
    assert letter["model"] == MODEL and letter["request"] == "Add CSV export"
    assert letter["usage"]["input_tokens"] > 0
    assert error.usage.input_tokens == letter["usage"]["input_tokens"]


def test_a_dependency_cycle_is_refused(start_api: Start, tmp_path: Path) -> None:
    data = {"tasks": [task("a", depends_on=["c"]), task("b", depends_on=["a"]), task("c", depends_on=["b"])]}
    error, letter = refused(start_api, tmp_path, plan_answer(data))
    assert "cycle (a → c → b → a)" in str(error)
    assert letter["error"].startswith("the tasks depend on each other in a cycle")


@pytest.mark.parametrize("shape", ["one huge description", "thousands of tasks"])
def test_a_2mb_answer_is_refused_quickly(start_api: Start, tmp_path: Path, shape: str) -> None:
    if shape == "one huge description":
        data: dict[str, Any] = {"tasks": [task("a") | {"description": "x" * 2_100_000}]}
    else:
        data = {"tasks": [task(i) for i in range(6_000)]}
    raw_size = len(json.dumps(data))
    assert raw_size > 2_000_000
    began = time.monotonic()
    error, letter = refused(start_api, tmp_path, plan_answer(data))
    assert time.monotonic() - began < 30
    assert "characters, over the 1,000,000 a plan may have" in str(error)
    assert letter["raw_chars"] >= raw_size - 10 and not letter["raw_truncated"]


def test_too_many_tasks_under_the_size_limit_are_refused_before_shaping(start_api: Start, tmp_path: Path) -> None:
    data = {"tasks": [{"id": i, "title": "t", "description": "d", "scope": ["x.py"]} for i in range(3_000)]}
    began = time.monotonic()
    error, _ = refused(start_api, tmp_path, plan_answer(data))
    assert time.monotonic() - began < 30
    assert "3000 tasks (at most 200 are considered)" in str(error)


def test_an_answer_cut_at_max_tokens_is_dead_lettered(start_api: Start, tmp_path: Path) -> None:
    partial = {"tasks": [task("a")]}
    script: list[Turn] = [answer(tool_use(PLAN_TOOL, partial), stop_reason="max_tokens", output_tokens=8192)]
    error, letter = refused(start_api, tmp_path, script)
    assert "cut off at 8192 output tokens" in str(error) and "llm.max_tokens" in str(error)
    assert json.loads(letter["raw"]) == partial
    assert error.usage.output_tokens == 8192


def test_an_answer_without_the_tool_call_is_dead_lettered(start_api: Start, tmp_path: Path) -> None:
    error, letter = refused(start_api, tmp_path, [[text("Here is my plan: first, ...")]])
    assert f"did not call the tool {PLAN_TOOL}" in str(error)
    assert letter["raw"] == "Here is my plan: first, ..."


@pytest.mark.parametrize(("status", "words_"), [(429, "rate limited"), (529, "overloaded")])
def test_rate_limited_or_overloaded_after_the_sdk_retries(start_api: Start, tmp_path: Path, status: int,
                                                         words_: str) -> None:
    api = start_api([api_error(status, times=None)])
    with pytest.raises(LlmError) as caught:
        make_plan(llm_for(api, max_retries=1), "Add CSV export", "", SETTINGS, PROFILES,
                  dead_letter_dir=tmp_path / "dl")
    assert len(api.agent_requests) == 2  # the first try and the one retry the SDK was allowed
    message = str(caught.value)
    assert words_ in message and f"({status}" in message and "after 1 retry; try again later" in message
    assert caught.value.retryable and KEY not in message
    assert files_under(tmp_path) == []  # no answer, nothing to keep


def test_a_transient_error_retried_by_the_sdk_still_plans(start_api: Start, tmp_path: Path) -> None:
    api = start_api([api_error(529), *plan_answer({"tasks": [task("a")]})])
    plan, _ = make_plan(llm_for(api, max_retries=1), "r", "", SETTINGS, PROFILES, dead_letter_dir=tmp_path / "dl")
    assert [t.id for t in plan.tasks] == ["a"] and len(api.agent_requests) == 2


# -- the pure helpers, as tables -------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("src/a.py", "src/a.py", True),
    ("./src/a.py", "src/a.py/", True),
    ("src", "src/a.py", True),
    ("src/a", "src/ab.py", False),          # a prefix of the name, not of the path
    ("src/*.py", "src/a.py", True),
    ("src/*.py", "src/a.ts", False),
    ("src/*.py", "src", True),              # the directory holding the glob's files
    ("web/**", "api/x.py", False),
    ("*.css", "web/site.css", True),        # a glob without a directory may match anywhere
    (".", "anything/at/all.py", True),      # the whole repository
    ("docs/a.md", "src/a.md", False),
])
def test_paths_overlap(a: str, b: str, overlap: bool) -> None:
    assert paths_overlap(a, b) is overlap and paths_overlap(b, a) is overlap


@pytest.mark.parametrize(("graph", "cycle"), [
    ({"a": ["b"], "b": []}, None),
    ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
    ({"a": ["a"]}, ["a", "a"]),
    ({"x": [], "a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
    ({"a": ["gone"]}, None),                # edges out of the plan are not this check's business
])
def test_find_cycle(graph: dict[str, list[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_normalize_unwraps_json_strings_and_wrappers_and_renames_duplicates() -> None:
    inner = {"tasks": json.dumps([{"id": "Parse", "title": "p", "description": "d"},
                                  {"id": "parse", "title": "q", "description": "d", "depends_on": "Parse"}]),
             "contracts": {"Row": {"kind": "struct", "spec": "id: int", "owner": "Parse"}}}
    fixed, notes = normalize({"plan": inner}, ["claude"])
    assert [t["id"] for t in fixed["tasks"]] == ["parse", "parse-2"]
    assert fixed["tasks"][1]["depends_on"] == ["parse"]
    assert fixed["contracts"] == [{"name": "Row", "kind": "other", "spec": "id: int", "owner": "parse"}]
    joined = "\n".join(notes)
    assert "wrapped in 'plan'" in joined and "'parse' renamed to 'parse-2'" in joined
    assert "kind 'struct' read as 'other'" in joined
    Plan.model_validate(fixed)  # and the result is valid


def test_normalize_leaves_what_it_cannot_fix_for_validation() -> None:
    fixed, _ = normalize({"tasks": [{"id": 1, "title": ["not", "a", "str"], "description": {"x": 1}}]}, [])
    with pytest.raises(ValidationError):
        Plan.model_validate(fixed)
    assert normalize("just prose", [])[0] == "just prose"


def test_merging_never_creates_a_cycle() -> None:
    # tiny b sits in a chain a ← b ← c ← d: it goes into a (the task it depends on) and c now needs a
    tasks = [PlannedTask(id="a", title="a", description=words("a")),
             PlannedTask(id="b", title="b", description="tiny", depends_on=("a",)),
             PlannedTask(id="c", title="c", description=words("c"), depends_on=("b",)),
             PlannedTask(id="d", title="d", description=words("d"), depends_on=("c",))]
    shaped = shape(Plan(tasks=tuple(tasks)), min_task_chars=200, max_tasks=8)
    assert [t.id for t in shaped.tasks] == ["a", "c", "d"]
    assert shaped.tasks[0].description.endswith("Also (b): tiny")  # into the task it depended on
    assert shaped.tasks[1].depends_on == ("a",)
    assert find_cycle({t.id: t.depends_on for t in shaped.tasks}) is None


def test_a_merge_that_would_close_a_cycle_picks_another_neighbour() -> None:
    # tiny v needs t and y, and y needs t: merging v into t would make t need y, which needs t
    tasks = [PlannedTask(id="y", title="y", description=words("y"), depends_on=("t",)),
             PlannedTask(id="t", title="t", description=words("t")),
             PlannedTask(id="v", title="v", description="tiny", depends_on=("t", "y"))]
    shaped = shape(Plan(tasks=tuple(tasks)), min_task_chars=200, max_tasks=8)
    assert [t.id for t in shaped.tasks] == ["y", "t"]
    assert shaped.tasks[0].description.endswith("Also (v): tiny") and shaped.tasks[0].depends_on == ("t",)
    assert shaped.tasks[1].depends_on == ()
