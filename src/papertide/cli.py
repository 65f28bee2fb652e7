"""The `papertide` command: one subcommand per job, exit codes a cron job can act on.

Exit codes: 0 = done; 1 = done, but some records were rejected (each is listed); 2 = could not run
(bad arguments, unreadable input, unreachable service) - with a one-line reason, never a traceback.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date
from enum import IntEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from papertide.config import Settings
from papertide.models import IngestReport, InvalidIdError, SearchFilters, parse_arxiv_id

app = typer.Typer(
    help="papertide: an open paper-discovery engine. Ingest arXiv papers, index them, search them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(help="Bring papers into the store from a source.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure retrieval quality on standard collections.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(eval_app, name="eval")
user_app = typer.Typer(help="Manage site accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")
digest_app = typer.Typer(help="E-mail digests: preview an edition, send one (cron-friendly).", no_args_is_help=True)
app.add_typer(digest_app, name="digest")
subscriber_app = typer.Typer(help="Digest subscribers: export or delete an address's data.", no_args_is_help=True)
app.add_typer(subscriber_app, name="subscriber")

out = Console()
err = Console(stderr=True)


class Exit(IntEnum):
    OK = 0
    REJECTED = 1  # finished, but some input records were bad
    FAILED = 2  # could not do the job
    NOTHING_DUE = 3  # `digest send`: every due e-mail of the edition was already sent (or nobody is due)


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def _settings() -> Settings:
    return Settings()


def _store(settings: Settings | None = None):
    from papertide.store import open_store

    return open_store((settings or _settings()).db_url)


def _embedder(settings: Settings):
    from papertide.index.embedder import Embedder

    return Embedder(precision=settings.embed_precision, batch_size=settings.embed_batch_size)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, transient=False,
    )


def _stages(bar: Progress):
    """A (stage, done, total) callback that shows one progress bar per stage."""
    tasks: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return progress


def _report(rep: IngestReport, max_errors: int = 20) -> int:
    out.print(
        f"[green]{rep.source}[/]: read {rep.read:,}, inserted {rep.inserted:,}, updated {rep.updated:,}, "
        f"unchanged {rep.unchanged:,}, rejected {len(rep.errors):,}"
    )
    for e in rep.errors[:max_errors]:
        err.print(f"[yellow]skipped[/] {escape(str(e))}")
    if len(rep.errors) > max_errors:
        err.print(f"[yellow]... and {len(rep.errors) - max_errors:,} more rejected records[/]")
    return Exit.REJECTED if rep.errors else Exit.OK


# -- ingest ----------------------------------------------------------------------------------------
@ingest_app.command("file")
def ingest_file_cmd(
    paths: Annotated[list[Path], typer.Argument(help="JSON-lines files (plain or .gz): the arXiv bulk snapshot or papertide's arxiv-cs set.")],
    source: Annotated[str | None, typer.Option(help="Source name recorded with each paper.")] = None,
) -> None:
    """Import bulk metadata files, streaming (bounded memory), with a progress bar."""
    from papertide.sources.ingest import ingest_files

    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"no such file: {', '.join(missing)}")
    store = _store()
    try:
        with _progress() as bar:
            task = bar.add_task("ingest", total=sum(p.stat().st_size for p in paths))
            rep = ingest_files(store, paths, source, progress=lambda d, t: bar.update(task, completed=d, total=t))
    finally:
        store.close()
    raise typer.Exit(_report(rep))


@ingest_app.command("sample")
def ingest_sample_cmd() -> None:
    """Import the bundled sample: 2,000 real arXiv cs papers (CC0), for a demo that works offline."""
    from papertide.sources.ingest import ingest_files

    store = _store()
    try:
        with resources.as_file(resources.files("papertide.data") / "sample-arxiv-cs-2k.jsonl.gz") as p:
            rep = ingest_files(store, [p], "arxiv-cs", parallel=False)
    finally:
        store.close()
    raise typer.Exit(_report(rep))


@ingest_app.command("arxiv")
def ingest_arxiv_cmd(
    set_spec: Annotated[str, typer.Option("--set", help="OAI-PMH set, e.g. cs, math, physics:astro-ph.")] = "cs",
    date_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD) of changes to harvest.")] = "",
    date_until: Annotated[str | None, typer.Option("--until", help="Last day (YYYY-MM-DD), default: today.")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", "-c", help="Keep only papers in these categories.")] = None,
    prefix: Annotated[str, typer.Option(help="OAI metadata format: arXivRaw, arXiv or oai_dc.")] = "arXivRaw",
    oai_url: Annotated[str | None, typer.Option(help="OAI-PMH endpoint.")] = None,
) -> None:
    """Harvest arXiv over OAI-PMH (polite: one request per 3 s, retries, resumable after a crash)."""
    import httpx

    from papertide.sources.harvest import OAI_URL, Harvester, StoreCheckpoint

    start = _parse_day(date_from, "--from") if date_from else None
    if start is None:
        raise UserError("--from YYYY-MM-DD is required")
    until = _parse_day(date_until, "--until") if date_until else None
    settings = _settings()
    store = _store(settings)
    rep = IngestReport(source="arxiv-oai")
    cats = set(category or [])
    try:
        with httpx.Client() as client, _progress() as bar:
            task = bar.add_task("harvest", total=None)
            h = Harvester(client, oai_url=oai_url or OAI_URL, min_interval=settings.harvest_interval,
                          contact=settings.contact_email or "see https://github.com/papertide")

            def on_page(page) -> None:
                papers = [p for p in page.papers if not cats or cats.intersection(p.categories)]
                res = store.upsert_papers(papers)
                rep.read += len(page.papers)
                rep.inserted += res.inserted
                rep.updated += res.updated
                rep.unchanged += res.unchanged
                rep.errors.extend(page.errors)
                bar.update(task, completed=rep.read, total=page.complete_list_size)

            h.harvest_oai(set_spec, start, until, prefix, on_page=on_page, checkpoint=StoreCheckpoint(store))
    finally:
        store.close()
    raise typer.Exit(_report(rep))


@ingest_app.command("ids")
def ingest_ids_cmd(ids: Annotated[list[str], typer.Argument(help="arXiv ids or URLs.")]) -> None:
    """Fetch papers by arXiv id through the arXiv API."""
    import httpx

    from papertide.sources.harvest import Harvester

    settings = _settings()
    store = _store(settings)
    try:
        with httpx.Client() as client:
            res = Harvester(client, min_interval=settings.harvest_interval).fetch_ids(ids)
        rep = IngestReport(source="arxiv-api", read=len(res.papers), errors=list(res.errors))
        r = store.upsert_papers(res.papers)
        rep.inserted, rep.updated, rep.unchanged = r.inserted, r.updated, r.unchanged
    finally:
        store.close()
    for m in res.missing:
        err.print(f"[yellow]not found on arXiv:[/] {m}")
    raise typer.Exit(_report(rep) or (Exit.REJECTED if res.missing else Exit.OK))


@ingest_app.command("hf")
def ingest_hf_cmd(
    day: Annotated[str | None, typer.Option("--date", help="Day of the HF daily papers list (YYYY-MM-DD).")] = None,
    file: Annotated[Path | None, typer.Option(help="Read a saved /api/daily_papers JSON response instead of fetching.")] = None,
) -> None:
    """Import Hugging Face daily papers (featured papers and their upvotes)."""
    from papertide.sources.hf import parse_daily_papers

    if file is not None:
        if not file.is_file():
            raise UserError(f"no such file: {file}")
        page = parse_daily_papers(file.read_bytes(), str(file))
    else:
        import httpx

        from papertide.sources.harvest import Harvester

        with httpx.Client() as client:
            page = Harvester(client, min_interval=1.0).fetch_daily_papers(_parse_day(day, "--date") if day else None)
    store = _store()
    try:
        r = store.upsert_papers(page.papers)
    finally:
        store.close()
    rep = IngestReport("hf-daily", len(page.papers), r.inserted, r.updated, r.unchanged, list(page.errors))
    raise typer.Exit(_report(rep))


# -- index -----------------------------------------------------------------------------------------
@app.command("index")
def index_cmd() -> None:
    """Embed new papers and update the lexical and dense indexes (incremental; safe to kill and re-run)."""
    from papertide.index.build import update_index
    from papertide.rank.foryou import TERMS_DIR, ensure_term_space

    settings = _settings()
    store = _store(settings)
    embedder = _embedder(settings)
    try:
        with _progress() as bar:
            indexes, rep = update_index(store, settings.index_dir, embedder, _stages(bar))
            task = bar.add_task("for-you term space", total=None)
            refitted = ensure_term_space(store, settings.index_dir / TERMS_DIR)
            bar.update(task, total=1, completed=1)
    finally:
        store.close()
    out.print(
        f"[green]indexed[/]: embedded {rep.embedded:,} papers ({embedder.model_id}); lexical updated {rep.lexical:,}; "
        f"dense index holds {len(indexes.dense):,} vectors"
        + ("; for-you term space fitted" if refitted else "")
    )


# -- search / show / stats -------------------------------------------------------------------------
@app.command("search")
def search_cmd(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    k: Annotated[int, typer.Option("-k", "--limit", min=1, max=1000, help="Number of results.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, lexical or dense.")] = "hybrid",
    date_from: Annotated[str | None, typer.Option("--from", help="Listed on or after (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Listed on or before (YYYY-MM-DD).")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", "-c", help="Any of these categories (repeatable).")] = None,
    has_code: Annotated[bool | None, typer.Option("--has-code/--no-code", help="Only papers with (or without) a code link.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search the indexed papers (BM25 + MiniLM dense, fused)."""
    from papertide.rank.search import Mode

    try:
        m = Mode(mode)
    except ValueError:
        raise UserError(f"unknown --mode {mode!r}; use hybrid, lexical or dense") from None
    filters = SearchFilters(
        _parse_day(date_from, "--from") if date_from else None,
        _parse_day(date_to, "--to") if date_to else None,
        tuple(category or ()), has_code,
    )
    settings = _settings()
    engine, store = _engine(settings)
    try:
        res = engine.search(query, k, filters, m)
    finally:
        store.close()
    if as_json:
        print(json.dumps({
            "query": query, "mode": m.value, "timings_ms": {k: round(v, 2) for k, v in res.timings_ms.items()},
            "hits": [{"rank": i, "score": h.score, "lexical_rank": h.lexical_rank, "dense_rank": h.dense_rank,
                      **_paper_json(h.paper)} for i, h in enumerate(res.hits, 1)],
        }, ensure_ascii=False, indent=2))
        return
    if not res.hits:
        out.print("[yellow]No papers match.[/] Try fewer words or filters.")
        return
    t = Table(show_lines=False, expand=True)
    t.add_column("#", justify="right", style="dim")
    t.add_column("paper")
    t.add_column("listed", style="dim", no_wrap=True)
    t.add_column("score", justify="right", style="dim")
    for i, h in enumerate(res.hits, 1):
        p = h.paper
        assert p is not None
        authors = ", ".join(p.authors[:3]) + (" et al." if len(p.authors) > 3 else "")
        line = f"[bold]{escape(p.title)}[/]\n[dim]{escape(authors)}[/]  [cyan]{p.arxiv_id}[/] {' '.join(p.categories[:3])}"
        if p.code_urls:
            line += f"  [green]code[/] {escape(p.code_urls[0])}"
        t.add_row(str(i), line, str(p.listed or p.submitted or ""), f"{h.score:.3f}")
    out.print(t)
    err.print(f"[dim]{m.value} search in {res.timings_ms.get('total', 0):.0f} ms[/]")


