"""Records, authors, sources, sections and their full-text index (keyphrases: keyphrases.py)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, cast

from ..models import Record, Section, Source
from ..text import content_hash, derived_title, normalise_author, normalise_title
from .db import now_iso

_MERGE_FIELDS = ("title", "date", "area", "abstract", "keyphrase_line")
AUTHOR_CACHE = 200_000  # names and keys of authors kept between batches (about 40 MB)


def record_content_hash(rec: Record) -> str:
    """What embedding and other enrichment depends on: change it and they are redone."""
    return content_hash(rec.title or "", rec.abstract, *(f"{s.title}\n{s.text}" for s in rec.sections))


def _json(extra: dict[str, Any]) -> str:
    """The stored JSON of an extra dict; most are empty, and json.dumps costs more than the
    rest of a source row."""
    return "{}" if type(extra) is dict and not extra else json.dumps(extra, sort_keys=True)


def _record_row(rec: Record, norm: str, now: str) -> tuple[Any, ...]:
    return (
        rec.id, rec.kind, rec.title, int(rec.title_derived), display_title(rec),
        norm or rec.id, int(rec.authors_truncated), rec.date, rec.area,
        (rec.area_source or "given") if rec.area else None, rec.abstract, rec.keyphrase_line,
        "given" if rec.keyphrases or (rec.keyphrase_line or "").split() else None, _json(rec.extra),
        record_content_hash(rec), now, now,
    )


def display_title(rec: Record) -> str:
    """The title to show: the given one, else one derived from the abstract's first sentence."""
    if rec.title:
        return rec.title
    return derived_title(rec.abstract) if rec.abstract.strip() else "(untitled)"


