"""Bulk JSON-lines parsing (arXiv snapshot and papertide's reshaped set), against real records.

Fixtures are the first lines of the real files (see fixtures/bulk/PROVENANCE.md). Gzip'd and broken
variants are built in tmp_path from those bytes.
"""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from papertide.models import Paper, RecordError, Version
from papertide.sources.bulk import BadRecord, parse_record, read_jsonl

BULK = Path(__file__).parent / "fixtures" / "bulk"
SNAPSHOT = BULK / "arxiv-snapshot-head30.jsonl"
RESHAPED = BULK / "arxiv-cs-sample50.jsonl"


def raw_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def raw_records(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, raw_lines(path))}


def papers_of(path: Path, **kw) -> dict[str, Paper]:
    out = {}
    for x in read_jsonl(path, **kw):
        assert isinstance(x, Paper), str(x)
        out[x.arxiv_id] = x
    return out


@pytest.fixture(scope="module")
def snap() -> dict[str, Paper]:
    return papers_of(SNAPSHOT)


@pytest.fixture(scope="module")
def cs() -> dict[str, Paper]:
    return papers_of(RESHAPED)


# -- the arXiv bulk snapshot format -----------------------------------------------------------------


def test_snapshot_file_reads_every_record_in_order(snap):
    assert list(snap) == [f"0704.{i:04d}" for i in range(1, 31)]
    assert {p.source for p in snap.values()} == {"arxiv-snapshot"}
    # The snapshot has no listing day; the store falls back to the submission day.
    assert {p.listed for p in snap.values()} == {None}


def test_snapshot_record_every_field(snap):
    p = snap["0704.0001"]
    assert p == Paper(
        arxiv_id="0704.0001",
        # "...at Tevatron and\n  LHC energies" in the record: the wrap goes, the words stay.
        title="Calculation of prompt diphoton production cross sections at Tevatron and LHC energies",
        abstract=p.abstract,  # checked below
        # From authors_parsed (the authors string has the TeX escape "C. Bal\\'azs").
        authors=["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"],
        categories=["hep-ph"],
        version=2,
        submitted=date(2007, 4, 2),
        updated=date(2007, 7, 24),
        listed=None,
        comments="37 pages, 15 figures; published version",
        journal_ref="Phys.Rev.D76:013009,2007",
        doi="10.1103/PhysRevD.76.013009",
        code_urls=[],
        source="arxiv-snapshot",
        versions=[Version(1, "2007-04-02T19:18:42Z"), Version(2, "2007-07-24T20:10:27Z")],
        submitter="Pavel Nadolsky",
        license=None,
    )
    assert p.abstract.startswith("A fully differential calculation in perturbative quantum chromodynamics is "
                                 "presented for the production of massive photon pairs at hadron colliders.")
    assert p.abstract.endswith("can be obtained with judicious selection of events.")
    assert "\n" not in p.abstract and "  " not in p.abstract


@pytest.mark.parametrize(
    "arxiv_id, versions, submitted, updated",
    [
        (
            "0704.0002",
            ["2007-03-31T02:26:18Z", "2008-12-13T17:26:00Z"],
            date(2007, 3, 31),
            date(2008, 12, 13),
        ),
        (
            "0704.0003",
            ["2007-04-01T20:46:54Z", "2007-12-08T23:47:24Z", "2008-01-13T00:36:28Z"],
            date(2007, 4, 1),
            date(2008, 1, 13),
        ),
        (
            "0704.0027",
            ["2007-04-02T19:17:14Z", "2007-04-09T16:48:39Z", "2007-08-28T13:21:50Z", "2009-09-24T12:40:18Z"],
            date(2007, 4, 2),
            date(2009, 9, 24),
        ),
        ("0704.0009", ["2007-04-02T19:41:34Z"], date(2007, 4, 2), date(2007, 4, 2)),
    ],
)
def test_snapshot_versions_latest_and_dates(snap, arxiv_id, versions, submitted, updated):
    p = snap[arxiv_id]
    assert p.version == len(versions)
    assert [(v.version, v.created) for v in p.versions] == [(i, ts) for i, ts in enumerate(versions, 1)]
    assert (p.submitted, p.updated) == (submitted, updated)


