"""Import papers from a source into the store, in batches, each batch one transaction.

A kill at any point loses at most the batch in flight, and a re-run converges to the same store
because upserts are idempotent. Bulk files are parsed in a second process while this one writes, so
the two halves of an import (JSON parsing, SQLite writes) use both cores.
"""

from __future__ import annotations

import gzip
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from papertide.models import IngestReport, Paper, RecordError
from papertide.sources import SourceError
from papertide.sources.bulk import read_jsonl
from papertide.store.base import Store, chunked
from papertide.store.sqlite import PreparedPapers, SqliteStore, prepare_papers

Progress = Callable[[int, int], None]  # (done, total) in the unit the caller was told (bytes or records)

BATCH = 5000
_PARALLEL_MIN_BYTES = 4 << 20  # below this a second process costs more than it saves


def ingest_items(
    store: Store, items: Iterable[Paper | RecordError], source: str, batch: int = BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> IngestReport:
    """Write papers to the store in batches; RecordErrors are collected in the report."""
    report = IngestReport(source=source)
    for chunk in chunked(items, batch):
        papers = [x for x in chunk if isinstance(x, Paper)]
        report.errors.extend(x for x in chunk if isinstance(x, RecordError))
        report.read += len(papers)
        res = store.upsert_papers(papers)
        report.inserted += res.inserted
        report.updated += res.updated
        report.unchanged += res.unchanged
        if on_batch:
            on_batch(len(chunk))
    return report


def ingest_files(
    store: Store, paths: list[Path], source: str | None = None, batch: int = BATCH,
    progress: Progress | None = None, parallel: bool | None = None,
) -> IngestReport:
    """Import bulk JSON-lines files (plain or gzip'd) in order.

    `progress(done_bytes, total_bytes)` is called after each batch. With `parallel`, one helper
    process parses while this one writes.
    """
    sizes = [p.stat().st_size for p in paths]
    total = sum(sizes)
    if parallel is None:
        parallel = total >= _PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
    report = IngestReport(source=source or ", ".join(p.name for p in paths[:3]) + (" ..." if len(paths) > 3 else ""))
    if parallel:
        # The SQLite store takes rows hashed and flattened by the parser process: this one only runs SQL.
        prepare = prepare_papers if isinstance(store, SqliteStore) else None
        chunks = _chunks_in_process(paths, source, batch, prepare)
    else:
        chunks = (_split(chunk) + (pos,) for chunk, pos in _all_chunks(paths, source, batch))
    for papers, errors, pos in chunks:
        res = store.upsert_papers(papers)  # type: ignore[arg-type]  # PreparedPapers only for a SqliteStore
        report.read += papers.records if isinstance(papers, PreparedPapers) else len(papers)
        report.inserted += res.inserted
        report.updated += res.updated
        report.unchanged += res.unchanged
        report.errors.extend(errors)
        if progress:
            progress(pos, total)
    return report


def _split(chunk: list[Paper | RecordError]) -> tuple[list[Paper], list[RecordError]]:
    papers = [x for x in chunk if isinstance(x, Paper)]
    return papers, [x for x in chunk if isinstance(x, RecordError)] if len(papers) < len(chunk) else []


def _all_chunks(paths: list[Path], source: str | None, batch: int):
    offset = 0
    for path in paths:
        for chunk, pos in _parsed_chunks(path, source, batch):
            yield chunk, offset + pos
        offset += path.stat().st_size


def _parsed_chunks(path: Path, source: str | None, batch: int):
    """(chunk of parsed records, estimated bytes of the file consumed so far)."""
    size = path.stat().st_size
    estimate = _estimate_records(path, size)
    done = 0
    for chunk in chunked(read_jsonl(path, source), batch):
        done += len(chunk)
        yield chunk, min(size, int(size * done / max(estimate, done)))
    yield [], size


Prepare = Callable[[list[Paper]], PreparedPapers]


def _chunks_in_process(paths: list[Path], source: str | None, batch: int, prepare: Prepare | None):
    ctx = mp.get_context("spawn")  # fork is unsafe once torch/tantivy threads exist in this process
    # A one-way pipe, not a multiprocessing.Queue: the child holds the only write end, so if it dies (even
    # half way through a message) this side reads EOF instead of waiting for ever; and a full pipe blocks
    # the child, so at most one parsed batch waits in memory.
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_reader, args=([str(p) for p in paths], source, batch, prepare, send), daemon=True)
    proc.start()
    send.close()
    try:
        while True:
            try:
                msg = recv.recv()
            except (EOFError, OSError):
                proc.join(timeout=5)
                raise SourceError(f"the bulk parser process died (exit code {proc.exitcode})") from None
            if msg is None:
                break
            if isinstance(msg, BaseException):
                raise msg
            yield msg
    finally:
        recv.close()  # a child still sending gets a broken pipe and exits
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join()


def _reader(paths: list[str], source: str | None, batch: int, prepare: Prepare | None, conn) -> None:
    """The parser process: sends (papers or their prepared rows, record errors, bytes done) per batch."""
    try:
        for chunk, pos in _all_chunks([Path(p) for p in paths], source, batch):
            papers, errors = _split(chunk)
            conn.send((prepare(papers) if prepare else papers, errors, pos))
        conn.send(None)
    except (BrokenPipeError, ConnectionResetError):
        return  # the importing process is gone (killed or stopped): nobody will read the rest
    except BaseException as e:  # surfaced in the parent, which owns the error reporting
        try:
            conn.send(e)
            conn.send(None)
        except OSError:
            pass


def _estimate_records(p: Path, size: int) -> int:
    """Rough record count of a file from its first MiB, for a progress bar's total."""
    with open(p, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    with (gzip.open(p, "rb") if gz else open(p, "rb")) as f:
        head = f.read(1 << 20)
        consumed = f.fileobj.tell() if gz else len(head)  # type: ignore[union-attr]
    lines = max(1, head.count(b"\n"))
    return max(1, int(lines * size / max(1, consumed)))
