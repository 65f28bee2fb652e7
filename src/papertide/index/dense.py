"""Dense vector index: the store's embeddings, cached on disk as flat float32 arrays, searched exactly.

The store holds the embeddings (the source of truth, written batch by batch so a build can be killed
and resumed). This index is a cache of them: `vectors.f32` and `ids.i64` grow by appending; `meta.json`
(written last, atomically) says how many rows are valid and up to which store sequence number the
cache has caught up. A crash between the two leaves extra rows that the next refresh ignores and
overwrites, so refreshing always converges. Search is an exact inner product (the vectors are
normalised, so it is cosine): at 75k x 384 one matrix-vector product takes a few milliseconds.
From `ann_threshold` rows on (all of arXiv is 2.7M rows: 0.2-0.5 s a query exact on 2 cores), search
goes through an HNSW graph over the same rows (`ann.py`), kept in step by `refresh`; its candidates are
rescored exactly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from usearch.index import MetricKind
from usearch.index import search as usearch_search

from papertide.index.ann import EXPANSION_SEARCH, HnswIndex, catch_up
from papertide.index.lexical import day_number
from papertide.models import SearchFilters
from papertide.store.base import DocMeta, Store

# Below this many rows search is exact: no graph to build or keep. Exact search reads every vector: ~5 ms
# at 75k x 384 on this 2-core machine, 70 ms at 1M (synthetic rows; 150-200 ms when the machine is busy),
# so ~17 ms at 250k and ~190 ms at 2.7M; the graph answers in ~5 ms at 75k real rows (ef=1024), growing
# with log(rows) (bench_ann.py).
ANN_THRESHOLD = 250_000
# With a filter, the graph is asked for OVERFETCH times as many candidates as should hold k allowed ones
# (k * rows / allowed) and the disallowed ones are dropped; if fewer than k survive (a filter correlated
# against the query), again for OVERFETCH_GROWTH times as many, OVERFETCH_ROUNDS tries in all, then exact.
OVERFETCH = 2
OVERFETCH_GROWTH = 4
OVERFETCH_ROUNDS = 2
# Unfiltered, the graph's RESCORED * k best candidates (by its float16 distances) are rescored in float32:
# the margin lets a near tie at the k-th place go the exact way. Asking for all ef candidates the beam
# holds would cost ~1 ms more at ef=1024 (copying and rescoring them) for no recall.
RESCORED = 2
# A selective filter is searched exactly over just the allowed rows instead: a gather and a product cost
# 0.2-0.5 us a row, the graph 2.5-4 us a candidate of its beam (bench_ann.py's rows, 74.5k real ones):
# exact wins while allowed < sqrt(8 * OVERFETCH * k * rows), for k = 100 under 8% of the rows at 250k
# and 2.4% at 2.7M (~30 ms either way there). Its results are exact, and its cost falls as the filter
# gets more selective, where over-fetching's grows.
GRAPH_TO_EXACT_COST = 8.0
# From this many rows, unfiltered exact search scans a float16 copy of the vectors with usearch's SIMD
# kernels and rescores its RESCORED * k best rows in float32. The scan is memory bound: half the bytes,
# half the time - 8.6 vs 16.0 ms at 75k rows on a loaded 2-core machine, with 99.97% of the float32
# top-100 kept (the rescoring makes the scores and the order within it exact).
HALF_SCAN_MIN_ROWS = 20_000
# With a filter in that regime: when fewer than one row in GATHER_BELOW passes, gathering and scoring just
# those rows in float32 costs less than the masked float16 scan of all rows (~2x the bytes per row, but
# only the allowed ones); otherwise the scan masks the rest.
GATHER_BELOW = 8
# HalfScan picks its kernel by the time to serve this many queries at once: concurrent searches arrive
# batched (coalesce.py), and a kernel that reads the rows once per batch wins there.
PROBE_BATCH = 4


def prefer_exact(n_allowed: int, k: int, n_rows: int) -> bool:
    """Whether exact search over `n_allowed` rows costs less than over-fetching them from the graph."""
    return n_allowed * n_allowed < GRAPH_TO_EXACT_COST * OVERFETCH * k * n_rows


class DenseIndex:
    def __init__(
        self, path: Path | None, dim: int, model: str, ann_threshold: int = ANN_THRESHOLD, read_only: bool = False,
        half_scan_min_rows: int = HALF_SCAN_MIN_ROWS,
    ):
        self.path = path
        # A reader (the web server) catches up in memory and never writes the cache: `papertide index` owns it.
        self.read_only = read_only
        self.half_scan_min_rows = half_scan_min_rows
        self.half_scan_kernels: tuple[str, ...] | None = None  # None: the fastest here (tests force one)
        self._half: tuple[int, np.ndarray] | None = None  # (version of the vectors, their float16 copy)
        self._version = 0  # bumped whenever the vectors change
        self.dim = dim
        self.model = model
        self.ann_threshold = ann_threshold
        self._ann: HnswIndex | None = None
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.seq = 0
        self._row: dict[int, int] = {}
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            self._load()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def ann(self) -> HnswIndex | None:
        """The HNSW graph searches go through (None while the index is below `ann_threshold`)."""
        return self._ann if len(self) >= self.ann_threshold else None

    # -- persistence --------------------------------------------------------------------------------
    def _load(self) -> None:
        assert self.path is not None
        meta_f = self.path / "meta.json"
        if not meta_f.exists():
            return
        meta = json.loads(meta_f.read_text())
        if meta.get("model") != self.model or meta.get("dim") != self.dim:
            return  # another model's cache: start over, the refresh rebuilds it from the store
        n = int(meta["count"])
        ids = np.fromfile(self.path / "ids.i64", dtype="<i8", count=n)
        vf = self.path / "vectors.f32"
        if len(ids) != n or not vf.exists() or vf.stat().st_size < n * self.dim * 4:
            return  # truncated files: rebuild from the store
        # Mapped, not read: the web workers of one host share one copy of the vectors in the page cache
        # (4.1 GB at arXiv's 2.7M papers). Copy-on-write: rows re-embedded later change this process only.
        self.ids = ids
        # A plain array over the mapping: indexing a np.memmap costs a subclass round trip each time.
        self.vectors = (np.memmap(vf, dtype="<f4", mode="c", shape=(n, self.dim)).view(np.ndarray) if n
                        else np.zeros((0, self.dim), dtype=np.float32))
        self.seq = int(meta["seq"])
        self._row = {int(d): i for i, d in enumerate(self.ids)}

    def _save(self, first_new_row: int, changed_rows: np.ndarray) -> None:
        if self.path is None:
            return
        vf, idf = self.path / "vectors.f32", self.path / "ids.i64"
        if first_new_row == 0:
            # A cache written from scratch goes to new files renamed into place: another process that maps
            # the old file keeps reading it (shrinking a mapped file under it would crash it on access).
            for f in (vf, idf):
                tmp = f.with_name(f.name + ".tmp")
                tmp.write_bytes(b"")
                os.replace(tmp, f)
        for f in (vf, idf):
            if not f.exists():
                f.touch()
        with open(vf, "r+b") as fv, open(idf, "r+b") as fi:
            # rows that existed before and were re-embedded: rewrite in place
            for r in changed_rows[changed_rows < first_new_row]:
                fv.seek(int(r) * self.dim * 4)
                fv.write(self.vectors[r].astype("<f4").tobytes())
            # new rows: append after the last valid row (overwriting leftovers of a crashed refresh)
            fv.seek(first_new_row * self.dim * 4)
            fv.write(self.vectors[first_new_row:].astype("<f4").tobytes())
            fv.truncate()
            fi.seek(first_new_row * 8)
            fi.write(self.ids[first_new_row:].astype("<i8").tobytes())
            fi.truncate()
            fv.flush()
            fi.flush()
            os.fsync(fv.fileno())
            os.fsync(fi.fileno())
        tmp = self.path / "meta.json.tmp"
        tmp.write_text(json.dumps({"model": self.model, "dim": self.dim, "count": len(self.ids), "seq": self.seq}))
        os.replace(tmp, self.path / "meta.json")

    # -- catching up with the store -----------------------------------------------------------------
    def refresh(self, store: Store) -> int:
        """Bring the cache up to date with the store's embeddings; returns how many rows changed."""
        first_new = len(self.ids)
        next_row = first_new
        add_ids: list[np.ndarray] = []
        add_vecs: list[np.ndarray] = []
        changed: list[np.ndarray] = []
        seq = self.seq
        for ids, seqs, vecs in store.iter_embeddings(self.model, self.seq):
            rows = np.fromiter((self._row.get(int(d), -1) for d in ids), dtype=np.int64, count=len(ids))
            old = rows >= 0
            if old.any():  # re-embedded papers (their text changed): overwrite their rows
                self.vectors[rows[old]] = vecs[old]
                changed.append(rows[old])
            if (~old).any():  # the store keeps one embedding per paper, so these ids are distinct
                add_ids.append(ids[~old])
                add_vecs.append(vecs[~old])
                for d in ids[~old]:
                    self._row[int(d)] = next_row
                    next_row += 1
            seq = max(seq, int(seqs.max()))
        if add_ids:
            self.ids = np.concatenate([self.ids, *add_ids])
            self.vectors = np.concatenate([self.vectors, *add_vecs])
        changed_rows = np.concatenate(changed) if changed else np.zeros(0, dtype=np.int64)
        n_changed = len(changed_rows) + (len(self.ids) - first_new)
        if n_changed:
            self._version += 1
        seq_before = self.seq
        if seq != self.seq or n_changed:
            self.seq = seq
            if not self.read_only:
                self._save(first_new, changed_rows)
        if len(self) >= self.ann_threshold:
            # Here rather than at the first search: the build (minutes at 2.7M) falls on the indexing job
            # or on start-up, not on a user's query, and the store can tell a stale graph what changed.
            def changed_since(s: int) -> np.ndarray:
                return changed_rows if s == seq_before else self._rows_changed_since(store, s)

            self._ann = catch_up(self._ann, self.path, self.model, self.vectors, self.ids, self.seq, changed_since,
                                 save=not self.read_only)
        return n_changed

    def _rows_changed_since(self, store: Store, seq: int) -> np.ndarray:
        """Rows whose paper got an embedding after store seq `seq` (for a graph file that fell behind)."""
        out = [np.zeros(0, dtype=np.int64)]
        for ids, _, _ in store.iter_embeddings(self.model, seq):
            rows = np.fromiter((self._row.get(int(d), -1) for d in ids), dtype=np.int64, count=len(ids))
            out.append(rows[rows >= 0])
        return np.concatenate(out)

    # -- searching ----------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int = 100, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (doc_id, cosine); `allowed` is a boolean mask over rows (from DocFilter.mask)."""
        if len(self.ids) == 0:
            return []
        if len(self.ids) >= self.ann_threshold:
            return self._search_ann(query.astype(np.float32, copy=False), k, allowed)
        if len(self.ids) >= self.half_scan_min_rows:
            q = query.astype(np.float32, copy=False)
            if allowed is None:
                return self._top_of_rows(self._half_scan(q, RESCORED * k), q, k)
            n_allowed = int(np.count_nonzero(allowed))
            if n_allowed * GATHER_BELOW < len(self.ids):  # a selective filter: score just the allowed rows
                return self._top_of_rows(np.flatnonzero(allowed), q, k)
            scan = self._half_scan_of()
            if scan.masks:  # the scan masks the disallowed rows itself
                return self._top_of_rows(scan.top(q, min(RESCORED * k, n_allowed), allowed), q, k)
        scores = self.vectors @ query.astype(np.float32, copy=False)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
            k = min(k, int(allowed.sum()))
            if k == 0:
                return []
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in top]

    def search_many(self, queries: np.ndarray, ks: Sequence[int], alloweds: Sequence[np.ndarray | None],
                    ) -> list[list[tuple[int, float]]]:
        """`search` for each row of `queries` [m, dim] with its own k and mask: where the rows are scanned in
        16 bits, one scan serves every query the kernel can batch (the same results as one `search` each)."""
        out: list[list[tuple[int, float]] | None] = [None] * len(queries)
        scan = None
        if self.half_scan_min_rows <= len(self.ids) < self.ann_threshold:
            scan = self._half_scan_of()
        batch: list[tuple[int, int]] = []  # (query, candidates to ask the scan for)
        for i, (k, allowed) in enumerate(zip(ks, alloweds, strict=True)):
            if scan is None or k <= 0:
                continue
            if allowed is None:
                batch.append((i, min(RESCORED * k, len(self))))
                continue
            n_allowed = int(np.count_nonzero(allowed))
            if scan.masks and n_allowed > 0 and n_allowed * GATHER_BELOW >= len(self.ids):
                batch.append((i, min(RESCORED * k, n_allowed)))
        if batch:
            qs = np.ascontiguousarray(queries[[i for i, _ in batch]], dtype=np.float32)
            rows = scan.top_many(qs, [n for _, n in batch], [alloweds[i] for i, _ in batch])
            for (i, _), r in zip(batch, rows, strict=True):
                out[i] = self._top_of_rows(r, queries[i].astype(np.float32, copy=False), ks[i])
        for i, got in enumerate(out):
            if got is None:
                out[i] = self.search(queries[i], ks[i], alloweds[i])
        return out  # type: ignore[return-value]

    def _search_ann(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if self._ann is None or (self._ann.rows, self._ann.seq) != (len(self), self.seq):
            # opened without a refresh: map the file if it is in step, else build from the vectors
            self._ann = catch_up(self._ann, self.path, self.model, self.vectors, self.ids, self.seq, None,
                                 save=not self.read_only)
        graph = self._ann
        if allowed is None:
            return self._top_of_rows(graph.search(q, RESCORED * k), q, k)
        n_allowed = int(np.count_nonzero(allowed))
        k = min(k, n_allowed)
        if k == 0:
            return []
        if not prefer_exact(n_allowed, k, len(self)):
            fetch = int(OVERFETCH * k * len(self) / n_allowed)
            for _ in range(OVERFETCH_ROUNDS):
                rows = graph.search(q, max(fetch, EXPANSION_SEARCH))  # the whole beam: more chances
                rows = rows[allowed[rows]]
                if len(rows) >= k or fetch >= len(self):
                    return self._top_of_rows(rows, q, k)
                fetch *= OVERFETCH_GROWTH
            # the allowed rows are far from this query in the graph: fall through to exact search
        if n_allowed >= len(self) // 2:  # gathering most rows costs more than scoring all of them
            scores = np.where(allowed, self.vectors @ q, -np.inf)
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(int(self.ids[i]), float(scores[i])) for i in top]
        return self._top_of_rows(np.flatnonzero(allowed), q, k)

    def _half_scan_of(self) -> HalfScan:
        """The float16 copy of the current vectors (made at the first search after they change)."""
        half = self._half
        if half is None or half[0] != self._version:
            half = (self._version, HalfScan(self.vectors, self.half_scan_kernels))
            self._half = half  # one assignment: a concurrent search sees the old copy or the new one
        return half[1]

    def _half_scan(self, q: np.ndarray, n: int) -> np.ndarray:
        """Rows of the n best candidates by an exact scan of the float16 copy."""
        return self._half_scan_of().top(q, min(n, len(self)))

    def _top_of_rows(self, rows: np.ndarray, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k best of `rows` by exact float32 cosine."""
        if len(rows) == 0:
            return []
        scores = self.vectors[rows] @ q
        k = min(k, len(rows))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[rows[i]]), float(scores[i])) for i in top]

    def vector_of(self, doc_id: int) -> np.ndarray | None:
        r = self._row.get(doc_id)
        return None if r is None else self.vectors[r]


class HalfScan:
    """A 16-bit copy of the vectors, scanned exactly by the fastest kernel on this machine.

    Kernels (74.7k x 384, one thread, AVX-512 with BF16 here):
    - "onednn": bfloat16 products against the rows prepacked by oneDNN (CPUs with native bf16). One query
      takes 3.5 ms and a batch of 8 queries 5 ms: the rows are read once for the whole batch, and the scan
      is memory bound. Batches come from concurrent searches (`index/coalesce.py`).
    - "torch": torch's float16 matrix-vector product, 3.6 ms a query; no gain from batching (8 ms for 2).
    - "usearch": usearch's exact search over float16, 7.3 ms (a per-row cost beyond the arithmetic).
    Each copy times the kernels that work here on a batch of PROBE_BATCH of its own rows (a few ms) and keeps
    the fastest, dropping the others' copies. All return the same candidates up to 16-bit rounding; they are
    rescored in float32.
    """

    KERNELS = ("onednn", "torch", "usearch")

    def __init__(self, vectors: np.ndarray, kernels: tuple[str, ...] | None = None):
        kernels = tuple(kernels or self.KERNELS)
        self.half: np.ndarray | None = None
        self._tensor = None
        self._packed = None
        if "torch" in kernels or "usearch" in kernels:
            self.half = np.ascontiguousarray(vectors, dtype=np.float16)
        try:
            import torch

            if self.half is not None and "torch" in kernels:
                self._tensor = torch.from_numpy(self.half)
            if "onednn" in kernels and len(vectors):
                self._packed = _bf16_packed(vectors)
        except ImportError:  # pragma: no cover - torch is a dependency; usearch alone still works
            pass
        usable = [k for k in kernels if (k == "usearch" and self.half is not None)
                  or (k == "torch" and self._tensor is not None) or (k == "onednn" and self._packed is not None)]
        if not usable:
            raise ValueError(f"no usable scan kernel among {kernels}")
        self.kernel = usable[0]
        if len(usable) > 1 and len(vectors):
            probe = np.ascontiguousarray(vectors[np.arange(PROBE_BATCH) % len(vectors)], dtype=np.float32)
            self.kernel = min(usable, key=lambda k: self._time(k, probe))
        if self.kernel != "onednn":
            self._packed = None
        if self.kernel == "onednn":
            self.half = self._tensor = None
        elif self.kernel == "usearch":
            self._tensor = None

    @property
    def masks(self) -> bool:
        """Whether the kernel takes a filter (a mask over the rows)."""
        return self.kernel != "usearch"

    def _time(self, kernel: str, qs: np.ndarray) -> float:
        n = min(200, self.rows)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            self._top_many(kernel, qs, [n] * len(qs), [None] * len(qs))
            best = min(best, time.perf_counter() - t0)
        return best

    @property
    def rows(self) -> int:
        return len(self.half) if self.half is not None else int(self._packed.shape[0])

    def top(self, q: np.ndarray, n: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Rows of the (about) n highest inner products with `q`, in no particular order; `allowed`, a
        boolean mask over the rows, needs a kernel that `masks` and n <= the number of allowed rows."""
        return self._top_many(self.kernel, q[None, :], [n], [allowed])[0]

    def top_many(self, qs: np.ndarray, ns: Sequence[int], alloweds: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        """`top` for each row of `qs` [m, dim], with its own n and mask: one pass over the rows for them all
        with the "onednn" kernel."""
        return self._top_many(self.kernel, qs, ns, alloweds)

    def _top_many(self, kernel: str, qs: np.ndarray, ns: Sequence[int], alloweds: Sequence[np.ndarray | None],
                  ) -> list[np.ndarray]:
        if kernel == "onednn":
            import torch

            q = torch.from_numpy(np.ascontiguousarray(qs, dtype=np.float32)).to(torch.bfloat16)
            scores = torch.ops.mkldnn._linear_pointwise(q, self._packed, None, "none", [], "")  # [m, rows]
            return [self._topk(scores[i], n, allowed) for i, (n, allowed) in enumerate(zip(ns, alloweds, strict=True))]
        out = []
        for q, n, allowed in zip(qs, ns, alloweds, strict=True):
            q16 = np.ascontiguousarray(q, dtype=np.float16)
            if kernel == "torch":
                import torch

                out.append(self._topk(self._tensor @ torch.from_numpy(q16), n, allowed))
            else:
                assert allowed is None, "usearch's exact scan takes no filter"
                matches = usearch_search(self.half, q16, n, MetricKind.IP, exact=True, threads=1)
                out.append(np.asarray(matches.keys, dtype=np.int64))
        return out

    @staticmethod
    def _topk(scores, n: int, allowed: np.ndarray | None) -> np.ndarray:
        import torch

        if allowed is not None:
            scores = scores.masked_fill(torch.from_numpy(~allowed), float("-inf"))
        return torch.topk(scores, n, sorted=False).indices.numpy()


def _bf16_packed(vectors: np.ndarray):
    """The rows as a bfloat16 matrix prepacked for oneDNN's products, or None where that is missing, slow to
    emulate or wrong on this machine (checked against float32 on a few rows)."""
    import torch

    try:
        if not torch.backends.mkldnn.is_available() or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return None
        rows = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(torch.bfloat16)
        packed = torch.ops.mkldnn._reorder_linear_weight(rows, PROBE_BATCH)
        q = rows[: min(4, len(rows))]
        got = torch.ops.mkldnn._linear_pointwise(q, packed, None, "none", [], "")
        want = q.float() @ rows.float().T
        if not torch.allclose(got.float(), want, atol=0.02, rtol=0.02):
            return None
        return packed
    except (RuntimeError, AttributeError):
        return None


class DocFilter:
    """Filter columns (day, has_code, categories) of every paper, for masking dense search results."""

    def __init__(self) -> None:
        self._meta: dict[int, DocMeta] = {}
        self.seq = 0
        self._ids = np.zeros(0, dtype=np.int64)  # sorted doc ids
        self._day = np.zeros(0, dtype=np.int32)
        self._code = np.zeros(0, dtype=bool)
        self._by_cat: dict[str, np.ndarray] = {}
        self._positions: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def refresh(self, store: Store) -> None:
        changed = False
        for batch in store.iter_doc_meta(self.seq):
            for m in batch:
                self._meta[m.doc_id] = m
                self.seq = max(self.seq, m.seq)
            changed = True
        if changed:
            self._build()

    def _build(self) -> None:
        ids = np.array(sorted(self._meta), dtype=np.int64)
        metas = [self._meta[int(d)] for d in ids]
        self._ids = ids
        self._day = np.fromiter((day_number(m.day) for m in metas), dtype=np.int32, count=len(ids))
        self._code = np.fromiter((m.has_code for m in metas), dtype=bool, count=len(ids))
        by_cat: dict[str, list[int]] = {}
        for i, m in enumerate(metas):
            for c in m.categories:
                by_cat.setdefault(c, []).append(i)
        self._by_cat = {c: np.array(v, dtype=np.int64) for c, v in by_cat.items()}  # positions in _ids
        self._positions = None

    def _positions_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in _ids, known) of each id; remembered for the last array asked about (the dense index's
        ids, the same object until it changes): a search then skips the lookup of every row."""
        cached = self._positions
        if cached is not None and cached[0] is ids:
            return cached[1], cached[2]
        pos = np.clip(np.searchsorted(self._ids, ids), 0, len(self._ids) - 1)
        known = self._ids[pos] == ids
        self._positions = (ids, pos, known)  # one assignment: a concurrent search sees old or new
        return pos, known

    def mask(self, ids: np.ndarray, f: SearchFilters) -> np.ndarray:
        """Boolean mask over `ids` (doc ids) of the papers that pass the filters."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self._ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        pos, known = self._positions_of(ids)
        out = known.copy()
        if f.date_from is not None:
            out &= self._day[pos] >= day_number(f.date_from)
        if f.date_to is not None:
            out &= self._day[pos] <= day_number(f.date_to)
        if f.has_code is not None:
            out &= self._code[pos] == f.has_code
        if f.categories:
            members = [self._by_cat[c] for c in f.categories if c in self._by_cat]
            if members:
                in_cat = np.zeros(len(self._ids), dtype=bool)
                for m in members:
                    in_cat[m] = True
                out &= in_cat[pos]
            else:
                out[:] = False
        return out
