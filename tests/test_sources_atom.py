"""arXiv API (Atom) parsing, legacy and current feed formats, against real recorded responses."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from papertide.models import RecordError, Version
from papertide.sources import MalformedResponse
from papertide.sources.atom import ArxivApiError, parse_atom_feed

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
LEGACY = "arxiv_atom_query_delmaestro_2016.xml"
CHECKERBOARD = "arxiv_atom_query_delmaestro_checkerboard_2016.xml"
CURRENT = "arxiv_atom_query_all_testing_2026-04-12.xml"
LOC = "https://export.arxiv.org/api/query?search_query=au:del_maestro"


def load(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


def by_id(page):
    return {p.arxiv_id: p for p in page.papers}


# -- legacy format (2016) --------------------------------------------------------------------------


def test_legacy_feed_paging_fields_and_ids():
    page = parse_atom_feed(load(LEGACY), LOC)
    assert (page.total_results, page.start_index, page.items_per_page) == (31, 0, 10)
    assert page.errors == []
    assert [p.arxiv_id for p in page.papers] == [
        "1201.4869",
        "cond-mat/0412498",
        "cond-mat/0603029",
        "1005.5383",
        "1303.6954",
        "1312.6177",
        "1412.6529",
        "cond-mat/0607501",
        "cond-mat/0702661",
        "0807.2873",
    ]
    assert {p.source for p in page.papers} == {"arxiv-api"}


def test_legacy_entry_fields():
    p = by_id(parse_atom_feed(load(LEGACY), LOC))["cond-mat/0603029"]
    assert (
        p.title
        == "From stripe to checkerboard order on the square lattice in the presence of quenched disorder"
    )
    assert p.authors == ["Adrian Del Maestro", "Bernd Rosenow", "Subir Sachdev"]
    assert p.categories == ["cond-mat.str-el", "cond-mat.supr-con"]
    assert p.version == 1
    assert p.versions == [Version(1, "2006-03-02T02:22:45Z")]
    assert p.submitted == p.updated == date(2006, 3, 2)
    assert p.doi == "10.1103/PhysRevB.74.024520"
    assert p.journal_ref == "Phys. Rev. B 74, 024520 (2006)"
    assert p.comments == "10 pages, 11 figures; added reference"
    assert p.abstract.startswith(
        "We discuss the effects of quenched disorder on a model of charge density wave (CDW)"
    )
    assert "\n" not in p.abstract


def test_legacy_later_version_and_tex():
    p = by_id(parse_atom_feed(load(LEGACY), LOC))["1412.6529"]
    assert p.version == 2
    # The API dates v1 (<published>) and the returned version (<updated>) only.
    assert p.versions == [Version(1, "2014-12-19T21:00:08Z"), Version(2, "2015-02-25T23:04:37Z")]
    assert p.submitted == date(2014, 12, 19) and p.updated == date(2015, 2, 25)
    assert p.categories == ["cond-mat.quant-gas", "quant-ph"]
    assert p.abstract.startswith("We consider the R\\'{e}nyi entanglement entropy")
    assert "Lieb-Liniger model of $\\delta$-function interacting bosons" in p.abstract
    assert p.comments == "10 pages, 8 figures; updated figure 5, added references, revised text, reformatted"


def test_primary_category_comes_first_even_when_listed_later():
    # In memory, from the recorded one-entry feed: list the secondary category before the primary one.
    text = load(CHECKERBOARD).decode()
    primary = '    <category term="cond-mat.str-el" scheme="http://arxiv.org/schemas/atom"/>\n'
    secondary = '    <category term="cond-mat.supr-con" scheme="http://arxiv.org/schemas/atom"/>\n'
    assert primary + secondary in text
    swapped = text.replace(primary + secondary, secondary + primary)
    [p] = parse_atom_feed(swapped.encode(), LOC).papers
    assert p.categories == ["cond-mat.str-el", "cond-mat.supr-con"]


# -- current format (2026) -------------------------------------------------------------------------


def test_current_feed_paging_fields():
    page = parse_atom_feed(load(CURRENT), LOC)
    assert (page.total_results, page.start_index, page.items_per_page) == (214881, 0, 10)
    assert len(page.papers) == 10 and page.errors == []


def test_current_feed_non_ascii_authors_and_entities():
    papers = by_id(parse_atom_feed(load(CURRENT), LOC))
    assert papers["2405.13786"].authors == [
        "Aurora Ramírez",
        "Mario Berrios",
        "José Raúl Romero",
        "Robert Feldt",
    ]
    assert papers["2302.03287"].title == "ChatGPT and Software Testing Education: Promises & Perils"
    assert papers["1202.4527"].journal_ref == (
        "International Journal of Software Engineering & Applications (IJSEA), Vol.3, No.1, January 2012"
    )


def test_current_feed_versions_categories_optional_fields():
    papers = by_id(parse_atom_feed(load(CURRENT), LOC))
    fuzz = papers["2005.14124"]
    assert fuzz.categories == ["cs.SE", "cs.CR", "cs.LG"]
    assert fuzz.version == 2 and fuzz.submitted == date(2020, 5, 28) and fuzz.updated == date(2020, 7, 16)
    assert fuzz.doi == "10.1145/3395363.3397376"
    assert papers["2204.08348"].version == 3
    assert papers["2204.08348"].versions == [
        Version(1, "2022-04-18T14:46:24Z"),
        Version(3, "2022-07-06T05:12:56Z"),
    ]
    # Some entries have neither DOI nor journal reference.
    survey = papers["2503.05378"]
    assert survey.doi is None and survey.journal_ref is None
    assert survey.comments == "Web Testing, GUI Testing, front-end, survey, SBST, AI, fuzzing"
    assert papers["1205.1866"].doi == "10.5121/vlsic.2012.3205" and papers["1205.1866"].journal_ref is None
    assert papers["1205.1866"].categories == ["cs.AR"]


def test_current_feed_abstract_keeps_paragraph_breaks_only():
    p = by_id(parse_atom_feed(load(CURRENT), LOC))["1812.11470"]
    paragraphs = p.abstract.split("\n\n")
    assert [para.split(".")[0] for para in paragraphs] == ["Context", "Objective", "Results", "Conclusion"]
    assert all("\n" not in para for para in paragraphs)


# -- errors ----------------------------------------------------------------------------------------


def test_error_feed_raises():
    with pytest.raises(ArxivApiError) as e:
        parse_atom_feed(load("arxiv_atom_error_bad_id_2026-04-12.xml"), LOC)
    assert e.value.message == "incorrect id format for abc"


@pytest.mark.parametrize("data", [load(CURRENT)[:5000], b"<html>rate limited</html>", b"  "])
def test_truncated_or_foreign_body_is_malformed(data):
    with pytest.raises(MalformedResponse):
        parse_atom_feed(data, LOC)


def test_bad_entries_are_reported_and_skipped():
    # In memory, from the recorded legacy feed: entry 2 loses its title, entry 5 gets a foreign id.
    text = load(LEGACY).decode()
    text = text.replace("<title>Thermal melting of density waves on the square lattice</title>", "")
    text = text.replace("<id>http://arxiv.org/abs/1303.6954v2</id>", "<id>urn:example:1</id>")
    page = parse_atom_feed(text.encode(), LOC)
    assert len(page.papers) == 8
    assert page.errors == [
        RecordError(f"{LOC} entry 2", "cond-mat/0412498: missing title"),
        RecordError(f"{LOC} entry 5", "invalid arXiv id 'urn:example:1'"),
    ]
