"""PostgreSQL's lexical ranker: document-frequency-aware candidate generation against exhaustive ranking,
on a real server (tests/pgutil.py) and the 300 sample papers of the `pg_indexed` fixture."""

from __future__ import annotations

import pytest

from papertide.index.pg import RANK_WEIGHTS, CandidatePlan, PgLexical, candidates
from papertide.models import SearchFilters

# -- the plan (pure) ----------------------------------------------------------------------------------------


def test_terms_within_the_cap_are_ranked_exhaustively():
    plan = candidates([("graph", 40), ("neural", 60)], 1000, cap=100)
    assert plan == CandidatePlan("'graph' | 'neural'", pruned=False)
    assert candidates([("graph", 900), ("neural", 800)], 1000, cap=None).pruned is False


def test_rarest_terms_are_taken_until_their_frequencies_reach_the_cap():
    plan = candidates([("model", 600), ("molecul", 20), ("graph", 70), ("neural", 300)], 1000, cap=100)
    assert plan.tsquery == "'molecul' | 'graph'"  # 20 + 70 <= 100; adding 300 would not be
    assert plan.pruned and plan.limit == 400


def test_common_words_only_take_the_papers_holding_the_rarest_together():
    # 1000 * 0.3 * 0.5 = 150 > 100, then * 0.6 = 90 <= 100: the three rarest together.
    plan = candidates([("model", 600), ("larg", 500), ("reason", 300), ("languag", 700)], 1000, cap=100)
    assert plan.tsquery == "'reason' & 'larg' & 'model'"
    assert plan.pruned and plan.limit == 400


def test_only_plans_that_may_cut_the_matches_short_take_titles_first():
    one = candidates([("learn", 900)], 1000, cap=100)  # one word in 900 papers, 400 scored: certainly cut
    assert one.may_overflow and one.title_first
    one = candidates([("learn", 300)], 1000, cap=100)  # 300 papers, within the 400 scored
    assert one.may_overflow and not one.title_first
    common = candidates([("model", 600), ("larg", 500), ("reason", 300)], 1000, cap=100)
    assert common.may_overflow and not common.title_first  # 90 expected, unless the words go together
    for plan in (candidates([("molecul", 20), ("learn", 900)], 1000, cap=100),  # all 20 scored
                 candidates([("learn", 900)], 1000, cap=None)):
        assert not plan.may_overflow and not plan.title_first


def test_quotes_in_terms_are_escaped():
    assert candidates([("o'neil", 1)], 10, cap=5).tsquery == "'o''neil'"


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="no query terms"):
        candidates([], 10, cap=5)
    with pytest.raises(ValueError, match="positive number of papers, not 0"):
        PgLexical(store=None, cap=0)


# -- against the exhaustive ranking on a real server ---------------------------------------------------------


def _lexicals(pg_indexed, cap):
    store, _, _ = pg_indexed
    return PgLexical(store, cap=cap), PgLexical(store, cap=None)


QUERIES = ["reinforcement learning for robot control", "diffusion models for image generation",
           "speech recognition with transformers", "large language model reasoning", "federated learning privacy",
           "knowledge distillation", "point cloud segmentation", "contrastive learning",
           "adversarial robustness of image classifiers"]


def test_pruned_candidates_keep_the_exhaustive_top_results(pg_indexed):
    """A cap of a tenth of the corpus (5,000 of 74,728 in production is a fifteenth) changes little."""
    store, _, _ = pg_indexed
    full = PgLexical(store, cap=None)
    cap = store.count_papers() // 10
    for query in QUERIES:
        terms, n = full.terms(query)
        assert candidates(terms, n, cap).pruned, (query, terms)  # the test is about pruning: it must happen
        exhaustive = full.search(query, 10)
        pruned = PgLexical(store, cap=cap).search(query, 10)
        assert [d for d, _ in pruned[:3]] == [d for d, _ in exhaustive[:3]], query
        assert len({d for d, _ in pruned} & {d for d, _ in exhaustive}) >= 9, query
        # The same formula scores a paper in both: only which papers are scored differs.
        same = dict(exhaustive)
        assert all(s == pytest.approx(same[d]) for d, s in pruned if d in same)


def test_pruned_list_is_topped_up_to_k_when_enough_papers_match(pg_indexed):
    pruned, full = _lexicals(pg_indexed, cap=5)
    query = "learning"
    terms, n = full.terms(query)
    matching = len(full.search(query, 1000))
    assert matching > 40 and candidates(terms, n, 5).pruned
    got = pruned.search(query, 40)
    assert len(got) == 40 and len({d for d, _ in got}) == 40
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    # A rare word next to a common one: the rare word's papers first, then the common word's.
    rare = "sparsity learning"
    head = [d for d, _ in full.search(rare, 3)]
    assert [d for d, _ in pruned.search(rare, 40)][:3] == head
    assert len(pruned.search(rare, 40)) == 40


