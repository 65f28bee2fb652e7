"""The ingest pipeline: bulk files into a real SQLite store, inline and with the parser process,
and a kill in the middle of an import (a real SIGKILL of a real subprocess) that a re-run repairs.

Inputs are the committed real records (fixtures/bulk, see PROVENANCE.md); gzip'd, broken and large
files are generated from them in tmp_path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from papertide.models import IngestReport, RecordError
from papertide.sources import ingest
from papertide.sources.bulk import read_jsonl
from papertide.sources.ingest import ingest_files, ingest_items
from papertide.store import SqliteStore

BULK = Path(__file__).parent / "fixtures" / "bulk"
SNAPSHOT = BULK / "arxiv-snapshot-head30.jsonl"
RESHAPED = BULK / "arxiv-cs-sample50.jsonl"

# Runs an import in a child interpreter, so that the test can SIGKILL it mid-way. A progress
# callback that sleeps stands in for a slow disk, so batches commit at a pace the test can catch.
INGEST_SCRIPT = r"""
import json, multiprocessing, os, signal, sys, time
from pathlib import Path
from papertide.store import SqliteStore
from papertide.sources.ingest import ingest_files

db, path, batch, parallel, pause, kill_reader = sys.argv[1:7]
store = SqliteStore(db)

def progress(done, total):
    if kill_reader == "1":  # the parser process dies (OOM killer, a segfault in a C extension ...)
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)
    time.sleep(float(pause))

report = ingest_files(store, [Path(path)], batch=int(batch), parallel=parallel == "1", progress=progress)
store.close()
print(json.dumps({"read": report.read, "inserted": report.inserted, "errors": len(report.errors)}))
"""


def dump(db_path: Path, with_row_ids: bool = True) -> dict[str, list[tuple]]:
    """Every table's content, keyed by arxiv_id; row ids and change sequence numbers optional."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(papers)")]
        keep = [c for c in cols if with_row_ids or c not in ("id", "seq")]
        return {
            "papers": con.execute(f"SELECT {', '.join(keep)} FROM papers ORDER BY arxiv_id").fetchall(),
            "versions": con.execute(
                "SELECT p.arxiv_id, v.version, v.created, v.size FROM paper_versions v "
                "JOIN papers p ON p.id = v.paper_id ORDER BY 1, 2"
            ).fetchall(),
            "sources": con.execute(
                "SELECT p.arxiv_id, s.source FROM paper_sources s JOIN papers p ON p.id = s.paper_id "
                "ORDER BY 1, 2"
            ).fetchall(),
            "state": con.execute(
                "SELECT key, value FROM state"
                + ("" if with_row_ids else " WHERE key != 'seq'")
                + " ORDER BY 1"
            ).fetchall(),
        }
    finally:
        con.close()


