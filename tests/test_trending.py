"""The trending feed's math: points, decay, period ranges and sort orders (pure functions, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from papertide.rank.trending import (
    AGE_OFFSET_HOURS,
    FEATURED_BONUS,
    GRAVITY,
    HF_UPVOTE_WEIGHT,
    Period,
    Sort,
    end_of,
    period_range,
    points,
    rank_feed,
    trending_scores,
)
from papertide.store.community import FeedRow

DAY = date(2026, 1, 5)


def row(doc_id: int, day: str | None = "2026-01-05", votes: int = 0, hf: int = 0, featured: str | None = None):
    return FeedRow(doc_id, day, votes, hf, featured)


def test_constants_are_the_documented_ones():
    assert (GRAVITY, AGE_OFFSET_HOURS, HF_UPVOTE_WEIGHT, FEATURED_BONUS) == (1.8, 2.0, 1.0, 3.0)


def test_points_weigh_votes_hf_upvotes_and_the_featured_bonus():
    rows = [row(1, votes=2), row(2, hf=2), row(3, votes=2, featured="2026-01-06"), row(4, votes=1, hf=3)]
    assert points(rows).tolist() == [2.0, 2.0 * HF_UPVOTE_WEIGHT, 2.0 + FEATURED_BONUS, 4.0]


def test_score_formula():
    until = end_of(DAY) + timedelta(hours=10)  # the paper is 34 hours old
    (score,) = trending_scores([row(1, votes=5, hf=2)], until)
    assert score == pytest.approx((5 + 2 + 1) / (34 + AGE_OFFSET_HOURS) ** GRAVITY)


def test_decay_with_age():
    rows = [row(1, "2026-01-05", votes=10), row(2, "2026-01-04", votes=10), row(3, "2026-01-01", votes=10)]
    s = trending_scores(rows, end_of(DAY))
    assert s[0] > s[1] > s[2]
    # At one and two days old a paper needs (50/26)^1.8, about 3.2 times the points, to rank alike.
    young, old = trending_scores([row(1, "2026-01-05"), row(2, "2026-01-04")], end_of(DAY))
    assert young / old == pytest.approx((50 / 26) ** 1.8) == pytest.approx(3.24, abs=0.01)


def test_age_is_measured_from_the_featured_day_on_the_featured_feed():
    r = row(1, "2026-01-01", votes=1, featured="2026-01-05")
    all_feed, = trending_scores([r], end_of(DAY), featured=False)
    featured_feed, = trending_scores([r], end_of(DAY), featured=True)
    assert featured_feed == pytest.approx((1 + FEATURED_BONUS + 1) / (24 + AGE_OFFSET_HOURS) ** GRAVITY)
    assert all_feed == pytest.approx((1 + FEATURED_BONUS + 1) / (5 * 24 + AGE_OFFSET_HOURS) ** GRAVITY)


def test_ages_never_go_negative_and_missing_days_sink():
    before_the_day = datetime(2026, 1, 4, tzinfo=UTC)
    (s,) = trending_scores([row(1, votes=3)], before_the_day)
    assert s == pytest.approx(4 / AGE_OFFSET_HOURS ** GRAVITY)
    s = trending_scores([row(1, None, votes=100), row(2, votes=0)], end_of(DAY))
    assert s[0] < s[1]
    assert trending_scores([], end_of(DAY)).shape == (0,)


def test_hf_weight_and_featured_bonus_in_ranking():
    rows = [row(1, votes=1), row(2, hf=1), row(3, featured="2026-01-05")]
    s = trending_scores(rows, end_of(DAY))
    assert s[0] == pytest.approx(s[1])  # an HF upvote counts like a vote here
    assert rank_feed(rows, Sort.trending, end_of(DAY)) == [3, 2, 1]  # bonus 3 > 1; ties: higher doc id first


def test_within_one_day_trending_is_points_order():
    rows = [row(i, votes=v) for i, v in enumerate([3, 9, 0, 5, 5], start=1)]
    assert rank_feed(rows, Sort.trending, end_of(DAY)) == [2, 5, 4, 1, 3]


def test_sort_orders():
    rows = [row(1, "2026-01-03", votes=9), row(2, "2026-01-05", votes=1), row(3, "2026-01-05", votes=0, hf=4),
            row(4, "2026-01-04", votes=2, featured="2026-01-05")]
    assert rank_feed(rows, Sort.new, end_of(DAY)) == [3, 2, 4, 1]  # newest day first, then higher doc id
    # Most upvoted counts what the cards show (votes here + HF upvotes), not the featured bonus.
    assert rank_feed(rows, Sort.votes, end_of(DAY)) == [1, 3, 4, 2]
    trending = rank_feed(rows, Sort.trending, end_of(DAY))
    assert trending[0] == 3 and trending[-1] == 1  # 9 votes two days ago decay below fresher papers
    assert rank_feed([], Sort.trending, end_of(DAY)) == []


# -- periods ------------------------------------------------------------------------------------------
def test_day_period():
    assert period_range(DAY, Period.day) == (DAY, DAY)


@pytest.mark.parametrize(("day", "start", "end"), [
    (date(2026, 11, 29), date(2026, 11, 23), date(2026, 11, 29)),  # a Sunday ends its ISO week
    (date(2026, 11, 30), date(2026, 11, 30), date(2026, 12, 6)),  # a Monday starts one
    (date(2026, 1, 1), date(2025, 12, 29), date(2026, 1, 4)),  # ISO week 1 of 2026 starts in 2025
    (date(2020, 12, 31), date(2020, 12, 28), date(2021, 1, 3)),  # ISO week 53 of 2020
])
def test_week_period_is_the_iso_week(day, start, end):
    assert period_range(day, Period.week) == (start, end)


def test_every_week_of_three_years_matches_the_iso_calendar():
    d = date(2024, 1, 1)
    while d < date(2027, 1, 1):
        start, end = period_range(d, Period.week)
        year, week, _ = d.isocalendar()
        assert start == date.fromisocalendar(year, week, 1) and end == date.fromisocalendar(year, week, 7)
        d += timedelta(days=1)


@pytest.mark.parametrize(("day", "end"), [
    (date(2024, 2, 10), date(2024, 2, 29)),  # leap year
    (date(2026, 2, 28), date(2026, 2, 28)),
    (date(2026, 4, 30), date(2026, 4, 30)),
    (date(2026, 1, 31), date(2026, 1, 31)),
    (date(2026, 12, 1), date(2026, 12, 31)),  # the year's last month
])
def test_month_period_ends_on_the_month_end(day, end):
    assert period_range(day, Period.month) == (day.replace(day=1), end)


def test_end_of_day_is_next_midnight_utc():
    assert end_of(date(2026, 12, 31)) == datetime(2027, 1, 1, tzinfo=UTC)