def test_filters_apply_to_pruned_candidates(pg_indexed):
    store, _, _ = pg_indexed
    pruned, full = _lexicals(pg_indexed, cap=5)
    cat = store.execute("SELECT cats[1] FROM papers WHERE cats IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC")[0][0]
    f = SearchFilters(categories=(cat,))
    got = pruned.search("neural networks", 20, f)
    assert got and len(got) == len(full.search("neural networks", 20, f))
    ids = [d for d, _ in got]
    rows = store.execute("SELECT id FROM papers WHERE id = ANY(%s) AND %s = ANY(cats)", (ids, cat))
    assert len(rows) == len(ids)


def test_no_terms_no_results(pg_indexed):
    pruned, _ = _lexicals(pg_indexed, cap=5)
    assert pruned.search("", 10) == [] and pruned.search("the of and", 10) == []
    assert pruned.search("graph", 0) == []


class _Recording:
    """The real store, noting the search queries it runs (to EXPLAIN them after)."""

    def __init__(self, store):
        self.store, self.calls = store, []

    def execute(self, sql, args=()):
        return self.store.execute(sql, args)

    def search_query(self, sql, args, settings=None):
        self.calls.append((sql, list(args), settings))
        return self.store.search_query(sql, args, settings)


def test_candidates_come_from_the_gin_index(pg_indexed):
    """Every ranking query the search runs reads the GIN index; none scans every paper."""
    store, _, _ = pg_indexed
    rec = _Recording(store)
    PgLexical(rec, cap=5).search("sparsity learning", 40)  # pruned, then topped up: two queries
    assert len(rec.calls) == 2
    for sql, args, settings in rec.calls:
        plan = "\n".join(r[0] for r in store.search_query("EXPLAIN " + sql, args, settings))
        assert "Bitmap Index Scan on papers_tsv" in plan and "Seq Scan on papers" not in plan, plan


def test_tsvector_is_stored_in_the_row_also_in_older_databases(pg_url):
    import psycopg

    from papertide.store.postgres import PostgresStore

    with psycopg.connect(pg_url, autocommit=True) as c:  # as a database created before the change was
        c.execute("ALTER TABLE papers ALTER COLUMN tsv SET STORAGE EXTENDED")
    store = PostgresStore(pg_url)
    try:
        got = store.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = 'papers'::regclass "
                            "AND attname = 'tsv'")
        assert got == [("m",)]
    finally:
        store.close()


def test_one_common_word_ranks_the_papers_with_it_in_their_title(pg_indexed):
    """More papers hold the word than are scored: those with it in the title are scored first, so the top 10
    is the exhaustive ranking's, not the best of whichever papers the index returned first."""
    store, _, _ = pg_indexed
    full = PgLexical(store, cap=None)
    cap = 8  # 32 papers scored
    terms, n = full.terms("learning")
    matching = store.search_query("SELECT id FROM papers p WHERE p.tsv @@ 'learn'::tsquery", [],
                                  settings={"enable_seqscan": "off"})  # in the order the ranker reads them
    titled = {d for (d,) in store.execute("SELECT id FROM papers WHERE tsv @@ 'learn:A'::tsquery")}
    assert terms == [("learn", len(matching))] and len(titled) <= 4 * cap < len(matching)
    assert candidates(terms, n, cap).title_first  # 99 papers > 32: straight to the titled ones
    exhaustive = full.search("learning", 10)
    assert {d for d, _ in exhaustive} <= titled
    # the premise: the first papers found miss some of the exhaustive top 10
    assert not {d for d, _ in exhaustive} <= {d for (d,) in matching[: 4 * cap]}
    rec = _Recording(store)
    got = PgLexical(rec, cap=cap).search("learning", 10)
    assert [d for d, _ in got] == [d for d, _ in exhaustive]
    assert [s for _, s in got] == pytest.approx([s for _, s in exhaustive])
    assert len(rec.calls) == 2  # the titled papers, then the rest of the budget
    # the titled papers are read through the titles' own index (schema v6), the rest through the full one
    for (sql, args, settings), index in zip(rec.calls, ("papers_title_tsv", "papers_tsv"), strict=True):
        plan = "\n".join(r[0] for r in store.search_query("EXPLAIN " + sql, args, settings))
        assert f"Bitmap Index Scan on {index} " in plan and "Seq Scan on papers" not in plan, plan


