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
  latestReviews(first: {REVIEWS}) {{
    nodes {{
      fullDatabaseId
      state
      body
      submittedAt
      comments {{ totalCount }}
      author {{ __typename login }}
      commit {{ oid }}
    }}
  }}
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
"""

OPEN_PULLS = (
    """
query SwarmOpenPulls($owner: String!, $name: String!, $cursor: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequests(states: OPEN, first: PAGE_SIZE, after: $cursor, orderBy: {field: CREATED_AT, direction: ASC}) {
      pageInfo { hasNextPage endCursor }
      nodes { ...SwarmPR }
    }
  }
}
""".replace("PAGE_SIZE", str(PAGE_SIZE))
    + PR_FIELDS
)


def pulls_by_number(numbers: Iterable[int]) -> str:
    """A query for pull requests that are no longer open (merged or closed since the last tick), by number."""
    fields = "\n".join(f"    pr{n}: pullRequest(number: {int(n)}) {{ ...SwarmPR }}" for n in sorted(set(numbers)))
    return (
        "query SwarmPullsByNumber($owner: String!, $name: String!) {\n"
        "  rateLimit { cost remaining resetAt }\n"
        "  repository(owner: $owner, name: $name) {\n"
        f"{fields}\n"
        "  }\n"
        "}\n" + PR_FIELDS
    )
