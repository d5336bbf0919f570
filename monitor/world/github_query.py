"""The GraphQL documents the GitHub forge sends: one read per tick for every open pull request.

Kept apart from the client so that the tests can validate exactly these documents against GitHub's public
schema (a query GitHub would reject must fail the suite, not the user's daemon).
"""

from __future__ import annotations

from collections.abc import Iterable

PAGE_SIZE = 50
"""Open pull requests per page: the node limits allow more, but 50 keeps one answer small and fast."""

CONTEXTS = 100
REVIEWS = 30
"""Reviewers read per pull request, in each of the two review lists below.

The verdicts come from ``latestOpinionatedReviews``: each reviewer's latest APPROVED or CHANGES_REQUESTED
review (a later COMMENTED review does not hide an approval; a dismissed review is no opinion).
``latestReviews`` (each reviewer's latest review of any kind) is read too, only for bots that review by
comment (CodeRabbit, Copilot), whose COMMENTED reviews are judged by their words and inline comments.

GitHub's node limit (docs: "Rate limits and node limits for the GraphQL API"): every connection carries
``first`` or ``last`` in 1..100, even when only ``totalCount`` is read, and one call may ask for at most
500,000 nodes. The worst case of :data:`OPEN_PULLS` is 50 + 50 x (30 + 30 + 100) = 8,050 nodes, and
:func:`pulls_by_number` is never sent with more than :data:`PAGE_SIZE` numbers (the same bound);
``tests/github/test_node_limits.py`` recomputes both from the documents.

GitHub's point budget (the same docs page, 5,000 points an hour): a call costs the requests needed to fill
each connection (the product of the ``first``/``last`` of the connections above it), summed, divided by 100
and rounded, at least 1. A page is 1 (the pull requests) + 50 x 3 (two review lists and the checks) = 151
requests: **2 points**. No connection is nested under the reviews: a ``comments { totalCount }`` under each
list would add 50 x 30 requests per list, 32 points a page. Per-review detail (how many inline comments a
review left) is read by :data:`REVIEW_COMMENTS`, only for reviews the forge has not seen before."""

PR_FIELDS = f"""
fragment SwarmPR on PullRequest {{
  number
  title
  url
  body
  state
  merged
  isDraft
  headRefName
  headRefOid
  baseRefName
  mergeable
  mergeStateStatus
  reviewDecision
  latestOpinionatedReviews(first: {REVIEWS}) {{ nodes {{ ...SwarmReview }} }}
  latestReviews(first: {REVIEWS}) {{ nodes {{ ...SwarmReview }} }}
  statusCheckRollup {{
    state
    contexts(first: {CONTEXTS}) {{
      pageInfo {{ hasNextPage }}
      nodes {{
        __typename
        ... on CheckRun {{
          databaseId
          name
          status
          conclusion
          startedAt
          completedAt
          detailsUrl
          title
        }}
        ... on StatusContext {{
          context
          state
          description
          targetUrl
          createdAt
        }}
      }}
    }}
  }}
}}

fragment SwarmReview on PullRequestReview {{
  id
  fullDatabaseId
  state
  body
  submittedAt
  author {{ __typename login }}
  commit {{ oid }}
}}
"""

OPEN_PULLS = (
    """
query SwarmOpenPulls($owner: String!, $name: String!, $cursor: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequests(states: OPEN, first: PAGE_SIZE, after: $cursor, orderBy: {field: CREATED_AT, direction: ASC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor }
      nodes { ...SwarmPR }
    }
  }
}
""".replace("PAGE_SIZE", str(PAGE_SIZE))
    + PR_FIELDS
)


def pulls_by_number(numbers: Iterable[int]) -> str:
    """A query for pull requests that are no longer open (merged or closed since the last tick), by number:
    at most :data:`PAGE_SIZE` of them, so that one query stays as far under the node limit as a page of open
    pull requests."""
    wanted = sorted({int(n) for n in numbers})
    if not 0 < len(wanted) <= PAGE_SIZE:
        raise ValueError(f"pulls_by_number takes 1 to {PAGE_SIZE} pull request numbers, not {len(wanted)}: "
                         "send more as several queries")
    fields = "\n".join(f"    pr{n}: pullRequest(number: {n}) {{ ...SwarmPR }}" for n in wanted)
    return (
        "query SwarmPullsByNumber($owner: String!, $name: String!) {\n"
        "  rateLimit { cost remaining resetAt }\n"
        "  repository(owner: $owner, name: $name) {\n"
        f"{fields}\n"
        "  }\n"
        "}\n" + PR_FIELDS
    )


REVIEW_IDS = 100
"""Review node ids per :data:`REVIEW_COMMENTS` call (GitHub's limit for ``nodes(ids:)``)."""

REVIEW_COMMENTS = """
query SwarmReviewComments($ids: [ID!]!) {
  rateLimit { cost remaining resetAt }
  nodes(ids: $ids) {
    ... on PullRequestReview {
      id
      comments(first: 1) { totalCount }
    }
  }
}
"""
"""How many inline comments each of up to :data:`REVIEW_IDS` reviews left, by node id: 1 point (one
``comments`` connection per review, no connection above it). A submitted review's comments do not change,
so each review is asked about once and the answer is kept in the forge's state file."""


def pulls_by_branch(count: int) -> str:
    """A query for the newest open pull request of each of ``count`` head branches (variables ``$b0`` ...,
    names are data, never spliced into the document), at most :data:`PAGE_SIZE` of them: 4 requests a branch
    by GitHub's formula (the connection, then its PR's two review lists and checks), 2 points for 50, and
    the same node bound as a page of open pull requests."""
    if not 0 < count <= PAGE_SIZE:
        raise ValueError(f"pulls_by_branch takes 1 to {PAGE_SIZE} branches, not {count}: send more as several "
                         "queries")
    params = "".join(f", $b{i}: String!" for i in range(count))
    fields = "\n".join(
        f"    b{i}: pullRequests(headRefName: $b{i}, states: OPEN, first: 1, "
        f"orderBy: {{field: CREATED_AT, direction: DESC}}) {{ nodes {{ ...SwarmPR }} }}" for i in range(count))
    return (
        f"query SwarmPullsByBranch($owner: String!, $name: String!{params}) {{\n"
        "  rateLimit { cost remaining resetAt }\n"
        "  repository(owner: $owner, name: $name) {\n"
        f"{fields}\n"
        "  }\n"
        "}\n" + PR_FIELDS
    )

MERGE_QUEUE = """
query SwarmMergeQueue($owner: String!, $name: String!, $branch: String!, $number: Int!) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    mergeQueue(branch: $branch) { id }
    pullRequest(number: $number) { id headRefOid }
  }
}
"""
"""Whether the repository runs GitHub's merge queue on the base branch (``Repository.mergeQueue`` is null
without one), and the pull request's node id that :data:`ENQUEUE` needs: 1 point."""

ENQUEUE = """
mutation SwarmEnqueue($pr: ID!, $head: GitObjectID!) {
  enqueuePullRequest(input: {pullRequestId: $pr, expectedHeadOid: $head}) {
    mergeQueueEntry { id position }
  }
}
"""
"""Add the pull request to its base branch's merge queue, only if its head is still ``$head``
(``expectedHeadOid``: GitHub refuses a head that moved)."""
