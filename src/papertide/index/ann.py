"""Approximate nearest neighbours (HNSW, usearch) over the rows of the dense cache, for corpora too big to scan.

The graph is a cache of the dense cache, as that one is of the store: keyed by row number, persisted beside
it as `hnsw.usearch` plus `hnsw.json` (rows covered, store seq reached, a digest of the row -> doc id
order), each written to a temporary file and renamed into place, the json last. A graph that is missing,
unreadable or from another layout is rebuilt from the vectors; one that is behind is caught up with the
changes since its seq (re-adding a row is idempotent), so a crash at any point converges.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from usearch.index import Index

# Measured with benchmarks/bench_ann.py on the 74.5k real MiniLM vectors of the arXiv cs set, with 200
# short typed queries (the hard case: their nearest papers are far and near-tied) and 200 perturbed
# held-out papers (recall@10 >= 0.993 from ef=128 on: they are easy).
#
# Vectors stored as float16: recall is that of float32 within 0.002 at every ef tried, the vectors take
# half the memory (2.1 GB instead of 4.1 GB at 2.7M x 384), builds and searches are faster. The dense
# index rescores the candidates in float32, so the scores it returns are exact.
DTYPE = "f16"
# M, links per node (Malkov & Yashunin 2018): 16 is usearch's and hnswlib's default. M=32 gains 0.02
# recall@10 at ef=128 but 0.003 at ef=1024, for twice the links. Fixed when the graph is built.
CONNECTIVITY = 16
# efConstruction, the beam when inserting: usearch's default. 256 gains 0.003 recall@10 at ef=1024 for a
# ~1.7x longer build.
EXPANSION_ADD = 128
# ef, the beam when searching. Typed queries' recall@10: 0.908 at ef=128, 0.958 at 256, 0.983 at 512,
# 0.989 at 1024 (~5 ms a search here), 0.995 at 2048. It falls by ~0.01 each time the rows triple
# (24k rows: 0.990 at 512, 0.998 at 1024), so 1024 keeps it near 0.96 at 2.7M; the graph is only used
# from 250k rows, where exact search costs more than that (~17 ms).
# The beam is max(ef, count), so asking for fewer candidates than ef costs the same search.
EXPANSION_SEARCH = 1024

# Inserts run on one thread: with concurrent add() usearch 2.x can leave a node that is stored but never
# reached by a search (unum-cloud/USearch#735, fix pending), i.e. a paper dense search can never return.
# Here, 20 of 30 builds of 300 real vectors on 2 threads stranded 1-3 papers; none on 1 thread. The build
# takes ~1.6x as long (28 s instead of 17 s for 74.5k rows, so ~20-30 min for 2.7M) and recalls a little
# better (0.983 against 0.974 for typed queries at ef=512).
ADD_THREADS = 1

# Re-added rows reuse their node but are linked less well than a fresh build links them (on 20k clustered
# synthetic vectors, replacing every row once took recall@10 at ef=32 from 0.992 to 0.972): once the rows
# re-added since the last build reach this fraction of the graph, the next catch-up rebuilds it instead.
REBUILD_AFTER = 0.2

FILE = "hnsw.usearch"
META = "hnsw.json"
LAYOUT = 1  # bump when the file's meaning changes: an older file is then rebuilt


def ids_digest(ids: np.ndarray) -> str:
    """Fingerprint of the row -> doc id order a graph was built for (a rebuilt cache may order rows anew)."""
    return hashlib.blake2b(np.ascontiguousarray(ids, dtype="<i8").tobytes(), digest_size=16).hexdigest()


@dataclass(slots=True)
class AnnState:
    """What `hnsw.json` records: which rows of which cache the graph file covers."""

    model: str
    dim: int
    rows: int
    seq: int
    digest: str
    bytes: int = 0
    replaced: int = 0  # rows re-added since the graph was built
    dtype: str = DTYPE
    connectivity: int = CONNECTIVITY
    layout: int = LAYOUT

    def same_layout(self, model: str, dim: int) -> bool:
        return (self.model, self.dim, self.dtype, self.connectivity, self.layout) == (
            model, dim, DTYPE, CONNECTIVITY, LAYOUT,
        )


class HnswIndex:
    """A usearch HNSW graph keyed by dense-cache row number, with the rows and seq it covers."""

    def __init__(self, index: Index, state: AnnState, view: bool = False):
        self.index = index
        self.state = state
        self.view = view  # memory-mapped from the file, read-only
        index.expansion_add = EXPANSION_ADD
        index.expansion_search = EXPANSION_SEARCH

    @property
    def rows(self) -> int:
        return self.state.rows

    @property
    def seq(self) -> int:
        return self.state.seq

    @classmethod
    def build(cls, vectors: np.ndarray, seq: int, model: str, digest: str) -> HnswIndex:
        dim = vectors.shape[1]
        index = Index(
            ndim=dim, metric="ip", dtype=DTYPE, connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH,
        )
        ann = cls(index, AnnState(model, dim, 0, seq, digest))
        ann.update(vectors, np.zeros(0, dtype=np.int64), seq, digest)
        return ann

    def update(self, vectors: np.ndarray, changed_rows: np.ndarray, seq: int, digest: str) -> int:
        """Re-add `changed_rows` (re-embedded papers), add the rows past the covered ones; returns rows touched."""
        assert not self.view, "a memory-mapped graph is read-only"
        old = np.unique(np.asarray(changed_rows, dtype=np.int64))
        old = old[old < self.rows]
        if len(old):
            keys = old.astype(np.uint64)
            self.index.remove(keys)
            self.index.add(keys, vectors[old], threads=ADD_THREADS)
        n, start = len(vectors), self.rows
        if n > start:
            self.index.add(np.arange(start, n, dtype=np.uint64), vectors[start:], threads=ADD_THREADS)
        self.state.rows, self.state.seq, self.state.digest = n, seq, digest
        self.state.replaced += len(old)
        return len(old) + max(0, n - start)

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Rows of (about) the `count` nearest vectors, nearest first."""
        count = min(count, len(self.index))
        if count <= 0:
            return np.zeros(0, dtype=np.int64)
        # one query at a time: a thread pool costs more than it saves
        m = self.index.search(query, count, threads=1)
        return np.asarray(m.keys, dtype=np.int64)

    # -- persistence --------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        f, tmp = directory / FILE, directory / (FILE + ".tmp")
        self.index.save(str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, f)
        self.state.bytes = f.stat().st_size
        meta_tmp = directory / (META + ".tmp")
        meta_tmp.write_text(json.dumps({k: getattr(self.state, k) for k in AnnState.__slots__}))
        os.replace(meta_tmp, directory / META)

    @classmethod
    def open(cls, directory: Path, state: AnnState, view: bool) -> HnswIndex | None:
        """The graph file described by `state`, or None when it is missing or does not match it."""
        f = directory / FILE
        try:
            if f.stat().st_size != state.bytes:
                return None  # replaced after the json was written (a crash in between) or truncated
            index = Index.restore(str(f), view=view)
        except (OSError, ValueError, RuntimeError):
            return None
        if index is None or len(index) != state.rows or index.ndim != state.dim:
            return None
        return cls(index, AnnState(**{k: getattr(state, k) for k in AnnState.__slots__}), view=view)


