"""Embeddings on PostgreSQL: the float32 bytes every step reads (as on SQLite) and the same vector
as a pgvector value, so the database itself answers nearest-neighbour questions.

pgvector's HNSW index needs a fixed dimension, and the `embedding` column has none (a store may
hold several models, and a refitted model may change its length). Each (model, dimension) in use
gets its own index on the expression `embedding::vector(D)` with cosine distance, partial on the
model and on the dimension: a row of another model or length is outside the index and never cast.
The index is made once a model's vectors are written (`index_embeddings`, at the end of the embed
step: building over loaded rows is far faster than growing it row by row) and then kept; later
rows enter it as they are written. A query names the same model and dimension, so the planner
reads that index (`ORDER BY ... <=> q LIMIT k`): its work grows with k and log n, not with n.

Bulk writes go by COPY in PostgreSQL's binary format (the float32 bytes and pgvector's own binary
form are written as they are, no text round trip) into a per-session staging table, then one
INSERT ... ON CONFLICT moves them into place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from .connection import PgConnection

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 400  # recall@10 0.968 at 100,000 x 256 (200 gave 0.907), p95 6.6 ms: docs/scale.md
MAX_EF_SEARCH = 1000  # pgvector's limit; beyond it an iterative scan continues in order
INDEX_WORK_MEM = 1 << 30  # the least maintenance_work_mem an index build asks for when the server's is smaller
INDEX_WORK_MEM_MAX = 8 << 30  # and the most: past it pgvector builds the rest of the graph on disk, slower


def index_work_mem(rows: int, dim: int) -> int:
    """Bytes of maintenance_work_mem for an HNSW build over `rows` vectors of `dim`: pgvector builds
    far faster while its whole graph fits in it (each element keeps its vector and up to 2 * m
    neighbours of 16 bytes at the lowest layer): by this estimate 1 GB holds about 500,000 x 256."""
    need = int(1.25 * rows * (4 * dim + 32 * HNSW_M + 128))
    return min(max(need, INDEX_WORK_MEM), INDEX_WORK_MEM_MAX)


def vector_text(v: np.ndarray) -> str:
    """pgvector's text form of a vector; float32 values written so they read back unchanged."""
    return "[" + ",".join(map(repr, np.asarray(v, dtype=np.float32).astype(np.float64).tolist())) + "]"


def vector_binary(v: np.ndarray) -> bytes:
    """pgvector's binary form (vector_recv): dimension and a reserved word as int16, then the
    float32 values, all big-endian."""
    values = np.asarray(v, dtype=np.float32)
    return np.array([len(values), 0], dtype=">i2").tobytes() + values.astype(">f4").tobytes()


