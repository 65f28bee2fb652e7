"""The store on both backends - SQLite on a temporary file, PostgreSQL on a real server (tests/pgutil.py) -
filled with real records (fixtures/bulk, see PROVENANCE.md). One suite: the `backend` fixture is parametrised.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from papertide.models import Paper, Version
from papertide.sources.bulk import read_jsonl
from papertide.store import SqliteStore, StoreError, open_store
from papertide.store.base import content_hash, text_hash
from papertide.store.sqlite import migrations

BULK = Path(__file__).parent / "fixtures" / "bulk"


def load(name: str) -> list[Paper]:
    out = list(read_jsonl(BULK / name))
    assert all(isinstance(p, Paper) for p in out)
    return out


SNAP = load("arxiv-snapshot-head30.jsonl")  # 0704.0001 .. 0704.0030, snapshot format
CS = load("arxiv-cs-sample50.jsonl")  # 2503.*, reshaped format
ALL = SNAP + CS


def by_id(papers: list[Paper]) -> dict[str, Paper]:
    return {p.arxiv_id: p for p in papers}


def copy(p: Paper, **changes) -> Paper:
    """A deep copy (lists are not shared with the module-level fixtures) with changes."""
    fresh = {
        "authors": list(p.authors), "categories": list(p.categories), "code_urls": list(p.code_urls),
        "versions": [dataclasses.replace(v) for v in p.versions],
    }
    return dataclasses.replace(p, **{**fresh, **changes})


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "papertide.db"


class Backend:
    """One database of a backend: open stores on it, and read it behind their back as another process would."""

    def __init__(self, name: str, url: str):
        self.name, self.url = name, url

    def open(self):
        return open_store(self.url)

    def sql(self, q: str, args=()) -> list[tuple]:
        if self.name == "sqlite":
            con = sqlite3.connect(self.url[len("sqlite:///"):])
            try:
                return con.execute(q, args).fetchall()
            finally:
                con.close()
        import psycopg

        with psycopg.connect(self.url) as con:
            return con.execute(q.replace("?", "%s"), args).fetchall()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, db_path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite:///{db_path}")
    return Backend("postgres", request.getfixturevalue("pg_url"))


@pytest.fixture
def store(backend):
    s = backend.open()
    yield s
    s.close()


@pytest.fixture
def filled(store):
    res = store.upsert_papers([copy(p) for p in ALL])
    assert (res.inserted, res.updated, res.unchanged) == (80, 0, 0)
    return store


def sql(db_path: Path, q: str, args=()) -> list[tuple]:
    """Read the SQLite file behind the store's back, as another process would."""
    return Backend("sqlite", f"sqlite:///{db_path}").sql(q, args)


def seqs(backend: Backend) -> dict[str, int]:
    return dict(backend.sql("SELECT arxiv_id, seq FROM papers"))


def versions_of(backend: Backend, arxiv_id: str) -> list[tuple]:
    return backend.sql(
        "SELECT v.version, v.created, v.size FROM paper_versions v JOIN papers p ON p.id = v.paper_id "
        "WHERE p.arxiv_id = ? ORDER BY v.version",
        (arxiv_id,),
    )


# -- schema ------------------------------------------------------------------------------------------


