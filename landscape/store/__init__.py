"""The one place that knows SQL. Everything else talks to a `Store`."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ..arrays import dense_positions
from . import interfaces
from .db import connect, default_db_path, migrate, now_iso, transaction
from .dialect import SQLITE
from .fulltext import FullTextMixin
from .keyphrases import KeyphrasesMixin
from .landscape import LandscapeMixin
from .meta import MetaMixin
from .pages import PagesMixin
from .records import RecordsMixin
from .semantic import SemanticMixin
from .sync import SyncMixin
from .understanding import UnderstandingMixin

__all__ = ["AnyStore", "Store", "default_db_path", "interfaces", "is_postgres_url", "now_iso", "open_store"]


class Store(MetaMixin, RecordsMixin, KeyphrasesMixin, FullTextMixin, SemanticMixin, UnderstandingMixin, LandscapeMixin, PagesMixin, SyncMixin):
    """A Landscape store in one SQLite file (WAL, FTS5, numbered migrations)."""

    _sql = SQLITE

    def __init__(self, path: str | Path | None = None, readonly: bool = False):
        self.path = str(path or default_db_path())
        self.readonly = readonly
        self._conn: sqlite3.Connection = connect(self.path, readonly=readonly)
        self._author_ids: dict[str, int] = {}
        if not readonly:
            migrate(self._conn)

    @property
    def connection_for_tests(self) -> sqlite3.Connection:
        """The SQLite connection, for tests and benches that plant or inspect rows. Nothing in the
        package uses it: consumers go through the interfaces (tests/test_store_interfaces.py)."""
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        try:
            with transaction(self._conn):
                yield self
        except BaseException:
            self._author_ids.clear()
            raise

    def embedding_matrix(self, model: str) -> tuple[list[str], np.ndarray]:
        """As SemanticMixin.embedding_matrix (ids sorted, rows in their order), but the vectors
        are read in the table's own order, each put in its id's row: read in id order, each row
        was a random read of the table (a million records, cold cache: 13.7 -> 6.0 s). Rows
        added or removed between the two reads fall back to the one read in id order."""
        keys = self._conn.execute(
            "SELECT e.record_id, e.rowid FROM embeddings e JOIN records r ON r.id = e.record_id"
            " WHERE e.model = ? ORDER BY e.record_id", (model,)).fetchall()
        if not keys:
            return super().embedding_matrix(model)
        row_of = dense_positions(np.fromiter((k[1] for k in keys), dtype=np.int64, count=len(keys)))
        if row_of is None:  # too sparse for a table by rowid
            return super().embedding_matrix(model)
        out = np.empty((len(keys), self.embedding_dim(model)), dtype=np.float32)
        filled, top = 0, len(row_of)
        for rowid, vector in self._conn.execute("SELECT rowid, vector FROM embeddings WHERE model = ?", (model,)):
            j = row_of[rowid] if rowid < top else -1
            if j >= 0 and len(vector) == out.shape[1] * 4:
                out[j] = np.frombuffer(vector, dtype=np.float32)
                filled += 1
        if filled != len(keys):
            return super().embedding_matrix(model)
        return [k[0] for k in keys], out

    def integrity_ok(self) -> bool:
        """SQLite's own check, and (where the store may be written) that the search index
        holds the words of every record it indexes."""
        if self._conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            return False
        return self.readonly or self.pending_index_count() > 0 or self.search_index_ok()

    def sidecar(self, suffix: str) -> str:
        """A file kept beside the store (an ANN index): the store's path with `suffix` added."""
        return self.path + suffix

    def nearest(self, model: str, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """The k records nearest each query vector under `model`, (id, cosine) best first. SQLite
        has no vector index: this process keeps one per store version (exact when small, else the
        build's saved HNSW file; landscape.enrich.vector_index)."""
        from ..enrich.vector_index import local_nearest

        return local_nearest(self, model, vectors, k)

    def index_embeddings(self, model: str) -> bool:
        """Nothing to make: the index SQLite's `nearest` reads lives in the process (and beside the file)."""
        return False

    def _has_table(self, name: str) -> bool:
        return self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def table_dump(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of a table in a stable order, for comparing stores (tests, crash bench)."""
        return [tuple(r) for r in self._conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]


if TYPE_CHECKING:
    from .postgres import PgStore

AnyStore = Union["Store", "PgStore"]  # what open_store returns: either backend, every interface


def is_postgres_url(db: str | Path) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def open_store(db: str | Path | None = None, readonly: bool = False) -> AnyStore:
    """The store `db` names: a PostgreSQL URL (postgresql://user@host:port/dbname) or a SQLite
    file; LANDSCAPE_DB, then ./landscape.db, when it names none."""
    target = str(db or default_db_path())
    if is_postgres_url(target):
        try:
            from .postgres import PgStore
        except ImportError as exc:
            from ..models import LandscapeError
            raise LandscapeError(
                f"{target.split('@')[-1]}: PostgreSQL needs psycopg (pip install 'landscape[postgres]'): {exc}"
            ) from None
        return PgStore(target, readonly=readonly)
    return Store(target, readonly=readonly)


if TYPE_CHECKING:
    def _implements_every_interface(store: Store) -> tuple[
        interfaces.IngestStore, interfaces.SyncStore, interfaces.BuildStore, interfaces.SearchStore,
        interfaces.PageStore,
    ]:
        """mypy's check that the SQLite store implements every interface a consumer names."""
        return store, store, store, store, store
