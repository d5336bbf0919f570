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
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import cast

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


__all__ = [
    "DEFAULT_CACHE",
    "PACKAGE",
    "VERSION",
    "GitHubSchemaError",
    "github_schema",
    "schema_json_path",
    "validate_document",
]
