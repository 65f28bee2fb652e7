"""Card text: the abstract excerpt a card shows and the highlighting of query terms in it."""

from __future__ import annotations

import re

from papertide.web.views import _MATH, EXCERPT_CHARS, excerpt, highlight, query_terms

LONG = (
    "We study a problem of learning. " * 10
    + "Our method uses $\\mathcal{O}(n \\log n)$ memory and a transformer decoder. "
    + "Finally, protein folding results are reported on three benchmarks with care. " * 4
)


def test_short_abstracts_are_kept_whole():
    assert excerpt("A short abstract with $x<y$.", ["abstract"]) == "A short abstract with $x<y$."


def test_the_excerpt_is_bounded_and_cut_between_words():
    out = excerpt(LONG)
    assert out.endswith(" …") and not out.startswith("…")
    body = out[: -len(" …")]
    assert len(body) <= EXCERPT_CHARS and LONG.startswith(body)
    assert LONG[len(body)] == " "  # cut at a word boundary


def test_a_late_match_moves_the_excerpt_to_its_sentence():
    out = excerpt(LONG, query_terms("protein folding"))
    assert out.startswith("… Finally, protein folding")
    assert "<mark>protein</mark>" in str(highlight(out, query_terms("protein folding")))
    # an early match keeps the beginning
    assert excerpt(LONG, query_terms("problem")).startswith("We study")


def test_the_excerpt_never_cuts_inside_math():
    for limit in range(300, 420, 3):
        out = excerpt(LONG, limit=limit)
        body = out.removesuffix(" …")
        # every $ it keeps is paired: the math span is whole or absent
        assert body.count("$") % 2 == 0, limit
        assert all(m.group(0) in LONG for m in _MATH.finditer(body))
    # a match inside math does not count as the first match
    text = "x " * 300 + "$\\alpha_{protein}$ then. Later a protein appears here."
    assert excerpt(text, ["protein"]).startswith("… Later a protein")


def test_escaping_survives_the_excerpt():
    text = "<script>alert(1)</script> & more " * 30
    html = str(highlight(excerpt(text, ["more"]), ["more"]))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp;" in html
    assert re.search(r"<mark>more</mark>", html)