def test_snapshot_versions_out_of_order_are_sorted():
    rec = raw_records(SNAPSHOT)["0704.0027"]
    rec = dict(rec, versions=list(reversed(rec["versions"])))
    p = parse_record(rec)
    assert [v.version for v in p.versions] == [1, 2, 3, 4]
    assert (p.version, p.submitted, p.updated) == (4, date(2007, 4, 2), date(2009, 9, 24))


@pytest.mark.parametrize(
    "arxiv_id, authors",
    [
        # Non-ASCII names decoded by authors_parsed, where the authors string keeps TeX escapes.
        ("0704.0028", ["Péter E. Frenkel"]),
        # Order kept, suffix after the name; the authors string wraps "Nicholas\n  Chapman".
        (
            "0704.0009",
            ["Paul Harvey", "Bruno Merin", "Tracy L. Huard", "Luisa M. Rebull", "Nicholas Chapman",
             "Neal J. Evans II", "Philip C. Myers"],
        ),
        ("0704.0002", ["Ileana Streinu", "Louis Theran"]),  # "Ileana Streinu and Louis Theran"
        ("0704.0027", ["M. O. Goerbig", "J. -N. Fuchs", "K. Kechedzhi", "Vladimir I. Fal'ko"]),
        ("0704.0026", ["Robert P. C. de Marrais"]),  # a multi-word last name
    ],
)
def test_snapshot_authors_from_authors_parsed(snap, arxiv_id, authors):
    assert snap[arxiv_id].authors == authors


def test_snapshot_authors_string_is_the_fallback():
    rec = dict(raw_records(SNAPSHOT)["0704.0002"])
    del rec["authors_parsed"]
    assert parse_record(rec).authors == ["Ileana Streinu", "Louis Theran"]


def test_snapshot_categories_primary_first_and_license(snap):
    p = snap["0704.0002"]
    assert p.categories == ["math.CO", "cs.CG"]
    assert p.primary_category == "math.CO"
    assert p.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert p.submitter == "Louis Theran"
    assert (p.journal_ref, p.doi) == (None, None)
    assert p.comments == "To appear in Graphs and Combinatorics"


def test_snapshot_latex_kept_and_line_breaks_removed(snap):
    p = snap["0704.0002"]
    assert p.abstract.startswith(
        "We describe a new algorithm, the $(k,\\ell)$-pebble game with colors, and use it obtain a "
        "characterization of the family of $(k,\\ell)$-sparse graphs"
    )
    assert "\n" not in p.abstract
    assert snap["0704.0010"].abstract.count("Djokovi\\'{c}'s") == 1
    assert snap["0704.0028"].abstract.count("R\\'ev\\'esz") == 1


@pytest.mark.parametrize(
    "arxiv_id, first, second",
    [
        (
            "0704.0010",
            "Partial cubes are isometric subgraphs of hypercubes. Structures on a graph defined by means of",
            "The operations of Cartesian product and pasting, and expansion and contraction processes",
        ),
        (
            "0704.0024",
            "The formation of quasi-2D spin-wave waveforms in longitudinally magnetized stripes",
            "In the nonlinear regime a new stable spin wave packet propagating along a waveguide",
        ),
    ],
)
def test_snapshot_indented_line_starts_a_paragraph(snap, arxiv_id, first, second):
    paras = snap[arxiv_id].abstract.split("\n\n")
    assert len(paras) == 2
    assert paras[0].startswith(first) and paras[1].startswith(second)
    assert all("\n" not in para and para == para.strip() for para in paras)


def test_snapshot_comments_unwrapped(snap):
    assert snap["0704.0027"].comments == (
        "4 pages, 2 figures; mistakes due to an erroneous electron-phonon coupling constant have been "
        "corrected; mode splitting is larger than originally expected"
    )
    assert snap["0704.0028"].journal_ref == "Math. Res. Lett. 15 (2008), no. 2, 351--358"
    assert snap["0704.0027"].doi == "10.1103/PhysRevLett.99.087402"


