"""Store queries for the understanding part of Landscape (all SQL stays in this package).

Concepts, record concepts by source (given | text | predicted), areas and their predictions,
summaries, and the signatures that let a build step skip work that is already done.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from ..batching import batches
from ..models import AreaInput
from .db import now_iso
from .dialect import Dialect


def _json_or_empty(raw: bytes) -> dict[str, Any]:
    """A stored JSON object; anything else (damage, a planted pickle) reads as nothing stored,
    so the step that wrote it redoes its work instead of failing."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}

# NOT EXISTS, not NOT IN (SELECT ...): PostgreSQL hashes a NOT IN subquery only while it fits in
# work_mem and otherwise scans the subquery once per outer row (+1,000 into 100,000 records:
# 180 s of the 184 s concepts step); an anti join either way
ORPHAN_CONCEPTS = ("DELETE FROM concepts WHERE NOT EXISTS"
                   " (SELECT 1 FROM record_concepts rc WHERE rc.concept_id = concepts.id)")


class UnderstandingMixin:
    _conn: sqlite3.Connection
    _sql: Dialect

    # --- build step signatures -----------------------------------------------------------

    def step_signature(self, step: str) -> str | None:
        row = self._conn.execute("SELECT signature FROM build_steps WHERE step = ?", (step,)).fetchone()
        return None if row is None else row[0]

    def set_step_signature(self, step: str, signature: str, info: dict[str, Any] | None = None) -> None:
        self._conn.execute(
            "INSERT INTO build_steps (step, signature, finished_at, info) VALUES (?,?,?,?)"
            " ON CONFLICT(step) DO UPDATE SET signature = excluded.signature,"
            " finished_at = excluded.finished_at, info = excluded.info",
            (step, signature, now_iso(), json.dumps(info or {}, sort_keys=True)),
        )

    def given_phrase_rows(self) -> Iterator[tuple[str, str]]:
        """(record id, phrase) of every given keyphrase, in record and position order, streamed."""
        yield from self._conn.execute(
            "SELECT record_id, phrase FROM keyphrases WHERE source = 'given' ORDER BY record_id, position"
        )

    def record_content_hashes(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT id, content_hash FROM records"))

    def concept_model_blob(self, labels: str) -> bytes | None:
        """The concept model artifact (`landscape.artifacts` bytes) fit on labels with this
        signature, if stored; what it holds is for the caller to check, never to run."""
        row = self._conn.execute("SELECT value FROM artifacts WHERE name = ?", (f"concepts.model:{labels}",)).fetchone()
        return None if row is None else bytes(row[0])

    def put_concept_model(self, labels: str, blob: bytes, records: dict[str, str]) -> None:
        self._conn.execute("DELETE FROM artifacts WHERE name LIKE 'concepts.model:%'")
        self._conn.execute(
            "INSERT INTO artifacts (name, value, updated_at) VALUES (?,?,?)", (f"concepts.model:{labels}", blob, now_iso())
        )
        self.put_concept_model_records(labels, records)

    def concept_model_records(self, labels: str) -> dict[str, str]:
        """record id -> content hash of the records read with the model of these labels."""
        return self._fingerprints("concepts.records", "labels", labels)

    def put_concept_model_records(self, labels: str, records: dict[str, str],
                                  known: dict[str, str] | None = None) -> None:
        """`known`: concept_model_records(labels) as the caller read it (not read again)."""
        self._put_fingerprints("concepts.records", "labels", labels, records, known)

    def _fingerprints(self, artifact: str, key: str, value: str) -> dict[str, str]:
        """record id -> content hash a step last processed, if it ran with this `key` value: one
        row per record in record_marks (a store written before them keeps the marks in the
        artifact's JSON, read until the step next writes them)."""
        row = self._conn.execute("SELECT value FROM artifacts WHERE name = ?", (artifact,)).fetchone()
        saved = {} if row is None else _json_or_empty(bytes(row[0]))
        if saved.get(key) != value:
            return {}
        if "records" in saved:
            return saved["records"] if isinstance(saved["records"], dict) else {}
        return dict(self._conn.execute("SELECT record_id, mark FROM record_marks WHERE name = ?", (artifact,)))

    def _put_fingerprints(self, artifact: str, key: str, value: str, records: dict[str, str],
                          known: dict[str, str] | None = None) -> None:
        """Store the marks: only the rows that changed when the `key` value is the one stored
        (an increment changes a few thousand of a million), all of them otherwise; `known`: the
        marks stored under this value, when the caller has just read them."""
        kept = self._fingerprints(artifact, key, value) if known is None else known
        row = self._conn.execute("SELECT value FROM artifacts WHERE name = ?", (artifact,)).fetchone()
        if row is None or "records" in _json_or_empty(bytes(row[0])) or not kept:
            self._conn.execute("DELETE FROM record_marks WHERE name = ?", (artifact,))
            kept = {}
        self._conn.executemany("DELETE FROM record_marks WHERE name = ? AND record_id = ?",
                               [(artifact, rid) for rid in kept.keys() - records.keys()])
        self._conn.executemany(
            "INSERT INTO record_marks (name, record_id, mark) VALUES (?, ?, ?)"
            " ON CONFLICT (name, record_id) DO UPDATE SET mark = excluded.mark",
            [(artifact, rid, mark) for rid, mark in records.items() if kept.get(rid) != mark],
        )
        self._conn.execute(
            "INSERT INTO artifacts (name, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (artifact, json.dumps({key: value}).encode(), now_iso()),
        )

    # --- concepts -------------------------------------------------------------------------

    def clear_staged_concept_rows(self) -> None:
        """Start staging concept rows batch by batch (a temporary table: nothing in the store
        changes until `replace_concepts` reads them)."""
        self._conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS staged_concept_rows"
            " (record_id TEXT NOT NULL, key TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL, source TEXT NOT NULL)"
        )
        self._conn.execute("DELETE FROM staged_concept_rows")

    def stage_concept_rows(self, rows: Iterable[tuple[str, str, float, str]]) -> None:
        self._conn.executemany("INSERT INTO staged_concept_rows VALUES (?,?,?,?)", rows)

    def replace_concepts(
        self, concepts: list[dict[str, Any]], rows: Iterable[tuple[str, str, float, str]] | None = None
    ) -> None:
        """Write the whole vocabulary and every (record, concept key, weight, source) row:
        `rows`, or the rows staged since `clear_staged_concept_rows` when it is None.

        Concept ids survive rebuilds for concepts whose name is unchanged.
        """
        by_key: dict[str, int] = {}
        names = {c["name"] for c in concepts}
        existing = {name: cid for cid, name in self._conn.execute("SELECT id, name FROM concepts")}
        stale = [cid for name, cid in existing.items() if name not in names]
        self._conn.executemany("DELETE FROM concepts WHERE id = ?", [(cid,) for cid in stale])
        self._conn.execute("DELETE FROM concept_aliases")
        self._conn.execute("DELETE FROM record_concepts")
        for c in concepts:
            extra = json.dumps(c.get("extra") or {}, sort_keys=True)
            if c["name"] in existing:
                cid = existing[c["name"]]
                self._conn.execute("UPDATE concepts SET extra = ? WHERE id = ?", (extra, cid))
            else:
                cid = self._conn.execute(
                    "INSERT INTO concepts (name, extra) VALUES (?, ?) RETURNING id", (c["name"], extra)
                ).fetchone()[0]
            by_key[c["key"]] = cid
            self._conn.executemany(
                "INSERT INTO concept_aliases (alias, concept_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(a, cid) for a in c.get("aliases", []) if a != c["name"]],
            )
        if rows is None:
            self._insert_staged_record_concepts(by_key)
        else:
            self._insert_record_concepts(by_key, rows)

    def _insert_staged_record_concepts(self, by_key: dict[str, int]) -> None:
        """The staged rows, keys turned into concept ids, each (record, concept, source) once
        with its largest weight; SQLite groups them on disk, not in Python."""
        self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS staged_concept_keys (key TEXT PRIMARY KEY, concept_id INTEGER)")
        self._conn.execute("DELETE FROM staged_concept_keys")
        self._conn.executemany("INSERT INTO staged_concept_keys VALUES (?, ?)", by_key.items())
        self._conn.execute(
            "INSERT INTO record_concepts (record_id, concept_id, weight, source)"
            " SELECT s.record_id, k.concept_id, max(s.weight), s.source"
            " FROM staged_concept_rows s JOIN staged_concept_keys k ON k.key = s.key"
            " GROUP BY s.record_id, k.concept_id, s.source"
        )
        self._conn.execute("DELETE FROM staged_concept_rows")
        self._conn.execute("DELETE FROM staged_concept_keys")

    def _insert_record_concepts(self, by_key: dict[str, int], rows: Iterable[tuple[str, str, float, str]]) -> None:
        best: dict[tuple[str, int, str], float] = {}
        for rid, key, weight, source in rows:
            cid = by_key.get(key)
            if cid is not None:
                k = (rid, cid, source)
                best[k] = max(best.get(k, 0.0), weight)
        self._conn.executemany(
            "INSERT INTO record_concepts (record_id, concept_id, weight, source) VALUES (?,?,?,?)",
            [(rid, cid, w, src) for (rid, cid, src), w in sorted(best.items())],
        )

    def update_record_concepts(
        self, record_ids: list[str], concepts: list[dict[str, Any]], rows: Iterable[tuple[str, str, float, str]]
    ) -> None:
        """Replace the concept rows of some records only; add the concepts they bring that the
        store lacks, and drop concepts no record carries any more."""
        self._conn.executemany("DELETE FROM record_concepts WHERE record_id = ?", [(rid,) for rid in record_ids])
        by_key: dict[str, int] = {}
        by_name: dict[str, int] = {}
        for cid, name, key in self._conn.execute(f"SELECT id, name, {self._sql.json_text('extra', 'key')} FROM concepts"):
            by_name[name] = cid
            if key:
                by_key[key] = cid
        for c in concepts:
            if c["key"] in by_key:
                continue
            cid = by_name.get(c["name"])
            if cid is None:
                cid = self._conn.execute(
                    "INSERT INTO concepts (name, extra) VALUES (?, ?) RETURNING id",
                    (c["name"], json.dumps(c.get("extra") or {}, sort_keys=True)),
                ).fetchone()[0]
                self._conn.executemany(
                    "INSERT INTO concept_aliases (alias, concept_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(a, cid) for a in c.get("aliases", []) if a != c["name"]],
                )
            by_key[c["key"]] = cid
        self._insert_record_concepts(by_key, rows)
        self._conn.execute(ORPHAN_CONCEPTS)

    def count_concepts(self) -> int:
        return self._conn.execute("SELECT count(*) FROM concepts").fetchone()[0]

    def list_concepts(self, limit: int | None = None, top_records: int = 3) -> list[dict[str, Any]]:
        """Concepts by how many records carry them: name, count, aliases, description, top records.

        count is the number of distinct records carrying the concept from any source; the
        top records are those that carry it as a given or predicted keyphrase, then by text.
        """
        sql = (
            "SELECT c.id, c.name, c.description, c.extra, count(DISTINCT rc.record_id) AS n"
            " FROM concepts c JOIN record_concepts rc ON rc.concept_id = c.id"
            " GROUP BY c.id ORDER BY n DESC, c.name"
        )
        rows = self._conn.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        aliases = self._aliases([r["id"] for r in rows])
        out = []
        for r in rows:
            out.append({
                "name": r["name"], "count": r["n"], "aliases": aliases.get(r["id"], []),
                "description": r["description"],
                "top_records": self._concept_records(r["id"], top_records),
                "extra": json.loads(r["extra"] or "{}"),
            })
        return out

    def _aliases(self, ids: list[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for alias, cid in self._conn.execute(
                f"SELECT alias, concept_id FROM concept_aliases WHERE concept_id IN ({','.join('?' * len(chunk))})"
                " ORDER BY alias", chunk,
            ):
                out.setdefault(cid, []).append(alias)
        return out

    def _concept_records(self, concept_id: int, limit: int | None) -> list[dict[str, Any]]:
        sql = (
            f"SELECT r.id, r.display_title, r.date, {self._sql.group_concat('rc.source')} AS sources,"
            " max(rc.weight) AS w, max(CASE WHEN rc.source IN ('given', 'predicted') THEN 1 ELSE 0 END) AS labelled"
            " FROM record_concepts rc JOIN records r ON r.id = rc.record_id WHERE rc.concept_id = ?"
            " GROUP BY r.id ORDER BY labelled DESC, w DESC, r.date DESC, r.id"
        )
        rows = self._conn.execute(sql + (" LIMIT ?" if limit else ""), (concept_id, limit) if limit else (concept_id,))
        return [
            {"id": r["id"], "title": r["display_title"], "date": r["date"], "sources": sorted(set(r["sources"].split(",")))}
            for r in rows
        ]

    def concept_id(self, name: str) -> int | None:
        """The concept a name or alias (any case) refers to."""
        text = " ".join(name.lower().split())
        row = self._conn.execute("SELECT id FROM concepts WHERE lower(name) = ?", (text,)).fetchone()
        if row is None:
            row = self._conn.execute("SELECT concept_id FROM concept_aliases WHERE alias = ?", (text,)).fetchone()
        return None if row is None else row[0]

    def get_concept(self, name: str) -> dict[str, Any] | None:
        """A concept by name or alias with every record carrying it."""
        cid = self.concept_id(name)
        if cid is None:
            return None
        row = self._conn.execute("SELECT name, description, extra FROM concepts WHERE id = ?", (cid,)).fetchone()
        records = self._concept_records(cid, None)
        return {
            "name": row["name"], "count": len(records), "aliases": self._aliases([cid]).get(cid, []),
            "description": row["description"], "records": records, "extra": json.loads(row["extra"] or "{}"),
        }

    def record_concepts(
        self, source: str | None = None, record_id: str | None = None
    ) -> dict[str, dict[str, float]]:
        """record id -> {concept name: weight}, for one source (given | text | predicted) or all."""
        clauses, args = [], []
        if source:
            clauses.append("rc.source = ?")
            args.append(source)
        if record_id:
            clauses.append("rc.record_id = ?")
            args.append(record_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        out: dict[str, dict[str, float]] = {}
        for rid, name, weight in self._conn.execute(
            "SELECT rc.record_id, c.name, max(rc.weight) FROM record_concepts rc"
            f" JOIN concepts c ON c.id = rc.concept_id {where}"
            " GROUP BY rc.record_id, c.id ORDER BY rc.record_id, c.name", args,
        ):
            out.setdefault(rid, {})[name] = weight
        return out

    def concept_document_frequency(self, source: str | None = None) -> dict[str, int]:
        """concept name -> number of records carrying it (from one source, or any)."""
        where, args = ("WHERE rc.source = ?", [source]) if source else ("", [])
        return {
            name: n
            for name, n in self._conn.execute(
                "SELECT c.name, count(DISTINCT rc.record_id) FROM record_concepts rc"
                f" JOIN concepts c ON c.id = rc.concept_id {where} GROUP BY c.id", args,
            )
        }

    def undescribed_concepts(self) -> set[str]:
        return {n for (n,) in self._conn.execute("SELECT name FROM concepts WHERE description IS NULL")}

    def set_concept_descriptions(self, descriptions: dict[str, str]) -> None:
        self._conn.executemany(
            "UPDATE concepts SET description = ? WHERE name = ?", [(d, n) for n, d in descriptions.items()]
        )

    # --- areas ----------------------------------------------------------------------------

    def area_model_blob(self, signature: str) -> bytes | None:
        """The stored area model (an artifact, see landscape.artifacts) trained on labels with this
        signature, if any."""
        row = self._conn.execute("SELECT value FROM artifacts WHERE name = ?", (f"area_model:{signature}",)).fetchone()
        return None if row is None else bytes(row[0])

    def set_area_model_blob(self, signature: str, blob: bytes) -> None:
        self._conn.execute("DELETE FROM artifacts WHERE name LIKE 'area_model:%'")
        self._conn.execute(
            "INSERT INTO artifacts (name, value, updated_at) VALUES (?,?,?)",
            (f"area_model:{signature}", blob, now_iso()),
        )

    def area_inputs(self) -> list[AreaInput]:
        """Every record's AreaInput, in id order: a few short fields per record, so deciding what
        to refit and predict never reads every record's text. The author lists are one scan of
        authorship in its own order, names looked up in memory (grouped and joined in SQL: 10.7 s
        of a 1,000-record increment's 17 s at a million records, against 4.5 s)."""
        author = dict(self._conn.execute("SELECT id, name FROM authors"))
        names: dict[str, list[str]] = {}
        for rid, aid in self._conn.execute("SELECT record_id, author_id FROM authorship"):
            names.setdefault(rid, []).append(author[aid])
        return [
            AreaInput(rid, kind, area if source in ("given", "category") else None,
                      source if source in ("given", "category") else None, chash,
                      tuple(sorted(names[rid])) if rid in names else ())
            for rid, kind, area, source, chash in self._conn.execute(
                "SELECT id, kind, area, area_source, content_hash FROM records ORDER BY id"
            )
        ]

    def area_predictions(self) -> dict[str, Any]:
        """{signature, records: {id: fingerprint}}: what the last area run predicted, and with which model."""
        row = self._conn.execute("SELECT value FROM artifacts WHERE name = 'areas.predicted'").fetchone()
        return {} if row is None else _json_or_empty(bytes(row[0]))

    def put_area_predictions(self, signature: str, records: dict[str, str]) -> None:
        self._conn.execute(
            "INSERT INTO artifacts (name, value, updated_at) VALUES ('areas.predicted', ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (json.dumps({"signature": signature, "records": records}, sort_keys=True).encode(), now_iso()),
        )

    def set_areas(self, rows: Iterable[tuple[str, str, str, dict[str, float], list[str]]]) -> None:
        """(record id, area, source given|predicted, probabilities, prediction set) per record."""
        self._conn.executemany(
            "UPDATE records SET area = ?, area_source = ?, area_probabilities = ?, area_set = ? WHERE id = ?",
            [(area, src, json.dumps(p), json.dumps(s), rid) for rid, area, src, p, s in rows],
        )

    def set_area_names(self, areas: dict[str, dict[str, Any]]) -> None:
        """The areas the classifier knows, with facts about each (kept: descriptions)."""
        self._conn.execute(
            f"DELETE FROM areas WHERE name NOT IN ({','.join('?' * len(areas))})", list(areas)
        )
        self._conn.executemany(
            "INSERT INTO areas (name, extra) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET extra = excluded.extra",
            [(name, json.dumps(extra, sort_keys=True)) for name, extra in areas.items()],
        )

    def list_areas(self) -> list[dict[str, Any]]:
        """Areas with their description and how many records are in each (given and predicted)."""
        rows = self._conn.execute(
            "SELECT a.name, a.description, a.extra,"
            " (SELECT count(*) FROM records r WHERE r.area = a.name) AS n,"
            " (SELECT count(*) FROM records r WHERE r.area = a.name AND r.area_source = 'predicted') AS p"
            " FROM areas a ORDER BY n DESC, a.name"
        ).fetchall()
        return [
            {"name": r["name"], "description": r["description"], "count": r["n"], "predicted": r["p"],
             "extra": json.loads(r["extra"] or "{}")}
            for r in rows
        ]

    def set_area_descriptions(self, descriptions: dict[str, str]) -> None:
        self._conn.executemany(
            "UPDATE areas SET description = ? WHERE name = ?", [(d, n) for n, d in descriptions.items()]
        )

    # --- summaries and descriptions --------------------------------------------------------

    def record_summaries(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """id -> summary of every summarised record (of the records `ids` only, when given)."""
        sql = "SELECT id, summary FROM records WHERE summary IS NOT NULL"
        if ids is None:
            return dict(self._conn.execute(sql))
        return {rid: s for chunk in batches(sorted(set(ids)), 500) for rid, s in
                self._conn.execute(sql + f" AND id IN ({','.join('?' * len(chunk))})", chunk)}

    def record_titles(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """id -> display title of every record (of the records `ids` only, when given)."""
        sql = "SELECT id, display_title FROM records"
        rows = self._conn.execute(sql) if ids is None else (
            row for chunk in batches(sorted(set(ids)), 500)
            for row in self._conn.execute(sql + f" WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        return {rid: t or rid for rid, t in rows}

    def summary_fingerprints(self, setting: str) -> dict[str, str]:
        """record id -> content hash summarised last time with this summariser setting."""
        return self._fingerprints("summaries.records", "setting", setting)

    def put_summary_fingerprints(self, setting: str, records: dict[str, str],
                                 known: dict[str, str] | None = None) -> None:
        """`known`: summary_fingerprints(setting) as the caller read it (not read again)."""
        self._put_fingerprints("summaries.records", "setting", setting, records, known)

    def set_summaries(
        self, summaries: dict[str, str | None], sections: Iterable[tuple[str, int, str | None]] = ()
    ) -> None:
        """Record TL;DRs (record id -> text) and talk section summaries (id, position, text)."""
        self._conn.executemany("UPDATE records SET summary = ? WHERE id = ?", [(s, rid) for rid, s in summaries.items()])
        self._conn.executemany(
            "UPDATE sections SET summary = ? WHERE record_id = ? AND position = ?",
            [(s, rid, pos) for rid, pos, s in sections],
        )

    def area_members(self) -> dict[str, list[str]]:
        """area -> ids of the records in it (given or predicted)."""
        out: dict[str, list[str]] = {}
        for area, rid in self._conn.execute("SELECT area, id FROM records WHERE area IS NOT NULL ORDER BY area, id"):
            out.setdefault(area, []).append(rid)
        return out

    def concept_members(self, sources: tuple[str, ...] = ("given", "predicted", "text"),
                        names: Iterable[str] | None = None) -> dict[str, list[str]]:
        """concept name -> ids of the records carrying it (as a keyphrase or in their text); of
        the concepts `names` only, when given."""
        out: dict[str, list[str]] = {}
        sql = ("SELECT DISTINCT c.name, rc.record_id FROM record_concepts rc JOIN concepts c ON c.id = rc.concept_id"
               f" WHERE rc.source IN ({','.join('?' * len(sources))})")
        chunks = [None] if names is None else list(batches(sorted(set(names)), 500))
        for chunk in chunks:
            where = "" if chunk is None else f" AND c.name IN ({','.join('?' * len(chunk))})"
            for name, rid in self._conn.execute(sql + where + " ORDER BY c.name, rc.record_id",
                                                (*sources, *(chunk or ()))):
                out.setdefault(name, []).append(rid)
        return out

    def area_counts(self) -> dict[str, int]:
        """area -> how many records are in it (given or predicted)."""
        return {area: int(n) for area, n in self._conn.execute(
            "SELECT area, COUNT(*) FROM records WHERE area IS NOT NULL GROUP BY area")}

    def concept_member_counts(self, names: Iterable[str]) -> dict[str, int]:
        """concept name -> how many records carry it (any source), for the concepts `names`."""
        out: dict[str, int] = {}
        for chunk in batches(sorted(set(names)), 500):  # every source counts: the three are all there are
            out.update((name, int(n)) for name, n in self._conn.execute(
                "SELECT c.name, (SELECT COUNT(DISTINCT rc.record_id) FROM record_concepts rc WHERE rc.concept_id = c.id)"
                f" FROM concepts c WHERE c.name IN ({','.join('?' * len(chunk))})", chunk) if n)
        return out

    def concepts_of_records(self, ids: Iterable[str]) -> set[str]:
        """The names of the concepts any of the records carries (any source)."""
        out: set[str] = set()
        for chunk in batches(sorted(set(ids)), 500):
            out.update(name for (name,) in self._conn.execute(
                "SELECT DISTINCT c.name FROM record_concepts rc JOIN concepts c ON c.id = rc.concept_id"
                f" WHERE rc.record_id IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def area_concept_counts(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        """(area -> concept name -> how many of the area's records carry it, concept name -> how many
        records carry it), as given or predicted keyphrases: counted by the database, never by
        reading every row."""
        inside: dict[str, dict[str, int]] = {}
        for area, name, count in self._conn.execute(
            "SELECT r.area, c.name, COUNT(DISTINCT rc.record_id) FROM record_concepts rc"
            " JOIN concepts c ON c.id = rc.concept_id JOIN records r ON r.id = rc.record_id"
            " WHERE rc.source IN ('given', 'predicted') AND r.area IS NOT NULL GROUP BY r.area, c.name"
        ):
            inside.setdefault(area, {})[name] = int(count)
        totals = {name: int(count) for name, count in self._conn.execute(
            "SELECT c.name, COUNT(DISTINCT rc.record_id) FROM record_concepts rc JOIN concepts c ON c.id = rc.concept_id"
            " WHERE rc.source IN ('given', 'predicted') GROUP BY c.name"
        )}
        return inside, totals

    def top_concepts_for(self, ids: list[str], limit: int = 5) -> list[str]:
        """The concepts most distinctive of a set of records: frequent in it, rarer elsewhere."""
        if not ids:
            return []
        inside: dict[str, int] = {}
        chosen = set(ids)
        total: dict[str, int] = {}
        for name, rid in self._conn.execute(
            "SELECT DISTINCT c.name, rc.record_id FROM record_concepts rc JOIN concepts c ON c.id = rc.concept_id"
            " WHERE rc.source IN ('given', 'predicted')"
        ):
            total[name] = total.get(name, 0) + 1
            if rid in chosen:
                inside[name] = inside.get(name, 0) + 1
        return sorted(inside, key=lambda n: (-(inside[n] ** 2) / total[n], n))[:limit]