def doc_ids(db_path: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT arxiv_id, id FROM papers"))
    finally:
        con.close()


def write_broken(path: Path) -> None:
    """Real lines with bad ones between them (locations asserted below)."""
    snap = SNAPSHOT.read_text(encoding="utf-8").splitlines(keepends=True)
    rs = RESHAPED.read_text(encoding="utf-8").splitlines(keepends=True)
    no_id = json.loads(rs[5])
    del no_id["id"]
    lines = [
        snap[0],  # 1: 0704.0001 again, identical: unchanged
        "{oops\n",  # 2
        "\n",  # 3
        json.dumps(no_id) + "\n",  # 4
        "[1, 2, 3]\n",  # 5
        rs[6],  # 6: 2503.12495 again, identical: unchanged
        rs[7][:100],  # 7: truncated last line
    ]
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    gz = tmp_path / "arxiv-cs-sample50.jsonl.gz"
    gz.write_bytes(gzip.compress(RESHAPED.read_bytes()))
    broken = tmp_path / "broken.jsonl"
    write_broken(broken)
    return [SNAPSHOT, gz, broken]


def check_report(report: IngestReport) -> None:
    assert (report.read, report.inserted, report.updated, report.unchanged) == (82, 80, 0, 2)
    assert [(e.location, e.reason.split(" (")[0]) for e in report.errors] == [
        ("broken.jsonl:2", "invalid JSON"),
        ("broken.jsonl:4", "missing 'id'"),
        ("broken.jsonl:5", "expected a JSON object, got list"),
        ("broken.jsonl:7", "invalid JSON"),
    ]
    assert not report.ok


# -- inline and parallel -----------------------------------------------------------------------------


def test_ingest_files_inline_report_and_store(tmp_path, inputs):
    calls = []
    store = SqliteStore(tmp_path / "inline.db")
    report = ingest_files(store, inputs, batch=16, parallel=False, progress=lambda d, t: calls.append((d, t)))
    check_report(report)
    assert report.source == "arxiv-snapshot-head30.jsonl, arxiv-cs-sample50.jsonl.gz, broken.jsonl"
    total = sum(p.stat().st_size for p in inputs)
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    # Every record is stored as the parser made it.
    for path in (SNAPSHOT, RESHAPED):
        for p in read_jsonl(path):
            assert store.get_paper(p.arxiv_id) == p
    assert store.count_papers() == 80
    assert dict(store.stats().by_source) == {"arxiv-snapshot": 30, "arxiv-cs": 50}
    # Importing the same files again changes nothing.
    seq_rows = dump(tmp_path / "inline.db")["papers"]
    again = ingest_files(store, inputs, batch=16, parallel=False)
    assert (again.read, again.inserted, again.updated, again.unchanged) == (82, 0, 0, 82)
    assert len(again.errors) == 4
    assert dump(tmp_path / "inline.db")["papers"] == seq_rows
    store.close()


def test_ingest_files_parallel_gives_the_identical_store(tmp_path, inputs):
    reports = {}
    for mode in (False, True):
        store = SqliteStore(tmp_path / f"parallel-{mode}.db")
        reports[mode] = ingest_files(store, inputs, batch=16, parallel=mode, source="bulk-test")
        store.close()
    check_report(reports[True])
    assert reports[True] == reports[False]
    assert reports[True].source == "bulk-test"
    inline, parallel = dump(tmp_path / "parallel-False.db"), dump(tmp_path / "parallel-True.db")
    assert parallel == inline  # same rows, row ids and change sequence numbers
    assert {s for _, s in inline["sources"]} == {"bulk-test"}


def _split_inputs(tmp_path: Path, inputs: list[Path], n: int) -> list[Path]:
    """The same records as `inputs`, in the same order, spread over about n files (gzip'd and plain)."""
    lines = [ln for p in inputs for ln in _text(p).splitlines(keepends=True)]
    out = []
    for k in range(n):
        path = tmp_path / (f"part{k:03d}.jsonl" + (".gz" if k % 2 else ""))
        data = "".join(lines[k * len(lines) // n : (k + 1) * len(lines) // n]).encode()
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        out.append(path)
    return out


def _text(p: Path) -> str:
    return gzip.decompress(p.read_bytes()).decode() if p.suffix == ".gz" else p.read_text(encoding="utf-8")


@pytest.mark.parametrize(("files", "parsers"), [(3, 1), (3, 3), (9, 2), (12, 3)])
def test_parallel_parsers_by_file_or_by_batch_give_the_inline_store(tmp_path, inputs, monkeypatch, files, parsers):
    """n parser processes share the work by file (many files) or by batch (few): the store, the report
    and the progress calls are those of an inline import, batch for batch."""
    paths = _split_inputs(tmp_path, inputs, files)
    assert len(paths) == files
    runs = {}
    for mode in (False, True):
        monkeypatch.setattr(ingest, "_parsers", lambda: parsers)
        db = tmp_path / f"{mode}.db"
        store = SqliteStore(db)
        calls: list[tuple[int, int]] = []
        report = ingest_files(store, paths, batch=7, parallel=mode, progress=lambda d, t, c=calls: c.append((d, t)))
        store.close()
        runs[mode] = (report, calls, dump(db))
    assert runs[True] == runs[False]
    report, calls, _ = runs[True]
    assert (report.read, report.inserted, report.updated, report.unchanged) == (82, 80, 0, 2)
    assert len(report.errors) == 4
    total = sum(p.stat().st_size for p in paths)
    assert calls[-1] == (total, total) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_content_hash_and_rows_are_those_stored_before(tmp_path):
    """Stored content hashes must not change (a re-ingest would rewrite every paper): the hash is
    checked against its definition, and the authors / code links JSON against json.dumps."""
    from papertide.models import Paper, Version
    from papertide.store.base import content_hash, text_hash
    from papertide.store.sqlite import _json_strs

    def reference(p: Paper) -> str:
        versions = ";".join(f"{v.version},{v.created},{v.size}" for v in p.versions)
        payload = "\x1f".join(str(x) for x in (
            p.version, p.title, p.abstract, "\x1e".join(p.authors), " ".join(p.categories), p.submitted,
            p.updated, p.listed, p.comments, p.journal_ref, p.doi, " ".join(p.code_urls), p.submitter,
            p.license, versions))
        return hashlib.blake2b(payload.encode(), digest_size=10).hexdigest()

    papers = [x for path in (SNAPSHOT, RESHAPED) for x in read_jsonl(path)]
    papers.append(Paper("2601.00001", 'a "quoted" \\ title', versions=[Version(3), Version(4, "2026-01-02T00:00:00Z", "1kb")]))
    assert all(isinstance(p, Paper) for p in papers)
    assert [content_hash(p) for p in papers] == [reference(p) for p in papers]
    assert text_hash("a", "b") == hashlib.blake2b(b"a\x00b", digest_size=10).hexdigest()
    for xs in ([], ["C. Bal\u00e1zs", 'say "hi"', "back\\slash", "tab\tnew\nline\x00\x1f", "\u2028", "\U0001f600"]):
        assert _json_strs(xs) == json.dumps(xs, ensure_ascii=False)
    for p in papers:
        assert _json_strs(p.authors) == json.dumps(p.authors, ensure_ascii=False)


def test_ingest_items_batches_and_collects_errors(tmp_path):
    items: list = list(read_jsonl(RESHAPED))[:7]
    items.insert(3, RecordError("feed:3", "missing 'id'"))
    sizes = []
    store = SqliteStore(tmp_path / "items.db")
    report = ingest_items(store, items, "arxiv-cs", batch=3, on_batch=sizes.append)
    assert sizes == [3, 3, 2]
    assert (report.read, report.inserted, report.unchanged) == (7, 7, 0)
    assert [str(e) for e in report.errors] == ["feed:3: missing 'id'"]
    assert store.count_papers() == 7
    store.close()


# -- a kill in the middle converges ------------------------------------------------------------------


def write_big(path: Path, n: int = 20_000) -> list[str]:
    """The 80 real records replicated under new ids to n lines; returns the ids in file order.

    Every record carries versions (the snapshot's own, or "vN" in the reshaped id), and every 997th
    line repeats the record from 500 lines before as its next version with new comments, so updates
    and version histories cross the batches too.
    """
    snap = [json.loads(x) for x in SNAPSHOT.read_text(encoding="utf-8").splitlines()]
    rs = [json.loads(x) for x in RESHAPED.read_text(encoding="utf-8").splitlines()]
    src = [x for pair in zip(rs[:30], snap, strict=True) for x in pair] + rs[30:]
    lines, ids, recs = [], [], []
    for i in range(n):
        if i % 997 == 996:
            rec = dict(recs[i - 500])
            if "versions" in rec:
                rec["versions"] = rec["versions"] + [{"version": f"v{len(rec['versions']) + 1}",
                                                      "created": "Fri, 2 Jan 2026 10:00:00 GMT"}]
            else:
                rec["id"] = rec["id"].split("v")[0] + "v9"
            rec["comments"] = "revised in 2026"
        else:
            rec = dict(src[i % len(src)])
            aid = f"2601.{i:05d}"
            rec["id"] = aid if "versions" in rec else f"{aid}v{1 + i % 3}"
        recs.append(rec)
        ids.append(rec["id"].split("v")[0])
        lines.append(json.dumps(rec, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def count_papers(db_path: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM papers").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created or not migrated yet
        return 0


def start_ingest(db: Path, path: Path, batch: int, parallel: bool, pause: float, kill_reader: bool = False):
    return subprocess.Popen(
        [sys.executable, "-c", INGEST_SCRIPT, str(db), str(path), str(batch), str(int(parallel)), str(pause),
         str(int(kill_reader))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def kill_when(proc: subprocess.Popen, db: Path, at_least: int, deadline_s: float = 90.0) -> None:
    deadline = time.monotonic() + deadline_s
    while count_papers(db) < at_least:
        assert proc.poll() is None, f"the import ended before it was killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "the import never committed its first batches"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def assert_nothing_half_written(db: Path, ids_in_order: list[str]) -> int:
    """Checks a store an import was killed in: whole batches only. Returns the number of papers."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        # Every paper has its source row and a version row for its current version.
        assert con.execute(
            "SELECT arxiv_id FROM papers p WHERE NOT EXISTS "
            "(SELECT 1 FROM paper_sources s WHERE s.paper_id = p.id)"
        ).fetchall() == []
        assert con.execute(
            "SELECT arxiv_id FROM papers p WHERE NOT EXISTS "
            "(SELECT 1 FROM paper_versions v WHERE v.paper_id = p.id AND v.version = p.version)"
        ).fetchall() == []
        # Batches commit in file order: what is there is exactly the first papers of the file.
        stored = [r[0] for r in con.execute("SELECT arxiv_id FROM papers ORDER BY id")]
        first = list(dict.fromkeys(ids_in_order))[: len(stored)]
        assert stored == first
        n = len(stored)
        assert n == con.execute("SELECT count(DISTINCT arxiv_id) FROM papers").fetchone()[0]
        return n
    finally:
        con.close()


def test_kill_in_the_middle_then_rerun_equals_an_uninterrupted_import(tmp_path):
    big = tmp_path / "big.jsonl"
    ids = write_big(big)
    distinct = len(set(ids))
    batch = 500

    # The uninterrupted import to compare with runs meanwhile, in its own process.
    clean = tmp_path / "clean.db"
    baseline = start_ingest(clean, big, batch, parallel=False, pause=0.0)

    try:
        killed = tmp_path / "killed.db"
        proc = start_ingest(killed, big, batch, parallel=False, pause=0.03)
        kill_when(proc, killed, at_least=3 * batch)

        n = assert_nothing_half_written(killed, ids)
        assert 3 * batch <= n < distinct, "the kill did not land in the middle of the import"

        # Re-run to completion (in this process), then compare with an uninterrupted import.
        store = SqliteStore(killed)
        report = ingest_files(store, [big], batch=batch, parallel=False)
        store.close()
        assert report.errors == []
        assert report.read == len(ids)
        assert report.inserted == distinct - n

        out, err = baseline.communicate(timeout=60)
        assert baseline.returncode == 0, err
        assert json.loads(out) == {"read": len(ids), "inserted": distinct, "errors": 0}
    finally:
        if baseline.poll() is None:
            baseline.kill()
            baseline.communicate()

    resumed, expected = dump(killed, with_row_ids=False), dump(clean, with_row_ids=False)
    assert [r[0] for r in resumed["papers"]] == sorted(set(ids))  # same ids, once each
    assert resumed == expected  # same content hashes and metadata, versions, sources
    # Even the row ids (the indexes' document keys) match: the killed batch left no gap.
    assert doc_ids(killed) == doc_ids(clean)
    assert assert_nothing_half_written(killed, ids) == distinct
    # The repeated records became later versions, with their history.
    history: dict[str, list[int]] = {}
    for aid, v, _, _ in resumed["versions"]:
        history.setdefault(aid, []).append(v)
    assert history["2601.00496"] == [2, 9]  # line 997 repeats line 497 (2601.00496v2) as v9
    assert history["2601.01493"] == [1, 2, 3, 4, 5]  # a snapshot record given a fifth version
    store = SqliteStore(killed)
    revised = store.get_paper("2601.01493")
    assert (revised.version, revised.comments) == (5, "revised in 2026")
    store.close()


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return alive


def test_killed_import_leaves_no_parser_process_behind(tmp_path):
    """BUG (sources/ingest.py, _reader): the parser process outlives a killed import, forever.

    With parallel=True, when the importing process is SIGKILLed (its atexit handlers do not run),
    the spawned reader keeps parsing until the bounded queue is full and then blocks in
    `queue.put(msg)` for ever, holding its batches in memory (and the resource tracker with it).
    Observed here: still alive seconds after its parent died.
    """
    big = tmp_path / "big.jsonl"
    ids = write_big(big, n=4000)
    db = tmp_path / "killed-parallel.db"
    proc = start_ingest(db, big, batch=100, parallel=True, pause=0.05)
    try:
        kill_when(proc, db, at_least=200)
    finally:
        # Its children are reparented when it dies; they stay in the session the test started.
        left = [p for p in psutil.process_iter() if _in_session(p, proc.pid)]
    try:
        assert assert_nothing_half_written(db, ids) >= 200
        alive = _wait_gone(left, timeout=15)
        assert alive == [], f"processes left behind by the killed import: {[p.cmdline() for p in alive]}"
    finally:
        for p in left:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def _in_session(p: psutil.Process, sid: int) -> bool:
    try:
        return p.pid != sid and os.getsid(p.pid) == sid
    except (ProcessLookupError, PermissionError, psutil.Error):
        return False


def test_import_fails_instead_of_hanging_when_the_parser_process_dies(tmp_path):
    """BUG (sources/ingest.py, _chunks_in_process): the import hangs for ever if the parser dies.

    The parent waits in `queue.get()` with no timeout and never looks at the process again, so if
    the reader is killed (OOM killer, a crash in a C extension) or fails to start (a script without
    `if __name__ == "__main__":` under the "spawn" start method), the import blocks for ever instead
    of failing with a message a cron job can act on.
    """
    big = tmp_path / "big.jsonl"
    write_big(big, n=4000)
    db = tmp_path / "reader-killed.db"
    proc = start_ingest(db, big, batch=100, parallel=True, pause=0.0, kill_reader=True)
    try:
        out, err = proc.communicate(timeout=60)  # generous: spawning is slow on a loaded 2-core machine
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session this test started
        proc.communicate()
        pytest.fail("ingest_files(parallel=True) still waiting 60 s after its parser process was killed")
    finished_with_error = proc.returncode != 0 or json.loads(out.strip().splitlines()[-1])["errors"] > 0
    assert finished_with_error, (proc.returncode, out, err)
