"""Import papers from a source into the store, in batches, each batch one transaction.

A kill at any point loses at most the batch in flight, and a re-run converges to the same store
because upserts are idempotent. Bulk files are parsed (and turned into rows) in helper processes while
this one writes, so the two halves of an import (JSON parsing, SQLite writes) use every core.
"""

from __future__ import annotations

import gc
import gzip
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from papertide.models import IngestReport, Paper, RecordError
from papertide.sources import SourceError
from papertide.sources.bulk import parse_line, read_lines
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

    `progress(done_bytes, total_bytes)` is called after each batch. With `parallel`, helper processes
    parse (one per core) while this one writes.
    """
    sizes = [p.stat().st_size for p in paths]
    total = sum(sizes)
    if parallel is None:
        parallel = total >= _PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
    report = IngestReport(source=source or ", ".join(p.name for p in paths[:3]) + (" ..." if len(paths) > 3 else ""))
    if parallel:
        # The SQLite store takes rows hashed and flattened by the parsers: this process only runs SQL.
        prepare = prepare_papers if isinstance(store, SqliteStore) else None
        chunks = _chunks_in_processes(paths, source, batch, prepare, _parsers())
    else:
        chunks = ((*_parse(name, lines, source), pos) for _, _, name, lines, pos, _ in _line_chunks(paths, batch))
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


def _parsers() -> int:
    # Parsing costs about three times what writing does: on 2 cores, two parsers and the writer share
    # them; past 3 parsers the writer is the bottleneck.
    return max(1, min(3, os.cpu_count() or 1))


def _line_chunks(
    paths: list[Path], batch: int, skip_file: Callable[[int], bool] | None = None
) -> Iterator[tuple[int, int, str, list, int, bool]]:
    """(file index, batch index over all files read, file name, batch of `read_lines` items, estimated
    bytes of all files consumed so far, last batch of its file).

    A file's last batch (empty if the file has no records) brings the progress to the file's end.
    Batches are cut before parsing: every parser process sees the same ones, the same as inline.
    """
    offset, g = 0, 0
    for f, path in enumerate(paths):
        size = path.stat().st_size
        if skip_file and skip_file(f):
            offset += size
            continue
        estimate = _estimate_records(path, size)
        done = 0
        prev: list | None = None
        for chunk in chunked(read_lines(path), batch):
            if prev is not None:
                yield f, g, path.name, prev, offset + min(size, int(size * done / max(estimate, done))), False
                g += 1
            done += len(chunk)
            prev = chunk
        yield f, g, path.name, prev or [], offset + size, True
        g += 1
        offset += size


def _parse(name: str, lines: list, source: str | None) -> tuple[list[Paper], list[RecordError]]:
    papers: list[Paper] = []
    errors: list[RecordError] = []
    for x in lines:
        item = x if isinstance(x, RecordError) else parse_line(name, x[0], x[1], source)
        (papers if isinstance(item, Paper) else errors).append(item)  # type: ignore[arg-type]
    return papers, errors


Prepare = Callable[[list[Paper]], PreparedPapers]


def _chunks_in_processes(paths: list[Path], source: str | None, batch: int, prepare: Prepare | None, n: int):
    """Parsed batches, in file order, from n parser processes.

    With many files each process parses whole files (file f: process f % n). With few, every process
    reads every file, and parses batch g (counted over all files) when g % n is its number.
    """
    if not paths:
        return
    by_file = len(paths) >= 4 * n  # files of similar sizes share out evenly; few files would not
    ctx = mp.get_context("spawn")  # fork is unsafe once torch/tantivy threads exist in this process
    # One-way pipes, not a multiprocessing.Queue: a child holds the only write end of its pipe, so if it
    # dies (even half way through a message) this side reads EOF instead of waiting for ever; and a full
    # pipe blocks the child, so at most one parsed batch per child waits in memory.
    procs, conns = [], []
    try:
        for k in range(n):
            recv, send = ctx.Pipe(duplex=False)
            conns.append(recv)
            proc = ctx.Process(
                target=_reader, args=([str(p) for p in paths], source, batch, prepare, k, n, by_file, send),
                daemon=True,
            )
            proc.start()
            procs.append(proc)
            send.close()
        f = g = 0
        while f < len(paths):
            k = (f if by_file else g) % n
            try:
                msg = conns[k].recv()
            except (EOFError, OSError):
                procs[k].join(timeout=5)
                raise SourceError(f"the bulk parser process died (exit code {procs[k].exitcode})") from None
            if isinstance(msg, BaseException):
                raise msg
            papers, errors, pos, last = msg
            yield papers, errors, pos
            g += 1
            f += last
    finally:
        for c in conns:
            c.close()  # a child still sending gets a broken pipe and exits
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()


def _reader(paths: list[str], source: str | None, batch: int, prepare: Prepare | None, k: int, n: int,
            by_file: bool, conn) -> None:
    """Parser process k of n: sends (papers or their prepared rows, record errors, bytes done, last
    batch of its file) for each of its batches (see `_chunks_in_processes`), in order."""
    # Everything parsed here is acyclic (freed by reference counting) and the process is short-lived:
    # the cyclic garbage collector would only re-scan each batch's objects, for ~6% of the parse time.
    gc.disable()
    try:
        skip = (lambda f: f % n != k) if by_file else None
        for f, g, name, lines, pos, last in _line_chunks([Path(p) for p in paths], batch, skip):
            if by_file or g % n == k:
                papers, errors = _parse(name, lines, source)
                conn.send((prepare(papers) if prepare else papers, errors, pos, last))
    except (BrokenPipeError, ConnectionResetError):
        return  # the importing process is gone (killed or stopped): nobody will read the rest
    except BaseException as e:  # noqa: BLE001 - surfaced in the parent, which owns the error reporting
        try:
            conn.send(e)
        except OSError:
            pass


def _estimate_records(p: Path, size: int) -> int:
    """Rough record count of a file from its first 256 KiB, for a progress bar's total (reading more
    would add a noticeable share to the decompression of small gzip'd files)."""
    with open(p, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    with (gzip.open(p, "rb") if gz else open(p, "rb")) as f:
        head = f.read(1 << 18)
        consumed = f.fileobj.tell() if gz else len(head)  # type: ignore[union-attr]
    lines = max(1, head.count(b"\n"))
    return max(1, int(lines * size / max(1, consumed)))
