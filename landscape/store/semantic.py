"""Store queries for embeddings and connections (all SQL stays in this package)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

import numpy as np


class SemanticMixin:
    conn: sqlite3.Connection

    def records_to_embed(self, model: str, batch: int = 256) -> Iterator[list[tuple[str, str]]]:
        """(id, content_hash) of records whose embedding under `model` is missing or stale."""
        cur = self.conn.execute(
            "SELECT r.id, r.content_hash FROM records r LEFT JOIN embeddings e"
            " ON e.record_id = r.id AND e.model = ?"
            " WHERE e.content_hash IS NULL OR e.content_hash != r.content_hash ORDER BY r.id",
            (model,),
        )
        while rows := cur.fetchmany(batch):
            yield [(r[0], r[1]) for r in rows]

    def put_embeddings(self, model: str, rows: Iterable[tuple[str, str, np.ndarray]]) -> None:
        self.conn.executemany(
            "INSERT INTO embeddings (record_id, model, content_hash, vector) VALUES (?,?,?,?)"
            " ON CONFLICT(record_id, model) DO UPDATE SET content_hash = excluded.content_hash,"
            " vector = excluded.vector",
            [(rid, model, h, np.asarray(v, dtype=np.float32).tobytes()) for rid, h, v in rows],
        )

    def embedding_matrix(self, model: str) -> tuple[list[str], np.ndarray]:
        """Ids (sorted) and the float32 matrix of their stored embeddings under `model`."""
        rows = self.conn.execute(
            "SELECT e.record_id, e.vector FROM embeddings e JOIN records r ON r.id = e.record_id"
            " WHERE e.model = ? ORDER BY e.record_id",
            (model,),
        ).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [r[0] for r in rows], np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
