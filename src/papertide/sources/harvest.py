"""Polite fetching for the live sources: one request per `min_interval`, retries with backoff, and
OAI-PMH harvests that resume from a checkpoint after a crash.

Fetch thin, parse pure: this module only makes requests and hands the bytes to the parsers in
`oai`, `atom` and `hf`. Not thread-safe; use one Harvester per job.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Protocol, TypeVar

import httpx

from papertide.models import Paper, RecordError, parse_arxiv_id
from papertide.sources import MalformedResponse, SourceError
from papertide.sources.atom import AtomPage, parse_atom_feed
from papertide.sources.hf import HfPage, parse_daily_papers
from papertide.sources.oai import OaiError, OaiPage, parse_list_records

log = logging.getLogger(__name__)

OAI_URL = "https://oaipmh.arxiv.org/oai"
LEGACY_OAI_URL = "http://export.arxiv.org/oai2"  # the pre-2025 endpoint; same protocol
API_URL = "https://export.arxiv.org/api/query"
HF_URL = "https://huggingface.co/api/daily_papers"
# arXiv's terms of use for the API and OAI-PMH: no more than one request every three seconds.
DEFAULT_MIN_INTERVAL = 3.0
DEFAULT_CONTACT = "admin@example.invalid"  # placeholder; deployments set their own address
# Overload and transient gateway failures; 429/503 may carry Retry-After.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


class HarvestError(SourceError):
    """A request failed for good: retries exhausted or a non-retryable HTTP status."""

    def __init__(self, url: str, reason: str, attempts: int) -> None:
        super().__init__(f"{url}: {reason} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.url = url
        self.reason = reason
        self.attempts = attempts


class Checkpoint(Protocol):
    """Small durable key/value state; `set(key, None)` deletes the key."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str | None) -> None: ...


class MemoryCheckpoint:
    """A dict-backed Checkpoint, for tests and one-off runs that need not survive the process."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.data: dict[str, str] = {} if data is None else data

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value


class _StateStore(Protocol):
    def get_state(self, key: str) -> str | None: ...
    def set_state(self, key: str, value: str | None) -> None: ...


class StoreCheckpoint:
    """A Checkpoint kept in the store's durable state (`Store.get_state` / `set_state`)."""

    def __init__(self, store: _StateStore) -> None:
        self._store = store

    def get(self, key: str) -> str | None:
        return self._store.get_state(key)

    def set(self, key: str, value: str | None) -> None:
        self._store.set_state(key, value)


@dataclass(slots=True)
class OaiRun:
    """What one `harvest_oai` call did."""

    pages: int = 0
    papers: int = 0
    errors: int = 0
    deleted: int = 0
    resumed: bool = False  # started from a saved resumption token
    restarted: bool = False  # the saved token had expired, so the job started over


@dataclass(slots=True)
class FetchResult:
    papers: list[Paper] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # requested ids the API did not return


def user_agent(contact: str = DEFAULT_CONTACT) -> str:
    try:
        version = metadata.version("papertide")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"papertide/{version} (paper-discovery engine; mailto:{contact})"


