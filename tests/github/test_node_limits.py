"""GitHub's GraphQL node limit, applied to the monitor's own documents and enforced by the fake.

Why: GitHub refuses, before running it, a query with a connection lacking ``first``/``last`` (even one that
reads only ``totalCount``), a ``first``/``last`` over 100, or more than 500,000 possible nodes (docs: "Rate
limits and node limits for the GraphQL API"). Such a refusal would make every tick's read fail, so the
documents are walked here and their worst case computed with the documented formula.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import graphql
import httpx
import pytest

from monitor.world.github_query import (
    OPEN_PULLS,
    PAGE_SIZE,
    PR_FIELDS,
    REVIEW_COMMENTS,
    REVIEW_IDS,
    pulls_by_number,
)
from tests.fakes.github_schema import NODE_LIMIT, PAGE_LIMIT, connections, node_count, rate_limit_cost
from tests.fakes.github_server import FakeGitHub

TOKEN = "ghp_" + "N0de" * 9
DOCUMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "SwarmOpenPulls": (OPEN_PULLS, {"owner": "o", "name": "n", "cursor": None}),
    "SwarmPullsByNumber": (pulls_by_number(range(1, PAGE_SIZE + 1)), {"owner": "o", "name": "n"}),
    "SwarmReviewComments": (REVIEW_COMMENTS, {"ids": [f"PRR_{n}" for n in range(REVIEW_IDS)]}),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_connection_of_the_monitor_documents_has_first_or_last(name: str) -> None:
    text, variables = DOCUMENTS[name]
    found = connections(graphql.parse(text), variables)
    expected = {"comments"} if name == "SwarmReviewComments" else {"latestOpinionatedReviews", "latestReviews",
                                                                    "contexts"}
    assert {c.name for c in found} >= expected
    unbounded = [".".join(c.path) for c in found if c.first is None and c.last is None]
    assert unbounded == [], f"connections without first/last: {unbounded}"
    too_big = [".".join(c.path) for c in found for v in (c.first, c.last) if v is not None and not 1 <= v <= PAGE_LIMIT]
    assert too_big == []


@pytest.mark.parametrize(("name", "expected"), [("SwarmOpenPulls", 8_050), ("SwarmPullsByNumber", 8_000),
                                               ("SwarmReviewComments", 1)])
def test_worst_case_node_count_stays_far_under_the_limit(name: str, expected: int) -> None:
    text, variables = DOCUMENTS[name]
    total = node_count(graphql.parse(text), variables)
    print(f"{name}: worst case {total:,} nodes (limit {NODE_LIMIT:,})")
    assert total == expected and total < NODE_LIMIT


@pytest.mark.parametrize(("name", "requests", "points"), [
    ("SwarmOpenPulls", 1 + PAGE_SIZE * 3, 2),  # the page, then two review lists and the checks of each PR
    ("SwarmPullsByNumber", PAGE_SIZE * 3, 2),  # pullRequest(number:) is no connection
    ("SwarmReviewComments", 1, 1),  # nodes(ids:) is no connection: one comments count per review
])
def test_each_document_costs_at_most_two_points(name: str, requests: int, points: int) -> None:
    """GitHub's point formula (requests to fill each connection, summed, / 100, rounded, at least 1)."""
    text, variables = DOCUMENTS[name]
    assert rate_limit_cost(graphql.parse(text), variables) == (requests, points)


def test_a_count_of_comments_under_each_review_would_cost_sixteen_times_more() -> None:
    """What the page cost before: ``comments(first: 1) { totalCount }`` under the reviews of both lists."""
    nested = PR_FIELDS.replace("  commit {{ oid }}\n}}".replace("{{", "{").replace("}}", "}"),
                               "  commit { oid }\n  comments(first: 1) { totalCount }\n}")
    assert nested != PR_FIELDS
    old_page = OPEN_PULLS.replace(PR_FIELDS, nested)
    requests, points = rate_limit_cost(graphql.parse(old_page), {"owner": "o", "name": "n", "cursor": None})
    assert (requests, points) == (1 + 50 * 3 + 2 * 50 * 30, 32)


def test_the_cost_follows_githubs_documented_example() -> None:
    """docs: 1 request for 100 repositories, 100 for their issues, 100 x 50 for the issues' labels: 51 points."""
    example = ("query { viewer { login repositories(first: 100) { edges { node { id issues(first: 50) { edges {"
               " node { id labels(first: 60) { edges { node { id name } } } } } } } } } } }")
    assert rate_limit_cost(graphql.parse(example)) == (5_101, 51)
    assert rate_limit_cost(graphql.parse("query { viewer { login } }")) == (0, 1)  # never less than a point


def test_pulls_by_number_takes_at_most_a_page_of_numbers() -> None:
    with pytest.raises(ValueError, match=f"1 to {PAGE_SIZE}"):
        pulls_by_number(range(PAGE_SIZE + 1))
    with pytest.raises(ValueError, match=f"1 to {PAGE_SIZE}"):
        pulls_by_number([])


def test_the_count_follows_githubs_documented_examples() -> None:
    simple = ("query { viewer { repositories(first: 50) { edges { repository:node { name"
              " issues(first: 10) { totalCount edges { node { title bodyHTML } } } } } } } }")
    complex_ = ("query { viewer { repositories(first: 50) { edges { repository:node { name"
                " pullRequests(first: 20) { edges { pullRequest:node { title"
                " comments(first: 10) { edges { comment:node { bodyHTML } } } } } }"
                " issues(first: 20) { totalCount edges { issue:node { title bodyHTML"
                " comments(first: 10) { edges { comment:node { bodyHTML } } } } } } } } }"
                " followers(first: 10) { edges { follower:node { login } } } } }")
    assert node_count(graphql.parse(simple)) == 550
    assert node_count(graphql.parse(complex_)) == 22_060


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as server:
        yield server


def ask(fake: FakeGitHub, query: str) -> dict[str, Any]:
    answer = httpx.post(f"{fake.url}/graphql", json={"query": query}, headers={"Authorization": f"bearer {TOKEN}"})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def test_the_fake_refuses_what_github_refuses_before_running_it(fake: FakeGitHub) -> None:
    count_only = ask(fake, "query { viewer { repositories { totalCount } } }")
    assert "data" not in count_only
    assert count_only["errors"] == [{
        "type": "MISSING_PAGINATION_BOUNDARIES", "path": ["viewer", "repositories"],
        "locations": [{"line": 1, "column": 18}],
        "message": "You must provide a `first` or `last` value to properly paginate the `repositories` connection."}]
    huge = ask(fake, "query { viewer { repositories(first: 100) { nodes { issues(first: 100) { nodes {"
                     " comments(first: 100) { totalCount } } } } } } }")
    assert [e["type"] for e in huge["errors"]] == ["MAX_NODE_LIMIT_EXCEEDED"]
    assert "1,010,100" in str(huge["errors"])
    over = ask(fake, "query { viewer { repositories(first: 101) { totalCount } } }")
    assert [e["type"] for e in over["errors"]] == ["EXCESSIVE_PAGINATION"]
    assert fake.rate_remaining("graphql") == 5000  # refused before execution: no points spent
