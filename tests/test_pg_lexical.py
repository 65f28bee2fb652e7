"""PostgreSQL's lexical ranker: document-frequency-aware candidate generation against exhaustive ranking,
on a real server (tests/pgutil.py) and the 300 sample papers of the `pg_indexed` fixture."""

from __future__ import annotations

import pytest

from papertide.index.pg import CandidatePlan, PgLexical, candidates
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