def oai_job_key(
    base_url: str, set_spec: str | None, date_from: date, date_until: date | None, metadata_prefix: str
) -> str:
    """The checkpoint key of one harvest job. Tokens are only valid on the server that issued them,
    so the endpoint is part of the key as well as (set, from, until, prefix)."""
    until = date_until.isoformat() if date_until else ""
    return (
        f"oai-harvest {base_url} set={set_spec or ''} from={date_from.isoformat()} until={until} "
        f"prefix={metadata_prefix}"
    )


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Harvester:
    """Fetches arXiv OAI-PMH pages, arXiv API feeds and HF daily papers through one httpx.Client.

    Every request waits until `min_interval` seconds have passed since the previous request to the
    same host, and is retried up to `max_retries` times on 429/5xx, timeouts, connection errors and
    unparseable bodies, sleeping Retry-After when the server gives one and exponential backoff with
    jitter otherwise. `sleep`, `clock` and `rng` are injectable so tests need not wait.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        oai_url: str = OAI_URL,
        api_url: str = API_URL,
        hf_url: str = HF_URL,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        max_retries: int = 5,
        timeout: float = 30.0,
        backoff_base: float = 2.0,
        backoff_max: float = 120.0,
        max_retry_after: float = 900.0,
        contact: str = DEFAULT_CONTACT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.oai_url = oai_url
        self.api_url = api_url
        self.hf_url = hf_url
        self.min_interval = min_interval
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.headers = {"User-Agent": user_agent(contact)}
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._last_request: dict[str, float] = {}

    # -- arXiv OAI-PMH ------------------------------------------------------------------------------

    def harvest_oai(
        self,
        set_spec: str | None,
        date_from: date,
        date_until: date | None = None,
        metadata_prefix: str = "arXivRaw",
        *,
        on_page: Callable[[OaiPage], None],
        checkpoint: Checkpoint,
    ) -> OaiRun:
        """Harvest ListRecords for (set, from, until, prefix), following resumption tokens.

        Each page goes to `on_page`, which must commit its papers before returning; only then is the
        next token saved under `oai_job_key(...)`, so a crash loses at most the page in hand. A later
        call with the same arguments resumes from the saved token. When the list is complete the key
        is deleted (a key exists only while a job is unfinished), so running the job again harvests
        it again from the start. If the server rejects a token (badResumptionToken: tokens expire,
        e.g. while a crashed job waits to be re-run), the job restarts from the beginning, at most
        once per call; pages are upserted idempotently, so reading them again is safe.
        """
        key = oai_job_key(self.oai_url, set_spec, date_from, date_until, metadata_prefix)
        first: dict[str, str] = {
            "verb": "ListRecords",
            "metadataPrefix": metadata_prefix,
            "from": date_from.isoformat(),
        }
        if date_until:
            first["until"] = date_until.isoformat()
        if set_spec:
            first["set"] = set_spec
        token = checkpoint.get(key)
        run = OaiRun(resumed=token is not None)
        if token:
            log.info("resuming OAI harvest %s from token %s", key, token)
        while True:
            params = {"verb": "ListRecords", "resumptionToken": token} if token else first
            try:
                page = self._fetch(self.oai_url, params, parse_list_records)
            except OaiError as e:
                if e.code != "badResumptionToken" or not token or run.restarted:
                    raise
                log.warning(
                    "resumption token %s rejected (%s); restarting %s from the beginning", token, e, key
                )
                run.restarted = True
                checkpoint.set(key, None)
                token = None
                continue
            on_page(page)
            run.pages += 1
            run.papers += len(page.papers)
            run.errors += len(page.errors)
            run.deleted += len(page.deleted)
            if page.resumption_token and page.resumption_token == token:
                raise HarvestError(
                    self.oai_url, f"server returned the same resumptionToken {token!r} again", 1
                )
            checkpoint.set(key, page.resumption_token)  # None on the last page: the job is complete
            if page.done:
                return run
            token = page.resumption_token

    # -- arXiv API (Atom) ---------------------------------------------------------------------------

    def search_api(
        self,
        query: str,
        start: int = 0,
        max_results: int = 100,
        *,
        id_list: Sequence[str] = (),
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> AtomPage:
        """One page of arXiv API results (`search_query` syntax, e.g. "cat:cs.CL AND ti:retrieval")."""
        params = {"search_query": query, "start": str(start), "max_results": str(max_results)}
        if id_list:
            params["id_list"] = ",".join(id_list)
        if sort_by:
            params["sortBy"] = sort_by
        if sort_order:
            params["sortOrder"] = sort_order

        def parse(data: bytes, location: str) -> AtomPage:
            page = parse_atom_feed(data, location)
            # The API sometimes answers a page with no entries although more results exist; that is a
            # transient failure, so it is retried like an unreadable body.
            if not page.papers and not page.errors and (page.total_results or 0) > start:
                raise MalformedResponse(f"{location}: empty page although totalResults={page.total_results}")
            return page

        return self._fetch(self.api_url, params, parse)

    def iter_search(
        self,
        query: str,
        *,
        limit: int,
        page_size: int = 100,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> Iterator[AtomPage]:
        """Pages of up to `limit` results, paging by start/max_results."""
        start = 0
        while start < limit:
            size = min(page_size, limit - start)
            page = self.search_api(query, start, size, sort_by=sort_by, sort_order=sort_order)
            yield page
            start += size
            if not (page.papers or page.errors) or (
                page.total_results is not None and start >= page.total_results
            ):
                return

    def fetch_ids(self, ids: Sequence[str], chunk_size: int = 100) -> FetchResult:
        """The latest version of each paper (ids or abs URLs, with or without a version).

        Raises InvalidIdError before any request if an id is not an arXiv id.
        """
        wanted: list[str] = []
        for raw in ids:
            arxiv_id, _ = parse_arxiv_id(raw)
            if arxiv_id not in wanted:
                wanted.append(arxiv_id)
        result = FetchResult()
        for i in range(0, len(wanted), chunk_size):
            chunk = wanted[i : i + chunk_size]
            page = self.search_api("", 0, len(chunk), id_list=chunk)
            result.papers += page.papers
            result.errors += page.errors
        got = {p.arxiv_id for p in result.papers}
        result.missing = [i for i in wanted if i not in got]
        return result

    # -- Hugging Face -------------------------------------------------------------------------------

    def fetch_daily_papers(self, day: date | None = None) -> HfPage:
        """The papers featured on `day` (HF's latest list when None)."""
        params = {"date": day.isoformat()} if day else {}
        return self._fetch(self.hf_url, params, parse_daily_papers)

    # -- plumbing -----------------------------------------------------------------------------------

    def _fetch(self, url: str, params: Mapping[str, str], parse: Callable[[bytes, str], T]) -> T:
        """GET url with params and parse the body, retrying transient failures."""
        full = httpx.URL(url, params=dict(params))
        location = str(full)
        reason = ""
        attempt = 0
        while True:
            attempt += 1
            self._throttle(full.host)
            wait: float | None = None
            try:
                response = self.client.get(full, headers=self.headers, timeout=self.timeout)
            except httpx.TimeoutException as e:
                reason = f"timed out ({type(e).__name__})"
            except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
                reason = f"connection failed ({type(e).__name__}: {e})"
            except httpx.HTTPError as e:  # e.g. an unsupported URL scheme: retrying cannot help
                raise HarvestError(location, f"request failed ({type(e).__name__}: {e})", attempt) from e
            else:
                status = response.status_code
                if status in RETRY_STATUSES:
                    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
                    if status in (429, 503):
                        wait = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
                        if wait is not None and wait > self.max_retry_after:
                            raise HarvestError(
                                location, f"{reason}, asked to retry after {wait:.0f} s", attempt
                            )
                elif status >= 400:
                    self._raise_for_status(response, location, parse, attempt)
                else:
                    try:
                        return parse(response.content, location)
                    except MalformedResponse as e:
                        reason = str(e).removeprefix(f"{location}: ")
            if attempt > self.max_retries:
                raise HarvestError(location, reason, attempt)
            delay = wait if wait is not None else self._backoff(attempt)
            log.warning("%s: %s; retry %d/%d in %.1f s", location, reason, attempt, self.max_retries, delay)
            self._sleep(delay)

    def _raise_for_status(
        self, response: httpx.Response, location: str, parse: Callable[[bytes, str], object], attempt: int
    ) -> None:
        # The arXiv API sends its error feed with HTTP 400 and HF sends {"error": ...}: let the parser
        # raise the service's own message. Anything it cannot read is reported by status.
        with contextlib.suppress(MalformedResponse):
            parse(response.content, location)
        raise HarvestError(
            location, f"HTTP {response.status_code} {response.reason_phrase}".rstrip(), attempt
        )

    def _backoff(self, attempt: int) -> float:
        # "Equal jitter": half the exponential delay is fixed, half random, so clients that failed
        # together do not retry together, yet each still waits a meaningful time.
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return delay / 2 + self._rng.uniform(0, delay / 2)

    def _throttle(self, host: str) -> None:
        last = self._last_request.get(host)
        if last is not None:
            wait = last + self.min_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_request[host] = self._clock()
