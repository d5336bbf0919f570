"""Business context for the orchestrator: the user's own notes, chosen by relevance within a token budget.

Why: a coding agent writes better code when it knows the customer, the roadmap and the domain rules, but
a whole ``docs/context`` folder in every prompt costs tokens and drowns the task in noise. So the files
under ``[context] paths`` are scored against the request (or a task's title and description) with BM25
— request words against file words, a file's name and headings weighted above its body — and taken in
order of relevance until ``budget_tokens`` is spent. Tokens are estimated at about four characters each.
The most relevant file is never dropped for being too big: it is cut to the budget with a marker saying
so. The learnings file (short rules written by ``swarm learn``, each learned the hard way) is always in.

No network and no model: selection is deterministic, free, and testable. The files are the user's own,
hence trusted, but each one is still delimited and labelled with its path, so that a prompt reader (a
model, or a person) can tell context from instructions and knows where to look for the rest.

The loaded documents travel with the selection (``SelectedContext.documents``), so a task's prompt can
re-select from all of them by the task's own words (``reselect``) without reading the disk again.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config import ContextSettings

CHARS_PER_TOKEN = 4
TEXT_SUFFIXES = frozenset({".md", ".markdown", ".mdx", ".txt", ".rst", ".text", ".adoc", ".org"})
MAX_FILE_BYTES = 1_000_000  # a context file larger than this is someone's data dump, not a note
NAME_WEIGHT = 4  # a request word in the file's path counts like this many body occurrences
HEADING_WEIGHT = 3
K1 = 1.2
B = 0.75
LEARNINGS_FLOOR_TOKENS = 1000  # the learnings are in whole up to this, even in a smaller budget
MIN_TRUNCATED_CHARS = 200  # a cut shorter than this says nothing: skip the file instead
_STOPWORDS = """
a an and are as at be been but by can could do does for from has have how i if in into is it its me my
no not of on or our so should that the their them then there these they this those to us was we were what
when where which who why will with would you your please add make new use using need needs want wants all
any also each some such than too very just only get set let via per up out about after before over under
"""
STOPWORDS = frozenset(_STOPWORDS.split())
_WORD = re.compile(r"[a-z0-9]+")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$|^(.+)\n[=-]{3,}\s*$", re.M)


def estimate_tokens(text: str) -> int:
    """About four characters per token: good enough to keep a prompt within a budget."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _stem(word: str) -> str:
    """A light stemmer, enough to match "customers" with "customer" and "invoicing" with "invoice"."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The words of ``text`` that carry meaning: lowercased, stemmed, without stopwords and single letters."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS]


@dataclass(frozen=True)
class Document:
    """One context file: its path relative to the repository and its text."""

    path: str
    text: str

    @property
    def headings(self) -> list[str]:
        return [(m.group(1) or m.group(2) or "").strip() for m in _HEADING.finditer(self.text)]

    def weighted_terms(self) -> Counter[str]:
        """Term frequencies with the name and the headings weighted above the body (BM25F, simplified)."""
        counts: Counter[str] = Counter(terms(self.text))
        for term in terms(" ".join(self.headings)):
            counts[term] += HEADING_WEIGHT - 1  # a heading is in the body already once
        for term in terms(re.sub(r"[/_.\-]+", " ", Path(self.path).with_suffix("").as_posix())):
            counts[term] += NAME_WEIGHT
        return counts


@dataclass(frozen=True)
class SelectedContext:
    """What goes into a prompt: the delimited text, and which files made it in and which did not."""

    text: str
    files_used: list[str]
    files_skipped: list[str]
    learnings: str = ""  # the learnings file's text, always part of ``text`` when not empty
    learnings_path: str = ""
    truncated: list[str] = field(default_factory=list)  # files of files_used that were cut to the budget
    documents: tuple[Document, ...] = ()  # everything loaded, for a per-task re-selection
    budget_tokens: int = 0

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.text)


def _relative(repo: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _walk(root: Path) -> Iterable[Path]:
    """Text files under ``root``, sorted, skipping hidden files and folders."""
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") for part in parts):
            continue
        if path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
            yield path


def load_documents(repo: Path, settings: ContextSettings) -> list[Document]:
    """Every context file under ``settings.paths`` (relative to the repository): folders are walked for
    markdown and text files, files named directly are taken as they are. Missing paths, unreadable and
    binary files are left out (the default ``docs/context`` need not exist)."""
    learnings = (repo / settings.learnings).resolve() if settings.learnings else None
    seen: set[Path] = set()
    documents: list[Document] = []
    for entry in settings.paths:
        root = repo / entry
        candidates = list(_walk(root)) if root.is_dir() else [root] if root.is_file() else []
        for path in candidates:
            resolved = path.resolve()
            if resolved in seen or resolved == learnings:
                continue
            seen.add(resolved)
            text = _read_text(path)
            if text is not None and text.strip():
                documents.append(Document(_relative(repo, path), text))
    return documents


def read_learnings(repo: Path, settings: ContextSettings) -> str:
    if not settings.learnings:
        return ""
    return (_read_text(repo / settings.learnings) or "").strip()


def rank(documents: Sequence[Document], query: str) -> list[tuple[float, Document]]:
    """Documents by BM25 score against ``query``, best first (ties by path, so the order is stable)."""
    wanted = set(terms(query))
    weighted = [doc.weighted_terms() for doc in documents]
    if not documents:
        return []
    lengths = [sum(counts.values()) for counts in weighted]
    average = sum(lengths) / len(lengths) or 1.0
    total = len(documents)
    scored = []
    for doc, counts, length in zip(documents, weighted, lengths, strict=True):
        score = 0.0
        for term in wanted:
            frequency = counts.get(term, 0)
            if not frequency:
                continue
            df = sum(1 for other in weighted if term in other)
            idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
            score += idf * frequency * (K1 + 1) / (frequency + K1 * (1 - B + B * length / average))
        scored.append((score, doc))
    return sorted(scored, key=lambda pair: (-pair[0], pair[1].path))


def _escape(text: str, tag: str) -> str:
    """The user's text cannot close its own delimiter by accident."""
    return text.replace(f"</{tag}>", f"<\\/{tag}>")


