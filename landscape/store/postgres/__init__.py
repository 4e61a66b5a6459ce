"""A Landscape store in a PostgreSQL database (psycopg 3, pgvector).

`--db postgresql://user@host:port/dbname` (or LANDSCAPE_DB) selects it. The queries shared with
SQLite come from the same mixins (written in SQL both accept, with `self._sql` for the few
spellings that differ); what PostgreSQL does its own way is here: the connection, migrations,
transactions (one writer at a time by an advisory lock, each page read in one snapshot),
full-text search (tsvector, GIN, ts_headline), bulk writes by COPY and vectors in pgvector.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from ...models import LandscapeError
from .. import interfaces
from ..db import bump_version, now_iso
from ..dialect import POSTGRES
from ..keyphrases import KeyphrasesMixin
from ..landscape import LandscapeMixin
from ..meta import MetaMixin
from ..pages import PagesMixin
from ..records import RecordsMixin
from ..semantic import SemanticMixin
from ..sync import SyncMixin
from ..understanding import UnderstandingMixin
from .bulk import PgBulkWrites
from .connection import PgConnection, connect, is_postgres_url, shown_url
from .fulltext import PgFullText
from .schema import MIGRATIONS
from .vectors import PgVectors

__all__ = ["PgStore", "is_postgres_url"]

WRITE_LOCK = 0x4C414E44  # "LAND": the advisory lock every write transaction holds (one writer)


class PgStore(PgVectors, PgBulkWrites, PgFullText, MetaMixin, RecordsMixin, KeyphrasesMixin, SemanticMixin,
              UnderstandingMixin, LandscapeMixin, PagesMixin, SyncMixin):
    """A Landscape store in PostgreSQL: the same interfaces as the SQLite `Store`."""

    _sql = POSTGRES

    def __init__(self, url: str, readonly: bool = False):
        self.path = url
        self.readonly = readonly
        self._author_ids: dict[str, int] = {}
        self._growth = {}
        self._conn: PgConnection = connect(url, readonly=readonly)  # type: ignore[assignment]
        try:
            if readonly:
                self._require_schema()
            else:
                migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    def _require_schema(self) -> None:
        if self._conn.execute("SELECT to_regclass('records')").fetchone()[0] is None:
            raise LandscapeError(f"{shown_url(self.path)}: no Landscape store in this database (run `landscape ingest` first)")

    @property
    def connection_for_tests(self) -> PgConnection:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgStore]:
        """One write transaction; the advisory lock makes writers take turns, as SQLite's
        BEGIN IMMEDIATE does, and a transaction that changed rows bumps the store version."""
        conn = self._conn
        if conn.in_transaction:
            yield self
            return
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
            changes = conn.total_changes
            yield self
            if conn.total_changes != changes:
                bump_version(conn)  # type: ignore[arg-type]
        except BaseException:
            self._author_ids.clear()
            if not conn.raw.closed:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def page_snapshot(self) -> Iterator[None]:
        """One repeatable-read transaction per page: every query of the page sees one state."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def integrity_ok(self) -> bool:
        """The server answers and (where the store may be written) the search index holds every record."""
        self._conn.execute("SELECT 1").fetchone()
        return self.readonly or self.pending_index_count() > 0 or self.search_index_ok()

    def table_dump(self, table: str) -> list[tuple[Any, ...]]:
        rows = self._conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
        names = rows[0].keys() if rows else []
        skip = {i for i, n in enumerate(names) if (table, n) in {("records", "rowid"), ("embeddings", "embedding")}}
        return [tuple(v for i, v in enumerate(r) if i not in skip) for r in rows]

    def sidecar(self, suffix: str) -> str:
        """A local file kept for this store (an ANN index): under the user's cache folder, named
        by the database, since the store itself is not a file."""
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "landscape"
        key = hashlib.sha1(shown_url(self.path).encode()).hexdigest()[:16]
        folder = base / f"pg-{key}"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / f"store{suffix}")

    def _has_table(self, name: str) -> bool:
        return self._conn.execute("SELECT to_regclass(?)", (name,)).fetchone()[0] is not None

    # --- what SQLite tunes with PRAGMAs --------------------------------------------------

    @contextlib.contextmanager
    def bulk_write(self, fts_hash_bytes: int = 64 << 20) -> Iterator[None]:
        yield

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints on its own."""


def migrate(conn: PgConnection) -> int:
    """Apply the numbered migrations this database lacks, recorded in `schema_migrations`, in one
    transaction with the pgvector extension and that table: a database where any of it fails
    (no pgvector, no right to create) is left as it was, and the reason is one line."""
    if _current(conn):
        return 0
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
        applied = _apply_migrations(conn)
    except BaseException:
        if not conn.raw.closed:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return applied


def _apply_migrations(conn: PgConnection) -> int:
    url = shown_url(conn.url)
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise LandscapeError(f"{url}: the pgvector extension is not available in this database ({_reason(exc)})") from None
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (number BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {int(r[0]) for r in conn.execute("SELECT number FROM schema_migrations")}
        if done and max(done) > len(MIGRATIONS):
            raise LandscapeError(f"{url}: store schema version {max(done)} is newer than this Landscape ({len(MIGRATIONS)})")
        applied = 0
        for number, (name, sql) in enumerate(MIGRATIONS, start=1):
            if number in done:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (number, name, applied_at) VALUES (?, ?, ?)", (number, name, now_iso()))
            if number > 1:
                bump_version(conn)  # type: ignore[arg-type]
            applied += 1
        return applied
    except psycopg.Error as exc:
        raise LandscapeError(f"{url}: cannot create the Landscape tables in this database ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _current(conn: PgConnection) -> bool:
    """Whether every migration is applied already (checked without the write lock, so opening a
    second connection while a write transaction runs does not wait for it)."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
        return False
    done = conn.execute("SELECT count(*), max(number) FROM schema_migrations").fetchone()
    return int(done[0]) == len(MIGRATIONS) and int(done[1]) == len(MIGRATIONS)


if TYPE_CHECKING:
    def _implements_every_interface(store: PgStore) -> tuple[
        interfaces.IngestStore, interfaces.SyncStore, interfaces.BuildStore, interfaces.SearchStore,
        interfaces.PageStore,
    ]:
        """mypy's check that the PostgreSQL store implements every interface a consumer names."""
        return store, store, store, store, store
