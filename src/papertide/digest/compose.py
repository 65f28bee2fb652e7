"""Composing digests: which papers an edition holds for a set of preferences, and the MIME message around them.

An edition is one (frequency, day): the daily edition of a day, or the weekly one of an ISO week (keyed by
its Monday). Its papers are the period's trending papers (rank/trending.py, the full feed's order), cut
to the subscriber's preferences. Keywords are matched as whole words or phrases in the title and abstract
(case-insensitive) - a plain match, not the lexical index, so a cron run needs no index on disk and a
subscriber sees exactly the papers that name their keyword.

Composition happens once per distinct filter (categories, keywords) per run, never per subscriber; the
per-subscriber step only drops papers that address already received and takes the first N. Bodies are
rendered once per distinct paper list, with placeholders for the subscriber's own links.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from importlib import resources
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from papertide.config import Settings
from papertide.models import Paper
from papertide.rank.trending import Period, Sort, end_of, period_range, rank_feed
from papertide.store.digest import Preferences, Subscriber

CANDIDATE_DEPTH = 2000  # trending papers of a period that preferences filter; a week of arXiv cs is ~2-3k
ABSTRACT_CHARS = 220  # "two lines of abstract" in a 600-px column
MAX_AUTHORS = 4
# Stand-ins for a subscriber's own links in a body rendered once for many subscribers.
PREFS_MARK, UNSUB_MARK, EMAIL_MARK = "@@PT-PREFERENCES@@", "@@PT-UNSUBSCRIBE@@", "@@PT-EMAIL@@"
_CATEGORY = re.compile(r"^[a-z][a-z\-]*(\.[A-Za-z][A-Za-z\-]*)?$")


class ComposeError(Exception):
    """A digest cannot be composed (an unknown frequency, a bad date)."""


# -- editions -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EditionPeriod:
    frequency: str
    key: date  # the edition's day: the day itself, or the Monday of the week
    start: date
    end: date

    @property
    def label(self) -> str:
        if self.frequency == "daily":
            return self.key.strftime("%A %-d %B %Y")
        return f"week of {self.start.strftime('%-d %B')} - {self.end.strftime('%-d %B %Y')}"


def edition_period(frequency: str, day: date) -> EditionPeriod:
    if frequency == "daily":
        return EditionPeriod(frequency, day, day, day)
    if frequency == "weekly":
        start, end = period_range(day, Period.week)
        return EditionPeriod(frequency, start, start, end)
    raise ComposeError(f"unknown frequency {frequency!r}: use daily or weekly")


def default_day(frequency: str, latest_day: date | None, today: date) -> date:
    """The edition a run without --date sends.

    daily: the latest day with papers (not after today), so a cron job sends the newest listing once.
    weekly: the last complete ISO week before today's.
    """
    if frequency == "weekly":
        return today - timedelta(days=today.weekday() + 7)
    return min(latest_day, today) if latest_day else today


# -- choosing papers (pure) -----------------------------------------------------------------------
def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    if not keywords:
        return None
    alts = "|".join(r"\s+".join(map(re.escape, k.split())) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE)


def category_ok(paper_categories: Sequence[str], wanted: Sequence[str]) -> bool:
    """A paper matches "cs.CL" if listed in it, and "cs" if in any cs.* category (cross-lists count)."""
    if not wanted:
        return True
    for c in paper_categories:
        if c in wanted or c.split(".", 1)[0] in wanted:
            return True
    return False


def filter_papers(ranked: Sequence[int], texts: dict[int, tuple[str, str, str]],
                  categories: Sequence[str], keywords: Sequence[str]) -> list[int]:
    """The ranked papers in any of `categories` (all if none) AND naming any of `keywords` (any if none)."""
    rx = keyword_pattern(keywords)
    out = []
    for d in ranked:
        cats, title, abstract = texts.get(d, ("", "", ""))
        if not category_ok(cats.split(), categories):
            continue
        if rx is not None and not (rx.search(title) or rx.search(abstract)):
            continue
        out.append(d)
    return out


def for_you_order(qualifying: Sequence[int], ranking: Sequence[int]) -> list[int]:
    """The edition's qualifying papers in the member's "for you" order; papers their model did not rank
    (already saved or upvoted, or outside its candidates) follow in trending order."""
    if not ranking:
        return list(qualifying)
    pos = {d: i for i, d in enumerate(ranking)}
    return sorted(qualifying, key=lambda d: pos.get(d, len(pos)))  # stable: ties keep trending order


def pick(qualifying: Sequence[int], received: set[int], n: int) -> list[int]:
    """The first `n` qualifying papers the subscriber has not received before."""
    return [d for d in qualifying if d not in received][:n]


class Composer:
    """One edition's papers: ranked once, filtered once per distinct (categories, keywords)."""

    def __init__(self, store, period: EditionPeriod, depth: int = CANDIDATE_DEPTH,
                 personal: Callable[[int], Sequence[int]] | None = None):
        self.period = period
        # user id -> that member's "for you" ranking (doc ids, best first), for subscribers who asked for it
        self.personal = personal
        rows = store.feed_rows(period.start, period.end, False)
        self.ranked: list[int] = rank_feed(rows, Sort.trending, end_of(period.end))[:depth]
        self.texts = store.paper_texts(self.ranked)
        self._store = store
        self._filtered: dict[tuple, list[int]] = {}

    @property
    def compositions(self) -> int:
        return len(self._filtered)

    def qualifying(self, prefs: Preferences) -> list[int]:
        key = (prefs.categories, prefs.keywords)
        hit = self._filtered.get(key)
        if hit is None:
            hit = self._filtered[key] = filter_papers(self.ranked, self.texts, prefs.categories, prefs.keywords)
        return hit

    def papers_for(self, sub: Subscriber) -> list[int]:
        """The subscriber's papers of this edition: qualifying, not received before, at most max_papers."""
        qualifying, n = self.qualifying(sub.prefs), sub.prefs.max_papers
        if sub.prefs.for_you and sub.user_id is not None and self.personal is not None:
            qualifying = for_you_order(qualifying, self.personal(sub.user_id))
        chosen: list[int] = []
        step = max(4 * n, 40)
        for i in range(0, len(qualifying), step):  # usually one chunk: few papers were received before
            chunk = qualifying[i : i + step]
            chosen += pick(chunk, self._store.received_among(sub.id, chunk), n - len(chosen))
            if len(chosen) >= n:
                break
        return chosen