def index_name(model: str, dim: int) -> str:
    return f"embeddings_hnsw_{hashlib.sha1(model.encode()).hexdigest()[:12]}_{int(dim)}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PgVectors:
    _conn: PgConnection

    def put_embeddings(self, model: str, rows: Iterable[tuple[str, str, np.ndarray]]) -> None:
        self._stage(
            "embeddings_stage",
            "record_id TEXT, model TEXT, content_hash TEXT, vector BYTEA, embedding vector",
            ["text", "text", "text", "bytea", "bytea"],
            ((rid, model, h, np.asarray(v, dtype=np.float32).tobytes(), vector_binary(v)) for rid, h, v in rows),
        )
        self._conn.execute(
            "INSERT INTO embeddings (record_id, model, content_hash, vector, embedding)"
            " SELECT DISTINCT ON (record_id, model) record_id, model, content_hash, vector, embedding"
            " FROM embeddings_stage ORDER BY record_id, model, n DESC"
            " ON CONFLICT(record_id, model) DO UPDATE SET content_hash = excluded.content_hash,"
            " vector = excluded.vector, embedding = excluded.embedding"
        )

    def put_graph_rows(self, rows: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
        """(record id, neighbour rowids, similarities); the record's content hash is kept with them."""
        self._stage(
            "graph_stage", "record_id TEXT, others BYTEA, sims BYTEA", ["text", "bytea", "bytea"],
            ((rid, np.asarray(o, dtype=np.int64).tobytes(), np.asarray(v, dtype=np.float32).tobytes())
             for rid, o, v in rows),
        )
        self._conn.execute(
            "INSERT INTO neighbour_graph (record_id, content_hash, others, sims)"
            " SELECT DISTINCT ON (s.record_id) s.record_id, r.content_hash, s.others, s.sims"
            " FROM graph_stage s JOIN records r ON r.id = s.record_id ORDER BY s.record_id, s.n DESC"
            " ON CONFLICT(record_id) DO UPDATE SET content_hash = excluded.content_hash,"
            " others = excluded.others, sims = excluded.sims"
        )

    def _stage(self, table: str, columns: str, types: list[str], rows: Iterable[tuple[object, ...]]) -> int:
        """COPY rows (binary) into this session's staging table, emptied first; each row is
        numbered (`n`) so the last of two rows for one key wins, as with executemany."""
        self._conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}, n BIGINT)")
        self._conn.execute(f"TRUNCATE {table}")
        names = [c.split()[0] for c in columns.split(", ")] + ["n"]
        with self._conn.raw.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types([*types, "int8"])
            n = 0
            for n, row in enumerate(rows, start=1):
                copy.write_row((*row, n))
        return n

    # --- the database's own nearest-neighbour index --------------------------------------

    def index_embeddings(self, model: str) -> bool:
        """Make the HNSW index for `model`'s vectors at their dimension if it is missing (and drop
        the model's indexes at other dimensions); True when one was made."""
        dim = self.embedding_dim(model)  # type: ignore[attr-defined]
        if not dim:
            return False
        name = index_name(model, dim)
        stale = [r[0] for r in self._conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings' AND indexname LIKE ?",
            (index_name(model, 0)[:-1] + "%",),
        ) if r[0] != name]
        with self.transaction():  # type: ignore[attr-defined]
            for old in stale:
                self._conn.execute(f"DROP INDEX IF EXISTS {old}")
            if self._has_table(name):  # type: ignore[attr-defined]
                return False
            rows = self._conn.execute("SELECT count(*) FROM embeddings WHERE model = ?", (model,)).fetchone()[0]
            self._conn.at_least_maintenance_work_mem(index_work_mem(int(rows), dim) // (1 << 20))
            self._conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw ((embedding::vector({dim})) vector_cosine_ops)"
                f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
                f" WHERE model = {_literal(model)} AND vector_dims(embedding) = {dim}"
            )
        return True

    def has_vector_index(self, model: str, dim: int) -> bool:
        return bool(self._has_table(index_name(model, dim)))  # type: ignore[attr-defined]

    def nearest(self, model: str, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """The k records nearest each query vector under `model`: (id, cosine similarity), best
        first (ties by id). The HNSW index answers, with hnsw.ef_search at least HNSW_EF_SEARCH and k
        (recall@10 0.978 at 20,000 clustered 384-d vectors, bench/pg_ingest.py --vectors)."""
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if k <= 0 or queries.shape[0] == 0:
            return [[] for _ in range(queries.shape[0])]
        dim = int(queries.shape[1])
        self._conn.execute(f"SET hnsw.ef_search = {min(MAX_EF_SEARCH, max(HNSW_EF_SEARCH, int(k)))}")
        if k > MAX_EF_SEARCH:  # pgvector 0.8 and later: the scan goes on past ef_search, in order
            self._conn.execute("SET hnsw.iterative_scan = strict_order")
        distance = f"embedding::vector({dim}) <=> ?::vector({dim})"
        sql = (
            f"SELECT record_id, {distance} FROM embeddings WHERE model = ? AND vector_dims(embedding) = {dim}"
            f" ORDER BY {distance} LIMIT ?"
        )
        out = []
        for q in queries:
            text = vector_text(q)
            rows = self._conn.execute(sql, (text, model, text, int(k))).fetchall()
            hits = [(r[0], float(1.0 - r[1])) for r in rows]
            out.append(sorted(hits, key=lambda h: (-h[1], h[0])))
        return out
