"""The harvester against a real local HTTP server that serves recorded responses and misbehaves.

Time: the harvester's clock and sleep are a fake clock (sleeping advances it instantly), so rate
limits and backoff are asserted exactly without waiting. Only the timeout test spends real time
(a 0.2 s client timeout), and one test measures the rate limit on the real clock.
"""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from fakeserver import FakeServer, Reply, Seen

from papertide.models import InvalidIdError
from papertide.sources.atom import ArxivApiError
from papertide.sources.harvest import (
    LEGACY_OAI_URL,
    OAI_URL,
    Harvester,
    HarvestError,
    MemoryCheckpoint,
    StoreCheckpoint,
    oai_job_key,
    retry_after_seconds,
)
from papertide.sources.hf import HfApiError
from papertide.sources.oai import OaiError, OaiPage

RECORDED = Path(__file__).parent / "fixtures" / "recorded"


def load(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


RAW = load("arxiv_oai_listrecords_arXivRaw_2015-01-06.xml")
BAD_TOKEN = load("arxiv_oai_error_badResumptionToken_2015-06-23.xml")
NO_RECORDS = load("arxiv_oai_error_noRecordsMatch_2015-06-23.xml")
LEGACY_FEED = load("arxiv_atom_query_delmaestro_2016.xml")
CHECKERBOARD = load("arxiv_atom_query_delmaestro_checkerboard_2016.xml")
CURRENT_FEED = load("arxiv_atom_query_all_testing_2026-04-12.xml")
API_ERROR = load("arxiv_atom_error_bad_id_2026-04-12.xml")
HF_JUL31 = load("hf_daily_papers_2026-07-31.json")

# The recording holds one page of six arXivRaw records. To exercise resumption we split those six
# records into three pages of two and rewrite the resumptionToken elements, keeping arXiv's own
# "<list id>|<next cursor + 1>" token shape; the final page carries the empty token that ends a list.
TOKENS = ["726959|1001", "726959|2001"]
ALL_IDS = ["0704.0471", "0704.0716", "0704.0874", "0704.1109", "0704.1114", "0704.1586"]


def split_oai_page(recorded: bytes, per_page: int, tokens: list[str]) -> list[bytes]:
    text = recorded.decode()
    head, rest = text.split("<ListRecords>\n", 1)
    records = re.findall(r"<record>.*?</record>\n", rest, flags=re.DOTALL)
    chunks = [records[i : i + per_page] for i in range(0, len(records), per_page)]
    assert len(chunks) == len(tokens) + 1
    pages = []
    for k, chunk in enumerate(chunks):
        token = tokens[k] if k < len(tokens) else ""
        attrs = f'cursor="{k * per_page}" completeListSize="{len(records)}"'
        element = f"<resumptionToken {attrs}>{token}</resumptionToken>\n"
        pages.append(
            (head + "<ListRecords>\n" + "".join(chunk) + element + "</ListRecords>\n</OAI-PMH>\n").encode()
        )
    return pages


PAGES = split_oai_page(RAW, 2, TOKENS)


def oai_handler(seen: Seen) -> Reply:
    """A well-behaved OAI-PMH server for the three pages; unknown tokens are rejected as arXiv does."""
    token = seen.query.get("resumptionToken")
    if token is None:
        return Reply(body=PAGES[0], headers={"Content-Type": "text/xml"})
    if token in TOKENS:
        return Reply(body=PAGES[TOKENS.index(token) + 1], headers={"Content-Type": "text/xml"})
    return Reply(body=BAD_TOKEN, headers={"Content-Type": "text/xml"})


def route(seen: Seen) -> Reply:
    if seen.path == "/oai":
        return oai_handler(seen)
    if seen.path == "/api/query":
        return Reply(body=LEGACY_FEED, headers={"Content-Type": "application/atom+xml"})
    if seen.path == "/api/daily_papers":
        return Reply(body=HF_JUL31, headers={"Content-Type": "application/json"})
    return Reply(404, b"not found")


class FakeClock:
    """Monotonic time that only moves when the harvester sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server():
    with FakeServer(route) as s:
        yield s


@pytest.fixture
def client():
    # trust_env=False: a proxy configured in the environment must not intercept 127.0.0.1.
    with httpx.Client(trust_env=False) as c:
        yield c


@pytest.fixture
def fake_clock():
    return FakeClock()


def make(server: FakeServer, client: httpx.Client, clock: FakeClock, **kw) -> Harvester:
    kw.setdefault("timeout", 5.0)
    return Harvester(
        client,
        oai_url=server.url("/oai"),
        api_url=server.url("/api/query"),
        hf_url=server.url("/api/daily_papers"),
        sleep=clock.sleep,
        clock=clock.clock,
        rng=random.Random(0),
        **kw,
    )


class Committer:
    """An on_page callback that 'commits' papers, optionally crashing on the n-th page first."""

    def __init__(self, crash_on_page: int | None = None) -> None:
        self.ids: list[str] = []
        self.pages: list[OaiPage] = []
        self.crash_on_page = crash_on_page

    def __call__(self, page: OaiPage) -> None:
        if self.crash_on_page is not None and len(self.pages) + 1 == self.crash_on_page:
            raise RuntimeError("simulated crash before commit")
        self.pages.append(page)
        self.ids += [p.arxiv_id for p in page.papers]


def harvest(h: Harvester, checkpoint: MemoryCheckpoint, on_page: Committer):
    return h.harvest_oai(
        "physics", date(2014, 10, 1), date(2014, 12, 31), on_page=on_page, checkpoint=checkpoint
    )


def oai_requests(server: FakeServer) -> list[dict[str, str]]:
    return [s.query for s in server.requests if s.path == "/oai"]


# -- resumption ------------------------------------------------------------------------------------


def test_follows_resumption_tokens_to_the_end(server, client, fake_clock):
    h = make(server, client, fake_clock)
    checkpoint, commit = MemoryCheckpoint(), Committer()
    run = harvest(h, checkpoint, commit)

    assert commit.ids == ALL_IDS
    assert (run.pages, run.papers, run.errors, run.resumed, run.restarted) == (3, 6, 0, False, False)
    assert [p.cursor for p in commit.pages] == [0, 2, 4]
    assert oai_requests(server) == [
        {
            "verb": "ListRecords",
            "metadataPrefix": "arXivRaw",
            "from": "2014-10-01",
            "until": "2014-12-31",
            "set": "physics",
        },
        {"verb": "ListRecords", "resumptionToken": TOKENS[0]},  # OAI-PMH: the token is an exclusive argument
        {"verb": "ListRecords", "resumptionToken": TOKENS[1]},
    ]
    assert checkpoint.data == {}  # completion deletes the job's key


def test_checkpoint_saved_only_after_the_page_is_committed(server, client, fake_clock):
    h = make(server, client, fake_clock)
    checkpoint = MemoryCheckpoint()
    key = oai_job_key(h.oai_url, "physics", date(2014, 10, 1), date(2014, 12, 31), "arXivRaw")
    seen_in_callback: list[str | None] = []

    def on_page(page: OaiPage) -> None:
        seen_in_callback.append(checkpoint.get(key))

    harvest(h, checkpoint, on_page)  # type: ignore[arg-type]
    # While page n is being committed the checkpoint still points at page n, not n+1.
    assert seen_in_callback == [None, TOKENS[0], TOKENS[1]]


def test_crash_then_resume_from_saved_token(server, client, fake_clock):
    uninterrupted = Committer()
    harvest(make(server, client, fake_clock), MemoryCheckpoint(), uninterrupted)
    server.requests.clear()

    checkpoint = MemoryCheckpoint()
    first = Committer(crash_on_page=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        harvest(make(server, client, fake_clock), checkpoint, first)
    assert first.ids == ALL_IDS[:2]
    assert list(checkpoint.data.values()) == [TOKENS[0]]  # page 1 committed, page 2 not

    server.requests.clear()
    second = Committer()
    run = harvest(make(server, client, fake_clock), checkpoint, second)
    assert run.resumed and not run.restarted and run.pages == 2
    assert oai_requests(server)[0] == {"verb": "ListRecords", "resumptionToken": TOKENS[0]}
    assert first.ids + second.ids == uninterrupted.ids == ALL_IDS
    assert checkpoint.data == {}


def test_expired_token_restarts_the_job_from_the_beginning(server, client, fake_clock):
    h = make(server, client, fake_clock)
    key = oai_job_key(h.oai_url, "physics", date(2014, 10, 1), date(2014, 12, 31), "arXivRaw")
    checkpoint = MemoryCheckpoint({key: "726959|999001"})  # a token the server no longer knows
    commit = Committer()
    run = harvest(h, checkpoint, commit)

    assert run.resumed and run.restarted
    assert commit.ids == ALL_IDS
    requests = oai_requests(server)
    assert requests[0] == {"verb": "ListRecords", "resumptionToken": "726959|999001"}
    assert requests[1]["from"] == "2014-10-01" and "resumptionToken" not in requests[1]
    assert checkpoint.data == {}


def test_a_second_rejected_token_is_an_error_not_a_loop(server, client, fake_clock):
    server.handler = lambda seen: Reply(body=BAD_TOKEN if "resumptionToken" in seen.query else PAGES[0])
    h = make(server, client, fake_clock)
    key = oai_job_key(h.oai_url, "physics", date(2014, 10, 1), date(2014, 12, 31), "arXivRaw")
    checkpoint = MemoryCheckpoint({key: "stale|1"})
    with pytest.raises(OaiError) as e:
        harvest(h, checkpoint, Committer())
    assert e.value.code == "badResumptionToken"
    assert len(server.requests) == 3  # stale token, fresh start, rejected fresh token


def test_a_repeated_token_is_an_error_not_a_loop(server, client, fake_clock):
    # Page 2 served with page 1's token again, as a broken server might.
    looping = PAGES[1].replace(TOKENS[1].encode(), TOKENS[0].encode())
    server.handler = lambda seen: Reply(body=looping if "resumptionToken" in seen.query else PAGES[0])
    with pytest.raises(HarvestError, match="same resumptionToken"):
        harvest(make(server, client, fake_clock), MemoryCheckpoint(), Committer())
    assert len(server.requests) == 2


def test_no_records_match_finishes_cleanly(server, client, fake_clock):
    server.handler = lambda seen: Reply(body=NO_RECORDS)
    checkpoint, commit = MemoryCheckpoint(), Committer()
    run = harvest(make(server, client, fake_clock), checkpoint, commit)
    assert (run.pages, run.papers) == (1, 0)
    assert commit.ids == [] and checkpoint.data == {}


def test_job_keys_separate_jobs_and_endpoints():
    d = date(2024, 1, 25)
    keys = {
        oai_job_key(OAI_URL, "cs", d, None, "arXivRaw"),
        oai_job_key(LEGACY_OAI_URL, "cs", d, None, "arXivRaw"),  # tokens are only valid where issued
        oai_job_key(OAI_URL, "math", d, None, "arXivRaw"),
        oai_job_key(OAI_URL, "cs", d, date(2024, 1, 26), "arXivRaw"),
        oai_job_key(OAI_URL, "cs", d, None, "oai_dc"),
        oai_job_key(OAI_URL, "cs", date(2024, 1, 24), None, "arXivRaw"),
    }
    assert len(keys) == 6


def test_store_checkpoint_adapter():
    class State:
        def __init__(self) -> None:
            self.rows: dict[str, str] = {}

        def get_state(self, key: str) -> str | None:
            return self.rows.get(key)

        def set_state(self, key: str, value: str | None) -> None:
            if value is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = value

    state = State()
    cp = StoreCheckpoint(state)
    cp.set("k", "726959|1001")
    assert cp.get("k") == "726959|1001" and state.rows == {"k": "726959|1001"}
    cp.set("k", None)
    assert cp.get("k") is None and state.rows == {}


# -- politeness ------------------------------------------------------------------------------------


def test_min_interval_between_requests_on_a_fake_clock(server, fake_clock):
    starts: list[float] = []
    with httpx.Client(
        trust_env=False, event_hooks={"request": [lambda r: starts.append(fake_clock.now)]}
    ) as c:
        harvest(make(server, c, fake_clock), MemoryCheckpoint(), Committer())  # default interval: 3 s
    assert len(starts) == 3
    assert [b - a for a, b in pairwise(starts)] == [pytest.approx(3.0), pytest.approx(3.0)]
    assert fake_clock.sleeps == [pytest.approx(3.0), pytest.approx(3.0)]  # none before the first request


def test_min_interval_measured_on_the_real_clock(server):
    starts: list[float] = []
    with httpx.Client(
        trust_env=False, event_hooks={"request": [lambda r: starts.append(time.monotonic())]}
    ) as c:
        h = Harvester(c, oai_url=server.url("/oai"), min_interval=0.05, timeout=5.0)
        harvest(h, MemoryCheckpoint(), Committer())
    gaps = [b - a for a, b in pairwise(starts)]
    assert len(gaps) == 2 and min(gaps) >= 0.05


def test_user_agent_names_papertide_and_contact(server, client, fake_clock):
    make(server, client, fake_clock, contact="ops@example.org").fetch_daily_papers()
    ua = server.requests[0].headers["user-agent"]
    assert ua.startswith("papertide/") and "mailto:ops@example.org" in ua


# -- retries ---------------------------------------------------------------------------------------


def is_page(n: int):
    """Match the request for OAI page n (1-based)."""
    return lambda seen: seen.query.get("resumptionToken") == (TOKENS[n - 2] if n > 1 else None)


def test_misbehaving_server_still_yields_the_complete_harvest(server, client, fake_clock, caplog):
    server.inject(
        Reply(503, b"busy", headers={"Retry-After": "7"}),
        Reply(429, b"slow down", headers={"Retry-After": "11"}),
        when=is_page(1),
    )
    server.inject(Reply(body=PAGES[1][: len(PAGES[1]) // 2]), Reply(drop=True), when=is_page(2))
    server.inject(Reply(body=PAGES[2], cut_at=300), Reply(502, b"bad gateway"), when=is_page(3))
    commit = Committer()
    run = harvest(make(server, client, fake_clock, min_interval=0.0), MemoryCheckpoint(), commit)

    assert commit.ids == ALL_IDS and run.pages == 3
    assert len(server.requests) == 9  # 3 pages + 6 failures
    # Retry-After is honoured exactly; the other failures back off exponentially (base 2 s, equal
    # jitter): attempt n waits between 2**n / 2 and 2**n seconds.
    assert fake_clock.sleeps[:2] == [7.0, 11.0]
    for attempt, slept in zip([1, 2, 1, 2], fake_clock.sleeps[2:], strict=True):
        assert 2**attempt / 2 <= slept <= 2**attempt
    # Each misbehaviour was seen for what it is.
    reasons = [r.getMessage() for r in caplog.records if r.name == "papertide.sources.harvest"]
    expected = [
        "HTTP 503",
        "HTTP 429",
        "invalid XML",
        "connection failed (RemoteProtocolError",
        "connection failed (RemoteProtocolError",
        "HTTP 502",
    ]
    assert len(reasons) == len(expected)
    assert all(e in r for e, r in zip(expected, reasons, strict=True)), reasons


def test_slow_response_times_out_and_is_retried(server, client, fake_clock):
    server.inject(Reply(body=PAGES[0], delay=3.0), when=is_page(1))
    t0 = time.monotonic()
    commit = Committer()
    harvest(make(server, client, fake_clock, timeout=0.2), MemoryCheckpoint(), commit)
    assert commit.ids == ALL_IDS
    assert len(server.requests) == 4
    assert time.monotonic() - t0 < 2.5  # the client gave up on the slow reply rather than waiting


def test_retry_after_as_http_date(server, client, fake_clock):
    when = datetime.now(UTC) + timedelta(seconds=30)
    server.inject(Reply(503, b"maintenance", headers={"Retry-After": format_datetime(when, usegmt=True)}))
    page = make(server, client, fake_clock).fetch_daily_papers(date(2026, 7, 31))
    assert len(page.papers) == 5
    assert 27.0 <= fake_clock.sleeps[0] <= 30.0


def test_retry_after_parsing():
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now) == 60.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0.0  # already past
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_gives_up_after_max_retries_with_a_clear_error(server, client, fake_clock):
    server.handler = lambda seen: Reply(503, b"down")
    h = make(server, client, fake_clock, max_retries=2)
    with pytest.raises(HarvestError) as e:
        h.fetch_daily_papers(date(2026, 7, 31))
    assert len(server.requests) == 3
    assert e.value.attempts == 3 and e.value.reason == "HTTP 503 Service Unavailable"
    assert str(e.value) == (
        f"{server.url('/api/daily_papers')}?date=2026-07-31: HTTP 503 Service Unavailable"
        " (gave up after 3 attempts)"
    )


def test_gives_up_on_persistently_truncated_xml(server, client, fake_clock):
    server.handler = lambda seen: Reply(body=PAGES[0][:400])
    with pytest.raises(HarvestError, match="invalid XML"):
        harvest(make(server, client, fake_clock, max_retries=1), MemoryCheckpoint(), Committer())
    assert len(server.requests) == 2


def test_not_found_is_not_retried(server, client, fake_clock):
    server.handler = lambda seen: Reply(404, b"<html>no such page</html>")
    with pytest.raises(HarvestError, match="HTTP 404") as e:
        make(server, client, fake_clock).fetch_daily_papers()
    assert e.value.attempts == 1 and len(server.requests) == 1


def test_unusable_url_is_not_retried(client, fake_clock):
    h = Harvester(client, hf_url="ftp://127.0.0.1/daily", sleep=fake_clock.sleep, clock=fake_clock.clock)
    with pytest.raises(HarvestError, match="UnsupportedProtocol") as e:
        h.fetch_daily_papers()
    assert e.value.attempts == 1 and fake_clock.sleeps == []


def test_too_long_retry_after_gives_up_at_once(server, client, fake_clock):
    server.handler = lambda seen: Reply(429, b"", headers={"Retry-After": "86400"})
    with pytest.raises(HarvestError, match="retry after 86400 s"):
        make(server, client, fake_clock).fetch_daily_papers()
    assert len(server.requests) == 1 and fake_clock.sleeps == []


# -- arXiv API -------------------------------------------------------------------------------------


def test_search_api_one_page(server, client, fake_clock):
    page = make(server, client, fake_clock).search_api(
        "au:del_maestro", 0, 10, sort_by="submittedDate", sort_order="descending"
    )
    assert page.total_results == 31 and len(page.papers) == 10
    assert server.requests[0].query == {
        "search_query": "au:del_maestro",
        "start": "0",
        "max_results": "10",
        "sortBy": "submittedDate",
        "sortOrder": "descending",
    }


def test_iter_search_pages_by_start_and_max_results(server, client, fake_clock):
    # The recorded 10-entry page is re-served for every start offset: only the paging requests matter.
    server.handler = lambda seen: Reply(body=CURRENT_FEED)
    pages = list(make(server, client, fake_clock).iter_search("all:testing", limit=25, page_size=10))
    assert len(pages) == 3
    assert [(s.query["start"], s.query["max_results"]) for s in server.requests] == [
        ("0", "10"),
        ("10", "10"),
        ("20", "5"),
    ]


def test_iter_search_stops_at_total_results(server, client, fake_clock):
    server.handler = lambda seen: Reply(body=CHECKERBOARD)  # totalResults 1
    pages = list(make(server, client, fake_clock).iter_search("au:del_maestro AND ti:checkerboard", limit=50))
    assert len(pages) == 1 and len(server.requests) == 1


def test_unexpected_empty_page_is_retried(server, client, fake_clock):
    # In memory, from the recording: the same feed with its entries removed but totalResults kept,
    # which is how the API's transient empty pages look.
    empty = re.sub(rb"<entry>.*?</entry>\s*", b"", CURRENT_FEED, flags=re.DOTALL)
    assert b"<entry>" not in empty and b"<opensearch:totalResults>214881" in empty
    server.handler = lambda seen: Reply(body=CURRENT_FEED)
    server.inject(Reply(body=empty))
    page = make(server, client, fake_clock).search_api("all:testing", 0, 10)
    assert len(page.papers) == 10 and len(server.requests) == 2


def test_api_error_feed_is_raised_not_retried(server, client, fake_clock):
    server.handler = lambda seen: Reply(400, API_ERROR, headers={"Content-Type": "application/atom+xml"})
    with pytest.raises(ArxivApiError, match="incorrect id format for abc"):
        make(server, client, fake_clock).search_api("", 0, 100, id_list=["abc"])
    assert len(server.requests) == 1


def test_fetch_ids_normalises_and_reports_missing(server, client, fake_clock):
    server.handler = lambda seen: Reply(body=CHECKERBOARD)  # holds cond-mat/0603029 only
    result = make(server, client, fake_clock).fetch_ids(
        ["cond-mat/0603029v1", "https://arxiv.org/abs/1201.4869", "cond-mat/0603029"]
    )
    assert [p.arxiv_id for p in result.papers] == ["cond-mat/0603029"]
    assert result.missing == ["1201.4869"] and result.errors == []
    assert server.requests[0].query["id_list"] == "cond-mat/0603029,1201.4869"
    assert server.requests[0].query["max_results"] == "2"


def test_fetch_ids_in_chunks(server, client, fake_clock):
    server.handler = lambda seen: Reply(body=CHECKERBOARD)
    make(server, client, fake_clock).fetch_ids(["1201.4869", "1005.5383", "0807.2873"], chunk_size=2)
    assert [s.query["id_list"] for s in server.requests] == ["1201.4869,1005.5383", "0807.2873"]


def test_fetch_ids_rejects_bad_ids_before_any_request(server, client, fake_clock):
    with pytest.raises(InvalidIdError):
        make(server, client, fake_clock).fetch_ids(["2503.11792", "abc"])
    assert server.requests == []


# -- Hugging Face ----------------------------------------------------------------------------------


def test_fetch_daily_papers_for_a_day(server, client, fake_clock):
    page = make(server, client, fake_clock).fetch_daily_papers(date(2026, 7, 31))
    assert [p.arxiv_id for p in page.papers][:2] == ["2607.23193", "2607.27958"]
    assert server.requests[0].path == "/api/daily_papers"
    assert server.requests[0].query == {"date": "2026-07-31"}


def test_fetch_daily_papers_latest(server, client, fake_clock):
    make(server, client, fake_clock).fetch_daily_papers()
    assert server.requests[0].query == {}


def test_hf_error_object_is_raised(server, client, fake_clock):
    server.handler = lambda seen: Reply(
        400, b'{"error":"Invalid date"}', headers={"Content-Type": "application/json"}
    )
    with pytest.raises(HfApiError, match="Invalid date"):
        make(server, client, fake_clock).fetch_daily_papers(date(2026, 7, 31))