# -- preferences from forms -----------------------------------------------------------------------
def parse_categories(text: str) -> tuple[str, ...]:
    cats = sorted({c for c in re.split(r"[\s,;]+", text.strip()) if c})
    bad = [c for c in cats if not _CATEGORY.match(c)]
    if bad:
        raise ComposeError(f"not an arXiv category: {', '.join(bad)} (write them like cs.CL or math)")
    if len(cats) > 20:
        raise ComposeError("choose at most 20 categories")
    return tuple(cats)


def parse_keywords(text: str) -> tuple[str, ...]:
    kws = sorted({" ".join(k.lower().split()) for k in re.split(r"[,;\n]+", text) if k.strip()})
    if len(kws) > 20:
        raise ComposeError("choose at most 20 keywords")
    if any(len(k) > 60 for k in kws):
        raise ComposeError("keep each keyword under 60 characters")
    return tuple(kws)


# -- rendering ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PaperItem:
    arxiv_id: str
    title: str
    url: str
    authors: str
    snippet: str
    code_url: str | None


def paper_item(p: Paper, base_url: str) -> PaperItem:
    authors = p.authors if len(p.authors) <= MAX_AUTHORS else [*p.authors[: MAX_AUTHORS - 1], "et al."]
    text = " ".join(p.abstract.split())
    if len(text) > ABSTRACT_CHARS:
        text = text[:ABSTRACT_CHARS].rsplit(" ", 1)[0].rstrip(",;:.") + " ..."
    return PaperItem(p.arxiv_id, " ".join(p.title.split()), f"{base_url}/papers/{p.arxiv_id}", ", ".join(authors),
                     text, p.code_urls[0] if p.code_urls else None)


