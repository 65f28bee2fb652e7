"""Dense vector index: the store's embeddings, cached on disk as flat float32 arrays, searched exactly.

The store holds the embeddings (the source of truth, written batch by batch so a build can be killed
and resumed). This index is a cache of them: `vectors.f32` and `ids.i64` grow by appending; `meta.json`
(written last, atomically) says how many rows are valid and up to which store sequence number the
cache has caught up. A crash between the two leaves extra rows that the next refresh ignores and
overwrites, so refreshing always converges. Search is an exact inner product (the vectors are
normalised, so it is cosine): at 75k x 384 one matrix-vector product takes a few milliseconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from papertide.store.base import DocMeta, Store
from papertide.index.lexical import day_number
from papertide.models import SearchFilters


class DenseIndex:
    def __init__(self, path: Path | None, dim: int, model: str):
        self.path = path
        self.dim = dim
        self.model = model
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.seq = 0
        self._row: dict[int, int] = {}
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            self._load()

    def __len__(self) -> int:
        return len(self.ids)

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
        vecs = np.fromfile(self.path / "vectors.f32", dtype="<f4", count=n * self.dim)
        if len(ids) != n or len(vecs) != n * self.dim:
            return  # truncated files: rebuild from the store
        self.ids, self.vectors = ids, vecs.reshape(n, self.dim)
        self.seq = int(meta["seq"])
        self._row = {int(d): i for i, d in enumerate(self.ids)}

    def _save(self, first_new_row: int, changed_rows: np.ndarray) -> None:
        if self.path is None:
            return
        vf, idf = self.path / "vectors.f32", self.path / "ids.i64"
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
        if seq != self.seq or n_changed:
            self.seq = seq
            self._save(first_new, changed_rows)
        return n_changed

    # -- searching ----------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int = 100, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (doc_id, cosine); `allowed` is a boolean mask over rows (from DocFilter.mask)."""
        if len(self.ids) == 0:
            return []
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

    def vector_of(self, doc_id: int) -> np.ndarray | None:
        r = self._row.get(doc_id)
        return None if r is None else self.vectors[r]


class DocFilter:
    """Filter columns (day, has_code, categories) of every paper, for masking dense search results."""

    def __init__(self) -> None:
        self._meta: dict[int, DocMeta] = {}
        self.seq = 0
        self._ids = np.zeros(0, dtype=np.int64)  # sorted doc ids
        self._day = np.zeros(0, dtype=np.int32)
        self._code = np.zeros(0, dtype=bool)
        self._by_cat: dict[str, np.ndarray] = {}

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
        for m in metas:
            for c in m.categories:
                by_cat.setdefault(c, []).append(m.doc_id)
        self._by_cat = {c: np.array(v, dtype=np.int64) for c, v in by_cat.items()}

    def mask(self, ids: np.ndarray, f: SearchFilters) -> np.ndarray:
        """Boolean mask over `ids` (doc ids) of the papers that pass the filters."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self._ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        pos = np.clip(np.searchsorted(self._ids, ids), 0, len(self._ids) - 1)
        out = self._ids[pos] == ids
        if f.date_from is not None:
            out &= self._day[pos] >= day_number(f.date_from)
        if f.date_to is not None:
            out &= self._day[pos] <= day_number(f.date_to)
        if f.has_code is not None:
            out &= self._code[pos] == f.has_code
        if f.categories:
            members = [self._by_cat[c] for c in f.categories if c in self._by_cat]
            out &= np.isin(ids, np.concatenate(members)) if members else False
        return out
