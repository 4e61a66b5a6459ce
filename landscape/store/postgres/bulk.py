"""Ingest's bulk writes on PostgreSQL by COPY: the rows of records known to be new go to every
table in one COPY each, instead of one INSERT per row (bench/pg_ingest.py measures both)."""

from __future__ import annotations

from typing import Any

from .connection import PgConnection

RECORD_COLUMNS = (
    "id", "kind", "title", "title_derived", "display_title", "norm_title", "authors_truncated", "date", "area",
    "area_source", "abstract", "keyphrase_line", "keyphrases_source", "extra", "content_hash", "created_at",
    "updated_at",
)


class PgBulkWrites:
    _conn: PgConnection

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