def _engine(settings: Settings):
    from papertide.index.build import open_indexes
    from papertide.rank.search import FusionConfig, SearchEngine

    store = _store(settings)
    embedder = _embedder(settings)
    if not settings.index_dir.exists():
        store.close()
        raise UserError("no index yet: run `papertide index` first")
    indexes = open_indexes(store, settings.index_dir, embedder.model_id, embedder.dim)
    cfg = FusionConfig(settings.fusion, settings.fusion_alpha, settings.fusion_depth)
    return SearchEngine(store, indexes, embedder, cfg), store


@app.command("similar")
def similar_cmd(
    arxiv_id: Annotated[str, typer.Argument(help="arXiv id or URL of the paper.")],
    since: Annotated[str, typer.Option(help="Only papers listed within: all, year or month.")] = "all",
    k: Annotated[int, typer.Option("-k", "--limit", min=1, max=200, help="Number of results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Papers similar to one paper (dense neighbours fused with a lexical "more like this")."""
    from datetime import timedelta

    from papertide.rank.similar import similar_papers

    days = {"all": None, "year": 365, "month": 31}
    if since not in days:
        raise UserError(f"unknown --since {since!r}; use all, year or month")
    try:
        aid, _ = parse_arxiv_id(arxiv_id)
    except InvalidIdError as e:
        raise UserError(str(e)) from None
    settings = _settings()
    engine, store = _engine(settings)
    try:
        doc_id = store.doc_ids_for([aid]).get(aid)
        if doc_id is None:
            raise UserError(f"{aid} is not in the store (try `papertide ingest ids {aid}`)")
        n = days[since]
        hits = similar_papers(engine, doc_id, k, date.today() - timedelta(days=n) if n else None)
        papers = store.get_papers([d for d, _ in hits])
    finally:
        store.close()
    if as_json:
        print(json.dumps({"arxiv_id": aid, "since": since, "hits": [
            {"rank": i, "score": s, **_paper_json(papers.get(d))} for i, (d, s) in enumerate(hits, 1)
        ]}, ensure_ascii=False, indent=2))
        return
    if not hits:
        out.print("[yellow]No similar papers[/] (is the paper embedded? run `papertide index`).")
        return
    t = Table(show_lines=False, expand=True)
    t.add_column("#", justify="right", style="dim")
    t.add_column("paper")
    t.add_column("listed", style="dim", no_wrap=True)
    t.add_column("score", justify="right", style="dim")
    for i, (d, s) in enumerate(hits, 1):
        p = papers.get(d)
        if p is None:
            continue
        t.add_row(str(i), f"[bold]{escape(p.title)}[/]\n[cyan]{p.arxiv_id}[/] {' '.join(p.categories[:3])}",
                  str(p.listed or p.submitted or ""), f"{s:.3f}")
    out.print(t)


@app.command("show")
def show_cmd(
    arxiv_id: Annotated[str, typer.Argument(help="arXiv id or URL.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one paper: metadata, links and version history."""
    try:
        aid, _ = parse_arxiv_id(arxiv_id)
    except InvalidIdError as e:
        raise UserError(str(e)) from None
    store = _store()
    try:
        p = store.get_paper(aid)
    finally:
        store.close()
    if p is None:
        raise UserError(f"{aid} is not in the store (try `papertide ingest ids {aid}`)")
    if as_json:
        print(json.dumps(_paper_json(p), ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]{escape(p.title)}[/]")
    out.print(escape(", ".join(p.authors)))
    out.print(f"[cyan]{p.arxiv_id}v{p.version}[/]  {' '.join(p.categories)}  listed {p.listed or '-'}  "
              f"submitted {p.submitted or '-'}  updated {p.updated or '-'}")
    out.print()
    out.print(escape(p.abstract))
    out.print()
    for label, val in (("comments", p.comments), ("journal", p.journal_ref), ("doi", p.doi)):
        if val:
            out.print(f"[dim]{label}:[/] {escape(val)}")
    out.print(f"[dim]abstract:[/] {p.abs_url}   [dim]pdf:[/] {p.pdf_url}")
    for u in p.code_urls:
        out.print(f"[dim]code:[/] {escape(u)}")
    if p.hf_upvotes is not None:
        out.print(f"[dim]HF upvotes:[/] {p.hf_upvotes}  featured {p.featured_on or '-'}")
    for v in p.versions:
        out.print(f"[dim]v{v.version}[/] {v.created or ''} {v.size or ''}")


@app.command("stats")
def stats_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What the store and the indexes hold."""
    settings = _settings()
    store = _store(settings)
    try:
        s = store.stats()
    finally:
        store.close()
    idx_bytes = sum(f.stat().st_size for f in settings.index_dir.rglob("*") if f.is_file()) if settings.index_dir.exists() else 0
    if as_json:
        print(json.dumps({**asdict(s), "index_bytes": idx_bytes}, indent=2))
        return
    t = Table(title="papertide", show_header=False)
    t.add_row("database", settings.db_url)
    t.add_row("papers", f"{s.papers:,}")
    t.add_row("with code links", f"{s.with_code:,}")
    t.add_row("embedded", f"{s.embedded:,}")
    t.add_row("days", f"{s.first_day or '-'} .. {s.last_day or '-'}")
    t.add_row("schema", f"v{s.schema_version}")
    t.add_row("size on disk", f"db {s.size_bytes / 1e6:.1f} MB, index {idx_bytes / 1e6:.1f} MB")
    t.add_row("sources", ", ".join(f"{k} {v:,}" for k, v in s.by_source))
    t.add_row("top categories", ", ".join(f"{k} {v:,}" for k, v in s.by_category[:8]))
    out.print(t)


# -- eval ------------------------------------------------------------------------------------------
@eval_app.command("beir")
def eval_beir_cmd(
    directory: Annotated[Path, typer.Argument(help="A BEIR-layout folder: corpus.jsonl(.gz), queries.jsonl, qrels/<split>.tsv.")],
    split: Annotated[str, typer.Option(help="qrels split to score.")] = "train",
    as_json: Annotated[Path | None, typer.Option("--json", help="Also write the scores to this JSON file.")] = None,
) -> None:
    """Index a BEIR collection with papertide's pipeline (temporary store) and print nDCG@10 and Recall@100."""
    from papertide.eval.run import run_beir
    from papertide.rank.search import FusionConfig

    settings = _settings()
    embedder = _embedder(settings)
    with _progress() as bar:
        progress = _stages(bar)
        res = run_beir(
            directory, embedder, split, FusionConfig(settings.fusion, settings.fusion_alpha, settings.fusion_depth),
            progress=progress, on_query=lambda d, t: progress("queries", d, t),
            db_url=settings.database_url or None,  # postgresql://: evaluate in a temporary database there
        )
    t = Table(title=f"{res.name} ({split}): {res.docs:,} docs, {res.queries:,} queries")
    t.add_column("ranker")
    t.add_column("nDCG@10", justify="right")
    t.add_column("Recall@100", justify="right")
    for mode, sc in res.scores.items():
        t.add_row(mode, f"{sc['ndcg@10']:.4f}", f"{sc['recall@100']:.4f}")
    out.print(t)
    if as_json:
        as_json.write_text(json.dumps({"dataset": res.name, "split": split, "scores": res.scores,
                                       "fusion": settings.fusion, "alpha": settings.fusion_alpha}, indent=2))


# -- helpers ---------------------------------------------------------------------------------------
def _parse_day(s: str, flag: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise UserError(f"{flag} expects a date as YYYY-MM-DD, got {s!r}") from None


def _paper_json(p) -> dict:
    if p is None:
        return {}
    return {
        "arxiv_id": p.arxiv_id, "version": p.version, "title": p.title, "abstract": p.abstract,
        "authors": p.authors, "categories": p.categories, "primary_category": p.primary_category,
        "submitted": _iso(p.submitted), "updated": _iso(p.updated), "listed": _iso(p.listed),
        "comments": p.comments, "journal_ref": p.journal_ref, "doi": p.doi,
        "links": {"abstract": p.abs_url, "pdf": p.pdf_url, "code": p.code_urls},
        "source": p.source, "hf_upvotes": p.hf_upvotes, "featured_on": _iso(p.featured_on),
        "versions": [{"version": v.version, "created": v.created, "size": v.size} for v in p.versions],
    }


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the site: trending feed, paper pages, search, accounts, the JSON API and feeds."""
    import uvicorn

    settings = _settings()
    _store(settings).close()  # fail early, with a clear message, on a bad database
    err.print(f"[bold]{settings.site_name}[/] on http://{host}:{port}  (data: {settings.home})")
    uvicorn.run("papertide.web.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


@app.command("migrate-db")
def migrate_db_cmd(
    source: Annotated[str, typer.Option("--from", help="The SQLite database: sqlite:///path/to/papertide.db.")],
    target: Annotated[str, typer.Option("--to", help="The PostgreSQL database: postgresql://user@host/db.")],
) -> None:
    """Copy an instance from SQLite to PostgreSQL, verified by row counts and checksums; re-run to resume."""
    if not source.startswith("sqlite:///"):
        raise UserError(f"--from expects a sqlite:/// URL, got {source!r}")
    if not target.startswith(("postgresql://", "postgres://")):
        raise UserError(f"--to expects a postgresql:// URL, got {target!r}")
    from papertide.store import open_store
    from papertide.store.migrate import migrate

    store = open_store(target)
    try:
        with _progress() as bar:
            rep = migrate(source[len("sqlite:///"):], store, _stages(bar))  # type: ignore[arg-type]
    finally:
        store.close()
    t = Table(title="migrate-db: verification")
    for col in ("table", "rows (source)", "rows (target)", "checksum"):
        t.add_column(col)
    for c in rep.checks:
        t.add_row(c.table, f"{c.source_rows:,}", f"{c.target_rows:,}", "[green]ok[/]" if c.ok else "[red]differs[/]")
    out.print(t)
    if not rep.ok:
        raise UserError("the copy differs from the source (see the table); re-run migrate-db to resume")
    out.print(f"[green]migrated[/]: {sum(c.target_rows for c in rep.checks):,} rows, all verified")


@user_app.command("create")
def user_create_cmd(
    email: Annotated[str, typer.Argument(help="E-mail address (the sign-in name).")],
    name: Annotated[str, typer.Option(help="Name shown on the site.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
    password: Annotated[str | None, typer.Option(
        help="Password (default: asked for, or read from PAPERTIDE_NEW_PASSWORD).", envvar="PAPERTIDE_NEW_PASSWORD",
    )] = None,
) -> None:
    """Create an account (use --admin for a moderator), or make an existing account an administrator."""
    from papertide.web.security import hash_password, password_problem

    store = _store()
    try:
        existing = store.get_user_by_email(email)
        if existing is not None:
            if admin and not existing.is_admin:
                store.set_admin(existing.id, True)
                out.print(f"{existing.email} is now an administrator")
                return
            raise UserError(f"an account for {existing.email} already exists")
        if password is None:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        problem = password_problem(password)
        if problem:
            raise UserError(problem)
        user = store.create_user(email, name or email.split("@")[0], hash_password(password), is_admin=admin)
        out.print(f"created {'administrator' if admin else 'account'} {user.email} (id {user.id})")
    finally:
        store.close()


# -- e-mail digests --------------------------------------------------------------------------------
@digest_app.command("send")
def digest_send_cmd(
    frequency: Annotated[str, typer.Option(help="daily or weekly.")] = "daily",
    day: Annotated[str | None, typer.Option("--date", help="Edition day (YYYY-MM-DD); default: the latest day with papers (daily), last week (weekly).")] = None,
) -> None:
    """Send an edition to every due subscriber. Exit 0: sent; 1: some failed; 2: could not run; 3: nothing due.

    Safe to re-run after a crash and to run twice at once: each (subscriber, edition) is sent once.
    """
    from papertide.digest.deliver import run_digest
    from papertide.digest.smtp import MailSetupError

    if frequency not in ("daily", "weekly"):
        raise UserError(f"--frequency expects daily or weekly, got {frequency!r}")
    settings = _settings()
    store = _store(settings)
    try:
        from papertide.digest.personal import personal_ranker

        rep = run_digest(store, settings, frequency, _parse_day(day, "--date") if day else None,
                         personal=personal_ranker(store, settings))
    except MailSetupError as e:  # the run stopped at the first message: nothing was marked failed
        raise UserError(f"{e}; nothing was marked failed: run it again once this is fixed") from None
    finally:
        store.close()
    c = rep.edition_counts
    out.print(f"digest {frequency} {rep.edition}: sent {rep.sent}, failed {rep.failed}, skipped {rep.skipped} "
              f"(edition: {c.sent} sent, {c.failed} failed, {c.pending} pending, {c.skipped} skipped; "
              f"{rep.compositions} compositions, {rep.seconds:.1f} s)")
    for reason, n in sorted(c.reasons.items()):
        err.print(f"[yellow]failed[/] {n} x {escape(reason)}")
    raise typer.Exit(rep.exit_code)


@digest_app.command("preview")
def digest_preview_cmd(
    email: Annotated[str, typer.Option(help="The subscriber's address.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the .eml and .html files.")],
    frequency: Annotated[str | None, typer.Option(help="daily or weekly (default: the subscriber's).")] = None,
    day: Annotated[str | None, typer.Option("--date", help="Edition day (YYYY-MM-DD).")] = None,
) -> None:
    """Write the digest a subscriber would get (a .eml and its HTML part); records nothing, sends nothing."""
    from email import policy

    from papertide.digest.compose import ComposeError, Composer, Renderer, default_day, edition_period
    from papertide.digest.subscriptions import DigestLinks

    settings = _settings()
    store = _store(settings)
    try:
        sub = store.get_subscriber_by_email(email)
        if sub is None:
            raise UserError(f"{email} is not a subscriber")
        freq = frequency or sub.prefs.frequency
        try:
            when = _parse_day(day, "--date") if day else default_day(freq, store.latest_day(False), date.today())
            period = edition_period(freq, when)
        except ComposeError as e:
            raise UserError(str(e)) from None
        ids = Composer(store, period).papers_for(sub)
        if not ids:
            err.print(f"no papers for {email} in the {freq} edition of {period.key} (nothing new matches)")
            raise typer.Exit(Exit.NOTHING_DUE)
        papers = store.get_papers(ids)
        msg = Renderer(settings).digest(sub, period, [papers[d] for d in ids], DigestLinks(settings).links(sub))
    finally:
        store.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"digest-{freq}-{period.key}-{sub.id}"
    stem.with_suffix(".eml").write_bytes(msg.as_bytes(policy=policy.SMTP))
    stem.with_suffix(".html").write_text(msg.get_body(("html",)).get_content(), encoding="utf-8")
    out.print(f"wrote {stem}.eml and {stem}.html ({len(ids)} papers)")


@subscriber_app.command("export")
def subscriber_export_cmd(email: Annotated[str, typer.Argument(help="The address.")]) -> None:
    """Print everything stored about a digest subscriber, as JSON."""
    store = _store()
    try:
        data = store.export_subscriber(email)
    finally:
        store.close()
    if data is None:
        raise UserError(f"{email} is not a subscriber")
    print(json.dumps(data, indent=2, ensure_ascii=False))


@subscriber_app.command("delete")
def subscriber_delete_cmd(email: Annotated[str, typer.Argument(help="The address.")]) -> None:
    """Erase a digest subscriber and their delivery history; their links stop working."""
    store = _store()
    try:
        gone = store.delete_subscriber(email)
    finally:
        store.close()
    if not gone:
        raise UserError(f"{email} is not a subscriber")
    out.print(f"deleted {email.strip().lower()} and its digest history")


def main() -> None:
    """Entry point: maps the few domain errors to a one-line message and exit code 2."""
    from papertide.eval.beir import DatasetError
    from papertide.sources import SourceError
    from papertide.store import StoreError

    try:
        app()
    except (UserError, StoreError, DatasetError, SourceError, OSError) as e:
        err.print(f"[red]error:[/] {escape(str(e))}")
        sys.exit(Exit.FAILED)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: re-run the same command to carry on where it stopped")
        sys.exit(130)
