"""Full-text search on PostgreSQL: a weighted tsvector per record (title A, keyphrases B, abstract
and sections C, authors D) in `records_search` with a GIN index, ranked by ts_rank with the
weights SQLite's BM25 gives the same columns (10 : 5 : 3 : 2), snippets and highlighted titles by
ts_headline. The same plan as on SQLite bounds what a query of very common words ranks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..fulltext import _FTS_WORD, FTS_RANK_BUDGET
from .connection import PgConnection

_WEIGHTS = "'{0.2, 0.3, 0.5, 1.0}'"  # D, C, B, A: authors, abstract, keyphrases, title
_CONFIG = "'english'"  # stemming and stop words, as SQLite's porter tokenizer
_DOC = (
    f"setweight(to_tsvector({_CONFIG}, title), 'A') || setweight(to_tsvector({_CONFIG}, keyphrases), 'B')"
    f" || setweight(to_tsvector({_CONFIG}, abstract), 'C') || setweight(to_tsvector({_CONFIG}, authors), 'D')"
)
_MARKS = "StartSel=\x02, StopSel=\x03"
BULK_INDEX_MIN = 20_000  # pending records from which a load larger than the index rebuilds its GIN index
BULK_INDEX_WORK_MEM_MB = 1024  # maintenance_work_mem that rebuild asks for when the server's is smaller


def tsquery_text(text: str, joiner: str = " | ", max_terms: int = 32) -> str:
    """A to_tsquery text of the query's words (letters and digits only, so no user text is
    syntax), any of them by default."""
    words = [w for w in _FTS_WORD.findall(text.lower()) if len(w) > 1 or w.isdigit()][:max_terms]
    return joiner.join(dict.fromkeys(words))


class PgFullText:
    _conn: PgConnection

    def fts_search(self, query: str, limit: int = 50, snippets: bool = True, **filters: Any) -> list[dict[str, Any]]:
        match = tsquery_text(query)
        if not match:
            return []
        where, args = self._filters(  # type: ignore[attr-defined]
            filters.get("area"), filters.get("kind"), filters.get("since"),
            filters.get("until"), filters.get("author"), alias="r",
        )
        join = " JOIN records r ON r.rowid = s.record_rowid" if where else ""
        where = where.replace("WHERE", "AND", 1)
        ranked: list[tuple[int, float, str]] = []
        for expr, floor, scope in self._match_plan(match):
            if len(ranked) >= limit:
                break
            have = [r[0] for r in ranked]
            exclude = f" AND s.record_rowid NOT IN ({','.join('?' * len(have))})" if have else ""
            ranked += [(r[0], r[1], scope) for r in self._conn.execute(
                f"SELECT s.record_rowid, ts_rank({_WEIGHTS}, s.doc, q) AS score"
                f" FROM records_search s{join}, to_tsquery({_CONFIG}, ?) q"
                f" WHERE s.doc @@ q AND s.record_rowid > ? {where}{exclude}"
                " ORDER BY score DESC, s.record_rowid LIMIT ?",
                [expr, floor, *args, *have, limit - len(ranked)],
            )]
        ids = self.record_ids_by_label([r[0] for r in ranked])  # type: ignore[attr-defined]
        shown = self._snippets(match, list(ids.items())) if snippets else {}
        return [
            {"id": ids[rowid], "bm25": score, "snippet": shown.get(rowid, (None, None))[0],
             "title_highlighted": shown.get(rowid, (None, None))[1], "scope": scope}
            for rowid, score, scope in ranked
            if rowid in ids
        ]

    def _match_plan(self, match: str) -> list[tuple[str, int, str]]:
        """As on SQLite (FullTextMixin._match_plan): every match when at most FTS_RANK_BUDGET
        records hold any word, else those holding every word, then any, among the newest
        FTS_RANK_BUDGET matches each."""
        budget = FTS_RANK_BUDGET
        if self._match_count(match, budget) <= budget:
            return [(match, 0, "all")]
        plan = []
        every = match.replace(" | ", " & ")
        if every != match and self._match_count(every, 1):
            plan.append((every, self._newest_floor(every, budget), "newest"))
        return [*plan, (match, self._newest_floor(match, budget), "newest")]

    def _match_count(self, match: str, cap: int) -> int:
        return int(self._conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM records_search WHERE doc @@ to_tsquery({_CONFIG}, ?) LIMIT ?) m",
            (match, cap + 1),
        ).fetchone()[0])

    def _newest_floor(self, match: str, budget: int) -> int:
        row = self._conn.execute(
            f"SELECT record_rowid FROM records_search WHERE doc @@ to_tsquery({_CONFIG}, ?)"
            " ORDER BY record_rowid DESC LIMIT 1 OFFSET ?", (match, budget),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def fts_snippets(self, query: str, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        match = tsquery_text(query)
        ids = list(dict.fromkeys(ids))
        if not match or not ids:
            return {}
        rowids = {rid: rowid for rowid, rid in self._rowids_of_ids(ids)}
        found = self._snippets(match, [(rowid, rid) for rid, rowid in rowids.items()])
        return {rid: found[rowid] for rid, rowid in rowids.items() if rowid in found}

    def _snippets(self, match: str, rows: list[tuple[int, str]]) -> dict[int, tuple[str, str]]:
        out: dict[int, tuple[str, str]] = {}
        for start in range(0, len(rows), 100):
            chunk = [rowid for rowid, _ in rows[start : start + 100]]
            for rowid, snippet, title in self._conn.execute(
                f"SELECT v.record_rowid, ts_headline({_CONFIG}, v.abstract, q, ?),"
                f" ts_headline({_CONFIG}, v.title, q, ?)"
                f" FROM records_fts_source v, to_tsquery({_CONFIG}, ?) q"
                f" WHERE v.record_rowid IN ({','.join('?' * len(chunk))})",
                [f"{_MARKS}, MaxWords=24, MinWords=12", f"{_MARKS}, HighlightAll=true", match, *chunk],
            ):
                if "\x02" in snippet or "\x02" in title:
                    out[rowid] = (snippet, title)
        return out

    def _rowids_of_ids(self, ids: list[str]) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out += [(int(r[0]), r[1]) for r in self._conn.execute(
                f"SELECT rowid, id FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk)]
        return out

    # --- keeping the index: what RecordsMixin does with FTS5 on SQLite ---------------------

    def _unindex(self, record_ids: list[str]) -> None:
        for start in range(0, len(record_ids), 500):
            chunk = record_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self._conn.execute(
                "INSERT INTO search_pending (record_rowid) SELECT rowid FROM records"
                f" WHERE id IN ({marks}) ON CONFLICT DO NOTHING", chunk,
            )
            self._conn.execute(
                f"DELETE FROM records_search WHERE record_rowid IN (SELECT rowid FROM records WHERE id IN ({marks}))",
                chunk,
            )

    def index_pending(self) -> int:
        """Index the pending records. A load larger than what is indexed already (the first ingest
        of a big file) drops the GIN index and builds it again afterwards, in the same
        transaction: one build of the whole index is cheaper than growing it row by row (at
        50,000 records 1.9 s against 3.6 s), at the price of search waiting for the load to
        commit, as it waits for the records anyway. A large load first brings the planner's
        statistics of the tables it reads up to date."""
        count = self.pending_index_count()
        if not count:
            return 0
        with self.transaction():  # type: ignore[attr-defined]
            large = count >= BULK_INDEX_MIN
            if large:
                # planned on the statistics of before the load, the INSERT hashed the whole
                # authors table once per record: about 20 records/s at a million
                self._conn.execute("ANALYZE records, authorship, authors, keyphrases, sections, search_pending")
            bulk = large and count > int(self._conn.execute("SELECT count(*) FROM records_search").fetchone()[0])
            if bulk:
                self._conn.execute("DROP INDEX IF EXISTS records_search_doc")
            self._conn.execute(
                f"INSERT INTO records_search (record_rowid, id, doc) SELECT record_rowid, id, {_DOC}"
                " FROM records_fts_source WHERE record_rowid IN (SELECT record_rowid FROM search_pending)"
                " ON CONFLICT (record_rowid) DO UPDATE SET id = excluded.id, doc = excluded.doc"
            )
            self._conn.execute("DELETE FROM search_pending")
            if bulk:
                self._conn.at_least_maintenance_work_mem(BULK_INDEX_WORK_MEM_MB)
                self._conn.execute("CREATE INDEX records_search_doc ON records_search USING gin (doc)")
        return count

    def search_index_ok(self) -> bool:
        """Nothing pending, and exactly one index row per record (the rows hold the record's id)."""
        if self.pending_index_count():
            return False
        row = self._conn.execute(
            "SELECT (SELECT count(*) FROM records r LEFT JOIN records_search s ON s.record_rowid = r.rowid"
            " WHERE s.id IS DISTINCT FROM r.id),"
            " (SELECT count(*) FROM records_search s LEFT JOIN records r ON r.rowid = s.record_rowid"
            " WHERE r.id IS NULL)"
        ).fetchone()
        return row[0] == 0 and row[1] == 0

    def pending_index_count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM search_pending").fetchone()[0])
