"""Sync cursors, record identifiers and citation links.

Every identifier a service gives a record (arxiv, doi, inspire, bibcode, openalex, s2) is a
key `scheme:value` in record_keys, so the same paper from another service finds its record.
References are citation targets: one row per cited work, deduplicated by the same keys (and
`title:` a normalised title), pointing at a record once one matches, whichever arrives first.
A target without a record is counted, never shown as a paper.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from ..models import Record
from ..text import normalise_title
from .db import now_iso

ID_SCHEMES = ("arxiv", "doi", "inspire", "bibcode", "openalex", "s2")


def record_keys(rec: Record) -> list[str]:
    """The keys a record is known by, strongest first (arXiv id, DOI, service ids, title)."""
    keys = []
    prefix = rec.id.split(":", 1)[0]
    if prefix in ("arxiv", "doi"):
        keys.append(rec.id)
    for scheme in ID_SCHEMES:
        value = rec.extra.get(scheme)
        if isinstance(value, str) and value:
            keys.append(f"{scheme}:{value.lower() if scheme == 'doi' else value}")
    for value in rec.extra.get("dois") or []:
        keys.append(f"doi:{str(value).lower()}")
    if rec.title and not rec.title_derived and rec.kind == "paper":
        norm = normalise_title(rec.title)
        if norm:
            keys.append(f"title:{norm}")
    return list(dict.fromkeys(keys))


def reference_keys(ids: dict[str, str], title: str | None) -> list[str]:
    keys = [f"{s}:{ids[s].lower() if s == 'doi' else ids[s]}" for s in ID_SCHEMES if ids.get(s)]
    norm = normalise_title(title or "")
    if norm and len(norm) > 12:  # short titles ("Introduction") would match unrelated works
        keys.append(f"title:{norm}")
    return keys


class SyncMixin:
    _conn: sqlite3.Connection

    # --- cursors -------------------------------------------------------------------------

    def sync_state(self, source: str) -> dict[str, Any]:
        if not self._has_sync_tables():
            return {}
        row = self._conn.execute("SELECT cursor FROM sync_cursors WHERE source = ?", (source,)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_sync_state(self, source: str, state: dict[str, Any], records: int = 0) -> None:
        """Written in the page's transaction: the cursor moves only with the page's records."""
        self._conn.execute(
            "INSERT INTO sync_cursors (source, cursor, pages, records, updated_at) VALUES (?, ?, 1, ?, ?)"
            " ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor, pages = sync_cursors.pages + 1,"
            " records = sync_cursors.records + excluded.records, updated_at = excluded.updated_at",
            (source, json.dumps(state, sort_keys=True), records, now_iso()),
        )

    def sync_sources(self) -> list[dict[str, Any]]:
        if not self._has_sync_tables():
            return []
        return [
            {"source": r[0], "cursor": json.loads(r[1]), "pages": r[2], "records": r[3], "updated_at": r[4]}
            for r in self._conn.execute(
                "SELECT source, cursor, pages, records, updated_at FROM sync_cursors ORDER BY source"
            )
        ]

    # --- identity ------------------------------------------------------------------------

    def resolve_record_id(self, rec: Record) -> str | None:
        """The id of the stored record this one is (by any of its ids, then by title), if any."""
        for key in record_keys(rec):
            if key.startswith("title:"):
                row = self._conn.execute(
                    "SELECT id FROM records WHERE norm_title = ? AND kind = ? LIMIT 1", (key[6:], rec.kind)
                ).fetchone()
            else:
                row = self._conn.execute("SELECT record_id FROM record_keys WHERE key = ?", (key,)).fetchone()
                if row is None and key.split(":", 1)[0] in ("arxiv", "doi"):
                    row = self._conn.execute("SELECT id FROM records WHERE id = ?", (key,)).fetchone()
            if row is not None:
                return row[0]
        return None

    def add_record_keys(self, records: Iterable[Record]) -> None:
        """Remember every id of these (stored) records; a key already taken keeps its record."""
        self._conn.executemany(
            "INSERT INTO record_keys (key, record_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(k, rec.id) for rec in records for k in record_keys(rec) if not k.startswith("title:")],
        )

    # --- citations -----------------------------------------------------------------------

    def add_citations(self, citing_id: str, references: list[tuple[dict[str, str], str | None]]) -> int:
        """Link a record to what it cites (ids and title of each reference); returns links added.
        Each reference becomes (or joins) one citation target, matched to a record if one has
        any of its keys."""
        added = 0
        for position, (ids, title) in enumerate(references):
            keys = reference_keys(ids, title)
            if not keys:
                continue
            target = self._citation_target(keys, ids, title)
            if target is None:
                continue
            cur = self._conn.execute(
                "INSERT INTO citations (citing_id, target_id, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (citing_id, target, position),
            )
            added += cur.rowcount
            if cur.rowcount:
                row = self._conn.execute("SELECT record_id FROM citation_targets WHERE id = ?", (target,)).fetchone()
                self.mark_citations_stale([citing_id, *([row[0]] if row and row[0] else [])])
        return added

    def _citation_target(self, keys: list[str], ids: dict[str, str], title: str | None) -> int | None:
        marks = ",".join("?" * len(keys))
        row = self._conn.execute(
            f"SELECT target_id FROM citation_target_keys WHERE key IN ({marks}) LIMIT 1", keys
        ).fetchone()
        if row is None:
            target = self._conn.execute(
                "INSERT INTO citation_targets (record_id, title, ids) VALUES (?, ?, ?) RETURNING id",
                (self._record_for_keys(keys), title, json.dumps(ids, sort_keys=True)),
            ).fetchone()[0]
        else:
            target = row[0]
            old_ids, old_title, record_id = self._conn.execute(
                "SELECT ids, title, record_id FROM citation_targets WHERE id = ?", (target,)
            ).fetchone()
            merged = {**ids, **json.loads(old_ids)}
            self._conn.execute(
                "UPDATE citation_targets SET ids = ?, title = ?, record_id = ? WHERE id = ?",
                (json.dumps(merged, sort_keys=True), old_title or title,
                 record_id or self._record_for_keys(keys), target),
            )
        self._conn.executemany(
            "INSERT INTO citation_target_keys (key, target_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(k, target) for k in keys],
        )
        return target

    def _record_for_keys(self, keys: list[str]) -> str | None:
        for key in keys:
            scheme, value = key.split(":", 1)
            if scheme == "title":
                row = self._conn.execute(
                    "SELECT id FROM records WHERE norm_title = ? AND kind = 'paper' LIMIT 1", (value,)
                ).fetchone()
            else:
                row = self._conn.execute("SELECT record_id FROM record_keys WHERE key = ?", (key,)).fetchone()
                if row is None and scheme in ("arxiv", "doi"):
                    row = self._conn.execute("SELECT id FROM records WHERE id = ?", (key,)).fetchone()
            if row is not None:
                return row[0]
        return None

    def link_citation_targets(self, records: Iterable[Record]) -> int:
        """Point the citation targets these records match (by any key) at them: a cited work
        that arrives after the papers citing it becomes their reference in the corpus."""
        linked = 0
        for rec in records:
            keys = record_keys(rec)
            if not keys:
                continue
            marks = ",".join("?" * len(keys))
            citers = [r[0] for r in self._conn.execute(
                "SELECT c.citing_id FROM citations c JOIN citation_targets t ON t.id = c.target_id"
                f" WHERE t.record_id IS NULL AND t.id IN (SELECT target_id FROM citation_target_keys WHERE key IN ({marks}))",
                keys,
            )]
            now = self._conn.execute(
                "UPDATE citation_targets SET record_id = ? WHERE record_id IS NULL AND id IN"
                f" (SELECT target_id FROM citation_target_keys WHERE key IN ({marks}))",
                [rec.id, *keys],
            ).rowcount
            if now:
                self.mark_citations_stale([rec.id, *citers])
            linked += now
        return linked

    def citation_view(self, record_id: str) -> dict[str, Any]:
        """`references` (every reference with the ids known for it and its record id when it is
        in the corpus) and `cited_by` (ids of records citing this one), for show and the API.
        Records written by `landscape ingest` after the citations are matched here by key."""
        if not self._has_sync_tables():
            return {"references": [], "cited_by": []}
        references = []
        for target, rid, title, ids in self._conn.execute(
            "SELECT t.id, t.record_id, t.title, t.ids FROM citations c"
            " JOIN citation_targets t ON t.id = c.target_id WHERE c.citing_id = ? ORDER BY c.position",
            (record_id,),
        ):
            if rid is None:
                keys = [r[0] for r in self._conn.execute(
                    "SELECT key FROM citation_target_keys WHERE target_id = ?", (target,))]
                rid = self._record_for_keys(keys)
            references.append({"ids": json.loads(ids), "title": title, "record_id": rid})
        rec = self.get_record(record_id)  # type: ignore[attr-defined]
        keys = record_keys(rec) if rec else []
        marks = ",".join("?" * len(keys)) or "NULL"
        cited_by = sorted({
            r[0] for r in self._conn.execute(
                "SELECT c.citing_id FROM citations c JOIN citation_targets t ON t.id = c.target_id"
                f" WHERE t.record_id = ? OR (t.record_id IS NULL AND t.id IN"
                f" (SELECT target_id FROM citation_target_keys WHERE key IN ({marks})))",
                [record_id, *keys],
            ) if r[0] != record_id
        })
        return {"references": references, "cited_by": cited_by}

    def citation_edges(self) -> list[tuple[str, int, str | None]]:
        """Every citation link as (citing record, target, the record the target is, or None):
        the targets matched when the link was stored, and those a record written later (by
        `landscape ingest` too) matches by one of its keys. One pass over the links."""
        if not self._has_sync_tables():
            return []
        return [tuple(r) for r in self._conn.execute(
            f"WITH {_RESOLVED} SELECT c.citing_id, c.target_id, r.rid FROM citations c"
            " LEFT JOIN (SELECT tid, min(rid) AS rid FROM resolved GROUP BY tid) r ON r.tid = c.target_id"
            " ORDER BY c.citing_id, c.target_id"
        )]

    def cited_counts(self, ids: Iterable[str]) -> dict[str, int]:
        """How many other records of the corpus cite each of these records (those cited at all)."""
        ids = list(ids)
        if not ids or not self._has_sync_tables():
            return {}
        out: dict[str, int] = {}
        for start in range(0, len(ids), 300):
            chunk = ids[start : start + 300]
            marks = ",".join("?" * len(chunk))
            out.update(self._conn.execute(
                f"WITH {_resolved_for(marks)} SELECT r.rid, count(DISTINCT c.citing_id) FROM resolved r"
                " JOIN citations c ON c.target_id = r.tid WHERE c.citing_id != r.rid GROUP BY r.rid",
                chunk * 4,
            ).fetchall())
        return out

    def mark_citations_stale(self, ids: Iterable[str]) -> None:
        """Citation links touching these records changed: their connections are recomputed by the
        next build, as for a record whose content changed."""
        self._conn.executemany("DELETE FROM connection_state WHERE record_id = ?", [(i,) for i in set(ids)])

    def has_citations(self) -> bool:
        return self._has_sync_tables() and self._conn.execute("SELECT 1 FROM citations LIMIT 1").fetchone() is not None

    def citation_counts(self) -> dict[str, int]:
        if not self._has_sync_tables():
            return {"links": 0, "targets": 0, "in_corpus": 0}
        links, targets, in_corpus = self._conn.execute(
            "SELECT (SELECT count(*) FROM citations), (SELECT count(*) FROM citation_targets),"
            " (SELECT count(*) FROM citation_targets WHERE record_id IS NOT NULL)"
        ).fetchone()
        return {"links": links, "targets": targets, "in_corpus": in_corpus}

    def _has_sync_tables(self) -> bool:
        """A store opened read-only before this migration ran has no sync tables yet."""
        return self._has_table("citations")  # type: ignore[attr-defined]


def _resolved_for(marks: str | None) -> str:
    """A CTE `resolved(tid, rid)`: each citation target and the record it is (of the records
    `marks` stands for, or of all). Linked targets, then unlinked ones by a record's stored key,
    its id (arXiv or DOI) or its normalised title."""
    only = "" if marks is None else f" AND {{col}} IN ({marks})"
    return (
        "resolved(tid, rid) AS ("
        f" SELECT id, record_id FROM citation_targets WHERE record_id IS NOT NULL{only.format(col='record_id')}"
        " UNION SELECT k.target_id, rk.record_id FROM citation_targets t"
        " JOIN citation_target_keys k ON k.target_id = t.id JOIN record_keys rk ON rk.key = k.key"
        f" WHERE t.record_id IS NULL{only.format(col='rk.record_id')}"
        " UNION SELECT k.target_id, r.id FROM citation_targets t"
        " JOIN citation_target_keys k ON k.target_id = t.id JOIN records r ON r.id = k.key"
        f" WHERE t.record_id IS NULL{only.format(col='r.id')}"
        " UNION SELECT k.target_id, r.id FROM records r"
        " JOIN citation_target_keys k ON k.key = 'title:' || r.norm_title"
        " JOIN citation_targets t ON t.id = k.target_id"
        f" WHERE t.record_id IS NULL AND r.kind = 'paper'{only.format(col='r.id')})"
    )


_RESOLVED = _resolved_for(None)
