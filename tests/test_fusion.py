"""Fusion functions against values worked out by hand from their definitions."""

import pytest

from papertide.index.fusion import RRF_K, convex, minmax, rrf


def test_rrf_matches_definition():
    lex = [(1, 9.0), (2, 8.0), (3, 7.0)]
    den = [(3, 0.9), (4, 0.8)]
    fused = dict(rrf([lex, den]))
    assert fused[1] == pytest.approx(1 / (RRF_K + 1))
    assert fused[2] == pytest.approx(1 / (RRF_K + 2))
    assert fused[3] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert fused[4] == pytest.approx(1 / (RRF_K + 2))
    assert next(d for d, _ in rrf([lex, den])) == 3  # found by both rankers


def test_rrf_ignores_raw_scores_and_breaks_ties_by_id():
    a = rrf([[(5, 1000.0), (7, -3.0)]])
    b = rrf([[(5, 0.1), (7, 0.01)]])
    assert a == b
    tie = rrf([[(9, 1.0)], [(2, 1.0)]])
    assert [d for d, _ in tie] == [2, 9]


def test_rrf_weights():
    fused = dict(rrf([[(1, 1.0)], [(2, 1.0)]], weights=[2.0, 1.0]))
    assert fused[1] == pytest.approx(2 / (RRF_K + 1))


def test_minmax():
    assert minmax([(1, 10.0), (2, 5.0), (3, 0.0)]) == {1: 1.0, 2: 0.5, 3: 0.0}
    assert minmax([(1, 3.0), (2, 3.0)]) == {1: 1.0, 2: 1.0}
    assert minmax([]) == {}


def test_convex_combination():
    lex = [(1, 20.0), (2, 10.0), (3, 0.0)]
    den = [(2, 0.9), (4, 0.5), (1, 0.1)]
    fused = dict(convex(lex, den, alpha=0.25))
    # lexical: 1 -> 1, 2 -> .5, 3 -> 0; dense: 2 -> 1, 4 -> .5, 1 -> 0
    assert fused[1] == pytest.approx(0.75 * 1.0 + 0.25 * 0.0)
    assert fused[2] == pytest.approx(0.75 * 0.5 + 0.25 * 1.0)
    assert fused[3] == pytest.approx(0.0)
    assert fused[4] == pytest.approx(0.25 * 0.5)
    assert [d for d, _ in convex(lex, den, alpha=0.25)][:2] == [1, 2]
    assert next(d for d, _ in convex(lex, den, alpha=1.0)) == 2  # dense only


def test_convex_with_one_empty_list():
    assert convex([], [(1, 0.3), (2, 0.2)], 0.5) == [(1, 0.5), (2, 0.0)]
    assert convex([], [], 0.5) == []
