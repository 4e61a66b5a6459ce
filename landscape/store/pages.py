"""Read queries for the web pages (all SQL stays in this package).

Every method is prefixed `page_` so it never shadows a method another mixin adds later.
Each one reads whatever the build steps have stored so far and returns empty results when
a step has not run yet (no connections, no topics, no map), so pages degrade instead of failing.
Concepts fall back to the given keyphrases when the concept vocabulary has not been built.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from .dialect import SQLITE, Dialect
from .records import author_clause

_TABLES = frozenset(
    {"connections", "concepts", "record_concepts", "topics", "record_topics", "map_coords",
     "section_links", "areas", "keyphrases", "embeddings", "build_steps"}
)
def sorts(sql: Dialect) -> dict[str, str]:
    """Browse orders as ORDER BY clauses."""
    return {
        "newest": "r.date IS NULL, r.date DESC, r.id",
        "oldest": "r.date IS NULL, r.date ASC, r.id",
        "title": f"{sql.nocase('r.display_title')}, r.id",
    }


SORTS = sorts(SQLITE)
_CHUNK = 500


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


# Browse orders as segments read one after the other: (condition, [(column, descending)]);
# undated records come after dated ones. A cursor is [segment, column values...] of a row.
def segments(sql: Dialect) -> dict[str, list[tuple[str, list[tuple[str, bool]]]]]:
    return {
        "newest": [("r.date IS NOT NULL", [("r.date", True), ("r.id", False)]),
                   ("r.date IS NULL", [("r.id", False)])],
        "oldest": [("r.date IS NOT NULL", [("r.date", False), ("r.id", False)]),
                   ("r.date IS NULL", [("r.id", False)])],
        "title": [("1 = 1", [(sql.nocase("r.display_title"), False), ("r.id", False)])],
    }


_SEGMENTS = segments(SQLITE)


def _segments_of(sql: Dialect) -> dict[str, list[tuple[str, list[tuple[str, bool]]]]]:
    return _SEGMENTS if sql is SQLITE else segments(sql)


def browse_cursor_ok(sort: str, cursor: Any) -> bool:
    """Whether `cursor` has the shape of a key of this browse order."""
    if sort not in _SEGMENTS or not isinstance(cursor, list) or not cursor or type(cursor[0]) is not int:
        return False
    if not 0 <= cursor[0] < len(_SEGMENTS[sort]):
        return False
    values = cursor[1:]
    return len(values) == len(_SEGMENTS[sort][cursor[0]][1]) and all(isinstance(v, str) for v in values)


def _keyset(columns: list[tuple[str, bool]], values: list[Any], forward: bool) -> tuple[str, list[Any]]:
    """Rows strictly after (or before) the key `values` in the order of `columns`, written so the
    leading column bounds an index range: c1 >= v1 AND (c1 > v1 OR (c2 > v2 ...))."""
    ops = [("<" if desc else ">") if forward else (">" if desc else "<") for _, desc in columns]

    def strictly(i: int) -> tuple[str, list[Any]]:
        col, op = columns[i][0], ops[i]
        if i == len(columns) - 1:
            return f"{col} {op} ?", [values[i]]
        rest, rest_args = strictly(i + 1)
        return f"({col} {op} ? OR ({col} = ? AND {rest}))", [values[i], values[i], *rest_args]

    cond, args = strictly(0)
    first, op = columns[0][0], ops[0]
    return f"{first} {op}= ? AND {cond}", [values[0], *args]


class PagesMixin:
    _conn: sqlite3.Connection
    _sql: Dialect

    def _limit(self, limit: int) -> int | None:
        """A LIMIT argument: a negative `limit` means all rows, as SQLite reads it."""
        return limit if limit >= 0 else self._sql.unlimited

    @contextlib.contextmanager
    def page_snapshot(self) -> Iterator[None]:
        """One read transaction per page, so a page never mixes two states of a running build."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def page_version(self) -> tuple[Any, ...]:
        """Changes whenever records are added or changed or a build step finishes (cache key)."""
        return tuple(self._conn.execute(
            "SELECT (SELECT count(*) FROM records), (SELECT max(updated_at) FROM records),"
            " (SELECT max(finished_at) FROM build_steps), (SELECT count(*) FROM build_steps),"
            " (SELECT value FROM meta WHERE key = 'last_build')"
        ).fetchone())

    def page_has(self, table: str) -> bool:
        if table not in _TABLES:
            raise ValueError(table)
        return self._conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None

    def _concepts_built(self) -> bool:
        return self.page_has("record_concepts")

    # --- records ----------------------------------------------------------------------

    def page_cards(self, ids: Iterable[str], max_authors: int = 4) -> dict[str, dict[str, Any]]:
        """What a list item shows of each record: title, kind, date, area, TL;DR, first authors."""
        ids = list(dict.fromkeys(ids))
        cards: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self._conn.execute(
                f"SELECT id, kind, display_title, title_derived, date, area, area_source, summary,"
                f" authors_truncated FROM records WHERE id IN ({marks})", chunk
            ):
                cards[r[0]] = {
                    "id": r[0], "kind": r[1], "title": r[2], "title_derived": bool(r[3]),
                    "date": r[4], "area": r[5], "area_source": r[6], "summary": r[7],
                    "authors": [], "authors_more": 0, "authors_truncated": bool(r[8]),
                }
            for rid, pos, name, key in self._conn.execute(
                f"SELECT a.record_id, a.position, au.name, au.key FROM authorship a"
                f" JOIN authors au ON au.id = a.author_id WHERE a.record_id IN ({marks})"
                f" ORDER BY a.record_id, a.position", chunk
            ):
                card = cards.get(rid)
                if card is None:
                    continue
                if pos < max_authors:
                    card["authors"].append({"name": name, "key": key})
                else:
                    card["authors_more"] += 1
        return cards

    def _browse_where(self, filters: dict[str, Any]) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if filters.get("area"):
            clauses.append(self._sql.nocase_equals("r.area"))  # indexed on both backends
            args.append(filters["area"])
        if filters.get("kind"):
            clauses.append("r.kind = ?")
            args.append(filters["kind"])
        if filters.get("year"):
            clauses.append("r.date >= ? AND r.date < ?")  # a range on the date index, not substr() of every row
            args += [str(filters["year"]), str(int(filters["year"]) + 1)]
        if filters.get("author"):
            clause, arg = author_clause("r", filters["author"])
            clauses.append(clause)
            args.append(arg)
        if filters.get("concept"):
            clauses.append(f"r.id IN ({self._concept_records_sql()})")
            args.append(filters["concept"])
        if filters.get("topic") is not None:
            clauses.append("r.id IN (SELECT record_id FROM record_topics WHERE topic_id = ?)")
            args.append(filters["topic"])
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def _concept_records_sql(self) -> str:
        if self._concepts_built():
            return (
                "SELECT rc.record_id FROM record_concepts rc JOIN concepts c ON c.id = rc.concept_id"
                " WHERE c.name = ?"
            )
        return "SELECT record_id FROM keyphrases WHERE phrase = ?"

    def page_browse(
        self, filters: dict[str, Any], sort: str = "newest", limit: int = 20, offset: int = 0
    ) -> tuple[list[str], int]:
        """Ids of one page of records matching every filter, and how many match in all."""
        where, args = self._browse_where(filters)
        total = self._conn.execute(f"SELECT count(*) FROM records r {where}", args).fetchone()[0]
        rows = self._conn.execute(
            f"SELECT r.id FROM records r {where} ORDER BY {sorts(self._sql)[sort]} LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [r[0] for r in rows], total

    def page_browse_keyset(
        self, filters: dict[str, Any], sort: str = "newest", limit: int = 20,
        after: list[Any] | None = None, before: list[Any] | None = None,
    ) -> tuple[list[str], list[Any] | None, list[Any] | None]:
        """One page of records matching every filter that follows `after` (or precedes `before`),
        the sort key of any row being a cursor: (ids, key of the last row when more follow, key of
        the first row when more precede). Each query walks an index from the cursor, so a deep page
        costs what the first one does (OFFSET would read every row before it)."""
        where, args = self._browse_where(filters)
        segments = _segments_of(self._sql)[sort]
        cursor = before if before is not None else after
        forward = before is None
        start = 0 if cursor is None else int(cursor[0])
        order = range(start, len(segments)) if forward else range(start, -1, -1)
        rows: list[tuple[int, tuple[Any, ...]]] = []
        for seg in order:
            cond, columns = segments[seg]
            clauses, seg_args = [cond], list[Any]()
            if cursor is not None and seg == start:
                keyset, seg_args = _keyset(columns, list(cursor[1:]), forward)
                clauses.append(keyset)
            direction = [(c, d if forward else not d) for c, d in columns]
            sql = (f"SELECT r.id, {', '.join(c for c, _ in columns)} FROM records r"
                   f" {where} {'AND' if where else 'WHERE'} {' AND '.join(clauses)}"
                   f" ORDER BY {', '.join(c + (' DESC' if desc else '') for c, desc in direction)} LIMIT ?")
            rows += [(seg, tuple(r)) for r in self._conn.execute(sql, [*args, *seg_args, limit + 1 - len(rows)])]
            if len(rows) > limit:
                break
        more = len(rows) > limit
        rows = rows[:limit]
        if not forward:
            rows.reverse()
        keys = [[seg, *row[1:]] for seg, row in rows]
        ids = [row[0] for _, row in rows]
        if not keys:
            return ids, None, None
        if forward:
            return ids, keys[-1] if more else None, keys[0] if cursor is not None else None
        return ids, keys[-1], keys[0] if more else None

    def page_browse_key_at(self, filters: dict[str, Any], sort: str, position: int) -> list[Any] | None:
        """The cursor of the row at `position` (from 0) in browse order: where an old `page=N` link
        starts. It reads every row before it (OFFSET), so only old links pay that."""
        where, args = self._browse_where(filters)
        row = self._conn.execute(
            f"SELECT r.id, r.date, r.display_title FROM records r {where} ORDER BY {sorts(self._sql)[sort]} LIMIT 1 OFFSET ?",
            [*args, position],
        ).fetchone()
        if row is None:
            return None
        rid, date, title = row
        if sort == "title":
            return [0, title, rid]
        return [0, date, rid] if date is not None else [1, rid]

    def page_browse_count(self, filters: dict[str, Any]) -> int:
        where, args = self._browse_where(filters)
        return self._conn.execute(f"SELECT count(*) FROM records r {where}", args).fetchone()[0]

    def page_facets(self, filters: dict[str, Any], top: int = 12) -> dict[str, Any]:
        """Counts of each facet value among the records the current filters select: every kind and
        year, the `top` areas, concepts and authors, and under "more" how many values of each of
        those three are left out. The server keeps the result per store version and filter set."""
        where, args = self._browse_where(filters)
        sub = f"SELECT r.id FROM records r {where}"
        more: dict[str, int] = {}
        facets: dict[str, Any] = {}
        areas = self._facet(
            f"SELECT r.area, count(*) FROM records r {where} {'AND' if where else 'WHERE'}"
            " r.area IS NOT NULL GROUP BY r.area ORDER BY 2 DESC, 1", args
        )
        facets["area"], more["area"] = areas[:top], max(0, len(areas) - top)
        facets["kind"] = self._facet(
            f"SELECT r.kind, count(*) FROM records r {where} GROUP BY r.kind ORDER BY 2 DESC", args
        )
        facets["year"] = self._facet(
            f"SELECT substr(r.date, 1, 4), count(*) FROM records r {where}"
            f" {'AND' if where else 'WHERE'} r.date IS NOT NULL GROUP BY 1 ORDER BY 1 DESC", args
        )
        facets["concept"] = self._facet(f"{self._concept_counts_sql(sub)} LIMIT {int(top)}", args)
        more["concept"] = max(0, self._conn.execute(
            f"SELECT count(*) FROM ({self._concept_counts_sql(sub)})", args).fetchone()[0] - top)
        facets["author"] = [
            {"value": key, "label": name, "count": n}
            for key, name, n in self._conn.execute(
                f"SELECT au.key, au.name, count(*) FROM authorship a JOIN authors au ON au.id = a.author_id"
                f" WHERE a.record_id IN ({sub}) GROUP BY au.id ORDER BY 3 DESC, 2 LIMIT {int(top)}", args
            )
        ]
        more["author"] = max(0, self._conn.execute(
            f"SELECT count(DISTINCT author_id) FROM authorship WHERE record_id IN ({sub})", args).fetchone()[0] - top)
        facets["more"] = more
        return facets

    def _facet(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        return [{"value": v, "label": v, "count": n} for v, n in self._conn.execute(sql, args)]

    def _concept_counts_sql(self, record_subquery: str) -> str:
        if self._concepts_built():
            return (
                "SELECT c.name, count(DISTINCT rc.record_id) FROM record_concepts rc"
                " JOIN concepts c ON c.id = rc.concept_id"
                f" WHERE rc.record_id IN ({record_subquery}) GROUP BY c.id ORDER BY 2 DESC, 1"
            )
        return (
            "SELECT phrase, count(DISTINCT record_id) FROM keyphrases"
            f" WHERE record_id IN ({record_subquery}) GROUP BY phrase ORDER BY 2 DESC, 1"
        )

    def page_record_meta(self, record_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT id, kind, display_title, updated_at, content_hash FROM records WHERE id = ?",
            (record_id,),
        ).fetchone()
        return None if row is None else dict(row)

    def page_record_authors(self, record_id: str) -> list[dict[str, str]]:
        return [
            {"name": name, "key": key}
            for name, key in self._conn.execute(
                "SELECT au.name, au.key FROM authorship a JOIN authors au ON au.id = a.author_id"
                " WHERE a.record_id = ? ORDER BY a.position", (record_id,)
            )
        ]

    def page_record_concepts(self, record_id: str) -> list[dict[str, Any]]:
        """The record's concepts, each once, with where it came from (given, predicted, text)."""
        if self._concepts_built():
            rows = self._conn.execute(
                f"SELECT c.name, {self._sql.group_concat('rc.source')}, max(rc.weight) FROM record_concepts rc"
                " JOIN concepts c ON c.id = rc.concept_id WHERE rc.record_id = ?"
                " GROUP BY c.id ORDER BY max(rc.weight) DESC, c.name", (record_id,)
            ).fetchall()
            return [{"name": r[0], "sources": sorted(set(r[1].split(","))), "weight": r[2]} for r in rows]
        return [
            {"name": p, "sources": [s], "weight": None}
            for p, s in self._conn.execute(
                "SELECT phrase, source FROM keyphrases WHERE record_id = ? ORDER BY position", (record_id,)
            )
        ]

    def page_connections(self, record_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Stored connections of each record, best first, with their reasons."""
        ids = list(dict.fromkeys(record_ids))
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for rid, other, score, reasons in self._conn.execute(
                f"SELECT record_id, other_id, score, reasons FROM connections"
                f" WHERE record_id IN ({','.join('?' * len(chunk))}) ORDER BY record_id, rank", chunk
            ):
                out[rid].append({"id": other, "score": score, "reasons": _json(reasons, [])})
        return out

    def page_section_links(self, record_id: str) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for section, other, score, reasons in self._conn.execute(
            "SELECT section, other_id, score, reasons FROM section_links WHERE record_id = ?"
            " ORDER BY section, rank", (record_id,)
        ):
            out.setdefault(section, []).append({"id": other, "score": score, "reasons": _json(reasons, [])})
        return out

    def page_record_topic(self, record_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT t.id, t.label, t.area, t.size, rt.is_outlier, rt.score FROM record_topics rt"
            " JOIN topics t ON t.id = rt.topic_id WHERE rt.record_id = ?", (record_id,)
        ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "label": row[1], "area": row[2], "size": row[3],
                "is_outlier": bool(row[4]), "score": row[5]}

    def page_position(self, record_id: str) -> dict[str, float] | None:
        row = self._conn.execute("SELECT x, y FROM map_coords WHERE record_id = ?", (record_id,)).fetchone()
        return None if row is None else {"x": row[0], "y": row[1]}

    # --- aggregates over a set of records -----------------------------------------------

    def page_years(self, record_ids: Iterable[str]) -> dict[str, int]:
        counts: Counter[str] = Counter()
        ids = list(record_ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for (year,) in self._conn.execute(
                f"SELECT substr(date, 1, 4) FROM records WHERE date IS NOT NULL"
                f" AND id IN ({','.join('?' * len(chunk))})", chunk
            ):
                counts[year] += 1
        return dict(sorted(counts.items()))

    def page_top_concepts(self, record_ids: Iterable[str], limit: int = 12,
                          exclude: str | None = None) -> list[dict[str, Any]]:
        counts: Counter[str] = Counter()
        ids = list(record_ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for name, n in self._conn.execute(self._concept_counts_sql(marks), chunk):
                counts[name] += n
        counts.pop(exclude, None)  # type: ignore[arg-type]
        return [{"name": n, "count": c} for n, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]

    # --- concepts -----------------------------------------------------------------------

    def page_concepts(self, limit: int, offset: int = 0, prefix: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Concepts by how many records carry them, most used first."""
        like = (prefix or "").lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if self._concepts_built():
            total = self._conn.execute(
                f"SELECT count(*) FROM concepts c WHERE c.name {self._sql.like} ? ESCAPE '\\'"
                " AND EXISTS (SELECT 1 FROM record_concepts rc WHERE rc.concept_id = c.id)", (like,)
            ).fetchone()[0]
            rows = self._conn.execute(
                "SELECT c.name, count(DISTINCT rc.record_id) AS n, c.description FROM concepts c"
                f" JOIN record_concepts rc ON rc.concept_id = c.id WHERE c.name {self._sql.like} ? ESCAPE '\\'"
                " GROUP BY c.id ORDER BY n DESC, c.name LIMIT ? OFFSET ?", (like, limit, offset)
            ).fetchall()
        else:
            total = self._conn.execute(
                f"SELECT count(DISTINCT phrase) FROM keyphrases WHERE phrase {self._sql.like} ? ESCAPE '\\'", (like,)
            ).fetchone()[0]
            rows = self._conn.execute(
                "SELECT phrase, count(DISTINCT record_id) AS n, NULL FROM keyphrases"
                f" WHERE phrase {self._sql.like} ? ESCAPE '\\' GROUP BY phrase ORDER BY n DESC, phrase LIMIT ? OFFSET ?",
                (like, limit, offset),
            ).fetchall()
        return [{"name": r[0], "count": r[1], "description": r[2]} for r in rows], total

    def page_concept(self, name: str) -> dict[str, Any] | None:
        if self._concepts_built():
            row = self._conn.execute(
                "SELECT id, name, description, extra FROM concepts WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                alias = self._conn.execute(
                    "SELECT c.id, c.name, c.description, c.extra FROM concept_aliases a"
                    " JOIN concepts c ON c.id = a.concept_id WHERE a.alias = ?", (name,)
                ).fetchone()
                row = alias
            if row is None:
                return None
            aliases = [a for (a,) in self._conn.execute(
                "SELECT alias FROM concept_aliases WHERE concept_id = ? AND alias != ? ORDER BY alias",
                (row[0], row[1]),
            )]
            return {"name": row[1], "description": row[2], "aliases": aliases, "extra": _json(row[3], {})}
        if self._conn.execute("SELECT 1 FROM keyphrases WHERE phrase = ? LIMIT 1", (name,)).fetchone():
            return {"name": name, "description": None, "aliases": [], "extra": {}}
        return None

    def page_concept_records(self, name: str, limit: int = -1, offset: int = 0) -> list[str]:
        return [r[0] for r in self._conn.execute(
            f"SELECT r.id FROM records r WHERE r.id IN ({self._concept_records_sql()})"
            f" ORDER BY {SORTS['newest']} LIMIT ? OFFSET ?", (name, self._limit(limit), offset)
        )]

    # --- topics and areas ---------------------------------------------------------------

    def page_topics(self) -> list[dict[str, Any]]:
        return [
            {"id": r[0], "label": r[1], "area": r[2], "size": r[3], "description": r[4], "extra": _json(r[5], {})}
            for r in self._conn.execute(
                "SELECT id, label, area, size, description, extra FROM topics ORDER BY size DESC, id"
            )
        ]

    def page_topic(self, topic_id: int) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT id, label, area, size, description, extra FROM topics WHERE id = ?", (topic_id,)
        ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "label": row[1], "area": row[2], "size": row[3], "description": row[4],
                "extra": _json(row[5], {})}

    def page_topic_records(self, topic_id: int, limit: int = -1, offset: int = 0) -> list[str]:
        return [r[0] for r in self._conn.execute(
            "SELECT r.id FROM records r JOIN record_topics rt ON rt.record_id = r.id"
            f" WHERE rt.topic_id = ? ORDER BY rt.is_outlier, {SORTS['newest']} LIMIT ? OFFSET ?",
            (topic_id, self._limit(limit), offset)
        )]

    def page_areas(self) -> list[dict[str, Any]]:
        """Every area records carry (given or predicted), with its description when built."""
        described = {
            n: (d, _json(e, {})) for n, d, e in self._conn.execute("SELECT name, description, extra FROM areas")
        }
        rows = self._conn.execute(
            "SELECT area, count(*), sum(CASE WHEN kind = 'paper' THEN 1 ELSE 0 END), sum(CASE WHEN area_source = 'predicted' THEN 1 ELSE 0 END) FROM records"
            " WHERE area IS NOT NULL GROUP BY area ORDER BY 2 DESC, 1"
        ).fetchall()
        return [
            {"name": a, "count": n, "papers": p, "predicted": q or 0,
             "description": described.get(a, (None, {}))[0]}
            for a, n, p, q in rows
        ]

    def page_area_records(self, name: str, limit: int = -1, offset: int = 0) -> list[str]:
        return [r[0] for r in self._conn.execute(
            f"SELECT r.id FROM records r WHERE {self._sql.nocase_equals('r.area')}"
            f" ORDER BY {SORTS['newest']} LIMIT ? OFFSET ?", (name, self._limit(limit), offset)
        )]

    def page_area_topics(self, name: str) -> list[dict[str, Any]]:
        return [
            {"id": t, "label": label, "count": n}
            for t, label, n in self._conn.execute(
                "SELECT t.id, t.label, count(*) FROM record_topics rt JOIN topics t ON t.id = rt.topic_id"
                " JOIN records r ON r.id = rt.record_id WHERE lower(r.area) = lower(?)"
                " GROUP BY t.id ORDER BY 3 DESC, 2 LIMIT 20", (name,)
            )
        ]

    # --- authors ------------------------------------------------------------------------

    def page_authors(self, limit: int, offset: int = 0, prefix: str | None = None) -> tuple[list[dict[str, Any]], int]:
        like = (prefix or "").lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        total = self._conn.execute(
            "SELECT count(*) FROM authors WHERE key LIKE ? ESCAPE '\\'"
            " AND id IN (SELECT author_id FROM authorship)", (like,)
        ).fetchone()[0]
        rows = self._conn.execute(
            "SELECT au.key, au.name, count(*) AS n FROM authors au JOIN authorship a ON a.author_id = au.id"
            " WHERE au.key LIKE ? ESCAPE '\\' GROUP BY au.id ORDER BY n DESC, au.key LIMIT ? OFFSET ?",
            (like, limit, offset),
        ).fetchall()
        return [{"key": r[0], "name": r[1], "count": r[2]} for r in rows], total

    def page_author(self, key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT id, key, name FROM authors WHERE key = ?", (key,)).fetchone()
        return None if row is None else {"key": row[1], "name": row[2]}

    def page_author_records(self, key: str) -> list[str]:
        return [r[0] for r in self._conn.execute(
            "SELECT r.id FROM records r WHERE r.id IN (SELECT a.record_id FROM authorship a"
            f" JOIN authors au ON au.id = a.author_id WHERE au.key = ?) ORDER BY {SORTS['newest']}", (key,)
        )]

    def page_coauthors(self, key: str, limit: int = 20) -> list[dict[str, Any]]:
        return [
            {"key": k, "name": n, "count": c}
            for k, n, c in self._conn.execute(
                "SELECT au.key, au.name, count(DISTINCT a.record_id) AS c FROM authorship a"
                " JOIN authors au ON au.id = a.author_id WHERE a.record_id IN ("
                "  SELECT a2.record_id FROM authorship a2 JOIN authors me ON me.id = a2.author_id"
                "  WHERE me.key = ?) AND au.key != ? GROUP BY au.id ORDER BY c DESC, au.key LIMIT ?",
                (key, key, limit),
            )
        ]

    def page_coauthor_edges(self, keys: list[str]) -> list[tuple[str, str, int]]:
        """Pairs of the given authors who wrote together, with how many records they share."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        return [
            (a, b, n)
            for a, b, n in self._conn.execute(
                f"SELECT x.key, y.key, count(DISTINCT ax.record_id) FROM authorship ax"
                f" JOIN authors x ON x.id = ax.author_id JOIN authorship ay ON ay.record_id = ax.record_id"
                f" JOIN authors y ON y.id = ay.author_id WHERE x.key IN ({marks}) AND y.key IN ({marks})"
                f" AND x.key < y.key GROUP BY x.key, y.key", [*keys, *keys]
            )
        ]

    # --- map and trends -------------------------------------------------------------------

    def page_map_points(self) -> list[tuple[Any, ...]]:
        """(id, x, y, kind, area, topic_id, title) of every record placed on the map."""
        return self._conn.execute(
            "SELECT m.record_id, m.x, m.y, r.kind, r.area, rt.topic_id, r.display_title FROM map_coords m"
            " JOIN records r ON r.id = m.record_id LEFT JOIN record_topics rt ON rt.record_id = m.record_id"
            " ORDER BY m.record_id"
        ).fetchall()

    def page_map_columns(self, batch: int = 65536) -> Iterator[list[tuple[Any, ...]]]:
        """(rowid, x, y, kind, area, topic_id) of every placed record in batches, by records.rowid:
        the map's row order, which the binary point file and the row lookups share."""
        cur = self._conn.execute(
            "SELECT r.rowid, m.x, m.y, r.kind, r.area, rt.topic_id FROM map_coords m"
            " JOIN records r ON r.id = m.record_id LEFT JOIN record_topics rt ON rt.record_id = m.record_id"
            " ORDER BY r.rowid"
        )
        while rows := cur.fetchmany(batch):
            yield rows

    def page_map_rows(self, numbers: list[int]) -> dict[int, tuple[str, str, str]]:
        """Record number (records.rowid here: a backend's stable integer per record) -> (id, title,
        kind) of the given records."""
        out: dict[int, tuple[str, str, str]] = {}
        for start in range(0, len(numbers), _CHUNK):
            chunk = numbers[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for rowid, rid, title, kind in self._conn.execute(
                f"SELECT rowid, id, display_title, kind FROM records WHERE rowid IN ({marks})", chunk
            ):
                out[rowid] = (rid, title, kind)
        return out

    def page_map_title_matches(self, text: str, limit: int) -> tuple[list[int], int]:
        """rowids (ascending, at most `limit`) of placed records whose title contains `text`
        (case-insensitive for ASCII), and how many there are in all."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = f"FROM records r JOIN map_coords m ON m.record_id = r.id WHERE r.display_title {self._sql.like} ? ESCAPE '\\'"
        total = self._conn.execute(f"SELECT count(*) {where}", (pattern,)).fetchone()[0]
        rows = [r for (r,) in self._conn.execute(f"SELECT r.rowid {where} ORDER BY r.rowid LIMIT ?", (pattern, limit))]
        return rows, total

    def page_topic_centres(self) -> list[dict[str, Any]]:
        return [
            {"id": t, "label": label, "x": x, "y": y, "size": n}
            for t, label, x, y, n in self._conn.execute(
                "SELECT t.id, t.label, avg(m.x), avg(m.y), count(*) FROM record_topics rt"
                " JOIN topics t ON t.id = rt.topic_id JOIN map_coords m ON m.record_id = rt.record_id"
                " WHERE rt.is_outlier = 0 GROUP BY t.id ORDER BY t.id"
            )
        ]

    def page_concept_year_counts(self, names: list[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {n: {} for n in names}
        if not names:
            return out
        marks = ",".join("?" * len(names))
        if self._concepts_built():
            sql = (
                "SELECT c.name, substr(r.date, 1, 4), count(DISTINCT r.id) FROM record_concepts rc"
                " JOIN concepts c ON c.id = rc.concept_id JOIN records r ON r.id = rc.record_id"
                f" WHERE c.name IN ({marks}) AND r.date IS NOT NULL GROUP BY 1, 2"
            )
        else:
            sql = (
                "SELECT k.phrase, substr(r.date, 1, 4), count(DISTINCT r.id) FROM keyphrases k"
                f" JOIN records r ON r.id = k.record_id WHERE k.phrase IN ({marks})"
                " AND r.date IS NOT NULL GROUP BY 1, 2"
            )
        for name, year, n in self._conn.execute(sql, names):
            out[name][year] = n
        return out

    def page_topic_year_counts(self) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = {}
        for t, year, n in self._conn.execute(
            "SELECT rt.topic_id, substr(r.date, 1, 4), count(*) FROM record_topics rt"
            " JOIN records r ON r.id = rt.record_id WHERE r.date IS NOT NULL GROUP BY 1, 2"
        ):
            out.setdefault(t, {})[year] = n
        return out

    def page_last_build(self) -> dict[str, Any] | None:
        """What the latest `landscape build` ran, step by step (None before the first build)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'last_build'").fetchone()
        return _json(row[0], None) if row else None