def read_state(directory: Path) -> AnnState | None:
    try:
        raw = json.loads((directory / META).read_text())
        return AnnState(**{k: raw[k] for k in AnnState.__slots__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def catch_up(
    ann: HnswIndex | None,
    directory: Path | None,
    model: str,
    vectors: np.ndarray,
    ids: np.ndarray,
    seq: int,
    changed_since: Callable[[int], np.ndarray] | None,
    save: bool = True,
) -> HnswIndex:
    """A graph over exactly `vectors` (the dense cache at `seq`), doing the least work that gets there.

    In order: the graph in memory if it is in step; the file, memory-mapped, if it is in step (another
    process did the work); the graph in memory, or else the file, caught up with `changed_since(seq)`
    (the rows re-embedded since then); a full build. The result is saved when it was not read from the file,
    unless `save` is False (a reader such as the web server: only the indexing job writes the file, and a
    reader that got ahead of it keeps its graph in memory until the job's file catches up).
    """
    n = len(vectors)
    if ann is not None and (ann.rows, ann.seq) == (n, seq):
        return ann
    state = read_state(directory) if directory is not None else None
    if state is not None and not state.same_layout(model, vectors.shape[1]):
        state = None
    on_disk = None
    if directory is not None and state is not None:
        if (state.rows, state.seq) == (n, seq) and state.digest == ids_digest(ids):
            mapped = HnswIndex.open(directory, state, view=True)
            if mapped is not None:
                return mapped
        elif state.rows <= n and state.seq <= seq:
            on_disk = directory

    def usable(a: HnswIndex | None) -> bool:
        # behind or level with the cache, over the same rows, and we can learn what changed since
        return (
            a is not None and not a.view and a.rows <= n and a.seq <= seq
            and (a.seq == seq or changed_since is not None) and a.state.digest == ids_digest(ids[: a.rows])
        )

    base = ann if usable(ann) else None
    if base is None and on_disk is not None and state is not None:
        loaded = HnswIndex.open(on_disk, state, view=False)
        base = loaded if usable(loaded) else None
    digest = ids_digest(ids)
    changed = np.zeros(0, dtype=np.int64)
    if base is not None and base.seq < seq and changed_since is not None:
        changed = changed_since(base.seq)
        if base.state.replaced + np.count_nonzero(changed < base.rows) > REBUILD_AFTER * n:
            base = None  # enough re-linked nodes to cost recall: start afresh
    if base is None:
        base = HnswIndex.build(vectors, seq, model, digest)
    else:
        base.update(vectors, changed, seq, digest)
    if directory is not None and save:
        base.save(directory)
    return base
