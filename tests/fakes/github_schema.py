"""GitHub's real public GraphQL schema, for validating and executing queries in tests.

Why: the monitor reads every open pull request with one GraphQL query per tick. A query that GitHub would
reject (a misspelled field, a wrong argument type, a fragment on the wrong type) must fail the suite, not the
user's daemon, so the documents are validated against the schema GitHub publishes, and the fake GitHub server
(:mod:`tests.fakes.github_server`) executes them against it too.

The schema comes from the npm package ``@octokit/graphql-schema`` (pinned), which ships GitHub's
introspection result as ``schema.json``. It is installed once into ``.cache/graphql-schema`` at the
repository root (git-ignored) under a file lock, so that parallel pytest-xdist workers do not race; a version
marker file says the install finished. When npm is missing or the install fails, :class:`GitHubSchemaError`
is raised: the tests that need the schema fail rather than skip.

Found about the package (15.26.1): ``schema.json``'s top level is ``{"__schema": ...}`` itself (no ``data``
wrapper as an HTTP introspection answer has), so it goes straight into :func:`graphql.build_client_schema`.
Building the schema takes about a third of a second; :func:`github_schema` caches it per process.

GitHub's node limit (docs: "Rate limits and node limits for the GraphQL API") is checked before a query
runs: every connection needs ``first`` or ``last`` (also when only ``totalCount`` is read), at most 100, and
one call may ask for at most 500,000 nodes, counted as the sum over the connections of the product of the
``first``/``last`` of the connection and of every connection above it. :func:`connections` and
:func:`pagination_errors` compute that from a document, for the fake server and for the tests of the
monitor's own documents.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import graphql

from tests.fakes.npm import NpmInstallError, locked, npm_install

PACKAGE = "@octokit/graphql-schema"
VERSION = "15.26.1"
"""The pinned version of the npm package that ships GitHub's schema."""

DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "graphql-schema"
"""Where the suite installs the package: ``.cache/graphql-schema`` at the repository root (git-ignored)."""

_INSTALL_TIMEOUT = 600  # seconds; the package is a few MB of JSON and SDL


class GitHubSchemaError(RuntimeError):
    """npm could not install the pinned schema package, or what it installed is not usable."""


def _package_dir(cache_dir: Path) -> Path:
    return cache_dir / "node_modules" / "@octokit" / "graphql-schema"


def _marker(cache_dir: Path) -> Path:
    return cache_dir / f".installed-{VERSION}"