def file_block(path: str, text: str) -> str:
    return f'<context-file path="{path}">\n{_escape(text.strip(), "context-file")}\n</context-file>'


def learnings_block(path: str, text: str) -> str:
    return f'<learnings path="{path}">\n{_escape(text.strip(), "learnings")}\n</learnings>'


def truncate(text: str, limit: int, path: str) -> str:
    """The start of ``text`` within ``limit`` characters (cut at a line end when one is near), and a marker."""
    room = max(0, limit - 120 - len(path))
    cut = text[:room]
    newline = cut.rfind("\n")
    if newline > room * 0.6:
        cut = cut[:newline]
    cut = cut.rstrip()
    return (f"{cut}\n[... truncated to fit the context budget: {len(cut)} of {len(text)} characters shown; "
            f"read {path} for the rest ...]")


def select(
    documents: Sequence[Document],
    query: str,
    budget_tokens: int,
    *,
    learnings: str = "",
    learnings_path: str = "",
) -> SelectedContext:
    """Choose the documents relevant to ``query`` within ``budget_tokens``, the learnings always first.

    The learnings count against the budget but are always in whole (up to ``LEARNINGS_FLOOR_TOKENS`` or
    the budget, whichever is larger). Documents are taken in order of relevance while they fit; one that
    does not fit is skipped, except the most relevant one, which is cut to what is left. Documents with no
    word in common with the query are skipped: they would only dilute the prompt.
    """
    budget = budget_tokens * CHARS_PER_TOKEN
    blocks: list[str] = []
    if learnings:
        block = learnings_block(learnings_path, learnings)
        cap = max(budget, LEARNINGS_FLOOR_TOKENS * CHARS_PER_TOKEN)
        if len(block) > cap:  # only a runaway learnings file gets here: keep its start
            block = learnings_block(learnings_path, truncate(learnings, cap - 60, learnings_path))
        blocks.append(block)
    used_chars = sum(len(b) + 2 for b in blocks)
    used: list[str] = []
    skipped: list[str] = []
    truncated: list[str] = []
    for index, (score, doc) in enumerate(rank(documents, query)):
        if score <= 0:
            skipped.append(doc.path)
            continue
        block = file_block(doc.path, doc.text)
        left = budget - used_chars
        if len(block) + 2 <= left:
            blocks.append(block)
            used.append(doc.path)
            used_chars += len(block) + 2
        elif index == 0 and left - len(file_block(doc.path, "")) - 2 >= MIN_TRUNCATED_CHARS:
            room = left - len(file_block(doc.path, "")) - 2
            block = file_block(doc.path, truncate(doc.text, room, doc.path))
            blocks.append(block)
            used.append(doc.path)
            truncated.append(doc.path)
            used_chars += len(block) + 2
        else:
            skipped.append(doc.path)
    return SelectedContext(
        text="\n\n".join(blocks), files_used=used, files_skipped=sorted(skipped), learnings=learnings,
        learnings_path=learnings_path, truncated=truncated, documents=tuple(documents), budget_tokens=budget_tokens,
    )


def select_context(repo: Path, settings: ContextSettings, request: str) -> SelectedContext:
    """Load the context files and the learnings of ``repo`` and select them for ``request``."""
    return select(
        load_documents(repo, settings), request, settings.budget_tokens,
        learnings=read_learnings(repo, settings), learnings_path=settings.learnings,
    )


def reselect(context: SelectedContext, query: str, budget_tokens: int) -> SelectedContext:
    """Select again from the documents already loaded, for another query (a task's title and description)."""
    return select(context.documents, query, budget_tokens, learnings=context.learnings,
                  learnings_path=context.learnings_path)


__all__ = [
    "CHARS_PER_TOKEN", "Document", "SelectedContext", "estimate_tokens", "load_documents", "rank", "read_learnings",
    "reselect", "select", "select_context", "terms", "truncate",
]
