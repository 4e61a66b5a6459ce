"""Nearest records to query vectors on a store without a vector index of its own (SQLite).

PostgreSQL answers `nearest` from pgvector's HNSW index; a SQLite store has none, so the process
keeps one per store version (see landscape.snapshot), built once and shared by every thread:
the build's saved graph index when it covers exactly the stored vectors, else an exact index
when the store is small or an HNSW file beside the store (landscape.enrich.neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Config
from ..snapshot import SNAPSHOTS
from ..store.interfaces import NeighbourStore
from .neighbours import saved_graph_index, store_index


@dataclass(frozen=True)
class LocalIndex:
    """The ids of the stored vectors under one model, in the order the index numbers them."""

    ids: list[str]
    index: Any


def local_nearest(store: NeighbourStore, model: str, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """(id, cosine) of the k records nearest each query vector, best first."""
    queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    local = SNAPSHOTS.get(store, f"nearest:{model}", lambda s: _local_index(s, model))
    k = min(int(k), len(local.ids))
    if local.index is None or k <= 0:
        return [[] for _ in range(len(queries))]
    idx, sims = local.index.search(queries, k)
    return [[(local.ids[i], float(s)) for i, s in zip(row, row_sims) if i >= 0] for row, row_sims in zip(idx, sims)]


def _local_index(store: NeighbourStore, model: str) -> LocalIndex:
    ids, rowids = store.embedding_keys(model)
    if not ids:
        return LocalIndex([], None)
    index = saved_graph_index(store, model, rowids, Config.load(None, db_path=store.path))
    if index is None:  # small (exact), or the build kept no index: the vectors themselves
        ids, vectors = store.embedding_matrix(model)
        index = store_index(store, model, ids, vectors)
    return LocalIndex(ids, index)
