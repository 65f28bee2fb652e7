"""The "for you" order for digest subscribers who asked for it: the members' own models (rank/foryou.py).

Built on first use only - a run whose due subscribers never asked for it loads nothing - because the
corpus side (term space, candidates) takes seconds at 2k papers and ~30-50 s at 75k.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from papertide.config import Settings

log = logging.getLogger(__name__)
BUILD_TIMEOUT_S = 600


def personal_ranker(store, settings: Settings) -> Callable[[int], list[int]]:
    """user id -> doc ids in that member's "for you" order ([] without an index or a library)."""
    lock = threading.Lock()
    state: dict = {}

    def foryou():
        with lock:
            if "fy" not in state:
                state["fy"] = _build(store, settings)
            return state["fy"]

    def rank(user_id: int) -> list[int]:
        fy = foryou()
        if fy is None:
            return []
        return [p.doc_id for p in fy.ranking(user_id, trending_weight=0.0)]

    return rank


def _build(store, settings: Settings):
    if not settings.index_dir.exists():
        log.warning("no index: digests go out in trending order, without 'for you' ordering")
        return None
    from papertide.index.build import open_indexes
    from papertide.index.embedder import Embedder
    from papertide.rank.foryou import ForYou

    embedder = Embedder(precision=settings.embed_precision, batch_size=settings.embed_batch_size)
    indexes = open_indexes(store, settings.index_dir, embedder.model_id, embedder.dim, read_only=True)
    fy = ForYou(store, embedder.model_id, indexes.dense.vector_of)
    if not fy.wait(BUILD_TIMEOUT_S):
        log.warning("the 'for you' model could not be built (%s): trending order instead", fy.state)
        return None
    return fy
