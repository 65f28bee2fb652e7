"""The trending score of the daily feed: community points decayed by age (Hacker News-style gravity).

    points = votes + HF_UPVOTE_WEIGHT * hf_upvotes + (FEATURED_BONUS if featured)
    score  = (points + 1) / (age_hours + AGE_OFFSET_HOURS) ** GRAVITY

`age_hours` is measured from the start of the paper's day (the day it was featured, on the featured feed;
the day it was listed, on the full feed) to the end of the period being viewed, so a past week ranks the
way it did at the end of that week. Within a single day every paper has the same age and the score is
the points. The gravity is the one Hacker News published (Salihefendic, "How Hacker News ranking
algorithm works", 2010): with it a two-day-old paper needs (50/26)^1.8, about 3.2 times the points of
a one-day-old one to rank beside it.

"Most upvoted" orders by the count the cards show (votes here plus Hugging Face upvotes), without the
featured bonus, which is a trending device and not an upvote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import lru_cache

import numpy as np

from papertide.store.community import FeedRow

GRAVITY = 1.8
AGE_OFFSET_HOURS = 2.0  # keeps a brand-new paper's score finite and close to its points
HF_UPVOTE_WEIGHT = 1.0  # an upvote on Hugging Face counts like one here: both are researchers' votes
FEATURED_BONUS = 3.0  # a curator's or member's pick starts ahead of the unsubmitted crowd


class Sort(str, Enum):
    trending = "trending"
    new = "new"
    votes = "votes"


class Period(str, Enum):
    day = "day"
    week = "week"
    month = "month"


def period_range(day: date, period: Period) -> tuple[date, date]:
    """The days a feed page covers: the day itself, the ISO week (Mon-Sun) or the calendar month holding it."""
    if period is Period.day:
        return day, day
    if period is Period.week:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    start = day.replace(day=1)
    nxt = (start + timedelta(days=32)).replace(day=1)
    return start, nxt - timedelta(days=1)


def points(rows: Sequence[FeedRow]) -> np.ndarray:
    votes = np.fromiter((r.votes for r in rows), dtype=np.float64, count=len(rows))
    hf = np.fromiter((r.hf_upvotes for r in rows), dtype=np.float64, count=len(rows))
    featured = np.fromiter((r.featured_on is not None for r in rows), dtype=bool, count=len(rows))
    return votes + HF_UPVOTE_WEIGHT * hf + FEATURED_BONUS * featured


def upvotes(rows: Sequence[FeedRow]) -> np.ndarray:
    """The upvote count a card shows: votes here plus upvotes on Hugging Face."""
    return np.fromiter((r.votes + r.hf_upvotes for r in rows), dtype=np.float64, count=len(rows))


def trending_scores(rows: Sequence[FeedRow], until: datetime, featured: bool = False) -> np.ndarray:
    """Scores of `rows` seen at `until` (the end of the viewed period)."""
    if not rows:
        return np.zeros(0)
    ref = until.timestamp()
    start = np.fromiter(
        (_day_start(r.featured_on if featured and r.featured_on else r.day) for r in rows), dtype=np.float64,
        count=len(rows),
    )
    age_h = np.maximum(ref - start, 0.0) / 3600.0
    return (points(rows) + 1.0) / np.power(age_h + AGE_OFFSET_HOURS, GRAVITY)


def rank_feed(rows: Sequence[FeedRow], sort: Sort, until: datetime, featured: bool = False) -> list[int]:
    """Doc ids of `rows` in feed order. Ties fall back to newest first, then the higher doc id."""
    if not rows:
        return []
    ids = np.fromiter((r.doc_id for r in rows), dtype=np.int64, count=len(rows))
    days = np.fromiter((_day_start(r.day) for r in rows), dtype=np.float64, count=len(rows))
    if sort is Sort.new:
        order = np.lexsort((-ids, -days))
    elif sort is Sort.votes:
        order = np.lexsort((-ids, -days, -upvotes(rows)))
    else:
        order = np.lexsort((-ids, -days, -trending_scores(rows, until, featured)))
    return ids[order].tolist()


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


@lru_cache(maxsize=4096)  # a feed holds few distinct days and many papers per day
def _day_start(day: str | date | None) -> float:
    if day is None:
        return 0.0
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime.combine(d, time(), tzinfo=UTC).timestamp()