class RecordsMixin:
    _conn: sqlite3.Connection
    _author_ids: dict[str, int]

    # --- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def bulk_write(self, fts_hash_bytes: int = 64 << 20) -> Iterator[None]:
        """Settings for writing many records.

        64 MB of page cache, so bulk inserts stay in memory; an FTS5 in-memory index of up to
        fts_hash_bytes before it is flushed to a segment (the default 1 MB flushes every few
        hundred abstracts, and merging those small segments costs a third of the indexing
        time; this setting is stored). And no checkpoint at each commit: copying the log
        into the database is left to checkpoint() on another connection while this one works
        (see ingest.finish_ingest), and to one checkpoint at the end.
        """
        self._conn.execute("PRAGMA cache_size = -65536")
        row = self._conn.execute("SELECT v FROM records_fts_config WHERE k = 'hashsize'").fetchone()
        if row is None or row[0] != fts_hash_bytes:
            self._conn.execute(
                "INSERT INTO records_fts(records_fts, rank) VALUES('hashsize', ?)", (fts_hash_bytes,)
            )
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            yield
        finally:
            self._conn.execute("PRAGMA wal_autocheckpoint = 1000")
            self.checkpoint()

    def checkpoint(self) -> None:
        """Copy committed pages from the write-ahead log into the database, as far as readers
        allow; writers may go on meanwhile."""
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def upsert_record(self, rec: Record) -> str:
        """Insert or merge a record; returns 'new', 'changed' or 'unchanged'.

        The same paper arriving again (same id, or a title equal after normalisation) merges:
        sources are unioned and fields the store lacks are filled in; existing given values win,
        so ingesting a second source never overwrites the first.
        """
        norm = normalise_title(rec.title or "") if rec.title and not rec.title_derived else ""
        row = self._conn.execute("SELECT id FROM records WHERE id = ?", (rec.id,)).fetchone()
        if row is None and norm:
            row = self._conn.execute(
                "SELECT id FROM records WHERE norm_title = ? AND kind = ? LIMIT 1", (norm, rec.kind)
            ).fetchone()
        if row is None:
            self._insert(rec, norm)
            return "new"
        existing = self.get_record(row["id"])
        assert existing is not None
        merged = merge_records(existing, rec)
        if merged == existing:
            return "unchanged"
        self._update(existing, merged)
        return "changed"

    def upsert_records(self, records: list[Record]) -> list[str]:
        """upsert_record for a batch: records new to the store (the common case of a first
        ingest) are written with one statement per table; the rest merge one by one."""
        norms = [
            normalise_title(r.title or "") if r.title and not r.title_derived else "" for r in records
        ]
        known_ids = self._existing("id", [r.id for r in records])
        known_norms = self._existing("norm_title", [n for n in norms if n])
        statuses: list[str] = []
        fresh: list[tuple[Record, str]] = []
        batch_ids: set[str] = set()
        batch_norms: set[str] = set()
        for rec, norm in zip(records, norms):
            clash = rec.id in known_ids or rec.id in batch_ids or (
                norm and (norm in known_norms or norm in batch_norms)
            )
            if clash:
                self._insert_many(fresh)
                known_ids |= batch_ids
                known_norms |= batch_norms
                fresh, batch_ids, batch_norms = [], set(), set()
                known_ids.add(rec.id)
                statuses.append(self.upsert_record(rec))
                if norm:
                    known_norms.add(norm)
                continue
            fresh.append((rec, norm))
            batch_ids.add(rec.id)
            if norm:
                batch_norms.add(norm)
            statuses.append("new")
        self._insert_many(fresh)
        return statuses

    def _existing(self, column: str, values: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            found.update(
                r[0] for r in self._conn.execute(
                    f"SELECT {column} FROM records WHERE {column} IN ({','.join('?' * len(chunk))})", chunk
                )
            )
        return found

    def _insert_many(self, items: list[tuple[Record, str]]) -> None:
        """Insert records known to be new, one statement per table."""
        if items:
            self.write_new_rows(self.new_rows(items))

    def new_rows(self, items: list[tuple[Record, str]]) -> dict[str, list[tuple[Any, ...]]]:
        """The rows of every table for records known to be new (with their normalised titles),
        by table; authors not yet in the store are added as a side effect."""
        now = now_iso()
        self._add_authors(a for rec, _ in items for a in rec.authors)
        return {
            "records": [_record_row(rec, norm, now) for rec, norm in items],
            "authorship": [
                (rec.id, i, self._author_id(a)) for rec, _ in items for i, a in enumerate(rec.authors)
            ],
            "keyphrases": [(rec.id, i, p) for rec, _ in items for i, p in enumerate(rec.keyphrases)],
            "sources": [
                (rec.id, s.path, s.format, s.line, s.ingested_at or now, _json(s.extra))
                for rec, _ in items for s in rec.sources
            ],
            "sections": [
                (rec.id, i, x.title, x.text, x.summary) for rec, _ in items for i, x in enumerate(rec.sections)
            ],
            "ids": [(rec.id,) for rec, _ in items],
        }

    def write_new_rows(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        """Write what new_rows() built; apart, so a benchmark can time the writes alone."""
        self._conn.executemany(
            "INSERT INTO records (id, kind, title, title_derived, display_title, norm_title,"
            " authors_truncated, date, area, area_source, abstract, keyphrase_line,"
            " keyphrases_source, extra, content_hash, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows["records"],
        )
        self._conn.executemany(
            "INSERT INTO authorship (record_id, position, author_id) VALUES (?,?,?)", rows["authorship"]
        )
        self._conn.executemany(
            "INSERT INTO keyphrases (record_id, position, phrase, source) VALUES (?,?,?,'given')",
            rows["keyphrases"],
        )
        self._conn.executemany(
            "INSERT INTO sources (record_id, path, format, line, ingested_at, extra)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            rows["sources"],
        )
        self._conn.executemany(
            "INSERT INTO sections (record_id, position, title, text, summary) VALUES (?,?,?,?,?)",
            rows["sections"],
        )
        self._conn.executemany(
            "INSERT INTO search_pending (record_rowid) SELECT rowid FROM records WHERE id = ?", rows["ids"]
        )

    def _update(self, existing: Record, merged: Record) -> None:
        """Rewrite a changed record in place: enrichment rows keyed on it (embeddings,
        connections, concepts, topics, map) survive, created_at is kept, and content_hash
        changes only when the text enrichment reads changed."""
        rid = existing.id
        self._unindex([rid])
        norm = normalise_title(merged.title or "") if merged.title and not merged.title_derived else ""
        self._conn.execute(
            "UPDATE records SET kind = ?, title = ?, title_derived = ?, display_title = ?,"
            " norm_title = ?, authors_truncated = ?, date = ?, abstract = ?, keyphrase_line = ?,"
            " extra = ?, content_hash = ?, updated_at = ? WHERE id = ?",
            (
                merged.kind, merged.title, int(merged.title_derived), display_title(merged),
                norm or rid, int(merged.authors_truncated), merged.date, merged.abstract,
                merged.keyphrase_line, _json(merged.extra),
                record_content_hash(merged), now_iso(), rid,
            ),
        )
        if merged.area and (merged.area, merged.area_source) != (existing.area, existing.area_source):
            self._conn.execute(
                "UPDATE records SET area = ?, area_source = ?, area_probabilities = NULL,"
                " area_set = NULL WHERE id = ?", (merged.area, merged.area_source or "given", rid),
            )
        if merged.authors != existing.authors:
            self._conn.execute("DELETE FROM authorship WHERE record_id = ?", (rid,))
            self._insert_authorship(rid, merged.authors)
        if merged.keyphrases != existing.keyphrases:
            self._conn.execute("DELETE FROM keyphrases WHERE record_id = ?", (rid,))
            self._insert_keyphrases(rid, merged.keyphrases)
            self._conn.execute(
                "UPDATE records SET keyphrases_source = ? WHERE id = ?",
                ("given" if merged.keyphrases else None, rid),
            )
        if merged.sections != existing.sections:
            self._conn.execute("DELETE FROM sections WHERE record_id = ?", (rid,))
            self._insert_sections(rid, merged.sections)
        known = {(s.path, s.line) for s in existing.sources}
        self._insert_sources(rid, [s for s in merged.sources if (s.path, s.line) not in known])

    def _insert(self, rec: Record, norm: str) -> None:
        now = now_iso()
        self._conn.execute(
            "INSERT INTO records (id, kind, title, title_derived, display_title, norm_title,"
            " authors_truncated, date, area, area_source, abstract, keyphrase_line,"
            " keyphrases_source, extra, content_hash, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            _record_row(rec, norm, now),
        )
        self._insert_authorship(rec.id, rec.authors)
        self._insert_keyphrases(rec.id, rec.keyphrases)
        self._insert_sources(rec.id, rec.sources)
        self._insert_sections(rec.id, rec.sections)
        self._conn.execute("INSERT INTO search_pending (record_rowid) SELECT rowid FROM records WHERE id = ?", (rec.id,))

    def _insert_authorship(self, rid: str, authors: list[str]) -> None:
        self._conn.executemany(
            "INSERT INTO authorship (record_id, position, author_id) VALUES (?,?,?)",
            [(rid, i, self._author_id(a)) for i, a in enumerate(authors)],
        )

    def _insert_keyphrases(self, rid: str, phrases: list[str]) -> None:
        self._conn.executemany(
            "INSERT INTO keyphrases (record_id, position, phrase, source) VALUES (?,?,?,'given')",
            [(rid, i, p) for i, p in enumerate(phrases)],
        )

    def _insert_sources(self, rid: str, sources: list[Source]) -> None:
        now = now_iso()
        self._conn.executemany(
            "INSERT INTO sources (record_id, path, format, line, ingested_at, extra)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            [
                (rid, s.path, s.format, s.line, s.ingested_at or now, _json(s.extra))
                for s in sources
            ],
        )

    def _insert_sections(self, rid: str, sections: list[Section]) -> None:
        self._conn.executemany(
            "INSERT INTO sections (record_id, position, title, text, summary) VALUES (?,?,?,?,?)",
            [(rid, i, s.title, s.text, s.summary) for i, s in enumerate(sections)],
        )

    def _unindex(self, record_ids: list[str]) -> None:
        """Take records out of full-text search until index_pending() puts them back. Call it
        before changing what the search index reads (records_fts_source): the index finds the
        words to remove by reading the record's current text."""
        for start in range(0, len(record_ids), 500):
            chunk = record_ids[start : start + 500]
            indexed = [
                r[0] for r in self._conn.execute(
                    f"SELECT rowid FROM records WHERE id IN ({','.join('?' * len(chunk))})"
                    " AND rowid NOT IN (SELECT record_rowid FROM search_pending)", chunk,
                )
            ]
            self._conn.executemany("DELETE FROM records_fts WHERE rowid = ?", [(r,) for r in indexed])
            self._conn.executemany("INSERT INTO search_pending (record_rowid) VALUES (?)", [(r,) for r in indexed])

    def index_pending(self) -> int:
        """Add every record written since the last call to full-text search; returns how many.

        Ingest writes records first and indexes them afterwards in one statement: SQLite runs
        it without holding Python's GIL, so the keyphrase split can run beside it. The pending
        list is committed with the records, so an ingest killed in between indexes them on the
        next run.
        """
        count = self.pending_index_count()
        if count:
            self._conn.execute(
                "INSERT INTO records_fts (rowid, id, title, abstract, keyphrases, authors)"
                " SELECT record_rowid, id, title, abstract, keyphrases, authors FROM records_fts_source"
                " WHERE record_rowid IN (SELECT record_rowid FROM search_pending)"
            )
            self._conn.execute("DELETE FROM search_pending")
        return count

    def search_index_ok(self) -> bool:
        """Whether the search index holds exactly the words of every record, none pending.
        FTS5 runs the check as a write, so the store must be open for writing."""
        if self.pending_index_count():
            return False
        try:
            self._conn.execute("INSERT INTO records_fts (records_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError:
            return False
        return True

    def pending_index_count(self) -> int:
        return self._conn.execute("SELECT count(*) FROM search_pending").fetchone()[0]

    def _add_authors(self, names: Iterable[str]) -> None:
        """Put every name in the author cache: those whose key the store holds by one query per
        500 keys, the rest inserted by one executemany in order of first appearance (the ids
        _author_id would give them one by one) and read back by key. An ingest used to spend
        two round trips per new author here, most of its store time on PostgreSQL."""
        cache = self._author_ids
        if len(cache) > AUTHOR_CACHE:  # memory bounded whatever the corpus; the store has them all
            cache.clear()
        wanted: dict[str, list[str]] = {}
        for name in names:
            if "\0" + name in cache:
                continue
            key = normalise_author(name)
            if key in cache:
                cache["\0" + name] = cache[key]
            elif name not in wanted.setdefault(key, []):
                wanted[key].append(name)
        if not wanted:
            return
        found = self._author_keys(list(wanted))
        new = [(names[0], key) for key, names in wanted.items() if key not in found]
        if new:
            self._conn.executemany("INSERT INTO authors (name, key) VALUES (?, ?)", new)
            found.update(self._author_keys([key for _, key in new]))
        for key, names in wanted.items():
            cache[key] = found[key]
            for name in names:
                cache["\0" + name] = found[key]

    def _author_keys(self, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            found.update(
                (key, int(author_id)) for key, author_id in self._conn.execute(
                    f"SELECT key, id FROM authors WHERE key IN ({','.join('?' * len(chunk))})", chunk
                )
            )
        return found

    def _author_id(self, name: str) -> int:
        """The author row for a name; cached by exact name ("\0" prefix) and by normalised key,
        in the one cache the store clears on rollback."""
        cached = self._author_ids.get("\0" + name)
        if cached is not None:
            return cached
        key = normalise_author(name)
        cached = self._author_ids.get(key)
        if cached is not None:
            self._author_ids["\0" + name] = cached
            return cached
        row = self._conn.execute("SELECT id FROM authors WHERE key = ?", (key,)).fetchone()
        if row is None:
            author_id = cast(int, self._conn.execute(
                "INSERT INTO authors (name, key) VALUES (?, ?) RETURNING id", (name, key)
            ).fetchone()[0])
        else:
            author_id = row[0]
        self._author_ids[key] = self._author_ids["\0" + name] = author_id
        return author_id

    # --- reading -------------------------------------------------------------------------

    def get_record(self, record_id: str) -> Record | None:
        row = self._conn.execute("SELECT * FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else self._hydrate([row])[0]

    def get_records(self, ids: Iterable[str]) -> list[Record]:
        ids = list(ids)
        out: dict[str, Record] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._conn.execute(
                f"SELECT * FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            out.update((r.id, r) for r in self._hydrate(rows))
        return [out[i] for i in ids if i in out]

    def _hydrate(self, rows: list[sqlite3.Row]) -> list[Record]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        authors: dict[str, list[str]] = {}
        for rid, name in self._conn.execute(
            f"SELECT a.record_id, au.name FROM authorship a JOIN authors au ON au.id = a.author_id"
            f" WHERE a.record_id IN ({marks}) ORDER BY a.record_id, a.position", ids
        ):
            authors.setdefault(rid, []).append(name)
        phrases: dict[str, list[str]] = {}
        for rid, phrase in self._conn.execute(
            f"SELECT record_id, phrase FROM keyphrases WHERE record_id IN ({marks})"
            f" AND source = 'given' ORDER BY record_id, position", ids
        ):
            phrases.setdefault(rid, []).append(phrase)
        sources: dict[str, list[Source]] = {}
        for r in self._conn.execute(
            f"SELECT record_id, path, format, line, ingested_at, extra FROM sources"
            f" WHERE record_id IN ({marks}) ORDER BY record_id, id", ids
        ):
            sources.setdefault(r[0], []).append(Source(r[1], r[2], r[3], r[4], json.loads(r[5])))
        sections: dict[str, list[Section]] = {}
        for r in self._conn.execute(
            f"SELECT record_id, title, text, summary FROM sections WHERE record_id IN ({marks})"
            f" ORDER BY record_id, position", ids
        ):
            sections.setdefault(r[0], []).append(Section(r[1], r[2], r[3]))
        return [
            Record(
                id=r["id"], kind=r["kind"], title=r["title"], title_derived=bool(r["title_derived"]),
                authors=authors.get(r["id"], []), authors_truncated=bool(r["authors_truncated"]),
                date=r["date"], area=r["area"] if r["area_source"] in ("given", "category") else None,
                area_source=r["area_source"] if r["area_source"] in ("given", "category") else None,
                abstract=r["abstract"], keyphrases=phrases.get(r["id"], []),
                keyphrase_line=r["keyphrase_line"], sources=sources.get(r["id"], []),
                sections=sections.get(r["id"], []), extra=json.loads(r["extra"]),
            )
            for r in rows
        ]

    def record_view(self, record_id: str) -> dict[str, Any] | None:
        """The record with everything enrichment added: what `show --json` and the API return."""
        row = self._conn.execute("SELECT * FROM records WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            return None
        rec = self._hydrate([row])[0]
        view = rec.to_dict()
        view["display_title"] = row["display_title"]
        view["area"] = row["area"]
        view["area_source"] = row["area_source"]
        view["area_probabilities"] = json.loads(row["area_probabilities"] or "null")
        view["area_set"] = json.loads(row["area_set"] or "null")
        view["keyphrases_source"] = row["keyphrases_source"]
        view["summary"] = row["summary"]
        if row["keyphrases_source"] == "predicted":
            view["keyphrases"] = [
                p[0]
                for p in self._conn.execute(
                    "SELECT phrase FROM keyphrases WHERE record_id = ? ORDER BY position", (record_id,)
                )
            ]
        return view

    def iter_records(self, kind: str | None = None, batch: int = 1000) -> Iterator[Record]:
        """Every record, streamed in id order in batches (never the whole corpus in memory)."""
        last = ""
        while True:
            sql = "SELECT * FROM records WHERE id > ?" + (" AND kind = ?" if kind else "")
            rows = self._conn.execute(
                sql + " ORDER BY id LIMIT ?", (last, kind, batch) if kind else (last, batch)
            ).fetchall()
            if not rows:
                return
            yield from self._hydrate(rows)
            last = rows[-1]["id"]

    def record_ids(self) -> list[str]:
        """Every record id, sorted."""
        return [r[0] for r in self._conn.execute("SELECT id FROM records ORDER BY id")]

    def count_records(self, kind: str | None = None) -> int:
        if kind:
            return self._conn.execute("SELECT count(*) FROM records WHERE kind = ?", (kind,)).fetchone()[0]
        return self._conn.execute("SELECT count(*) FROM records").fetchone()[0]

    def list_records(
        self,
        area: str | None = None,
        kind: str | None = None,
        since: str | None = None,
        until: str | None = None,
        author: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Record]:
        """Records newest first, filtered; undated records come last."""
        where, args = self._filters(area, kind, since, until, author)
        sql = f"SELECT * FROM records {where} ORDER BY date IS NULL, date DESC, id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return self._hydrate(self._conn.execute(sql, args).fetchall())

    def _filters(self, area, kind, since, until, author, alias: str = "records") -> tuple[str, list]:
        clauses, args = [], []
        if area:
            clauses.append(f"lower({alias}.area) = lower(?)")
            args.append(area)
        if kind:
            clauses.append(f"{alias}.kind = ?")
            args.append(kind)
        if since:
            clauses.append(f"{alias}.date >= ?")
            args.append(since)
        if until:
            clauses.append(f"{alias}.date <= ?")
            args.append(until)
        if author:
            clause, arg = author_clause(alias, author)
            clauses.append(clause)
            args.append(arg)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def stats(self) -> dict[str, Any]:
        papers = self.count_records("paper")
        talks = self.count_records("talk")
        areas = {
            a: n
            for a, n in self._conn.execute(
                "SELECT area, count(*) FROM records WHERE kind = 'paper' AND area IS NOT NULL"
                " GROUP BY area ORDER BY area"
            )
        }
        years = {
            y: n
            for y, n in self._conn.execute(
                "SELECT substr(date, 1, 4), count(*) FROM records WHERE date IS NOT NULL"
                " GROUP BY 1 ORDER BY 1"
            )
        }
        return {"papers": papers, "talks": talks, "areas": areas, "years": years}


def author_clause(alias: str, author: str) -> tuple[str, str]:
    """The one author filter of search, browse, the API and the CLI: (SQL, argument) for records
    with an author whose normalised name (case, accents, dots ignored) holds the given words as
    whole words: "thaler" and "Jesse Thaler" find Jesse Thaler, "a smith" does not find Sarah Smith."""
    key = normalise_author(author).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return (
        f"{alias}.id IN (SELECT a.record_id FROM authorship a JOIN authors au"
        " ON au.id = a.author_id WHERE ' ' || au.key || ' ' LIKE ? ESCAPE '\\')",
        f"% {key} %",
    )


def merge_records(existing: Record, new: Record) -> Record:
    merged = Record.from_dict(existing.to_dict())
    for name in _MERGE_FIELDS:
        if not getattr(merged, name) and getattr(new, name):
            setattr(merged, name, getattr(new, name))
    if new.area and existing.area_source == "category":  # any area read later replaces a mapped one
        merged.area, merged.area_source = new.area, new.area_source
    elif new.area and not existing.area:
        merged.area_source = new.area_source
    if merged.title_derived and new.title and not new.title_derived:
        merged.title, merged.title_derived = new.title, False
    if not merged.authors and new.authors:
        merged.authors, merged.authors_truncated = list(new.authors), new.authors_truncated
    if not merged.keyphrases and new.keyphrases:
        merged.keyphrases = list(new.keyphrases)
    if not merged.sections and new.sections:
        merged.sections = list(new.sections)
    for key, value in new.extra.items():
        merged.extra.setdefault(key, value)
    seen = {(s.path, s.line) for s in merged.sources}
    for s in new.sources:
        if (s.path, s.line) not in seen:
            merged.sources.append(s)
            seen.add((s.path, s.line))
    return merged
