"""The fixer's guardrails: what the monitor rejects in a fix's diff (a side's function dropped, a new
placeholder body, conflict markers), read from real git revisions."""

from __future__ import annotations

import subprocess
from pathlib import Path

from monitor.merge.gitops import conflict_hunks
from monitor.merge.guardrails import check_file, symbols, verify
from monitor.world.git import Git

BASE = "def shared():\n    return 1\n"
OURS = BASE + "\n\ndef ours_feature(x):\n    return x * 2\n"
THEIRS = BASE + "\n\ndef theirs_feature(y):\n    return y + 3\n"


def test_python_symbols_and_placeholders() -> None:
    text = (
        "import abc\nfrom typing import Protocol\n\n"
        "class A:\n    def real(self):\n        return 1\n    def todo(self):\n        pass  # TODO\n"
        "    def dots(self): ...\n    def nie(self):\n        '''Later.'''\n        raise NotImplementedError\n"
        "class P(Protocol):\n    def spec(self) -> int: ...\n"
        "class B(abc.ABC):\n    @abc.abstractmethod\n    def must(self): ...\n"
    )
    found = symbols("m.py", text)
    assert {n for n, s in found.items() if s.placeholder} == {"A.todo", "A.dots", "A.nie"}
    assert {"A", "A.real", "P.spec", "B.must"} <= set(found)


def test_other_languages_by_regex() -> None:
    rust = "pub fn parse(x: &str) -> u8 { 1 }\nasync fn load() {}\nstruct S;\n"
    ts = "export function render() {}\nexport default class Page {}\nconst x = 1;\n"
    go = "func (s *Server) Serve() error { return nil }\nfunc main() {}\n"
    assert set(symbols("a.rs", rust)) == {"parse", "load"}
    assert set(symbols("a.ts", ts)) == {"render", "Page"}
    assert set(symbols("a.go", go)) == {"Serve", "main"}


def test_conflict_fix_that_keeps_only_one_side_is_rejected() -> None:
    kept_ours = OURS
    problems = check_file("m.py", OURS, THEIRS, BASE, kept_ours, conflict=True)
    assert problems == ["m.py: `theirs_feature` (defined by the base branch) is gone after the fix"]
    both = OURS + "\n\ndef theirs_feature(y):\n    return y + 3\n"
    assert check_file("m.py", OURS, THEIRS, BASE, both, conflict=True) == []


def test_a_side_that_deleted_a_symbol_on_purpose_is_respected() -> None:
    base = BASE + "\n\ndef old():\n    return 0\n"
    theirs = BASE  # the base branch deleted old()
    ours = base + "\n\ndef new():\n    return 2\n"
    assert check_file("m.py", ours, theirs, base, BASE + "\n\ndef new():\n    return 2\n", conflict=True) == []


def test_placeholder_replacing_an_implementation_is_rejected() -> None:
    after = BASE + "\n\ndef ours_feature(x):\n    pass  # TODO\n"
    problems = check_file("m.py", OURS, BASE, BASE, after, conflict=False)
    assert problems == ["m.py: `ours_feature` replaced by a placeholder body (pass / ... / raise "
                        "NotImplementedError / only a docstring)"]
    new_stub = OURS + "\n\ndef helper():\n    raise NotImplementedError\n"
    assert "added with a placeholder body" in check_file("m.py", OURS, BASE, BASE, new_stub, conflict=False)[0]


def test_markers_and_broken_python_and_other_languages() -> None:
    left = "<<<<<<< HEAD\na = 1\n=======\na = 2\n>>>>>>> main\n"
    problems = check_file("m.py", "a = 1\n", "a = 2\n", "", left, conflict=True)
    assert "conflict markers" in problems[0] and "no longer parses" in problems[1]
    rust_after = "fn parse() -> u8 { todo!() }\n"
    assert "1 new placeholder(s)" in check_file("a.rs", "fn parse() -> u8 { 1 }\n", None, None, rust_after,
                                               conflict=False)[0]
    assert check_file("a.rs", "fn parse() -> u8 { 1 }\n", "fn parse() -> u8 { 1 }\n", None, "", conflict=False) == [
        "a.rs: `parse` (defined by both sides) is gone after the fix"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, text: str, message: str) -> str:
    (repo / "m.py").write_text(text)
    _git(repo, "add", "m.py")
    _git(repo, "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


def test_verify_reads_the_sides_from_git_and_conflict_hunks_show_both(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    _commit(repo, BASE, "base")
    _git(repo, "checkout", "-qb", "feature")
    ours = _commit(repo, OURS, "ours")
    _git(repo, "checkout", "-q", "main")
    theirs = _commit(repo, THEIRS, "theirs")
    git = Git(repo)
    files, hunks = conflict_hunks(git, ours, theirs)
    assert files == ["m.py"]
    assert "ours_feature" in hunks and "theirs_feature" in hunks and "<<<<<<<" in hunks
    _git(repo, "checkout", "-q", "feature")
    # the fixer "resolves" by keeping the branch's side: a merge commit whose tree is ours
    _git(repo, "merge", "-q", "-s", "ours", "--no-edit", "main")
    bad = _git(repo, "rev-parse", "HEAD")
    assert verify(git, ours, theirs, bad, conflict=True) == [
        "m.py: `theirs_feature` (defined by the base branch) is gone after the fix"]
    _git(repo, "reset", "-q", "--hard", ours)
    _git(repo, "merge", "-q", "-X", "ours", "--no-edit", "main")  # both functions are kept by a real merge
    (repo / "m.py").write_text(OURS + "\n\ndef theirs_feature(y):\n    return y + 3\n")
    _git(repo, "commit", "-qam", "resolve")
    good = _git(repo, "rev-parse", "HEAD")
    assert verify(git, ours, theirs, good, conflict=True) == []
