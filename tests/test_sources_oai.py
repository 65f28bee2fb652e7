"""OAI-PMH ListRecords parsing, against real arXiv responses (tests/fixtures/recorded/PROVENANCE.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from papertide.models import RecordError, Version
from papertide.sources import MalformedResponse
from papertide.sources.oai import OaiError, parse_list_records, split_authors

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
RAW = "arxiv_oai_listrecords_arXivRaw_2015-01-06.xml"
ARXIV = "arxiv_oai_listrecords_arXiv_astro-ph_2013-04-03.xml"
DC = "arxiv_oai_listrecords_oai_dc_cs_2024-01-27.xml"
LOC = "http://export.arxiv.org/oai2?verb=ListRecords"


def load(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


def by_id(page):
    return {p.arxiv_id: p for p in page.papers}


# -- arXivRaw -------------------------------------------------------------------------------------


def test_arxivraw_page_envelope():
    page = parse_list_records(load(RAW), LOC)
    assert [p.arxiv_id for p in page.papers] == [
        "0704.0471",
        "0704.0716",
        "0704.0874",
        "0704.1109",
        "0704.1114",
        "0704.1586",
    ]
    assert page.errors == [] and page.deleted == []
    assert page.resumption_token == "726959|1001"
    assert page.complete_list_size == 58011 and page.cursor == 0
    assert not page.done
    assert {p.source for p in page.papers} == {"arxiv-oai"}


def test_arxivraw_versions_dates_submitter_license():
    p = by_id(parse_list_records(load(RAW), LOC))["0704.0716"]
    assert p.version == 4
    assert p.versions == [
        Version(1, "2007-04-05T12:45:03Z", "43kb"),
        Version(2, "2007-09-28T15:13:43Z", "48kb"),
        Version(3, "2008-02-29T16:05:39Z", "48kb"),
        Version(4, "2008-11-14T09:07:25Z", "49kb"),
    ]
    assert p.submitted == date(2007, 4, 5) and p.updated == date(2008, 11, 14)
    assert p.listed is None  # OAI datestamps are record-change dates, not listing dates
    assert p.submitter == "Christoph Richard"
    assert p.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert p.categories == ["math-ph", "math.MP"]
    assert p.primary_category == "math-ph"
    assert p.doi is None
    # journal-ref and comments wrap with an indented continuation line; both come out on one line.
    assert p.journal_ref == (
        "Polygons, polyominoes and polycubes, 247-299, Lecture Notes in Phys., 775, Springer, Dordrecht, 2009"
    )
    assert p.comments == (
        "54 pages, 2 figures; v2 updated and slightly expanded; v3 changes in some proofs; "
        "v4 slightly expanded"
    )


def test_arxivraw_single_version_title_authors_doi_entities():
    p = by_id(parse_list_records(load(RAW), LOC))["0704.0471"]
    assert p.version == 1
    assert p.versions == [Version(1, "2007-04-03T22:04:11Z", "294kb")]
    assert p.submitted == p.updated == date(2007, 4, 3)
    assert p.title == (
        "Density dependence of the symmetry energy and the nuclear equation of state: "
        "A Dynamical and Statistical model perspective"
    )
    # "A, B, and C" - the Oxford comma must not produce an empty or "and ..." author.
    assert p.authors == ["D.V. Shetty", "S.J. Yennello", "G.A. Souliotis"]
    assert p.doi == "10.1103/PhysRevC.76.024606 10.1103/PhysRevC.76.039902"  # two DOIs, as given
    assert p.journal_ref == "Phys.Rev.C76:024606,2007; Erratum-ibid.C76:039902,2007"
    assert 'an extremely " stiff " and " soft " form' in p.abstract  # &quot; decoded
    assert "\n" not in p.abstract and p.abstract.startswith("The density dependence")
    assert p.abstract.endswith("nuclear physics studies.")
    assert p.code_urls == []


def test_arxivraw_authors_joined_by_and_keep_their_case():
    papers = by_id(parse_list_records(load(RAW), LOC))
    assert papers["0704.1109"].authors == ["Valeria M. Rosa", "Patricio S. letelier"]
    assert papers["0704.1109"].submitter == "Patricio S. Letelier"
    assert papers["0704.1586"].authors == ["N.C. Summers", "F.M. Nunes"]
    assert papers["0704.1114"].authors == ["T. S. Barman"]


def test_arxivraw_keeps_latex():
    p = by_id(parse_list_records(load(RAW), LOC))["0704.1586"]
    assert p.title == "Core excitation in the elastic scattering and breakup of $^{11}$Be on protons"
    assert p.abstract.startswith("The elastic scattering and breakup of $^{11}$Be from a proton target")


# -- arXiv format ----------------------------------------------------------------------------------


def test_arxiv_format_record():
    page = parse_list_records(load(ARXIV), LOC)
    assert page.done and page.resumption_token is None and page.complete_list_size is None
    [p] = page.papers
    assert p.arxiv_id == "0801.3931"
    assert p.authors == ["T. Manos", "E. Athanassoula"]  # forenames keyname, in order
    assert p.title == "Dynamical study of 2D and 3D barred galaxy models"
    assert p.categories == ["astro-ph"]
    assert p.submitted == p.updated == date(2008, 1, 25)
    assert p.version == 1 and p.versions == []  # this format has no version list
    assert p.doi == "10.1007/978-3-540-75826-6_11"
    assert p.journal_ref == "Chaos in Astronomy Astrophysics and Space Science Proceedings 2009, pp 115-122"
    assert p.comments == (
        '8 pages, 3 figures, to appear in the proceedings of the international conference "Chaos in '
        'Astronomy", Athens, Greece (talk contribution)'
    )
    # TeX escapes stay exactly as arXiv serves them.
    assert "a Poincar\\'{e} $(y,p_y)$ surface of section" in p.abstract
    assert "$(x, z, p_y)$" in p.abstract


# -- oai_dc ----------------------------------------------------------------------------------------


def test_oai_dc_page_with_crlf_line_ends():
    data = load(DC)
    assert b"\r\n" in data  # the recording keeps the server's CRLF line ends
    page = parse_list_records(data, LOC)
    assert [p.arxiv_id for p in page.papers] == [
        "1303.2033",
        "2401.14034",
        "2401.14036",
        "2401.14038",
        "2401.14040",
    ]
    assert page.resumption_token == "6960524|1001" and page.complete_list_size == 1162
    for p in page.papers:
        for text in (p.title, p.abstract, p.comments or "", *p.authors):
            assert "\r" not in text and "\n" not in text


def test_oai_dc_fields():
    papers = by_id(parse_list_records(load(DC), LOC))
    old = papers["1303.2033"]
    assert old.title == "Extended Fourier analysis of signals"
    assert old.authors == ["Vilnis Liepins"]  # "Liepins, Vilnis"
    assert old.comments == "32 pages, 9 figures"  # the "Comment:" description
    assert old.abstract.startswith("This summary of the doctoral thesis")
    assert old.submitted == date(2013, 3, 8) and old.updated == date(2024, 1, 23)
    assert old.categories == []  # oai_dc names subjects, it has no category codes

    assert papers["2401.14034"].authors == [
        "Chuankun Li",
        "Shuai Li",
        "Yanbo Gao",
        "Ping Chen",
        "Jian Li",
        "Wanqing Li",
    ]
    assert papers["2401.14036"].authors[0] == "Jiu-Cheng Xie"
    assert papers["2401.14040"].title == "(Chat)GPT v BERT: Dawn of Justice for Semantic Change Detection"
    assert papers["2401.14040"].comments == "Accepted to the Findings of EACL 2024"
    assert papers["2401.14034"].comments is None


def test_oai_dc_code_url_found_in_abstract():
    papers = by_id(parse_list_records(load(DC), LOC))
    assert papers["2401.14038"].code_urls == ["https://github.com/Regan-Zhang/HaDis"]
    assert papers["2401.14038"].has_code
    assert not papers["2401.14034"].has_code


# -- errors ----------------------------------------------------------------------------------------


def test_no_records_match_is_an_empty_finished_page():
    page = parse_list_records(load("arxiv_oai_error_noRecordsMatch_2015-06-23.xml"), LOC)
    assert page.papers == [] and page.errors == [] and page.done


def test_bad_resumption_token_raises():
    with pytest.raises(OaiError) as e:
        parse_list_records(load("arxiv_oai_error_badResumptionToken_2015-06-23.xml"), LOC)
    assert e.value.code == "badResumptionToken"
    assert e.value.message == "The resumptionToken supplied is illegal for this repository"


@pytest.mark.parametrize(
    "data",
    [
        load(RAW)[: len(load(RAW)) // 2],  # cut mid-record, as a dropped transfer leaves it
        load(RAW)[:-20],  # cut inside the closing tags
        b"<html><body>502 Bad Gateway</body></html>",  # well-formed but not OAI-PMH
        b"",
    ],
)
def test_truncated_or_foreign_body_is_malformed(data):
    with pytest.raises(MalformedResponse):
        parse_list_records(data, LOC)


def test_bad_and_deleted_records_are_reported_and_skipped():
    # Built in memory from the recorded page: record 2 gets an invalid id, record 4 loses its title,
    # and a deleted record (the header shape OAI-PMH prescribes) is inserted after record 5.
    text = load(RAW).decode()
    text = text.replace("<id>0704.0716</id>", "<id>not-an-id</id>")
    start = text.index("<title>Spinning Strings")
    text = text[:start] + text[text.index("</title>", start) + len("</title>") :]
    deleted = (
        '<record>\n<header status="deleted">\n <identifier>oai:arXiv.org:0704.9999</identifier>\n'
        " <datestamp>2014-11-18</datestamp>\n</header>\n</record>\n"
    )
    anchor = text.index("<record>\n<header>\n <identifier>oai:arXiv.org:0704.1586")
    text = text[:anchor] + deleted + text[anchor:]

    page = parse_list_records(text.encode(), LOC)
    assert [p.arxiv_id for p in page.papers] == ["0704.0471", "0704.0874", "0704.1114", "0704.1586"]
    assert page.errors == [
        RecordError(f"{LOC} record 2", "invalid arXiv id 'not-an-id'"),
        RecordError(f"{LOC} record 4", "0704.1109: missing title"),
    ]
    assert page.deleted == ["0704.9999"]
    assert page.resumption_token == "726959|1001"  # the rest of the page still counts


def test_missing_metadata_id_falls_back_to_the_header_identifier():
    text = load(RAW).decode().replace("<id>0704.0874</id>", "")
    papers = by_id(parse_list_records(text.encode(), LOC))
    assert papers["0704.0874"].title.startswith("Higher ramification")


# -- author lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            "D.V. Shetty, S.J. Yennello, and G.A. Souliotis",
            ["D.V. Shetty", "S.J. Yennello", "G.A. Souliotis"],
        ),
        ("A. One (MIT), B. Two (CERN)", ["A. One", "B. Two"]),
        ("A. One, B. Two ((1) MIT, (2) CERN)", ["A. One", "B. Two"]),
        ("John Smith, Jr., Ana Ruiz", ["John Smith Jr.", "Ana Ruiz"]),
        ("Zoë Müller and\n  Łukasz Nowak", ["Zoë Müller", "Łukasz Nowak"]),
        ("The ATLAS Collaboration", ["The ATLAS Collaboration"]),
        ("", []),
    ],
)
def test_split_authors(text, names):
    assert split_authors(text) == names
