"""Turning stored papers into what the pages show: cards, shortened author lists, highlighted text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from markupsafe import Markup, escape

from papertide.models import Paper
from papertide.store.community import User
from papertide.store.sqlite import SqliteStore

MAX_AUTHORS = 4
# A card clamps its abstract to 3 lines (about 330 characters at the widest layout): it gets a bit more
# than that, not the whole abstract (a search page was 30 abstracts of ~1,000 characters, highlighted).
EXCERPT_CHARS = 420
_STOP = frozenset(
    "a an and are as at be by for from has in is it of on or that the to was were will with we our via using "
    "based towards toward".split()
)
_MATH = re.compile(r"(\$\$.+?\$\$|\$[^$]+\$|\\\(.+?\\\)|\\\[.+?\\\])", re.DOTALL)


@dataclass(slots=True)
class Card:
    doc_id: int
    paper: Paper
    votes: int = 0
    voted: bool = False
    saved: bool = False
    submitted_by: str | None = None
    score: float | None = None
    title_html: Markup = field(default_factory=Markup)
    abstract_html: Markup = field(default_factory=Markup)

    @property
    def authors_short(self) -> str:
        return short_authors(self.paper.authors)


def short_authors(authors: Sequence[str], limit: int = MAX_AUTHORS) -> str:
    if len(authors) <= limit:
        return ", ".join(authors)
    return ", ".join(authors[: limit - 1]) + f" et al. ({len(authors)} authors)"


def query_terms(query: str) -> list[str]:
    """The words of a query worth highlighting (no stop words, no one-letter words)."""
    words = re.findall(r"[^\W_]+", query.lower())
    return [w for w in dict.fromkeys(words) if len(w) > 1 and w not in _STOP]


def excerpt(text: str, terms: Sequence[str] = (), limit: int = EXCERPT_CHARS) -> str:
    """The part of an abstract a card shows: about `limit` characters, cut between words and never inside
    LaTeX math. With query terms whose first match lies past the first half of that, it starts at the
    sentence holding the match instead, so a search result shows why it matched."""
    if len(text) <= limit:
        return text
    # every math span starts with "$" or "\\": most abstracts have none, and skip the search
    maths = [m.span() for m in _MATH.finditer(text)] if "$" in text or "\\" in text else []

    def outside(i: int) -> int:  # i, or the start of the math span it falls in
        return next((a for a, b in maths if a < i < b), i)

    start = 0
    pattern = _pattern(tuple(terms)) if terms else None
    if pattern is not None:
        first = next((m for m in pattern.finditer(text) if outside(m.start()) == m.start()), None)
        if first is not None and first.start() > limit // 2:
            start = outside(max(text.rfind(". ", 0, first.start()) + 2, 0))
    end = start + limit
    if end >= len(text):
        end = len(text)
    else:
        space = text.rfind(" ", start, end)
        end = outside(space if space > start else end)
    body = text[start:end].strip()
    return ("… " if start > 0 else "") + body + (" …" if end < len(text) else "")


def highlight(text: str, terms: Sequence[str]) -> Markup:
    """Escape `text` and wrap query terms (and their inflections) in <mark>, leaving LaTeX math alone."""
    return _marker(tuple(terms))(text)


def _mark(m: re.Match) -> str:
    return f"<mark>{m.group(0)}</mark>"


@lru_cache(maxsize=256)
def _pattern(terms: tuple[str, ...]) -> re.Pattern | None:
    """A regex for one query's terms: a term's stem-like prefix, so "networks" marks "network" and
    "networked" too (not after `&` or `#`: that would mark inside an escaped entity)."""
    if not terms:
        return None
    stems = sorted({t if len(t) <= 4 else t[: max(4, len(t) - 2)] for t in terms}, key=len, reverse=True)
    return re.compile(r"(?<![\w&#])(?:" + "|".join(re.escape(s) for s in stems) + r")\w*", re.IGNORECASE)


@lru_cache(maxsize=256)
def _marker(terms: tuple[str, ...]):
    """A highlighter for one query's terms, compiled once (a results page highlights 60 texts)."""
    pattern = _pattern(terms)
    if pattern is None:
        return escape

    def mark(text: str) -> Markup:
        if "$" not in text and "\\" not in text:  # no math: one pass
            return Markup(pattern.sub(_mark, str(escape(text))))
        out = []
        for i, part in enumerate(_MATH.split(text)):
            # a math span: marks inside it would break the rendering
            out.append(str(escape(part)) if i % 2 else pattern.sub(_mark, str(escape(part))))
        return Markup("".join(out))

    return mark


def cards(
    store: SqliteStore, doc_ids: Sequence[int], user: User | None, terms: Sequence[str] = (),
    scores: dict[int, float] | None = None,
) -> list[Card]:
    """Cards for papers in the given order, with votes, the user's own votes and saves, and submitters."""
    ids = list(doc_ids)
    if not ids:
        return []
    papers = store.get_papers(ids)
    votes = store.vote_counts(ids)
    voted = store.voted_among(user.id, ids) if user else set()
    saved = store.saved_among(user.id, ids) if user else set()
    submitters = store.submitters(ids)
    out = []
    for d in ids:
        p = papers.get(d)
        if p is None:
            continue
        out.append(Card(
            d, p, votes.get(d, 0), d in voted, d in saved, submitters.get(d) or p.submitter,
            (scores or {}).get(d), highlight(p.title, terms), highlight(excerpt(p.abstract, terms), terms),
        ))
    return out
