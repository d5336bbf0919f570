"""The fixer's guardrails, verified on the diff it produced (an agent is told them, the monitor checks them).

A fixer resolves a conflict, a red CI or a review in a finished branch. Its classic failures are quiet ones:
it keeps one side of a conflict and drops the other side's function, or it "fixes" a test by turning an
implementation into ``pass  # TODO``. This module compares the files the fix touched across the sides
(``ours`` = the branch before the fix, ``theirs`` = the base, ``merge_base`` = their common ancestor) and
the result, and names each violation in one line:

- a symbol (function, class, method) that must survive is gone. For a conflict: every symbol either side
  has, except one a side deliberately deleted (it is in the merge base and missing on that side). For a red
  CI or a review: every symbol both the branch and the base have.
- a new placeholder body: a function whose body is only ``pass``, ``...``, ``raise NotImplementedError`` or a
  docstring (Python, by ``ast``; abstract methods and protocols are fine), or a new ``todo!()``,
  ``unimplemented!()``, "not implemented" throw in other languages (by regular expressions).
- conflict markers left in a file, or a Python file that no longer parses.

Pure: file texts in, violations out; ``verify`` reads the texts from git through ``monitor/merge/gitops``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from monitor.merge.gitops import changed_between, merge_base, read_file
from monitor.world.git import Git

Reader = Callable[[str, str], str | None]  # (revision, path) -> text, None when absent
MAX_FILES = 200
MAX_BYTES = 1_000_000

_OTHER_SYMBOLS = [re.compile(p, re.MULTILINE) for p in (
    r"^[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:async[ \t]+)?function[ \t]*\*?[ \t]*([A-Za-z_$][\w$]*)",
    r"^[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:(?:public|private|abstract|final|data)[ \t]+)*class[ \t]+"
    r"([A-Za-z_$][\w$]*)",
    r"^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?(?:async[ \t]+)?(?:unsafe[ \t]+)?(?:const[ \t]+)?fn[ \t]+([A-Za-z_]\w*)",
    r"^[ \t]*func[ \t]+(?:\([^)]*\)[ \t]*)?([A-Za-z_]\w*)",
    r"^[ \t]*def[ \t]+(?:self\.)?([A-Za-z_]\w*[?!]?)",
)]
_OTHER_PLACEHOLDER = re.compile(
    r"todo!\s*\(|unimplemented!\s*\(|NotImplementedException|raise\s+NotImplementedError"
    r"|(?:throw\s+new\s+\w*Error|panic)\s*\(\s*[\"'`](?:not\s+implemented|todo)", re.IGNORECASE)
_MARKER = re.compile(r"^(?:<{7}(?: |$)|={7}$|>{7}(?: |$))", re.MULTILINE)
_SOURCE = re.compile(r"\.(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|rs|go|rb|java|kt|kts|scala|swift|php|cs|c|cc|cpp|h|hpp)$")
_ABSTRACT_DECORATORS = {"abstractmethod", "abstractproperty", "overload", "abstractclassmethod",
                        "abstractstaticmethod"}
_ABSTRACT_BASES = {"Protocol", "ABC", "ABCMeta"}


@dataclass(frozen=True)
class Symbol:
    name: str  # qualified: "func", "Class", "Class.method"
    placeholder: bool  # its body is a placeholder (and it is not abstract)


class Unparsable(ValueError):
    """A Python file that does not parse."""


def symbols(path: str, text: str) -> dict[str, Symbol]:
    """The functions, classes and methods ``text`` defines, by qualified name (Python by ``ast``; other
    languages by regular expressions, without placeholders). Raises Unparsable for broken Python."""
    if path.endswith((".py", ".pyi")):
        return _python_symbols(text, stub=path.endswith(".pyi"))
    found: dict[str, Symbol] = {}
    for pattern in _OTHER_SYMBOLS:
        for match in pattern.finditer(text):
            found.setdefault(match.group(1), Symbol(match.group(1), False))
    return found


def _python_symbols(text: str, stub: bool) -> dict[str, Symbol]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        raise Unparsable(str(exc)) from None
    found: dict[str, Symbol] = {}

    def visit(body: Iterable[ast.stmt], prefix: str, abstract_scope: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                name = prefix + node.name
                found[name] = Symbol(name, False)
                bases = {_name(b) for b in node.bases} | {_name(k.value) for k in node.keywords}
                visit(node.body, name + ".", abstract_scope or bool(bases & _ABSTRACT_BASES))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + node.name
                abstract = stub or abstract_scope or bool({_name(d) for d in node.decorator_list}
                                                          & _ABSTRACT_DECORATORS)
                found[name] = Symbol(name, not abstract and _placeholder(node.body))
            elif isinstance(node, ast.If | ast.Try):  # definitions under `if TYPE_CHECKING:` or try/except
                for part in (node.body, node.orelse, getattr(node, "finalbody", [])):
                    visit(part, prefix, abstract_scope)

    visit(tree.body, "", False)
    return found


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return node.id if isinstance(node, ast.Name) else ""


def _placeholder(body: list[ast.stmt]) -> bool:
    """Only a docstring, ``pass``, ``...`` or ``raise NotImplementedError``: no implementation."""
    rest = body[1:] if body and _is_docstring(body[0]) else body
    if not rest:
        return True
    for stmt in rest:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis:
            continue
        if isinstance(stmt, ast.Raise) and stmt.exc is not None and _name(stmt.exc) == "NotImplementedError":
            continue
        return False
    return True


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def check_file(path: str, ours: str | None, theirs: str | None, base: str | None, after: str | None,
               conflict: bool) -> list[str]:
    """The violations of one file's fix (empty when it keeps the guardrails)."""
    problems: list[str] = []
    if after is not None and _MARKER.search(after):
        problems.append(f"{path}: conflict markers (<<<<<<< ======= >>>>>>>) are left in the file")
    try:
        after_syms = symbols(path, after) if after is not None else {}
    except Unparsable as exc:
        return [*problems, f"{path}: no longer parses as Python ({exc})"]
    sides = {name: _safe_symbols(path, text) for name, text in (("ours", ours), ("theirs", theirs), ("base", base))}
    s_ours, s_theirs, s_base = sides["ours"], sides["theirs"], sides["base"]
    if conflict:
        deleted = {s for s in s_base if s not in s_ours or s not in s_theirs}
        expected = (set(s_ours) | set(s_theirs)) - deleted
    else:
        expected = set(s_ours) & set(s_theirs)
    for name in sorted(expected - set(after_syms)):
        whose = ("both sides" if name in s_ours and name in s_theirs
                 else "the branch" if name in s_ours else "the base branch")
        problems.append(f"{path}: `{name}` (defined by {whose}) is gone after the fix")
    for name, symbol in sorted(after_syms.items()):
        if not symbol.placeholder:
            continue
        before = [s for s in (s_ours.get(name), s_theirs.get(name)) if s is not None]
        if any(s.placeholder for s in before):
            continue  # it was a placeholder already: not the fixer's doing
        what = "replaced by a placeholder body" if before else "added with a placeholder body"
        problems.append(f"{path}: `{name}` {what} (pass / ... / raise NotImplementedError / only a docstring)")
    if after is not None and not path.endswith((".py", ".pyi")):
        now = len(_OTHER_PLACEHOLDER.findall(after))
        was = max(len(_OTHER_PLACEHOLDER.findall(t)) for t in (ours or "", theirs or ""))
        if now > was:
            problems.append(f"{path}: {now - was} new placeholder(s) (todo!(), unimplemented!(), "
                            "\"not implemented\")")
    return problems