def _installed_version(cache_dir: Path) -> str | None:
    try:
        version = json.loads((_package_dir(cache_dir) / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def _is_installed(cache_dir: Path) -> bool:
    return (
        _marker(cache_dir).is_file()
        and _installed_version(cache_dir) == VERSION
        and (_package_dir(cache_dir) / "schema.json").is_file()
    )


def _install(cache_dir: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise GitHubSchemaError(
            f"npm is not on PATH: it is needed to install {PACKAGE}@{VERSION} (GitHub's GraphQL schema) "
            f"into {cache_dir}"
        )
    try:
        npm_install(npm, cache_dir, f"{PACKAGE}@{VERSION}", ["--ignore-scripts"], _INSTALL_TIMEOUT)
    except NpmInstallError as exc:
        raise GitHubSchemaError(str(exc)) from exc
    if _installed_version(cache_dir) != VERSION or not (_package_dir(cache_dir) / "schema.json").is_file():
        raise GitHubSchemaError(f"npm installed something, but not {PACKAGE}@{VERSION} with a schema.json")


def schema_json_path(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The path of GitHub's introspection ``schema.json``, installing the pinned package first if needed."""
    cache_dir = cache_dir.resolve()
    if not _is_installed(cache_dir):
        cache_dir.mkdir(parents=True, exist_ok=True)
        with locked(cache_dir):
            if not _is_installed(cache_dir):  # nobody else installed it while we waited
                _marker(cache_dir).unlink(missing_ok=True)
                _install(cache_dir)
                _marker(cache_dir).write_text(f"{PACKAGE}@{VERSION}\n")
    return _package_dir(cache_dir) / "schema.json"


@functools.cache
def github_schema() -> graphql.GraphQLSchema:
    """GitHub's public GraphQL schema (built once per process)."""
    path = schema_json_path()
    try:
        introspection = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GitHubSchemaError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(introspection, dict) or "__schema" not in introspection:
        raise GitHubSchemaError(f"{path} does not hold an introspection result (no top-level __schema)")
    return graphql.build_client_schema(cast(graphql.IntrospectionQuery, introspection))


def validate_document(text: str) -> list[str]:
    """The messages of every error GitHub's schema finds in the GraphQL document ``text`` (empty: valid)."""
    try:
        document = graphql.parse(text)
    except graphql.GraphQLError as exc:
        return [exc.message]
    return [error.message for error in graphql.validate(github_schema(), document)]


NODE_LIMIT = 500_000
"""The most nodes one GraphQL call may request on GitHub."""

PAGE_LIMIT = 100
"""The largest ``first``/``last`` GitHub accepts on a connection."""


@dataclass(frozen=True)
class Connection:
    """One connection field reached by a document, with the arguments that bound it."""

    path: tuple[str, ...]
    """Response keys from the operation down to the connection (aliases where given)."""
    name: str
    """The connection's field name (``comments``, ``latestReviews``...)."""
    first: int | None
    last: int | None
    nodes: int
    """Worst-case nodes it adds: its own bound times the bounds of the connections above it (0 unbounded)."""
    node: graphql.FieldNode
    requests: int = 1
    """Requests GitHub counts to fill it (rate-limit points): the product of the ``first``/``last`` of the
    connections above it (1 for a top-level connection)."""


def _is_connection(field: graphql.GraphQLField) -> bool:
    named = graphql.get_named_type(field.type)
    return named is not None and named.name.endswith("Connection") and ("first" in field.args or "last" in field.args)


def connections(document: graphql.DocumentNode, variables: Mapping[str, Any] | None = None,
                operation: str | None = None) -> list[Connection]:
    """Every connection field the document's operation(s) reach, fragments expanded in place."""
    schema = github_schema()
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)}
    found: list[Connection] = []

    def walk(selections: graphql.SelectionSetNode | None, parent: Any, path: tuple[str, ...], factor: int,
             seen: frozenset[str]) -> None:
        for selection in selections.selections if selections is not None else ():
            if isinstance(selection, graphql.FieldNode):
                fields = getattr(parent, "fields", None) or {}
                field = fields.get(selection.name.value)
                if field is None:
                    continue  # __typename, or an error validation reports
                key = (selection.alias or selection.name).value
                below = factor
                if _is_connection(field):
                    given = {a.name.value: graphql.value_from_ast_untyped(a.value, dict(variables or {}))
                             for a in selection.arguments}
                    first, last = given.get("first"), given.get("last")
                    bound = max(b for b in (first, last, 0) if isinstance(b, int))
                    found.append(Connection((*path, key), selection.name.value,
                                            first if isinstance(first, int) else None,
                                            last if isinstance(last, int) else None, factor * bound, selection,
                                            factor))
                    below = factor * max(bound, 1)
                walk(selection.selection_set, graphql.get_named_type(field.type), (*path, key), below, seen)
            elif isinstance(selection, graphql.InlineFragmentNode):
                condition = selection.type_condition
                walk(selection.selection_set, schema.get_type(condition.name.value) if condition else parent, path,
                     factor, seen)
            elif isinstance(selection, graphql.FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    walk(fragment.selection_set, schema.get_type(fragment.type_condition.name.value), path, factor,
                         seen | {name})

    for definition in document.definitions:
        if not isinstance(definition, graphql.OperationDefinitionNode):
            continue
        if operation is not None and (definition.name is None or definition.name.value != operation):
            continue
        root = {"query": schema.query_type, "mutation": schema.mutation_type}.get(definition.operation.value)
        walk(definition.selection_set, root, (), 1, frozenset())
    return found


def node_count(document: graphql.DocumentNode, variables: Mapping[str, Any] | None = None,
               operation: str | None = None) -> int:
    """The worst-case nodes the document requests, by GitHub's documented formula."""
    return sum(c.nodes for c in connections(document, variables, operation))


def rate_limit_cost(document: graphql.DocumentNode, variables: Mapping[str, Any] | None = None,
                    operation: str | None = None) -> tuple[int, int]:
    """(requests, points) of one call by GitHub's documented formula (docs: "Rate limits and node limits for
    the GraphQL API", "Calculating a rate limit score before running the call"): every connection counts the
    requests needed to fill it, the product of the ``first``/``last`` of its parent connections, assuming each
    reaches its bound; the sum divided by 100 and rounded is the cost in points, never less than 1."""
    requests = sum(c.requests for c in connections(document, variables, operation))
    return requests, max(1, (requests + 50) // 100)  # rounded half up: 150 requests are 2 points


def pagination_errors(document: graphql.DocumentNode, variables: Mapping[str, Any] | None = None,
                      operation: str | None = None) -> list[dict[str, Any]]:
    """GitHub's node-limit errors for the document (empty when it passes), each with GitHub's ``type``."""
    errors: list[dict[str, Any]] = []
    found = connections(document, variables, operation)
    for connection in found:
        where = {"path": list(connection.path), "locations": [_location(connection.node)]}
        if connection.first is None and connection.last is None:
            errors.append({"type": "MISSING_PAGINATION_BOUNDARIES", **where, "message":
                           f"You must provide a `first` or `last` value to properly paginate the "
                           f"`{connection.name}` connection."})
        for argument, value in (("first", connection.first), ("last", connection.last)):
            if value is not None and not 0 <= value <= PAGE_LIMIT:
                errors.append({"type": "EXCESSIVE_PAGINATION", **where, "message":
                               f"Requesting {value} records on the `{connection.name}` connection exceeds the "
                               f"`{argument}` limit of {PAGE_LIMIT} records."})
    total = sum(c.nodes for c in found)
    if not errors and total > NODE_LIMIT:
        errors.append({"type": "MAX_NODE_LIMIT_EXCEEDED", "message":
                       f"This query requests up to {total:,} possible nodes which exceeds the maximum limit of "
                       f"{NODE_LIMIT:,}."})
    return errors


def _location(node: graphql.Node) -> dict[str, int]:
    if node.loc is None:
        return {"line": 0, "column": 0}
    where = node.loc.source.get_location(node.loc.start)
    return {"line": where.line, "column": where.column}


__all__ = [
    "DEFAULT_CACHE",
    "NODE_LIMIT",
    "PACKAGE",
    "PAGE_LIMIT",
    "VERSION",
    "Connection",
    "GitHubSchemaError",
    "connections",
    "github_schema",
    "node_count",
    "pagination_errors",
    "rate_limit_cost",
    "schema_json_path",
    "validate_document",
]