def test_migrations_applied_once(db_path):
    s = SqliteStore(db_path)
    newest = max(v for v, _ in migrations())
    assert s.schema_version() == newest
    applied = sql(db_path, "SELECT version, applied_at FROM schema_migrations")
    assert [v for v, _ in applied] == list(range(1, newest + 1))
    tables = {r[0] for r in sql(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"papers", "paper_versions", "paper_sources", "embeddings", "state", "schema_migrations"} <= tables
    s.upsert_papers([copy(SNAP[0])])
    s.close()
    # Reopening must not re-run 0001 (its CREATE TABLEs would fail) nor record it again.
    s = SqliteStore(db_path)
    assert s.schema_version() == newest
    assert sql(db_path, "SELECT version, applied_at FROM schema_migrations") == applied
    assert s.count_papers() == 1
    s.close()


def test_wal_mode(db_path):
    store = SqliteStore(db_path)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # WAL is a property of the file: another connection sees it too.
    assert sql(db_path, "PRAGMA journal_mode") == [("wal",)]
    store.close()


def test_postgres_migrations_applied_once_and_vector_extension(pg_url):
    from papertide.store.postgres import PostgresStore
    from papertide.store.postgres import migrations as pg_migrations

    pg = Backend("postgres", pg_url)
    assert [v for v, _ in pg_migrations()] == [v for v, _ in migrations()]  # one schema version for both
    s = PostgresStore(pg_url)
    s.upsert_papers([copy(SNAP[0])])
    s.close()
    applied = pg.sql("SELECT version, applied_at FROM schema_migrations ORDER BY 1")
    assert [v for v, _ in applied] == list(range(1, max(v for v, _ in migrations()) + 1))
    assert pg.sql("SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]
    assert pg.sql("SELECT '[1,0]'::vector <=> '[0,1]'::vector") == [(1.0,)]
    s = PostgresStore(pg_url)
    assert pg.sql("SELECT version, applied_at FROM schema_migrations ORDER BY 1") == applied
    assert s.count_papers() == 1 and s.schema_version() == applied[-1][0]
    s.close()


def test_postgres_newer_schema_is_refused(pg_url):
    from papertide.store.postgres import PostgresStore

    newest = max(v for v, _ in migrations())
    Backend("postgres", pg_url).sql(f"INSERT INTO schema_migrations VALUES ({newest + 1}, 'now') RETURNING 1")
    with pytest.raises(StoreError, match=rf"schema v{newest + 1}, newer than this papertide"):
        PostgresStore(pg_url)


def test_postgres_unreachable_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match=r"cannot connect to postgresql://u:\*\*\*@"):
        open_store(f"postgresql://u:secret@/db?host={tmp_path}&connect_timeout=2")


def test_newer_schema_is_refused_with_a_clear_message(db_path):
    SqliteStore(db_path).close()
    con = sqlite3.connect(db_path)
    newest = max(v for v, _ in migrations())
    con.execute(f"INSERT INTO schema_migrations VALUES ({newest + 1}, datetime('now'))")
    con.commit()
    con.close()
    msg = rf"schema v{newest + 1}, newer than this papertide \(v{newest}\); upgrade papertide"
    with pytest.raises(StoreError, match=msg):
        SqliteStore(db_path)


def test_a_file_that_is_not_a_database_raises_store_error(tmp_path):
    """Not a SQLite file: a StoreError naming the file, which the CLI maps to a one-line message."""
    path = tmp_path / "notes.db"
    path.write_text("not a database\n" * 200)
    with pytest.raises(StoreError, match="notes.db.*file is not a database"):
        SqliteStore(path)
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(StoreError, match="a-directory.db"):
        SqliteStore(directory)


# -- open_store ----------------------------------------------------------------------------------------


def test_open_store_sqlite_url_absolute(tmp_path):
    path = tmp_path / "sub" / "a.db"
    s = open_store(f"sqlite:///{path}")  # sqlite:////tmp/...: absolute, as in SQLAlchemy
    assert isinstance(s, SqliteStore) and s.path == path and path.exists()
    s.close()


def test_open_store_sqlite_url_relative_and_plain_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = open_store("sqlite:///data/rel.db")
    s.close()
    assert (tmp_path / "data" / "rel.db").exists()
    s = open_store(str(tmp_path / "plain.db"))
    assert s.schema_version() == max(v for v, _ in migrations())
    s.close()
    monkeypatch.setenv("HOME", str(tmp_path))
    s = open_store("~/home.db")
    s.close()
    assert (tmp_path / "home.db").exists()


def test_open_store_memory():
    s = open_store("sqlite:///")
    assert s.upsert_papers([copy(SNAP[0])]).inserted == 1
    assert s.get_paper("0704.0001") == SNAP[0]
    s.close()


def test_open_store_postgres_url(pg_url):
    from papertide.store.postgres import PostgresStore

    s = open_store(pg_url)
    assert isinstance(s, PostgresStore)
    s.close()


def test_open_store_postgres_without_the_driver_names_the_install_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    monkeypatch.delitem(sys.modules, "papertide.store.postgres", raising=False)
    with pytest.raises(StoreError, match=r"pip install 'papertide\[postgres\]'"):
        open_store("postgresql://user@localhost/papertide")


@pytest.mark.parametrize("url", ["mysql://localhost/x", "redis://x", "file:///tmp/x.db"])
def test_open_store_unknown_scheme(url):
    with pytest.raises(StoreError, match="unsupported database URL"):
        open_store(url)


# -- upserts -------------------------------------------------------------------------------------------


def test_insert_update_unchanged_counts(store):
    res = store.upsert_papers([copy(p) for p in SNAP])
    assert (res.inserted, res.updated, res.unchanged) == (30, 0, 0)
    changed = [copy(SNAP[0], comments="37 pages, 15 figures; published version; typo fixed")]
    res = store.upsert_papers(changed + [copy(p) for p in SNAP[1:5]] + [copy(p) for p in CS[:3]])
    assert (res.inserted, res.updated, res.unchanged) == (3, 1, 4)
    assert store.get_paper("0704.0001").comments.endswith("typo fixed")
    assert store.count_papers() == 33
    # The same id twice in one batch: the last record of the highest version wins, one row.
    twice = [copy(CS[3], title="first"), copy(CS[3], title="second")]
    res = store.upsert_papers(twice)
    assert (res.inserted, res.updated, res.unchanged) == (1, 0, 1)
    assert store.get_paper(CS[3].arxiv_id).title == "second"
    assert store.upsert_papers([]).inserted == 0


def test_reingest_is_a_no_op(filled, backend):
    before_seqs = seqs(backend)
    tables = ("papers", "paper_versions", "paper_sources")
    before = {t: backend.sql(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    watermark = filled.max_seq()
    res = filled.upsert_papers([copy(p) for p in ALL])
    assert (res.inserted, res.updated, res.unchanged) == (0, 0, 80)
    assert seqs(backend) == before_seqs
    assert {t: backend.sql(f"SELECT * FROM {t} ORDER BY 1, 2") for t in before} == before
    assert list(filled.iter_changed(watermark)) == []
    assert backend.sql("SELECT arxiv_id FROM papers GROUP BY arxiv_id HAVING count(*) > 1") == []
    assert filled.count_papers() == 80


def test_newer_version_updates_metadata_and_keeps_history(store, backend):
    v4 = by_id(SNAP)["0704.0027"]  # four real versions
    # As an older snapshot had it: at v2, before publication.
    v2 = copy(v4, version=2, versions=v4.versions[:2], updated=date(2007, 4, 9), journal_ref=None, doi=None,
              comments="4 pages, 2 figures")
    assert store.upsert_papers([v2]).inserted == 1
    seq_v2 = seqs(backend)["0704.0027"]
    assert store.get_paper("0704.0027").version == 2
    res = store.upsert_papers([copy(v4)])
    assert (res.inserted, res.updated, res.unchanged) == (0, 1, 0)
    got = store.get_paper("0704.0027")
    assert got == v4
    assert got.journal_ref == "Phys. Rev. Lett. 99, 087402 (2007)"
    assert got.doi == "10.1103/PhysRevLett.99.087402"
    assert seqs(backend)["0704.0027"] > seq_v2
    # A record that lists only its own (latest) version, as OAI/Atom records do: history is kept.
    v5 = copy(v4, version=5, versions=[Version(5, "2010-01-01T00:00:00Z")], updated=date(2010, 1, 1))
    store.upsert_papers([v5])
    assert [v for v, _, _ in versions_of(backend, "0704.0027")] == [1, 2, 3, 4, 5]
    assert versions_of(backend, "0704.0027")[0] == (1, "2007-04-02T19:17:14Z", None)
    assert store.get_paper("0704.0027").version == 5


def test_older_version_does_not_overwrite(store, backend):
    v4 = by_id(SNAP)["0704.0027"]
    store.upsert_papers([copy(v4, versions=[Version(4, "2009-09-24T12:40:18Z")])])
    seq_before = seqs(backend)["0704.0027"]
    old = copy(v4, version=2, versions=v4.versions[:2], title="An older title", journal_ref=None)
    res = store.upsert_papers([old])
    assert (res.inserted, res.updated, res.unchanged) == (0, 0, 1)
    got = store.get_paper("0704.0027")
    assert (got.version, got.title, got.journal_ref) == (4, v4.title, v4.journal_ref)
    assert seqs(backend)["0704.0027"] == seq_before
    # ... but the older record's versions join the history.
    assert [v for v, _, _ in versions_of(backend, "0704.0027")] == [1, 2, 4]


def test_a_version_date_once_known_is_kept_and_a_missing_one_filled(store, backend):
    p = by_id(SNAP)["0704.0003"]
    partial_dates = [Version(1, None), Version(2, "2007-12-08T23:47:24Z"), Version(3)]
    store.upsert_papers([copy(p, versions=partial_dates)])
    store.upsert_papers([copy(p, comments="changed so the record is rewritten")])
    assert versions_of(backend, "0704.0003") == [
        (1, "2007-04-01T20:46:54Z", None),
        (2, "2007-12-08T23:47:24Z", None),
        (3, "2008-01-13T00:36:28Z", None),
    ]


def hf_record(p: Paper, upvotes: int, day: date) -> Paper:
    """What sources.hf makes of a Hugging Face daily-papers item: no categories, version 1."""
    return Paper(
        arxiv_id=p.arxiv_id, title=p.title.upper(), abstract=p.abstract, authors=list(p.authors),
        code_urls=["https://github.com/example/elsewhere"], source="hf-daily", submitter="an HF user",
        hf_upvotes=upvotes, featured_on=day,
    )


def test_hf_partial_record_for_a_known_paper_only_updates_signals(filled, backend):
    p = by_id(CS)["2503.11792"]
    seq_before = seqs(backend)[p.arxiv_id]
    res = filled.upsert_papers([hf_record(p, 7, date(2025, 3, 19))])
    assert (res.inserted, res.updated) == (0, 0)
    got = filled.get_paper(p.arxiv_id)
    assert (got.hf_upvotes, got.featured_on) == (7, date(2025, 3, 19))
    assert got == copy(p, hf_upvotes=7, featured_on=date(2025, 3, 19))  # title, categories ... untouched
    assert got.categories == ["cs.CV"] and got.source == "arxiv-cs"
    assert seqs(backend)[p.arxiv_id] == seq_before
    assert sorted(backend.sql("SELECT s.source FROM paper_sources s JOIN papers p ON p.id = s.paper_id "
                               "WHERE p.arxiv_id = ?", (p.arxiv_id,))) == [("arxiv-cs",), ("hf-daily",)]
    # Featured again later with more votes: the votes follow, the first featured day stays.
    filled.upsert_papers([hf_record(p, 12, date(2025, 3, 25))])
    got = filled.get_paper(p.arxiv_id)
    assert (got.hf_upvotes, got.featured_on, got.title) == (12, date(2025, 3, 19), p.title)


def test_hf_record_for_an_unknown_paper_inserts_it(filled):
    p = by_id(CS)["2503.11792"]
    new = hf_record(dataclasses.replace(p, arxiv_id="2607.28582"), 17, date(2026, 7, 31))
    res = filled.upsert_papers([new])
    assert res.inserted == 1
    got = filled.get_paper("2607.28582")
    assert got == new
    assert (got.categories, got.source, got.hf_upvotes) == ([], "hf-daily", 17)


def test_later_arxiv_update_keeps_hf_signals(filled):
    """BUG (store/sqlite.py, upsert_papers lines 132 and 147): a full update wipes HF upvotes.

    `updates` writes every column of `_paper_row(p)`, including hf_upvotes and featured_on, which
    records from arXiv never carry (None). So the upvotes and featured day an HF import stored are
    erased by the next arXiv version of the paper, and by the arXiv record of a paper that HF
    brought first. The `signals` statement next to it already merges them with coalesce().
    """
    p = by_id(CS)["2503.11792"]
    filled.upsert_papers([hf_record(p, 7, date(2025, 3, 19))])
    v2 = copy(p, version=2, versions=[Version(2)], comments="13 pages; v2 adds experiments")
    assert filled.upsert_papers([v2]).updated == 1
    got = filled.get_paper(p.arxiv_id)
    assert got.version == 2
    assert (got.hf_upvotes, got.featured_on) == (7, date(2025, 3, 19))


def test_hf_first_then_arxiv_record_keeps_signals_and_takes_metadata(store):
    """BUG (same as above), the other order: HF brings the paper, the arXiv import completes it."""
    p = by_id(CS)["2503.14928"]
    store.upsert_papers([hf_record(p, 5, date(2025, 3, 20))])
    assert store.upsert_papers([copy(p)]).updated == 1
    got = store.get_paper(p.arxiv_id)
    assert (got.title, got.categories, got.listed) == (p.title, p.categories, p.listed)
    assert (got.hf_upvotes, got.featured_on) == (5, date(2025, 3, 20))


# -- reads -----------------------------------------------------------------------------------------------


def test_get_paper_round_trips_every_field(filled):
    for p in ALL:
        assert filled.get_paper(p.arxiv_id) == p
    assert filled.get_paper("9999.99999") is None


def test_get_paper_round_trips_a_fully_populated_paper(store):
    p = Paper(
        arxiv_id="cond-mat/0607501", title="A striped supersolid phase", abstract="One.\n\nTwo $V'$.",
        authors=["R. G. Melko", "A. Del Maestro", "Péter E. Frenkel"],
        categories=["cond-mat.str-el", "quant-ph"],
        version=2, submitted=date(2006, 7, 19), updated=date(2006, 11, 6), listed=date(2006, 7, 20),
        comments="10 pages", journal_ref="Phys. Rev. B 74, 214517 (2006)", doi="10.1103/PhysRevB.74.214517",
        code_urls=["https://github.com/a/b", "https://c.github.io/"], source="arxiv-oai",
        versions=[Version(1, "2006-07-19T20:12:54Z", "820kb"), Version(2, "2006-11-06T19:33:40Z", "1022kb")],
        submitter="Adrian Del Maestro", license="http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
        hf_upvotes=3, featured_on=date(2006, 7, 21),
    )
    store.upsert_papers([copy(p)])
    assert store.get_paper("cond-mat/0607501") == p
    assert store.get_paper("cond-mat/0607501").has_code


def test_get_papers_and_doc_ids_for(filled):
    ids = filled.doc_ids_for(["0704.0002", "2503.11792", "9999.99999"])
    assert set(ids) == {"0704.0002", "2503.11792"}
    got = filled.get_papers(list(ids.values()) + [10**9])
    assert set(got) == set(ids.values())
    assert got[ids["0704.0002"]] == by_id(SNAP)["0704.0002"]
    assert got[ids["2503.11792"]] == by_id(CS)["2503.11792"]
    assert filled.get_papers([]) == {}
    assert filled.doc_ids_for([]) == {}
    # Doc ids are stable: they do not move when a paper is updated.
    filled.upsert_papers([copy(by_id(SNAP)["0704.0002"], comments="new")])
    assert filled.doc_ids_for(["0704.0002"]) == {"0704.0002": ids["0704.0002"]}


def test_lookups_beyond_the_sqlite_parameter_chunk(store):
    template = by_id(CS)["2503.11979"]
    many = [copy(template, arxiv_id=f"2601.{i:05d}") for i in range(2000)]
    assert store.upsert_papers(many).inserted == 2000
    ids = store.doc_ids_for([p.arxiv_id for p in many])
    assert len(ids) == 2000 and len(set(ids.values())) == 2000
    got = store.get_papers(list(ids.values()))
    assert {p.arxiv_id for p in got.values()} == {p.arxiv_id for p in many}


def test_iter_changed_and_doc_meta_after_a_watermark(store, backend):
    store.upsert_papers([copy(p) for p in SNAP])
    watermark = store.max_seq()
    store.upsert_papers([copy(p) for p in CS])
    touched = ["0704.0005", "0704.0010", "0704.0002"]
    store.upsert_papers([copy(by_id(SNAP)[a], comments="revised") for a in touched])

    batches = list(store.iter_changed(watermark, batch=7))
    assert all(len(b) <= 7 for b in batches) and len(batches) == 8  # 53 rows
    rows = [row for b in batches for row in b]
    assert [p.arxiv_id for _, p in rows] == [p.arxiv_id for p in CS] + sorted(touched)  # (seq, id) order
    doc_ids = store.doc_ids_for([p.arxiv_id for _, p in rows])
    for meta, p in rows:
        assert meta.doc_id == doc_ids[p.arxiv_id]
        assert meta.seq > watermark
        assert meta.categories == p.categories
        assert meta.has_code == bool(p.code_urls)
        assert meta.day == (p.listed or p.submitted).isoformat()
    metas = {p.arxiv_id: m for m, p in rows}
    assert metas["2503.11792"].day == "2025-03-18" and metas["2503.11792"].has_code
    assert metas["0704.0002"].day == "2007-03-31" and metas["0704.0002"].categories == ["math.CO", "cs.CG"]

    doc_meta = [m for b in store.iter_doc_meta(watermark, batch=10) for m in b]
    assert doc_meta == [m for m, _ in rows]
    assert list(store.iter_changed(store.max_seq())) == []
    assert list(store.iter_doc_meta(store.max_seq())) == []
    assert sum(len(b) for b in store.iter_changed(0)) == 80
    assert sum(len(b) for b in store.iter_doc_meta(0, batch=3)) == 80


# -- embeddings ------------------------------------------------------------------------------------------


def test_embeddings_missing_put_iter_round_trip(filled):
    missing = filled.missing_embeddings("minilm", limit=1000)
    assert filled.count_missing_embeddings("minilm") == len(missing) == 80
    doc_ids = filled.doc_ids_for([p.arxiv_id for p in ALL])
    assert [r.doc_id for r in missing] == sorted(doc_ids.values())
    by_doc = {doc_ids[p.arxiv_id]: p for p in ALL}
    for r in missing:
        p = by_doc[r.doc_id]
        assert (r.title, r.abstract, r.text_hash) == (p.title, p.abstract, text_hash(p.title, p.abstract))
    assert len(filled.missing_embeddings("minilm", limit=5)) == 5

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((80, 384)).astype(np.float32)
    filled.put_embeddings("minilm", missing[:50], vecs[:50])
    filled.put_embeddings("minilm", missing[50:], vecs[50:].astype(np.float64))  # stored as float32
    assert filled.count_missing_embeddings("minilm") == 0
    assert filled.missing_embeddings("minilm", limit=10) == []

    batches = list(filled.iter_embeddings("minilm", since_seq=0, batch=30))
    assert [len(ids) for ids, _, _ in batches] == [30, 30, 20]
    ids = np.concatenate([b[0] for b in batches])
    got = np.concatenate([b[2] for b in batches])
    assert got.dtype == np.float32 and got.shape == (80, 384)
    order = {r.doc_id: i for i, r in enumerate(missing)}
    assert np.array_equal(got, vecs[[order[int(i)] for i in ids]])  # bit for bit
    seqs_ = np.concatenate([b[1] for b in batches])
    assert len(set(seqs_.tolist())) == 2 and (np.diff(seqs_) >= 0).all()
    assert list(filled.iter_embeddings("another-model", since_seq=0)) == []


def test_stale_and_other_model_embeddings_are_missing(filled):
    rows = filled.missing_embeddings("minilm", limit=1000)
    filled.put_embeddings("minilm", rows, np.ones((len(rows), 4), dtype=np.float32))
    watermark = filled.max_seq()
    # The text changed: stale. Only metadata changed: still fresh.
    p = by_id(CS)["2503.12307"]
    q = by_id(SNAP)["0704.0001"]
    filled.upsert_papers([
        copy(p, version=2, versions=[Version(2)], abstract=p.abstract + " v2 adds results."),
        copy(q, journal_ref="Phys. Rev. D 76, 013009 (2007)"),
    ])
    stale = filled.missing_embeddings("minilm", limit=1000)
    assert [r.doc_id for r in stale] == [filled.doc_ids_for([p.arxiv_id])[p.arxiv_id]]
    assert stale[0].abstract.endswith("v2 adds results.")
    assert filled.count_missing_embeddings("minilm") == 1
    # Another model id needs everything.
    assert filled.count_missing_embeddings("specter2") == 80
    # Re-embedding the stale one: only it comes after the watermark.
    filled.put_embeddings("minilm", stale, np.full((1, 4), 0.5, dtype=np.float32))
    after = list(filled.iter_embeddings("minilm", since_seq=watermark))
    assert len(after) == 1 and after[0][0].tolist() == [stale[0].doc_id]
    assert after[0][2].tolist() == [[0.5, 0.5, 0.5, 0.5]]
    assert filled.count_missing_embeddings("minilm") == 0


# -- state and stats -------------------------------------------------------------------------------------


def test_state_set_get_delete_and_persisted(store, backend):
    assert store.get_state("oai:cs:resume") is None
    store.set_state("oai:cs:resume", "6960524|1001")
    store.set_state("oai:cs:resume", "6960524|2002")
    assert store.get_state("oai:cs:resume") == "6960524|2002"
    store.set_state("index:lexical:seq", "12")
    store.set_state("oai:cs:resume", None)
    assert store.get_state("oai:cs:resume") is None
    store.set_state("never-set", None)  # deleting a missing key is fine
    store.close()
    again = backend.open()
    assert again.get_state("index:lexical:seq") == "12"
    assert again.get_state("oai:cs:resume") is None
    again.close()


def test_stats(filled, backend):
    st = filled.stats()
    assert st.papers == 80
    assert st.with_code == sum(bool(p.code_urls) for p in ALL)
    assert st.embedded == 0
    assert st.first_day == "2007-03-31" == min((p.submitted or p.listed).isoformat() for p in SNAP)
    assert st.last_day == "2025-03-26"
    assert st.by_source == [("arxiv-cs", 50), ("arxiv-snapshot", 30)]
    assert st.by_category[0] == ("cs.CV", sum(p.primary_category == "cs.CV" for p in ALL))
    assert len(st.by_category) <= 15
    assert st.schema_version == max(v for v, _ in migrations())
    assert st.size_bytes > 0
    rows = filled.missing_embeddings("m", 10)
    filled.put_embeddings("m", rows, np.zeros((10, 2), dtype=np.float32))
    assert filled.stats().embedded == 10


def test_content_hash_covers_metadata_but_not_signals():
    p = by_id(SNAP)["0704.0001"]
    assert content_hash(copy(p)) == content_hash(p)
    assert content_hash(copy(p, doi=None)) != content_hash(p)
    assert content_hash(copy(p, versions=p.versions[:1])) != content_hash(p)
    assert content_hash(copy(p, hf_upvotes=3)) == content_hash(p)