@dataclass(frozen=True, slots=True)
class Links:
    """A subscriber's own links, put into every message to them."""

    preferences: str
    unsubscribe: str


def _env() -> Environment:
    folder = str(resources.files("papertide.digest") / "templates")
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env


class Renderer:
    """Builds the e-mails: confirmation, welcome and digest, each as text + HTML (multipart/alternative)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.env = _env()
        self._bodies: dict[tuple, tuple[str, str, str]] = {}
        addrs = getaddresses([settings.mail_from])
        self.from_domain = (addrs[0][1].rpartition("@")[2] if addrs and "@" in addrs[0][1]
                            else urlsplit(self.base_url).hostname or "localhost")
        self._id_key = hashlib.sha256(("message-id:" + settings.signing_key()).encode()).digest()

    def render(self, name: str, **ctx) -> tuple[str, str]:
        ctx = {"site_name": self.settings.site_name, "base_url": self.base_url, **ctx}
        return (self.env.get_template(f"{name}.txt").render(**ctx), self.env.get_template(f"{name}.html").render(**ctx))

    def message(self, to: str, subject: str, text: str, html: str, links: Links | None,
                message_id: str | None = None) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.mail_from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = message_id or f"<{_random_id()}@{self.from_domain}>"
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a digest
        if links is not None:
            targets = [f"<{links.unsubscribe}>"]
            if self.settings.digest_unsubscribe_mailto:
                targets.append(f"<mailto:{self.settings.digest_unsubscribe_mailto}?subject=unsubscribe>")
            msg["List-Unsubscribe"] = ", ".join(targets)
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
            msg["List-Id"] = f"{self.settings.site_name} digest <digest.{self.from_domain}>"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        return msg

    def digest(self, sub: Subscriber, period: EditionPeriod, papers: Sequence[Paper], links: Links) -> EmailMessage:
        key = (period, tuple(p.arxiv_id for p in papers))
        body = self._bodies.get(key)
        if body is None:
            items = [paper_item(p, self.base_url) for p in papers]
            n = len(items)
            subject = (f"{self.settings.site_name}: {n} trending paper{'s' * (n != 1)} - "
                       f"{'today' if period.frequency == 'daily' else 'this week'}, {period.label}")
            text, html = self.render("digest", papers=items, period=period, preferences_url=PREFS_MARK,
                                     unsubscribe_url=UNSUB_MARK, email=EMAIL_MARK)
            body = self._bodies[key] = (subject, text, html)
            if len(self._bodies) > 4096:  # bounded: distinct paper lists, not subscribers
                self._bodies.pop(next(iter(self._bodies)))
        subject, text, html = body
        text = text.replace(PREFS_MARK, links.preferences).replace(UNSUB_MARK, links.unsubscribe)
        text = text.replace(EMAIL_MARK, sub.email)
        html = html.replace(PREFS_MARK, str(escape(links.preferences))).replace(
            UNSUB_MARK, str(escape(links.unsubscribe))).replace(EMAIL_MARK, str(escape(sub.email)))
        return self.message(sub.email, subject, text, html, links, self.digest_message_id(sub, period))

    def digest_message_id(self, sub: Subscriber, period: EditionPeriod) -> str:
        """The same Message-ID for every attempt at one (subscriber, edition): mail systems that drop
        duplicate Message-IDs (Gmail does) then hide a copy re-sent after a crash in the accept-to-record window.
        """
        tag = hmac.new(self._id_key, f"{sub.id}:{sub.email}".encode(), hashlib.sha256).hexdigest()[:12]
        return f"<digest.{period.frequency}.{period.key.isoformat()}.{sub.id}.{tag}@{self.from_domain}>"


def _random_id() -> str:
    import secrets

    return secrets.token_hex(12)


def envelope_address(mail_from: str) -> str:
    """The bare address of a From: header value (the SMTP envelope sender)."""
    addrs = getaddresses([mail_from])
    return addrs[0][1] if addrs and addrs[0][1] else str(Address(addr_spec=mail_from))
