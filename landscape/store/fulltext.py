"""Full-text search over the records (SQLite FTS5, BM25): ranking, snippets, and the bound that
keeps a query of very common words from costing in proportion to the store."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import Any

FTS_RANK_BUDGET = 5_000  # matches BM25 ranks at most per query (see FullTextMixin._match_plan)
_FTS_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str, max_terms: int = 32) -> str:
    """A safe FTS5 MATCH expression: every word quoted, joined by OR, so no user text is syntax."""
    words = [w for w in _FTS_WORD.findall(text.lower()) if len(w) > 1 or w.isdigit()][:max_terms]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


class FullTextMixin:
    _conn: sqlite3.Connection

    def fts_search(self, query: str, limit: int = 50, snippets: bool = True, **filters: Any) -> list[dict[str, Any]]:
        """BM25 over title, abstract, keyphrases and authors; any user text is safe.

        Ranked first, then the snippets of the top `limit` only (none with snippets=False, for
        `fts_snippets` later): SQLite computes every selected column of every match before it
        sorts, so snippets in the ranking query would cost one per match."""
        match = fts_query(query)
        if not match:
            return []
        where, args = self._filters(  # type: ignore[attr-defined]
            filters.get("area"), filters.get("kind"), filters.get("since"),
            filters.get("until"), filters.get("author"), alias="r",
        )
        join = " JOIN records r ON r.rowid = f.rowid" if where else ""
        where = where.replace("WHERE", "AND", 1)
        ranked: list[tuple[int, float, str]] = []
        for expr, floor, scope in self._match_plan(match):
            if len(ranked) >= limit:
                break
            have = [r[0] for r in ranked]
            ranked += [(r[0], r[1], scope) for r in self._conn.execute(
                f"SELECT f.rowid, bm25(records_fts, 0, 10.0, 3.0, 5.0, 2.0) AS score FROM records_fts f{join}"
                f" WHERE records_fts MATCH ? AND f.rowid > ? {where}"
                f" AND f.rowid NOT IN ({','.join('?' * len(have))}) ORDER BY score LIMIT ?",
                [expr, floor, *args, *have, limit - len(ranked)],
            )]
        ids = self.record_ids_by_label([r[0] for r in ranked])  # type: ignore[attr-defined]
        shown = self._snippets(match, list(ids.items())) if snippets else {}
        return [
            {"id": ids[rowid], "bm25": -score, "snippet": shown.get(rowid, (None, None))[0],
             "title_highlighted": shown.get(rowid, (None, None))[1], "scope": scope}
            for rowid, score, scope in ranked
            if rowid in ids
        ]

    def _match_plan(self, match: str) -> list[tuple[str, int, str]]:
        """What BM25 ranks, as (MATCH expression, rowid floor, scope), in order: every record
        holding any word when at most FTS_RANK_BUDGET do ("all"). Otherwise ranking every match
        would cost in proportion to the store, so first the records holding every word, then those
        holding any, each among the newest FTS_RANK_BUDGET matches at most ("newest"). Counting
        and finding the floor walk at most the budget's postings, whatever the store's size."""
        budget = FTS_RANK_BUDGET
        if self._match_count(match, budget) <= budget:
            return [(match, 0, "all")]
        plan = []
        every = match.replace(" OR ", " AND ")
        if every != match and self._match_count(every, 1):
            plan.append((every, self._newest_floor(every, budget), "newest"))
        return [*plan, (match, self._newest_floor(match, budget), "newest")]

    def _match_count(self, match: str, cap: int) -> int:
        return self._conn.execute(
            "SELECT count(*) FROM (SELECT rowid FROM records_fts WHERE records_fts MATCH ? LIMIT ?)", (match, cap + 1)
        ).fetchone()[0]

    def _newest_floor(self, match: str, budget: int) -> int:
        """The rowid below the newest `budget` matches (0 when there are no more than that)."""
        row = self._conn.execute(
            "SELECT rowid FROM records_fts WHERE records_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (match, budget),
        ).fetchone()
        return 0 if row is None else row[0]

    def fts_snippets(self, query: str, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """id -> (abstract snippet, highlighted title) for these records, matched words marked."""
        match = fts_query(query)
        ids = list(dict.fromkeys(ids))
        if not match or not ids:
            return {}
        rowids = {rid: rowid for rowid, rid in self._rowids_of_ids(ids)}
        found = self._snippets(match, [(rowid, rid) for rid, rowid in rowids.items()])
        return {rid: found[rowid] for rid, rowid in rowids.items() if rowid in found}

    def _snippets(self, match: str, rows: list[tuple[int, str]]) -> dict[int, tuple[str, str]]:
        out: dict[int, tuple[str, str]] = {}
        for rowid, _ in rows:  # one seek each: `rowid IN (...)` would walk every match again
            row = self._conn.execute(
                "SELECT snippet(records_fts, 2, '\x02', '\x03', '…', 24), highlight(records_fts, 1, '\x02', '\x03')"
                " FROM records_fts WHERE records_fts MATCH ? AND rowid = ?", (match, rowid)
            ).fetchone()
            if row is not None:
                out[rowid] = (row[0], row[1])
        return out

    def _rowids_of_ids(self, ids: list[str]) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out += [tuple(r) for r in self._conn.execute(
                f"SELECT rowid, id FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk)]
        return out