def test_old_style_id_in_snapshot_shape():
    # The 200-record snapshot head has no old-style id, so this record is built in the snapshot's
    # shape from the genuine Atom API entry for cond-mat/0607501v2
    # (fixtures/recorded/arxiv_atom_query_delmaestro_2016.xml: published 2006-07-19T20:12:54Z,
    # updated 2006-11-06T19:33:40Z, with its title, comment, journal ref, doi and category).
    rec = {
        "id": "cond-mat/0607501",
        "submitter": "Adrian Del Maestro",
        "authors": "R. G. Melko, A. Del Maestro, A. A. Burkov",
        "title": "A striped supersolid phase and the search for deconfined quantum\n  criticality in "
                 "hard-core bosons on the triangular lattice",
        "comments": "10 pages, 11 figures: new data for superfluid density anisotropy",
        "journal-ref": "Phys. Rev. B 74, 214517 (2006)",
        "doi": "10.1103/PhysRevB.74.214517",
        "report-no": None,
        "categories": "cond-mat.str-el",
        "license": None,
        "abstract": "  Using large-scale quantum Monte Carlo simulations we study bosons hopping on\na "
                    "triangular lattice with nearest (V) and next-nearest (V') neighbor repulsive\n"
                    "interactions.\n",
        "versions": [
            {"version": "v1", "created": "Wed, 19 Jul 2006 20:12:54 GMT"},
            {"version": "v2", "created": "Mon, 6 Nov 2006 19:33:40 GMT"},
        ],
        "update_date": "2009-11-13",
        "authors_parsed": [["Melko", "R. G.", ""], ["Del Maestro", "A.", ""], ["Burkov", "A. A.", ""]],
    }
    p = parse_record(rec)
    assert p.arxiv_id == "cond-mat/0607501"
    assert (p.version, p.submitted, p.updated) == (2, date(2006, 7, 19), date(2006, 11, 6))
    assert p.versions == [Version(1, "2006-07-19T20:12:54Z"), Version(2, "2006-11-06T19:33:40Z")]
    assert p.authors == ["R. G. Melko", "A. Del Maestro", "A. A. Burkov"]
    assert p.title == ("A striped supersolid phase and the search for deconfined quantum criticality in "
                       "hard-core bosons on the triangular lattice")
    assert p.abs_url == "https://arxiv.org/abs/cond-mat/0607501"
    # With a version in the id (as OAI and Atom give it) the id is still canonical.
    assert parse_record(dict(rec, id="cond-mat/0607501v2")).arxiv_id == "cond-mat/0607501"


def test_source_override():
    papers = papers_of(SNAPSHOT, source="kaggle-2024")
    assert {p.source for p in papers.values()} == {"kaggle-2024"}
    assert {p.source for p in papers_of(RESHAPED, source="demo").values()} == {"demo"}


# -- papertide's reshaped set --------------------------------------------------------------------------


def test_reshaped_file_reads_every_record(cs):
    ids = [json.loads(line)["id"] for line in raw_lines(RESHAPED)]
    assert list(cs) == ids and len(ids) == 50
    assert {p.source for p in cs.values()} == {"arxiv-cs"}
    assert min(p.listed for p in cs.values()) == date(2025, 3, 18)
    assert max(p.listed for p in cs.values()) == date(2025, 3, 26)


def test_reshaped_record_every_field(cs):
    p = cs["2503.11792"]
    assert p == Paper(
        arxiv_id="2503.11792",
        title="StyleMorpheus: A Style-Based 3D-Aware Morphable Face Model",
        abstract=p.abstract,
        authors=["Peizhi Yan", "Rabab K. Ward", "Dan Wang", "Qiang Tang", "Shan Du"],
        categories=["cs.CV"],
        version=1,
        submitted=None,
        updated=None,
        listed=date(2025, 3, 18),  # update_date is the first listing day in this set
        comments="13 pages, work was completed in 2023",
        journal_ref=None,
        doi=None,
        code_urls=["https://github.com/ubc-3d-vision-lab/StyleMorpheus"],
        source="arxiv-cs",
        versions=[],
    )
    assert p.abstract.startswith("For 3D face modeling, the recently developed 3D-aware neural rendering "
                                 "methods are able to render")
    assert p.abstract.endswith("Project homepage: https://github.com/ubc-3d-vision-lab/StyleMorpheus.")
    assert "\n" not in p.abstract


