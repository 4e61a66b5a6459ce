"""Embeddings on PostgreSQL: the float32 bytes every step reads (as on SQLite) and the same
vector as a pgvector value, so the database itself can answer nearest-neighbour questions."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .connection import PgConnection


def vector_text(v: np.ndarray) -> str:
    """pgvector's text form of a vector; float32 values written so they read back unchanged."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32)) + "]"


class PgVectors:
    _conn: PgConnection

    def put_embeddings(self, model: str, rows: Iterable[tuple[str, str, np.ndarray]]) -> None:
        self._conn.executemany(
            "INSERT INTO embeddings (record_id, model, content_hash, vector, embedding) VALUES (?,?,?,?,?::vector)"
            " ON CONFLICT(record_id, model) DO UPDATE SET content_hash = excluded.content_hash,"
            " vector = excluded.vector, embedding = excluded.embedding",
            [(rid, model, h, np.asarray(v, dtype=np.float32).tobytes(), vector_text(v)) for rid, h, v in rows],
        )
