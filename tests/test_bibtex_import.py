"""Cold start: parsing BibTeX / RIS / id lists (hand-written from papers of the bundled sample) and the
site's import page, which matches references to stored papers by arXiv id, DOI or title."""

from __future__ import annotations

import dataclasses
import pathlib

from webutil import csrf, html, post, signup

from papertide.sources.bibtex import (
    Reference,
    clean_latex,
    match_references,
    parse_bibtex,
    parse_id_list,
    parse_references,
    parse_ris,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "import"
LINTO_DOI = "10.1109/icassp49660.2025.10888001"


def test_bibtex_ids_dois_titles():
    refs = {r.label: r for r in parse_bibtex((FIXTURES / "library.bib").read_text())}
    assert set(refs) == {"ye2025shushing", "tang2025chain", "naouara2025linto", "karita2025miipher",
                         "wang2025audio", "vaswani2017attention", "pubmed2020"}
    assert refs["ye2025shushing"].arxiv_id == "2503.14928"  # eprint + archivePrefix
    assert refs["ye2025shushing"].title == "Shushing! Let's Imagine an Authentic Speech from the Silent Video"
    assert refs["tang2025chain"].arxiv_id == "2504.01519"  # Google Scholar: the id in the journal field
    assert refs["naouara2025linto"].doi == LINTO_DOI and refs["naouara2025linto"].arxiv_id is None
    assert refs["naouara2025linto"].title.startswith("LinTO Audio and Textual Datasets")  # braces dropped
    assert refs["karita2025miipher"].arxiv_id is None  # only a title to go by
    assert refs["wang2025audio"].arxiv_id == "2505.11200" and refs["wang2025audio"].doi is None  # arXiv's DOI
    assert refs["pubmed2020"].arxiv_id is None  # an eprint of another archive


def test_ris_records():
    refs = parse_ris((FIXTURES / "library.ris").read_text())
    assert [r.arxiv_id for r in refs] == ["2504.15509", None, None, None]
    assert refs[1].title == "Benchmarking Expressive Japanese Character Text-to-Speech with VITS and Style-BERT-VITS2"
    assert refs[2].doi == LINTO_DOI  # a doi.org URL in DO
    assert parse_references("export.txt", (FIXTURES / "library.ris").read_text()) == refs  # sniffed


def test_id_list_and_latex():
    refs = parse_id_list("2503.14928\nhttps://arxiv.org/abs/2504.01519v2, arXiv:hep-th/9901001 not-an-id\n")
    assert [r.arxiv_id for r in refs] == ["2503.14928", "2504.01519", "hep-th/9901001", None]
    assert parse_id_list("https://doi.org/10.1145/3292500.3330701")[0].doi == "10.1145/3292500.3330701"
    assert clean_latex(r"{\"U}ber {$k$}-Means \& {\textit{Friends}}") == "Uber k-Means & Friends"


def test_match_order_and_unmatched():
    refs = [Reference("a", arxiv_id="1"), Reference("b", doi="10.1/x"), Reference("c", title="A Long Enough Title"),
            Reference("d", title="Nowhere To Be Found"), Reference("e", title="short")]
    report = match_references(
        refs, lambda ids: {"1": 10} if "1" in ids else {}, lambda dois: {"10.1/x": 20},
        lambda: iter([[(30, "A long-enough  TITLE.")], [(31, "short")]]),
    )
    assert [(r.label, d, how) for r, d, how in report.matched] == [("a", 10, "arxiv"), ("b", 20, "doi"),
                                                                     ("c", 30, "title")]
    assert [r.label for r in report.unmatched] == ["d", "e"]  # too short a title is never matched by title


def _give_doi(site, arxiv_id: str, doi: str) -> None:
    p = site.store.get_paper(arxiv_id)
    site.store.upsert_papers([dataclasses.replace(p, doi=doi)])


def test_import_bib_through_the_site(client, site):
    _give_doi(site, "2504.02604", LINTO_DOI)
    signup(client)
    r = post(client, "/for-you/import", {"ids": "", "new_collection": "From Zotero"},
             files={"file": ("My Library.bib", (FIXTURES / "library.bib").read_bytes(), "application/x-bibtex")})
    assert r.status_code == 200, r.text[:500]
    page = html(r.text)
    assert page.find("h2", id="report-h").text.strip() == "Found 5 of 7 references"
    matched = [li.text for li in page.find("ul", cls="matched").find_all("li")]
    assert any("LinTO" in t and "by DOI" in t for t in matched)
    assert any("Miipher-2" in t and "by title" in t for t in matched)
    assert any("Shushing" in t and "by arXiv id" in t for t in matched)
    unmatched = [li.text for li in page.find("ul", cls="unmatched").find_all("li")]
    assert any("Attention is All you Need" in t for t in unmatched) and len(unmatched) == 2
    coll = next(c for c in site.store.collections(1) if c.name == "From Zotero")
    ids = site.store.arxiv_ids_for(site.store.collection_papers(coll.id))
    assert sorted(ids.values()) == ["2503.14928", "2504.01519", "2504.02604", "2505.04457", "2505.11200"]


def test_import_ris_and_ids_into_an_existing_collection(client, site):
    signup(client)
    post(client, "/library", {"name": "Speech"})
    coll = site.store.collections(1)[0]
    r = post(client, "/for-you/import", {"ids": "2503.14928\nhttps://arxiv.org/abs/9999.99999",
                                         "collection_id": str(coll.id)},
             files={"file": ("zotero.ris", (FIXTURES / "library.ris").read_bytes(), "application/x-research-info-systems")})
    assert r.status_code == 200
    assert html(r.text).find("h2", id="report-h").text.strip() == "Found 4 of 6 references"  # LinTO by its title here
    assert len(site.store.collection_papers(coll.id)) == 4


def test_import_needs_input_and_csrf(client, site):
    signup(client)
    assert post(client, "/for-you/import", {"ids": "  "}).status_code == 400
    r = client.post("/for-you/import", data={"ids": "2503.14928"}, follow_redirects=False)
    assert r.status_code == 403
    assert site.store.collections(1) == []


def test_pick_an_author(client, site):
    signup(client)
    r = client.get("/for-you/author", params={"name": "yiyi liao"})  # case does not matter
    found = html(r.text).find_all("article", cls="card")
    assert len(found) == 3
    assert client.get("/for-you/author", params={"name": "Yiyi"}).text.count('class="card"') == 0  # exact names
    r = post(client, "/for-you/author", {"name": "Yiyi Liao", "new_collection": "Liao"})
    assert r.status_code == 303 and r.headers["location"] == "/for-you"
    coll = site.store.collections(1)[0]
    assert coll.name == "Liao" and coll.count == 3
    assert client.post("/for-you/author", data={"name": "Yiyi Liao"}, follow_redirects=False).status_code == 403
    csrf(client, "/for-you/author")
