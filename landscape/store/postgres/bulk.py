"""Bulk writes on PostgreSQL by COPY: the rows of records known to be new go to every table in one
COPY each, instead of one INSERT per row (bench/pg_ingest.py measures both); the keyphrases the
split predicts and the connections the build computes replace the old ones in a few statements
per chunk of records, not two per record."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ...batching import batches
from .connection import PgConnection

CHUNK = 5000  # record ids per statement that names them in a list
REPLAN_MIN = 20_000  # records written since the planner's statistics from which they are renewed
WRITTEN_TABLES = "records, authorship, authors, keyphrases, sources, sections"

RECORD_COLUMNS = (
    "id", "kind", "title", "title_derived", "display_title", "norm_title", "authors_truncated", "date", "area",
    "area_source", "abstract", "keyphrase_line", "keyphrases_source", "extra", "content_hash", "created_at",
    "updated_at",
)


class PgBulkWrites:
    _conn: PgConnection
    _growth: dict[str, list[float]]  # table -> [rows when last analysed, rows this store wrote since]

    def write_new_rows(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        """What RecordsMixin.new_rows() built, by COPY. The records are new, so nothing can clash
        with a stored row; a record listing the same source twice keeps the first, as the
        executemany path's ON CONFLICT DO NOTHING does."""
        conn = self._conn
        conn.copy_rows("records", RECORD_COLUMNS, rows["records"])
        conn.copy_rows("authorship", ("record_id", "position", "author_id"), rows["authorship"])
        conn.copy_rows("keyphrases", ("record_id", "position", "phrase", "source"),
                       ((*r, "given") for r in rows["keyphrases"]))
        conn.copy_rows("sources", ("record_id", "path", "format", "line", "ingested_at", "extra"),
                       _first_per_key(rows["sources"]))
        conn.copy_rows("sections", ("record_id", "position", "title", "text", "summary"), rows["sections"])
        if rows["ids"]:
            conn.execute(
                "INSERT INTO search_pending (record_rowid) SELECT rowid FROM records WHERE id = ANY(?)",
                ([r[0] for r in rows["ids"]],),
            )
        self._renew_statistics_as_grown("records", len(rows["records"]), WRITTEN_TABLES)

    def _renew_statistics_as_grown(self, table: str, written: int, tables: str | None = None) -> None:
        """ANALYZE tables (default: table) each time this store has written as many rows to table
        as it held at the last ANALYZE (and at least REPLAN_MIN): a few times per load (log n), in
        the load's transaction, whose own rows ANALYZE counts. Planned on the statistics of an
        empty table, a lookup by a list of keys becomes a sequential scan per batch: quadratic
        (the ingest's check for known titles ran at 1,080 records/s at a million, the split's
        deletion of old keyphrases slower still)."""
        growth = self._growth
        if table not in growth:
            held = self._conn.execute("SELECT reltuples FROM pg_class WHERE oid = ?::regclass", (table,)).fetchone()[0]
            growth[table] = [max(0.0, float(held)), 0]
        counts = growth[table]
        counts[1] += written
        if counts[1] >= max(REPLAN_MIN, counts[0]):
            self._conn.execute(f"ANALYZE {tables or table}")
            counts[0] += counts[1]
            counts[1] = 0

    def set_keyphrases_many(
        self, items: Iterable[tuple[str, list[str]]], source: str, reindex: bool = True
    ) -> None:
        """RecordsMixin.set_keyphrases_many in three statements: the old phrases deleted by one
        list of ids, the new ones by COPY, each record's keyphrase source set from a staged list."""
        items = list(items)
        if not items:
            return
        ids = [rid for rid, _ in items]
        if reindex:
            self._unindex(ids)  # type: ignore[attr-defined]
        conn = self._conn
        conn.execute("DELETE FROM keyphrases WHERE record_id = ANY(?)", (ids,))
        written = conn.copy_rows("keyphrases", ("record_id", "position", "phrase", "source"),
                                 ((rid, i, p, source) for rid, phrases in items for i, p in enumerate(phrases)))
        self._renew_statistics_as_grown("keyphrases", written)
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS keyphrase_sources (record_id TEXT, source TEXT)")
        conn.execute("TRUNCATE keyphrase_sources")
        with conn.raw.cursor() as cur, cur.copy("COPY keyphrase_sources (record_id, source) FROM STDIN") as copy:
            for rid, phrases in items:
                copy.write_row((rid, source if phrases else None))
        conn.execute(
            "UPDATE records r SET keyphrases_source = s.source FROM keyphrase_sources s"
            " WHERE r.id = s.record_id AND coalesce(r.keyphrases_source, '') != coalesce(s.source, '')"
        )
        if reindex:
            self.index_pending()  # type: ignore[attr-defined]

    def replace_connections_many(self, items: Iterable[tuple[str, list[tuple[str, float, list[str]]]]]) -> None:
        """Each record's connections (each record once) replaced: per chunk of records, one
        DELETE by the list of ids and one COPY."""
        for chunk in batches(items, CHUNK):
            self._conn.execute("DELETE FROM connections WHERE record_id = ANY(?)", ([rid for rid, _ in chunk],))
            written = self._conn.copy_rows(
                "connections", ("record_id", "rank", "other_id", "score", "reasons"),
                ((rid, i, oid, float(s), json.dumps(r)) for rid, rows in chunk for i, (oid, s, r) in enumerate(rows)),
            )
            self._renew_statistics_as_grown("connections", written)

    def mark_connections_fresh(self, ids: Iterable[str]) -> None:
        for chunk in batches(ids, CHUNK):
            self._conn.execute(
                "INSERT INTO connection_state (record_id, content_hash)"
                " SELECT id, content_hash FROM records WHERE id = ANY(?)"
                " ON CONFLICT(record_id) DO UPDATE SET content_hash = excluded.content_hash",
                (chunk,),
            )


def _first_per_key(sources: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The first source row per (record, path, line), in order: the table's unique key."""
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for row in sources:
        key = (row[0], row[1], row[3])
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept
