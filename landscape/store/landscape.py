"""Store queries for the landscape part of Landscape: topics, map, trends, talk links, authors.

All SQL of those steps lives here. Concepts are read from `record_concepts` once the concepts
step has run, and from the given/predicted keyphrases before that, so every landscape step
works on a store that has only been ingested and embedded.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from .db import now_iso

_CHUNK = 500


class LandscapeMixin:
    _conn: sqlite3.Connection

    # --- artifacts (fitted models, computed tables) -------------------------------------

    def ls_put_artifact(self, name: str, value: bytes) -> None:
        self._conn.execute(
            "INSERT INTO artifacts (name, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (name, bytes(value), now_iso()),
        )

    def ls_get_artifact(self, name: str) -> bytes | None:
        row = self._conn.execute("SELECT value FROM artifacts WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def ls_put_json_artifact(self, name: str, value: Any) -> None:
        self.ls_put_artifact(name, json.dumps(value, sort_keys=True).encode())

    def ls_get_json_artifact(self, name: str) -> Any:
        """The JSON stored under `name`; None where nothing is, or what is there is not JSON (damage,
        a planted pickle), so the step that writes it computes it anew."""
        raw = self.ls_get_artifact(name)
        try:
            return None if raw is None else json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return None

    # --- what the landscape steps read ---------------------------------------------------

    def ls_rows(self) -> list[dict[str, Any]]:
        """id, kind, title, abstract, area (given or predicted), area_source, date of every record."""
        return [
            dict(r)
            for r in self._conn.execute(
                "SELECT id, kind, display_title AS title, abstract, area, area_source, date, content_hash"
                " FROM records ORDER BY id"
            )
        ]

    def ls_brief_rows(self) -> list[dict[str, Any]]:
        """`ls_rows` without the abstracts: what steps that read every record keep in memory."""
        return [
            dict(r)
            for r in self._conn.execute(
                "SELECT id, kind, display_title AS title, area, area_source, date, content_hash"
                " FROM records ORDER BY id"
            )
        ]

    def ls_kinds_and_hashes(self) -> dict[str, tuple[str, str]]:
        """id -> (kind, content hash) of every record, from the records_brief index alone."""
        return {r[0]: (r[1], r[2]) for r in self._conn.execute("SELECT id, kind, content_hash FROM records")}

    def ls_texts(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """id -> (title, abstract) of the given records, read a chunk at a time."""
        ids = list(ids)
        out: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            out.update(
                (r[0], (r[1] or "", r[2] or ""))
                for r in self._conn.execute(
                    f"SELECT id, display_title, abstract FROM records WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
            )
        return out

    def ls_paper_dates(self) -> list[tuple[str, str | None]]:
        """(id, date) of every paper: what trends read, without the texts of `ls_rows`."""
        return [tuple(r) for r in self._conn.execute("SELECT id, date FROM records WHERE kind = 'paper' ORDER BY id")]

    def ls_concepts_built(self) -> bool:
        return self._conn.execute("SELECT 1 FROM record_concepts LIMIT 1").fetchone() is not None

    def ls_record_concept_names(self, ids: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Each record's concepts, strongest first (record_concepts, else keyphrases)."""
        if self.ls_concepts_built():
            sql = (
                "SELECT rc.record_id, c.name FROM record_concepts rc JOIN concepts c ON c.id = rc.concept_id"
                " {where} GROUP BY rc.record_id, c.id ORDER BY rc.record_id, max(rc.weight) DESC, c.name"
            )
            column = "rc.record_id"
        else:
            sql = "SELECT record_id, phrase FROM keyphrases {where} ORDER BY record_id, position"
            column = "record_id"
        out: dict[str, list[str]] = {}
        if ids is None:
            for rid, name in self._conn.execute(sql.format(where="")):
                if name not in out.setdefault(rid, []):
                    out[rid].append(name)
            return out
        ids = list(ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            where = f"WHERE {column} IN ({','.join('?' * len(chunk))})"
            for rid, name in self._conn.execute(sql.format(where=where), chunk):
                if name not in out.setdefault(rid, []):
                    out[rid].append(name)
        return out

    def ls_concept_memberships(self) -> tuple[dict[Any, str], Iterator[tuple[str, Any]]]:
        """Every record's concepts (record_concepts, else keyphrases) as (record, concept key)
        rows, streamed unordered and possibly repeated, and each key's name: for readers that
        only count members, without the sort that ordering by strength costs, nor a join of ten
        million rows to their names (which tripled the read)."""
        if self.ls_concepts_built():
            names = dict(self._conn.execute("SELECT id, name FROM concepts"))
            return names, self._rows_when_read("SELECT record_id, concept_id FROM record_concepts")
        phrases = {p: p for (p,) in self._conn.execute("SELECT DISTINCT phrase FROM keyphrases")}
        return phrases, self._rows_when_read("SELECT record_id, phrase FROM keyphrases")

    def _rows_when_read(self, sql: str) -> Iterator[tuple[str, Any]]:
        """The query's rows, the query run at the first read: a caller that only needs the names
        (its build held the memberships) never runs it, which on PostgreSQL, whose cursor fetches
        every row at once, would move ten million rows for nothing."""
        yield from self._conn.execute(sql)

    def ls_concepts_signature(self) -> str:
        """Changes whenever the concepts or keyphrases of any record change."""
        a = self._conn.execute("SELECT count(*), coalesce(sum(weight), 0.0), coalesce(sum(concept_id), 0) FROM record_concepts").fetchone()
        b = self._conn.execute("SELECT count(*), coalesce(sum(length(phrase)), 0) FROM keyphrases").fetchone()
        return f"{(int(a[0]), float(a[1]), float(a[2]))}{(int(b[0]), float(b[1]))}"  # as SQLite's total() wrote it

    def ls_concept_vocabulary(self) -> dict[str, list[str]]:
        """Concept name -> the surface forms (aliases) that name it in text."""
        if self.ls_concepts_built():
            vocab: dict[str, list[str]] = {
                n: [n] for (n,) in self._conn.execute(
                    "SELECT DISTINCT c.name FROM concepts c JOIN record_concepts rc ON rc.concept_id = c.id"
                )
            }
            for alias, name in self._conn.execute(
                "SELECT a.alias, c.name FROM concept_aliases a JOIN concepts c ON c.id = a.concept_id"
            ):
                if name in vocab and alias not in vocab[name]:
                    vocab[name].append(alias)
            return vocab
        return {p: [p] for (p,) in self._conn.execute("SELECT DISTINCT phrase FROM keyphrases")}

    # --- topics ----------------------------------------------------------------------------

    def ls_replace_topics(self, topics: list[dict[str, Any]], assignments: list[tuple[str, int, bool, float]]) -> None:
        """Every topic anew: [{id, label, area, size, description, extra}], (record, topic, outlier, score)."""
        self._conn.execute("DELETE FROM record_topics")
        self._conn.execute("DELETE FROM topics")
        self._conn.executemany(
            "INSERT INTO topics (id, label, area, size, description, extra) VALUES (?,?,?,?,?,?)",
            [
                (t["id"], t["label"], t.get("area"), t["size"], t.get("description"),
                 json.dumps(t.get("extra") or {}, sort_keys=True))
                for t in topics
            ],
        )
        self.ls_put_record_topics(assignments)

    def ls_put_record_topics(self, assignments: Iterable[tuple[str, int, bool, float]]) -> None:
        self._conn.executemany(
            "INSERT INTO record_topics (record_id, topic_id, is_outlier, score) VALUES (?,?,?,?)"
            " ON CONFLICT(record_id) DO UPDATE SET topic_id = excluded.topic_id,"
            " is_outlier = excluded.is_outlier, score = excluded.score",
            [(rid, int(t), int(bool(o)), float(s)) for rid, t, o, s in assignments],
        )

    def ls_refresh_topic_sizes(self) -> None:
        self._conn.execute(
            "UPDATE topics SET size = (SELECT count(*) FROM record_topics rt WHERE rt.topic_id = topics.id)"
        )

    def ls_topic_assignments(self) -> dict[str, tuple[int, bool, float]]:
        return {
            rid: (t, bool(o), s)
            for rid, t, o, s in self._conn.execute("SELECT record_id, topic_id, is_outlier, score FROM record_topics")
        }

    def ls_topic_rows(self) -> list[dict[str, Any]]:
        return [
            {"id": r[0], "label": r[1], "area": r[2], "size": r[3], "description": r[4],
             "extra": json.loads(r[5] or "{}")}
            for r in self._conn.execute(
                "SELECT id, label, area, size, description, extra FROM topics ORDER BY size DESC, id"
            )
        ]

    def ls_delete_stale_topic_rows(self, keep: Iterable[str]) -> int:
        """Drop assignments of records that no longer have embeddings (records are cascaded)."""
        keep = set(keep)
        stale = [rid for rid in self.ls_topic_assignments() if rid not in keep]
        self._conn.executemany("DELETE FROM record_topics WHERE record_id = ?", [(r,) for r in stale])
        return len(stale)

    # --- map ------------------------------------------------------------------------------

    def ls_put_map_coords(self, rows: Iterable[tuple[str, float, float]], replace: bool = False) -> None:
        if replace:
            self._conn.execute("DELETE FROM map_coords")
        self._conn.executemany(
            "INSERT INTO map_coords (record_id, x, y) VALUES (?,?,?)"
            " ON CONFLICT(record_id) DO UPDATE SET x = excluded.x, y = excluded.y",
            [(rid, float(x), float(y)) for rid, x, y in rows],
        )

    def ls_map_coords(self) -> dict[str, tuple[float, float]]:
        return {rid: (x, y) for rid, x, y in self._conn.execute("SELECT record_id, x, y FROM map_coords")}

    def ls_unplaced_ids(self) -> set[str]:
        """Records not on the map yet (what an incremental map step places)."""
        return {r[0] for r in self._conn.execute(
            "SELECT id FROM records WHERE NOT EXISTS (SELECT 1 FROM map_coords m WHERE m.record_id = records.id)"
        )}

    # --- talks ---------------------------------------------------------------------------

    def ls_talk_sections(self) -> list[dict[str, Any]]:
        """Every section of every talk: record_id, position, title, text, the talk's content hash."""
        return [
            dict(r)
            for r in self._conn.execute(
                "SELECT s.record_id, s.position, s.title, s.text, s.summary, r.content_hash"
                " FROM sections s JOIN records r ON r.id = s.record_id"
                " WHERE r.kind = 'talk' ORDER BY s.record_id, s.position"
            )
        ]

    def ls_replace_section_links(self, record_id: str, links: dict[int, list[dict[str, Any]]]) -> None:
        self._conn.execute("DELETE FROM section_links WHERE record_id = ?", (record_id,))
        self._conn.executemany(
            "INSERT INTO section_links (record_id, section, rank, other_id, score, reasons) VALUES (?,?,?,?,?,?)",
            [
                (record_id, section, rank, link["id"], float(link["score"]), json.dumps(link["reasons"]))
                for section, items in links.items()
                for rank, link in enumerate(items)
            ],
        )

    def ls_section_links(self, record_id: str) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for section, other, title, score, reasons in self._conn.execute(
            "SELECT l.section, l.other_id, r.display_title, l.score, l.reasons FROM section_links l"
            " JOIN records r ON r.id = l.other_id WHERE l.record_id = ? ORDER BY l.section, l.rank",
            (record_id,),
        ):
            out.setdefault(section, []).append(
                {"id": other, "title": title, "score": round(score, 4), "reasons": json.loads(reasons)}
            )
        return out

    def ls_all_section_links(self) -> list[tuple[str, int, str]]:
        return [tuple(r) for r in self._conn.execute("SELECT record_id, section, other_id FROM section_links")]

    def ls_talk_sections_view(self, record_id: str) -> list[dict[str, Any]]:
        """What `show TALK` lists: each section's title, summary and the papers it discusses."""
        links = self.ls_section_links(record_id)
        return [
            {"title": title, "summary": summary, "related": links.get(position, [])}
            for position, title, summary in self._conn.execute(
                "SELECT position, title, summary FROM sections WHERE record_id = ? ORDER BY position",
                (record_id,),
            )
        ]

    def ls_record_place(self, record_id: str) -> dict[str, Any]:
        """Where a record sits in the landscape: its topic (flagged when an outlier) and map point."""
        topic = self._conn.execute(
            "SELECT t.id, t.label, rt.is_outlier FROM record_topics rt JOIN topics t ON t.id = rt.topic_id"
            " WHERE rt.record_id = ?", (record_id,)
        ).fetchone()
        point = self._conn.execute("SELECT x, y FROM map_coords WHERE record_id = ?", (record_id,)).fetchone()
        return {
            "topic": None if topic is None else {"id": topic[0], "label": topic[1], "is_outlier": bool(topic[2])},
            "map": None if point is None else {"x": point[0], "y": point[1]},
        }

    # --- authors ---------------------------------------------------------------------------

    def ls_authorship_rows(self) -> list[tuple[str, int, int, str, str]]:
        """(record_id, position, author_id, name, key) of every authorship, in author order."""
        return [
            tuple(r)
            for r in self._conn.execute(
                "SELECT a.record_id, a.position, au.id, au.name, au.key FROM authorship a"
                " JOIN authors au ON au.id = a.author_id ORDER BY a.record_id, a.position"
            )
        ]

    def ls_truncated_record_ids(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT id FROM records WHERE authors_truncated = 1")}
