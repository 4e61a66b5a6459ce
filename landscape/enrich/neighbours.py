"""Nearest neighbours by cosine: exact below a measured size, an HNSW index (hnswlib) above it.

Vectors are L2-normalised, so cosine is a dot product. Exact search is one matrix product and
is used below `EXACT_LIMIT` vectors: `bench/speed.py --part ann` measured one-query exact p95 of
about 10-15 ms at 10,000-25,000 384-d vectors on this (busy, 2-core) machine and 240 ms at
1,000,000; below the limit an index is not worth its build. Above it an HNSW index answers in
a few milliseconds. With M 16 and ef_construction 64 that bench, on clustered synthetic vectors
at 1,000,000, found recall@10 levelling off at 0.94 (ef 800), short of 0.95: the graph itself
was too sparse. With M 32 and ef_construction 100 (built in about 9 minutes on 2 busy cores) the
same bench measured recall@10 0.991 at ef 64 and 0.999 at ef 200, p95 1.1 ms. The index is built
incrementally (`add`) and saved beside the store so a rebuild only inserts what is new.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..models import LandscapeError

EXACT_LIMIT = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 200


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k best scores of each row, best first (ties by index)."""
    k = max(0, min(k, scores.shape[1]))
    if k == 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64), np.zeros((scores.shape[0], 0), dtype=np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (scores.shape[0], 1)
    )
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(vals, order, axis=1)


_BLAS: Any = None


def _product(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """queries @ vectors.T; a few queries run on one BLAS thread (memory-bound, and on a busy
    2-core machine a second thread only waits: measured 9 ms against 14 ms at 50,000 vectors)."""
    global _BLAS
    if len(queries) > 16:
        return queries @ vectors.T
    try:
        if _BLAS is None:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        with _BLAS.limit(limits=1, user_api="blas"):
            return queries @ vectors.T
    except ImportError:
        return queries @ vectors.T


def _hnswlib() -> Any:
    try:
        import hnswlib
    except ImportError:
        raise LandscapeError(f"hnswlib is needed for stores over {EXACT_LIMIT:,} records: pip install 'landscape[ml]'") from None
    return hnswlib


class ExactIndex:
    """Brute-force inner product: exact, no build cost."""

    kind = "exact"

    def __init__(self, vectors: np.ndarray):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        idx_parts, val_parts = [], []
        for start in range(0, len(queries), chunk):
            scores = _product(queries[start : start + chunk], self.vectors)
            idx, vals = top_k_rows(scores, k)
            idx_parts.append(idx)
            val_parts.append(vals)
        if not idx_parts:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.vstack(idx_parts), np.vstack(val_parts)


class HnswIndex:
    """hnswlib HNSW over inner product; labels are row numbers of the vectors added."""

    kind = "hnsw"

    def __init__(self, dim: int, capacity: int, ef: int = HNSW_EF_SEARCH, m: int = HNSW_M,
                 ef_construction: int = HNSW_EF_CONSTRUCTION, seed: int = 42):
        hnswlib = _hnswlib()
        self.index = hnswlib.Index(space="ip", dim=dim)
        self.index.init_index(max_elements=max(capacity, 1), M=m, ef_construction=ef_construction,
                              random_seed=seed)
        self.index.set_ef(ef)
        self.index.set_num_threads(max(1, os.cpu_count() or 1))

    def __len__(self) -> int:
        return self.index.get_current_count()

    def add(self, vectors: np.ndarray, labels: Sequence[int] | np.ndarray | None = None) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if labels is None:
            labels = np.arange(len(self), len(self) + len(vectors))
        needed = len(self) + len(vectors)
        if needed > self.index.get_max_elements():
            self.index.resize_index(max(needed, int(self.index.get_max_elements() * 1.5)))
        self.index.add_items(vectors, np.asarray(labels))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(queries), 0), dtype=np.int64), np.zeros((len(queries), 0), dtype=np.float32)
        self.index.set_ef(max(HNSW_EF_SEARCH, k))
        labels, dist = self.index.knn_query(queries, k=k)
        return labels.astype(np.int64), (1.0 - dist).astype(np.float32)

    def save(self, path: str) -> None:
        self.index.save_index(path)

    @classmethod
    def load(cls, path: str, dim: int) -> HnswIndex:
        hnswlib = _hnswlib()
        obj = cls.__new__(cls)
        obj.index = hnswlib.Index(space="ip", dim=dim)
        obj.index.load_index(path)
        obj.index.set_ef(HNSW_EF_SEARCH)
        obj.index.set_num_threads(max(1, os.cpu_count() or 1))
        return obj


def build_index(vectors: np.ndarray, exact_limit: int = EXACT_LIMIT) -> Any:
    """The right index for this many vectors: exact below the limit, HNSW above it."""
    if len(vectors) < exact_limit:
        return ExactIndex(vectors)
    index = HnswIndex(vectors.shape[1], len(vectors))
    index.add(vectors)
    return index


def index_path(db_path: str, model: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return f"{db_path}.{safe}.hnsw"


def store_index(store: Any, model: str, ids: list[str], vectors: np.ndarray,
                exact_limit: int = EXACT_LIMIT) -> Any:
    """The store's neighbour index under `model`: exact when small, else a saved HNSW index.

    The HNSW file beside the store is reused while the embedding state it was built from holds;
    otherwise it is rebuilt (and saved when the store is writable).
    """
    if len(ids) < exact_limit:
        return ExactIndex(vectors)
    state = store.embedding_state(model)
    path = index_path(store.path, model)
    if os.path.exists(path) and store.get_meta(f"ann:{model}") == state:
        return HnswIndex.load(path, vectors.shape[1])
    index = build_index(vectors, exact_limit)
    if not store.readonly:
        index.save(path)
        with store.transaction():
            store.set_meta(f"ann:{model}", state)
    return index