def _safe_symbols(path: str, text: str | None) -> dict[str, Symbol]:
    if text is None:
        return {}
    try:
        return symbols(path, text)
    except Unparsable:
        return {}


def check(read: Reader, paths: Iterable[str], ours: str, theirs: str, merge_base: str | None, after: str,
          conflict: bool) -> list[str]:
    """The violations of a fix over ``paths`` (source files only), reading each side with ``read``."""
    problems: list[str] = []
    for path in sorted(set(paths))[:MAX_FILES]:
        if not _SOURCE.search(path):
            continue
        texts = [read(rev, path) if rev else None for rev in (ours, theirs, merge_base, after)]
        if any(t is not None and len(t) > MAX_BYTES for t in texts):
            continue
        problems += check_file(path, texts[0], texts[1], texts[2], texts[3], conflict)
    return problems


def verify(git: Git, ours: str, theirs: str, after: str, conflict: bool) -> list[str]:
    """The violations of the fix that took the branch from ``ours`` to ``after`` (``theirs``: the base
    head when the fix started). Only the files the fix touched are read."""
    if ours == after:
        return []
    paths = set(changed_between(git, ours, after))
    if conflict:  # a side the fixer dropped leaves the file as the other side had it
        paths |= set(changed_between(git, theirs, after))
    common = merge_base(git, ours, theirs)
    return check(lambda rev, path: read_file(git, rev, path), paths, ours, theirs, common, after, conflict)