def test_reshaped_authors_categories_paragraphs(cs):
    assert cs["2503.16096"].authors == [
        "Lucas Morin", "Valéry Weber", "Ahmed Nassar", "Gerhard Ingmar Meijer", "Luc Van Gool", "Yawei Li",
        "Peter Staar",
    ]
    assert cs["2503.14928"].categories == ["cs.CV", "cs.AI", "cs.SD", "eess.AS"]
    assert cs["2503.17030"].primary_category == "eess.IV"
    assert cs["2503.16096"].comments is None
    paras = cs["2503.12553"].abstract.split("\n\n")
    assert len(paras) == 4  # each "\n  " starts one
    assert paras[1].startswith("Our approach integrates monocular depth and normal estimation as input")
    assert paras[3].endswith("especially in outdoor scenes.")
    # LaTeX stays as it is, line breaks inside it go.
    assert ("\\href{https://github.com/TeamNLP/Typed-RAG}{https://github.com/TeamNLP/Typed-RAG}."
            in cs["2503.15879"].abstract)


def test_reshaped_versioned_id():
    rec = raw_records(RESHAPED)["2503.12307"]
    p = parse_record(dict(rec, id="2503.12307v3"))
    assert (p.arxiv_id, p.version, p.versions) == ("2503.12307", 3, [Version(3)])
    assert p.listed == date(2025, 3, 18)


# Every code or project URL in the 50 records, checked by hand against the abstracts and comments.
CODE_URLS = {
    "2503.11792": ["https://github.com/ubc-3d-vision-lab/StyleMorpheus"],  # "Project homepage:\nhttps://...".
    "2503.11995": ["https://zs1314.github.io/Fraesormer"],  # "code is\navailable at"
    "2503.12307": ["https://github.com/WuJH2001/swift4d"],
    "2503.12888": ["https://github.com/ManOfStory/UncTrack"],
    "2503.13439": ["https://sm0kywu.github.io/Amodal3R/"],  # in comments
    "2503.14698": ["https://19reborn.github.io/SplatVoxel/"],
    "2503.14928": ["https://imagintalk.github.io"],  # abstract and comments, once
    "2503.14935": ["https://favor-bench.github.io/"],  # \href{url}{url} in the abstract, and comments
    "2503.15156": ["https://github.com/JLuij/anchored_representation_clouds"],
    "2503.15300": ["https://tudelft3d.github.io/SUMParts/"],
    "2503.15683": ["https://yb23.github.io/projects/cywd/"],  # $\href{...}{...}$
    "2503.15879": ["https://github.com/TeamNLP/Typed-RAG"],
    "2503.16536": ["https://github.com/JMZ-kk/Word2Minecraft/tree/word2mc_v0"],
    "2503.17213": ["https://github.com/PaddlePaddle/PaddleX"],  # "PaddleX ." and "Github Repo: ..."
    "2503.17544": ["https://yz-cnsdqz.github.io/eigenmotion/PRIMAL"],
    "2503.17983": ["https://github.com/Badgewho/HMDMIL"],
    "2503.18160": ["https://github.com/JREion/M.A.O"],  # the id's dots stay, the sentence's goes
    "2503.18361": ["https://wen-yuan-zhang.github.io/NeRFPrior/"],  # comments wrapped "page:\n  https"
}


def test_reshaped_code_urls_exactly(cs):
    assert {aid: p.code_urls for aid, p in cs.items() if p.code_urls} == CODE_URLS
    assert all(p.has_code == (aid in CODE_URLS) for aid, p in cs.items())


def test_snapshot_code_url_from_comments(snap):
    # "... available at\n  http://wolframscience.com/.../demarrais.ppt" in the comments.
    assert snap["0704.0026"].code_urls == [
        "http://wolframscience.com/conference/2006/presentations/materials/demarrais.ppt"
    ]


def test_report_url_is_not_a_code_url(snap):
    """BUG (models.find_code_urls): "Annual Report 2005 (http://...)" counts as a code link.

    0704.0024's comments: "First appeared in Prof. B. Hillebrands' research group Annual Report
    2005 (http://www.physik.uni-kl.de/w_hilleb/ann05.html)". _PROJECT_HINT has no word boundaries,
    so "Report" matches "repo" and the annual report becomes the paper's code link (has_code=True).
    """
    assert snap["0704.0024"].code_urls == []