def test_words_that_go_together_more_than_expected_take_titles_first(pg_url):
    """Two words in the same 20 of 100 papers: 4 expected together (independence), so 16 are scored, but
    20 match; the ranker sees the limit reached and scores the papers with the words in the title first."""
    from papertide.models import Paper
    from papertide.store.postgres import PostgresStore

    filler = ["ocean", "forest", "river", "desert", "island", "meadow", "glacier", "canyon"]
    papers = [Paper(arxiv_id=f"2501.{i:05d}", title=f"Notes on the {filler[i % 8]} {i}",
                    abstract=f"A survey of {filler[i % 8]} and {filler[(i + 3) % 8]} habitats, number {i}.")
              for i in range(80)]
    papers += [Paper(arxiv_id=f"2502.{i:05d}", title=f"Notes on topic {i}" if i < 17 else "Quantum annealing",
                     abstract=f"We run quantum annealing on problem {i} and compare it with other solvers.")
               for i in range(20)]  # the titled ones last: the first papers found hold the words in the abstract
    store = PostgresStore(pg_url)
    try:
        store.upsert_papers(papers)
        store.execute("REFRESH MATERIALIZED VIEW lexical_terms")
        full = PgLexical(store, cap=None)
        terms, n = full.terms("quantum annealing")
        plan = candidates(terms, n, 4)
        assert plan.may_overflow and not plan.title_first and plan.limit == 16
        exhaustive = full.search("quantum annealing", 5)
        titled = {d for (d,) in store.execute("SELECT id FROM papers WHERE title = 'Quantum annealing'")}
        assert {d for d, _ in exhaustive[:3]} == titled
        rec = _Recording(store)
        got = PgLexical(rec, cap=4).search("quantum annealing", 5)
        assert [d for d, _ in got[:3]] == [d for d, _ in exhaustive[:3]] and len(got) == 5
        assert [s for _, s in got] == pytest.approx([s for _, s in exhaustive])
        assert len(rec.calls) == 3  # the limit reached, then the titled papers, then the rest
    finally:
        store.close()


def test_a_title_match_counts_more_than_an_abstract_match(pg_url):
    from papertide.models import Paper
    from papertide.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        text = "We study {} in depth, with experiments on several benchmarks and an analysis of the results."
        store.upsert_papers([
            Paper(arxiv_id="2501.00001", title="A study of benchmarks", abstract=text.format("sparsity")),
            Paper(arxiv_id="2501.00002", title="A study of sparsity", abstract=text.format("benchmarks")),
        ])
        store.execute("REFRESH MATERIALIZED VIEW lexical_terms")
        ids = dict(store.execute("SELECT arxiv_id, id FROM papers"))
        got = PgLexical(store).search("sparsity", 10)
        assert [d for d, _ in got] == [ids["2501.00002"], ids["2501.00001"]]
        assert got[0][1] == pytest.approx(got[1][1] / RANK_WEIGHTS[2] * RANK_WEIGHTS[3])
    finally:
        store.close()


def test_schema_v4_database_upgrades_to_a_weighted_tsvector(pg_server, sample_papers, monkeypatch):
    """A database created by the previous papertide (schema v4, one unweighted tsvector) is rewritten in
    place when a newer papertide opens it; the migration can run again without harm."""
    import psycopg
    from pgutil import with_db

    import papertide.store.postgres as pgstore

    with psycopg.connect(pg_server.url, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS upgrade_v4")
        c.execute("CREATE DATABASE upgrade_v4")
    url = with_db(pg_server.url, "upgrade_v4")
    shipped = pgstore.migrations()
    monkeypatch.setattr(pgstore, "migrations", lambda: [m for m in shipped if m[0] <= 4])
    old = pgstore.PostgresStore(url)
    old.upsert_papers(sample_papers[:50])
    assert old.schema_version() == 4
    assert old.execute("SELECT count(*) FROM papers WHERE tsv::text ~ ':[0-9,]+A'") == [(0,)]
    before = old.execute("SELECT id, setweight(tsv, 'D')::text FROM papers ORDER BY id")
    old.close()
    monkeypatch.undo()

    store = pgstore.PostgresStore(url)
    try:
        assert store.schema_version() == max(v for v, _ in shipped) >= 5
        # the same lexemes at the same positions in every paper, now weighted: title A, abstract B
        assert store.execute("SELECT id, setweight(tsv, 'D')::text FROM papers ORDER BY id") == before
        title = store.execute("SELECT count(*) FROM papers WHERE tsv = setweight(to_tsvector('english', title), 'A')"
                              " || setweight(to_tsvector('english', abstract), 'B')")
        assert title == [(50,)]
        assert store.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = 'papers'::regclass "
                             "AND attname = 'tsv'") == [("m",)]
        assert store.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'papers_tsv'") == [
            ("CREATE INDEX papers_tsv ON public.papers USING gin (tsv)",)]
        assert store.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'papers_title_tsv'") == [(1,)]
        store.execute("REFRESH MATERIALIZED VIEW lexical_terms")
        top = PgLexical(store).search(sample_papers[0].title, 1)  # searched through the new index
        assert store.get_papers([top[0][0]])[top[0][0]].arxiv_id == sample_papers[0].arxiv_id
        with psycopg.connect(url) as c:  # again, as PostgresStore._migrate runs it: the same column and index
            c.execute(dict(shipped)[5].encode())
        assert store.execute("SELECT id, setweight(tsv, 'D')::text FROM papers ORDER BY id") == before
    finally:
        store.close()
