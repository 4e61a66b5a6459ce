"""Keyphrases: the given keyphrase lines, their split into phrases, and each record's phrases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING


class KeyphrasesMixin:
    _conn: sqlite3.Connection

    if TYPE_CHECKING:  # the search index's, from RecordsMixin (or the backend's full-text mixin)
        def _unindex(self, record_ids: list[str]) -> None: ...

        def index_pending(self) -> int: ...

    def set_keyphrases(self, record_id: str, phrases: list[str], source: str) -> None:
        self.set_keyphrases_many([(record_id, phrases)], source)

    def set_keyphrases_many(
        self, items: Iterable[tuple[str, list[str]]], source: str, reindex: bool = True
    ) -> None:
        """Replace the keyphrases of many records at once, and re-index them for search.

        reindex=False skips the search index: right for re-splitting a given keyphrase line,
        since search reads the line itself whenever a record has one (records_fts_source).
        """
        items = list(items)
        if reindex:
            self._unindex([rid for rid, _ in items])
        ids = [(rid,) for rid, _ in items]
        self._conn.executemany("DELETE FROM keyphrases WHERE record_id = ?", ids)
        self._conn.executemany(
            "INSERT INTO keyphrases (record_id, position, phrase, source) VALUES (?,?,?,?)",
            [(rid, i, p, source) for rid, phrases in items for i, p in enumerate(phrases)],
        )
        self._conn.executemany(
            "UPDATE records SET keyphrases_source = ? WHERE id = ? AND coalesce(keyphrases_source, '') != coalesce(?, '')",
            [(source if phrases else None, rid, source if phrases else None) for rid, phrases in items],
        )
        if reindex:
            self.index_pending()

    def keyphrase_line_sample(self, step: int) -> list[tuple[str, str]]:
        """(keyphrase_line, text) of every step-th record of keyphrase_lines(), counted from
        the first: picked in SQL, so the texts of the records left out are never built."""
        return [
            (line, text)
            for line, text in self._conn.execute(
                "WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM records"
                " WHERE keyphrase_line IS NOT NULL AND keyphrase_line != '')"
                " SELECT r.keyphrase_line, coalesce(r.title, '') || '. ' || r.abstract"
                " FROM numbered n JOIN records r ON r.id = n.id WHERE n.i % ? = 0 ORDER BY r.id",
                (step,),
            )
        ]

    def count_keyphrase_lines(self) -> int:
        return self._conn.execute(
            "SELECT count(*) FROM records WHERE keyphrase_line IS NOT NULL AND keyphrase_line != ''"
        ).fetchone()[0]

    def keyphrase_lines(self) -> Iterator[tuple[str, str]]:
        """(id, keyphrase line) of every record with one, unordered, streamed (reading the lines
        with their current phrases, as the splitter does, doubled +1,000 into a million's ingest)."""
        yield from self._conn.execute(
            "SELECT id, keyphrase_line FROM records WHERE keyphrase_line IS NOT NULL AND keyphrase_line != ''")

    def keyphrase_lines_with_phrases(self, batch: int = 2000) -> Iterator[tuple[str, str, list[str]]]:
        """(id, keyphrase line, current given phrases) of every record with a keyphrase line,
        streamed in id order in batches, so the caller may write between batches."""
        last = ""
        while True:
            rows = self._conn.execute(
                "SELECT id, keyphrase_line FROM records"
                " WHERE keyphrase_line IS NOT NULL AND keyphrase_line != '' AND id > ?"
                " ORDER BY id LIMIT ?", (last, batch),
            ).fetchall()
            if not rows:
                return
            phrases: dict[str, list[str]] = {}
            for rid, phrase in self._conn.execute(
                "SELECT record_id, phrase FROM keyphrases WHERE source = 'given'"
                " AND record_id >= ? AND record_id <= ? ORDER BY record_id, position",
                (rows[0][0], rows[-1][0]),
            ):
                phrases.setdefault(rid, []).append(phrase)
            for rid, line in rows:
                yield rid, line, phrases.get(rid, [])
            last = rows[-1][0]

    def keyphrase_texts(self, ids: list[str]) -> dict[str, str]:
        """The text a keyphrase line is checked against (title and abstract), by record id."""
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.update(
                self._conn.execute(
                    "SELECT id, coalesce(title, '') || '. ' || abstract FROM records"
                    f" WHERE id IN ({','.join('?' * len(chunk))})", chunk,
                ).fetchall()
            )
        return out

    def given_keyphrases(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for rid, phrase in self._conn.execute(
            "SELECT record_id, phrase FROM keyphrases WHERE source = 'given' ORDER BY record_id, position"
        ):
            out.setdefault(rid, []).append(phrase)
        return out