def test_reshaped_categories_keep_only_arxiv_categories(cs):
    """BUG (bulk.parse_record): ACM/MSC classes in the reshaped set's categories become categories.

    The upstream set serves e.g. "cs.LG cs.CV 68T05, 68T07 I.2.6; I.4.2; I.4.9" (46 of the 2,000
    sample records, 2 of these 50); splitting on whitespace yields "68T05," and "I.2.6;" as arXiv
    categories, which then reach the category filter and stats().
    """
    assert cs["2503.13008"].categories == ["cs.LG", "cs.CV"]
    assert cs["2503.18095"].categories == ["cs.CL", "cs.CY", "cs.LG"]


# -- gzip ------------------------------------------------------------------------------------------------


def test_gzip_reads_the_same_papers(tmp_path, cs):
    gz = tmp_path / "part000.jsonl.gz"
    gz.write_bytes(gzip.compress(RESHAPED.read_bytes()))
    assert papers_of(gz) == cs
    # Decided by magic bytes, not by name.
    odd = tmp_path / "misnamed.jsonl"
    odd.write_bytes(gz.read_bytes())
    assert papers_of(odd) == cs


def test_truncated_gzip_reports_the_error_after_the_good_records(tmp_path, cs):
    data = gzip.compress(RESHAPED.read_bytes())
    gz = tmp_path / "cut.jsonl.gz"
    gz.write_bytes(data[: len(data) * 2 // 3])  # an interrupted download
    items = list(read_jsonl(gz))
    papers = [x for x in items if isinstance(x, Paper)]
    errors = [x for x in items if isinstance(x, RecordError)]
    assert len(errors) == 1 and items[-1] is errors[0]
    # What was read is a prefix of the real records, each parsed as from the intact file.
    assert 0 < len(papers) < 50
    assert papers == list(cs.values())[: len(papers)]
    assert errors[0].location == f"cut.jsonl.gz:{len(papers) + 1}"
    assert "unreadable" in errors[0].reason and "EOFError" in errors[0].reason


def test_garbage_after_gzip_stream_is_reported(tmp_path, cs):
    gz = tmp_path / "trail.jsonl.gz"
    gz.write_bytes(gzip.compress(RESHAPED.read_bytes()) + b"\x00garbage")
    items = list(read_jsonl(gz))
    assert [x for x in items if isinstance(x, Paper)] == list(cs.values())
    assert [type(x) for x in items[50:]] == [RecordError]
    assert items[50].location == "trail.jsonl.gz:51"


# -- broken files: every bad line reported where it is, the rest parsed ------------------------------------


def broken_lines() -> tuple[list[str], dict[int, str], list[str]]:
    """Real lines mixed with bad ones: (lines, {line number: expected reason fragment}, good ids)."""
    snap = raw_lines(SNAPSHOT)
    rs = raw_lines(RESHAPED)
    recs = [json.loads(x) for x in snap]
    r_recs = [json.loads(x) for x in rs]

    def dump(obj) -> str:
        return json.dumps(obj, ensure_ascii=False) + "\n"

    no_id = dict(recs[2])
    del no_id["id"]
    no_title = dict(recs[3])
    del no_title["title"]
    lines = [
        snap[0],  # 1 good 0704.0001
        "{this is not JSON\n",  # 2
        "\n",  # 3 blank: skipped silently
        "   \t \n",  # 4 whitespace only: skipped silently
        dump(no_id),  # 5
        dump(no_title),  # 6
        dump(dict(recs[4], id="not-an-arxiv-id")),  # 7
        dump(dict(recs[5], title=["a", "list"])),  # 8 wrong type
        dump(dict(recs[6], versions={"v1": "Mon, 2 Apr 2007 19:18:42 GMT"})),  # 9 wrong type
        dump(dict(recs[7], versions=[{"version": "vX", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}])),  # 10
        dump(["0704.0009", "a list, not a record"]),  # 11 non-object
        "42\n",  # 12 non-object
        "null\n",  # 13 non-object
        dump(dict(r_recs[0], categories=["cs.CV"])),  # 14 wrong type (reshaped)
        dump(dict(r_recs[1], update_date="March 18")),  # 15 bad date (reshaped)
        dump(dict(r_recs[2], id=25031199)),  # 16 id is a number
        snap[1],  # 17 good 0704.0002
        rs[3],  # 18 good 2503.12047
        "\n",  # 19
        rs[4][: len(rs[4]) // 2],  # 20 truncated last line, no newline
    ]
    expected = {
        2: "invalid JSON",
        5: "missing 'id'",
        6: "0704.0004: missing 'title'",
        7: "not an arXiv identifier: 'not-an-arxiv-id'",
        8: "field 'title' should be a string, got list",
        9: "0704.0007: 'versions' is not a list",
        10: "0704.0008: bad version label 'vX'",
        11: "expected a JSON object, got list",
        12: "expected a JSON object, got int",
        13: "expected a JSON object, got NoneType",
        14: "field 'categories' should be a string, got list",
        15: "2503.11979: bad date in 'update_date'",
        16: "missing 'id'",
        20: "invalid JSON",
    }
    return lines, expected, ["0704.0001", "0704.0002", "2503.12047"]


def test_broken_file_every_bad_line_reported_rest_parsed(tmp_path):
    lines, expected, good = broken_lines()
    path = tmp_path / "broken.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    items = list(read_jsonl(path))
    assert [x.arxiv_id for x in items if isinstance(x, Paper)] == good
    errors = [x for x in items if isinstance(x, RecordError)]
    assert [e.location for e in errors] == [f"broken.jsonl:{n}" for n in expected]
    for e, fragment in zip(errors, expected.values(), strict=True):
        assert fragment in e.reason, str(e)
    assert str(errors[0]).startswith("broken.jsonl:2: invalid JSON (")
    # The good records parse exactly as in the intact files.
    assert [x for x in items if isinstance(x, Paper)] == [
        papers_of(SNAPSHOT)["0704.0001"], papers_of(SNAPSHOT)["0704.0002"], papers_of(RESHAPED)["2503.12047"],
    ]


def test_broken_gzip_file_reports_the_same_locations(tmp_path):
    lines, expected, good = broken_lines()
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(gzip.compress("".join(lines).encode("utf-8")))
    items = list(read_jsonl(path))
    assert [x.arxiv_id for x in items if isinstance(x, Paper)] == good
    locations = [x.location for x in items if isinstance(x, RecordError)]
    assert locations == [f"broken.jsonl.gz:{n}" for n in expected]


def test_parse_record_raises_bad_record_with_reason():
    with pytest.raises(BadRecord, match="missing 'id'"):
        parse_record({"title": "x"})
    with pytest.raises(BadRecord, match="expected a JSON object, got str"):
        parse_record("0704.0001")
    rec = raw_records(RESHAPED)["2503.11792"]
    with pytest.raises(BadRecord, match="2503.11792: missing 'title'"):
        parse_record(dict(rec, title="  \n  "))


def test_invalid_utf8_line_is_reported_at_its_line_and_the_rest_parsed(tmp_path, cs):
    """BUG (bulk.read_jsonl): one undecodable byte loses the rest of the file, at the wrong line.

    The file is decoded by a TextIOWrapper in ~8 KiB chunks, so a bad byte on line 30 raises while
    reading an earlier line; read_jsonl then reports that earlier line and stops ("rest of file
    skipped"): the good lines around it and every later line are lost. For a 4 GB snapshot one bad
    byte drops everything after it.
    """
    lines = RESHAPED.read_bytes().splitlines(keepends=True)
    assert lines[29].startswith(b'{"id": "2503.16125", "title": "')
    lines[29] = lines[29].replace(b'"title": "', b'"title": "\xff', 1)  # a latin-1 byte in a UTF-8 file
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b"".join(lines))
    items = list(read_jsonl(path))
    errors = [x for x in items if isinstance(x, RecordError)]
    assert [e.location for e in errors] == ["latin1.jsonl:30"]
    ids = [x.arxiv_id for x in items if isinstance(x, Paper)]
    assert ids == [aid for i, aid in enumerate(cs) if i != 29]
