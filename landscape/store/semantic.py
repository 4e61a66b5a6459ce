"""Store queries for embeddings, artifacts, connections and the signals they are scored on."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .db import now_iso
from .dialect import Dialect


class SemanticMixin:
    _conn: sqlite3.Connection
    _sql: Dialect
    readonly: bool

    # --- embeddings ----------------------------------------------------------------------

    def records_to_embed(self, model: str, batch: int = 256) -> Iterator[list[tuple[str, str]]]:
        """(id, content_hash) of records whose embedding under `model` is missing or stale.

        Keyset-paginated (a fresh query per batch), so the caller may write embeddings between
        batches without disturbing an open cursor.
        """
        last = ""
        while True:
            rows = self._conn.execute(
                f"SELECT r.id, r.content_hash FROM records r{self._sql.indexed_by('records_id_hash')}"
                f" LEFT JOIN embeddings e{self._sql.indexed_by('embeddings_model_hash')}"
                " ON e.record_id = r.id AND e.model = ?"
                " WHERE r.id > ? AND (e.content_hash IS NULL OR e.content_hash != r.content_hash)"
                " ORDER BY r.id LIMIT ?",
                (model, last, batch),
            ).fetchall()
            if not rows:
                return
            yield [(r[0], r[1]) for r in rows]
            last = rows[-1][0]

    def count_to_embed(self, model: str) -> int:
        return self._conn.execute(
            f"SELECT count(*) FROM records r{self._sql.indexed_by('records_id_hash')}"
            f" LEFT JOIN embeddings e{self._sql.indexed_by('embeddings_model_hash')} ON e.record_id = r.id AND e.model = ?"
            " WHERE e.content_hash IS NULL OR e.content_hash != r.content_hash",
            (model,),
        ).fetchone()[0]

    def put_embeddings(self, model: str, rows: Iterable[tuple[str, str, np.ndarray]]) -> None:
        self._conn.executemany(
            "INSERT INTO embeddings (record_id, model, content_hash, vector) VALUES (?,?,?,?)"
            " ON CONFLICT(record_id, model) DO UPDATE SET content_hash = excluded.content_hash,"
            " vector = excluded.vector",
            [(rid, model, h, np.asarray(v, dtype=np.float32).tobytes()) for rid, h, v in rows],
        )

    def embedding_matrix(self, model: str) -> tuple[list[str], np.ndarray]:
        """Ids (sorted) and the float32 matrix of their stored embeddings under `model`.

        Rows stream into a matrix sized from a count first: holding every row's bytes and then
        stacking them peaked at twice the matrix (4 GB more at a million 512-wide vectors)."""
        joined = "FROM embeddings e JOIN records r ON r.id = e.record_id WHERE e.model = ?"
        expected = self._conn.execute(f"SELECT count(*) {joined}", (model,)).fetchone()[0]
        dim = self.embedding_dim(model)
        ids: list[str] = []
        out = np.empty((expected, dim), dtype=np.float32)
        for rid, vector in self._conn.execute(f"SELECT e.record_id, e.vector {joined} ORDER BY e.record_id", (model,)):
            if len(ids) == len(out):  # rows added since the count
                out = np.concatenate([out, np.empty((max(1024, len(out) // 8), dim), dtype=np.float32)])
            out[len(ids)] = np.frombuffer(vector, dtype=np.float32)
            ids.append(rid)
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        return ids, out if len(ids) == len(out) else out[: len(ids)].copy()

    def embedding_hashes(self, model: str) -> tuple[list[str], list[str]]:
        """Ids (sorted, as `embedding_matrix`) and the content hash each one's vector was made from:
        a scan of the (record, model, hash) index where the store is migrated (the table's rows
        hold the vectors: read through them, a million hashes took 9-13 s against 1.7)."""
        index = "" if self.readonly else self._sql.indexed_by("embeddings_model_hash")
        rows = self._conn.execute(
            f"SELECT e.record_id, e.content_hash FROM embeddings e{index} JOIN records r ON r.id = e.record_id"
            " WHERE e.model = ? ORDER BY e.record_id", (model,)).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def embedding_vectors(self, model: str, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of `ids` under `model`, rows in their order (each must have one)."""
        found = self.embedding_rows(model, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"no {model} embedding stored for {missing[0]!r}")
        return np.stack([found[i] for i in ids]) if ids else np.zeros((0, self.embedding_dim(model)), dtype=np.float32)

    def embedding_rows(self, model: str, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored vector under `model` of each of `ids` that has one."""
        ids = list(ids)
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for rid, vector in self._conn.execute(
                    f"SELECT record_id, vector FROM embeddings WHERE model = ? AND record_id IN ({','.join('?' * len(chunk))})",
                    [model, *chunk]):
                out[rid] = np.frombuffer(bytes(vector), dtype=np.float32)
        return out

    def record_ids_by_label(self, labels: Iterable[int]) -> dict[int, str]:
        """The record each records.rowid names, where it names one (the neighbour graph's labels,
        and the full-text index's rows on both backends)."""
        rowids = sorted({int(r) for r in labels})
        out: dict[int, str] = {}
        for start in range(0, len(rowids), 500):
            chunk = rowids[start : start + 500]
            out.update((int(r[0]), r[1]) for r in self._conn.execute(
                f"SELECT rowid, id FROM records WHERE rowid IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def record_concept_names(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """The names of each record's concepts, any source (what `record_concept_ids` holds)."""
        ids = sorted(set(ids))
        out: dict[str, list[str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for rid, name in self._conn.execute(
                    "SELECT rc.record_id, c.name FROM record_concepts rc JOIN concepts c ON c.id = rc.concept_id"
                    f" WHERE rc.record_id IN ({','.join('?' * len(chunk))})", chunk):
                out.setdefault(rid, []).append(name)
        return out

    def embedding_dim(self, model: str) -> int:
        """Length of the vectors stored under `model` (0 when none is)."""
        row = self._conn.execute("SELECT length(vector) FROM embeddings WHERE model = ? LIMIT 1", (model,)).fetchone()
        return 0 if row is None else row[0] // 4

    def embedding_state(self, model: str) -> str:
        """A fingerprint of which records hold which embedding: it changes when any of them does."""
        h = hashlib.sha1()
        n = 0
        for rid, chash in self._conn.execute(
            "SELECT record_id, content_hash FROM embeddings WHERE model = ? ORDER BY record_id", (model,)
        ):
            h.update(f"{rid}:{chash};".encode())
            n += 1
        return f"{n}:{h.hexdigest()[:16]}"

    def embedding_keys(self, model: str) -> tuple[list[str], np.ndarray]:
        """Ids (sorted, as `embedding_matrix`) and their records.rowid: the neighbour graph's labels."""
        rows = self._conn.execute(
            "SELECT e.record_id, r.rowid FROM embeddings e JOIN records r ON r.id = e.record_id"
            " WHERE e.model = ? ORDER BY e.record_id",
            (model,),
        ).fetchall()
        return [r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.int64)

    # --- the neighbour graph ---------------------------------------------------------------

    def graph_pending(self, model: str) -> dict[str, bool]:
        """Embedded records whose neighbour list is missing or was computed from other content,
        each with whether it has a (stale) list."""
        return {
            r[0]: r[1]
            for r in self._conn.execute(
                "SELECT e.record_id, g.record_id IS NOT NULL FROM embeddings e"
                f" JOIN records r{self._sql.indexed_by('records_id_hash')} ON r.id = e.record_id"
                f" LEFT JOIN neighbour_graph g{self._sql.indexed_by('neighbour_graph_hash')} ON g.record_id = r.id"
                " WHERE e.model = ? AND (g.content_hash IS NULL OR g.content_hash != r.content_hash)",
                (model,),
            )
        }

    def graph_count(self) -> int:
        return self._conn.execute("SELECT count(*) FROM neighbour_graph").fetchone()[0]

    def put_graph_rows(self, rows: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
        """(record id, neighbour rowids, similarities); the record's content hash is kept with them."""
        self._conn.executemany(
            "INSERT INTO neighbour_graph (record_id, content_hash, others, sims)"
            " SELECT id, content_hash, ?, ? FROM records WHERE id = ?"
            " ON CONFLICT(record_id) DO UPDATE SET content_hash = excluded.content_hash,"
            " others = excluded.others, sims = excluded.sims",
            [(np.asarray(o, dtype=np.int64).tobytes(), np.asarray(v, dtype=np.float32).tobytes(), rid)
             for rid, o, v in rows],
        )

    def graph_rows(self, ids: Iterable[str] | None = None) -> Iterator[tuple[str, bytes, bytes]]:
        """(record id, neighbour rowids, similarities) as stored, every row or those of `ids`."""
        sql = "SELECT record_id, others, sims FROM neighbour_graph"
        if ids is None:
            yield from self._conn.execute(sql)
            return
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            yield from self._conn.execute(sql + f" WHERE record_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()

    def clear_graph(self) -> None:
        self._conn.execute("DELETE FROM neighbour_graph")

    # --- artifacts (fitted models kept as arrays/JSON, never pickle) ----------------------

    def put_artifact(self, name: str, value: bytes) -> None:
        self._conn.execute(
            "INSERT INTO artifacts (name, value, updated_at) VALUES (?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (name, value, now_iso()),
        )

    def get_artifact(self, name: str) -> bytes | None:
        row = self._conn.execute("SELECT value FROM artifacts WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    # --- what connections are scored on --------------------------------------------------

    def record_texts(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """id -> title and abstract (and talk sections): the text lexical signals read."""
        sections = self._sql.group_concat("s.title || '. ' || s.text", "\n")
        sql = (
            "SELECT r.id, coalesce(r.title, '') || '\n' || r.abstract ||"
            f" coalesce((SELECT {sections} FROM sections s"
            " WHERE s.record_id = r.id), '') FROM records r"
        )
        if ids is None:
            return {r[0]: r[1] for r in self._conn.execute(sql + " ORDER BY r.id")}
        out: dict[str, str] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update((r[0], r[1]) for r in self._conn.execute(sql + f" WHERE r.id IN ({marks})", chunk))
        return out

    def record_author_ids(self) -> Iterator[tuple[str, int]]:
        """(record id, author id) of every authorship, unordered (a record has a few: grouped per
        record as the concepts are, the read took twice as long)."""
        yield from self._conn.execute("SELECT record_id, author_id FROM authorship")

    def author_names_by_id(self) -> dict[int, str]:
        return dict(self._conn.execute("SELECT id, name FROM authors"))

    def record_areas(self) -> dict[str, str | None]:
        """id -> area (given or predicted) of every record, from the records_brief index."""
        return dict(self._conn.execute("SELECT id, area FROM records"))

    def record_brief(self, ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """id -> title, area, date, kind: what a result line shows."""
        sql = "SELECT id, display_title, area, date, kind FROM records"
        rows: list[Any]
        if ids is None:
            rows = self._conn.execute(sql).fetchall()
        else:
            ids, rows = list(ids), []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows += self._conn.execute(sql + f" WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        return {r[0]: {"title": r[1], "area": r[2], "date": r[3], "kind": r[4]} for r in rows}

    def record_concept_ids(self) -> Iterator[tuple[str, int, str]]:
        """(record id, how many, their concept ids joined by commas) of every record with
        concepts, whatever their source (a record may carry one from two sources, and it is
        then listed twice); one row per record, as record_author_ids."""
        yield from self._conn.execute(
            f"SELECT record_id, count(*), {self._sql.group_concat('concept_id')} FROM record_concepts"
            " GROUP BY record_id")

    def concept_names_by_id(self) -> dict[int, str]:
        return dict(self._conn.execute("SELECT id, name FROM concepts"))

    def phrase_vocabulary(self) -> list[str]:
        """Distinct phrases of every record's keyphrases: the names concepts are matched by."""
        return [r[0] for r in self._conn.execute("SELECT DISTINCT phrase FROM keyphrases ORDER BY phrase")]

    def record_phrase_rows(self, ids: Iterable[str] | None = None) -> Iterator[tuple[str, str, bool]]:
        """(record id, phrase, whether it is given) of every keyphrase, whatever its source,
        unordered: of every record, or of `ids`."""
        sql = "SELECT record_id, phrase, source = 'given' FROM keyphrases"
        if ids is None:
            for rid, phrase, given in self._conn.execute(sql):
                yield rid, phrase, bool(given)
            return
        ids = sorted(set(ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for rid, phrase, given in self._conn.execute(
                    sql + f" WHERE record_id IN ({','.join('?' * len(chunk))})", chunk).fetchall():
                yield rid, phrase, bool(given)

    def record_hashes(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self._conn.execute("SELECT id, content_hash FROM records")}

    # --- connections ---------------------------------------------------------------------

    def replace_connections(self, record_id: str, rows: list[tuple[str, float, list[str]]]) -> None:
        self.replace_connections_many([(record_id, rows)])

    def replace_connections_many(self, items: Iterable[tuple[str, list[tuple[str, float, list[str]]]]]) -> None:
        """replace_connections for many records (each once), in one statement per kind;
        PostgreSQL writes them by COPY."""
        items = list(items)
        self._conn.executemany("DELETE FROM connections WHERE record_id = ?", [(rid,) for rid, _ in items])
        self._conn.executemany(
            "INSERT INTO connections (record_id, rank, other_id, score, reasons) VALUES (?,?,?,?,?)",
            [(rid, i, oid, float(s), json.dumps(r)) for rid, rows in items for i, (oid, s, r) in enumerate(rows)],
        )

    def get_connections(self, record_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT c.other_id, r.display_title, c.score, c.reasons FROM connections c"
            " JOIN records r ON r.id = c.other_id WHERE c.record_id = ? ORDER BY c.rank"
        )
        args: list[Any] = [record_id]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [
            {"id": r[0], "title": r[1], "score": r[2], "reasons": json.loads(r[3])}
            for r in self._conn.execute(sql, args)
        ]

    def connected_ids(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT DISTINCT record_id FROM connections")}

    def all_connections(self) -> dict[str, list[tuple[str, float]]]:
        out: dict[str, list[tuple[str, float]]] = {}
        for rid, oid, score in self._conn.execute(
            "SELECT record_id, other_id, score FROM connections ORDER BY record_id, rank"
        ):
            out.setdefault(rid, []).append((oid, score))
        return out

    def clear_connections(self) -> None:
        self._conn.execute("DELETE FROM connections")

    @contextmanager
    def rewriting_connections(self) -> Iterator[None]:
        """Every connection and its state cleared, for the caller to write them all anew inside
        (in its transaction: readers see the old ones until it commits). On SQLite the index by
        other record is dropped for the load and built once at the end: inserting a million
        records' ten million rows into it in random order took 60% of the write (239 against
        101 s). On PostgreSQL it stays: dropping it would lock every reader (a served store) out
        of the table until the transaction ends."""
        self.clear_connections()
        self.forget_connection_state()
        rebuild = self._sql.name == "sqlite"
        if rebuild:
            self._conn.execute("DROP INDEX IF EXISTS connections_other")
        yield
        if rebuild:
            self._conn.execute("CREATE INDEX connections_other ON connections(other_id)")

    def stale_connection_ids(self) -> set[str]:
        """Records whose connections are missing or were computed from other content."""
        return {
            r[0]
            for r in self._conn.execute(
                "SELECT r.id FROM records r LEFT JOIN connection_state s ON s.record_id = r.id"
                " WHERE s.content_hash IS NULL OR s.content_hash != r.content_hash"
            )
        }

    def short_connection_ids(self, k: int) -> set[str]:
        """Records holding fewer than k connections (a neighbour was deleted, or k grew)."""
        return {
            r[0]
            for r in self._conn.execute(
                "SELECT r.id FROM records r LEFT JOIN connections c ON c.record_id = r.id"
                " GROUP BY r.id HAVING count(c.other_id) < ?",
                (k,),
            )
        }

    def ids_connected_to(self, others: Iterable[str]) -> set[str]:
        others = list(others)
        out: set[str] = set()
        for start in range(0, len(others), 500):
            chunk = others[start : start + 500]
            out.update(
                r[0]
                for r in self._conn.execute(
                    f"SELECT DISTINCT record_id FROM connections WHERE other_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
            )
        return out

    def kth_connection_scores(self, k: int, ids: Iterable[str] | None = None) -> dict[str, float]:
        """The score of each record's k-th connection (what a newcomer must beat), for the records
        holding at least k, of every record or of `ids` only. A list is ranked by score from 0, so
        that is the row of rank k - 1: one lookup of the primary key per record (the minimum over
        each list read every row of it: 6.7 s for the 200,000 records around 1,000 newcomers to a
        million)."""
        sql = "SELECT record_id, score FROM connections WHERE rank = ?{where}"
        if ids is None:
            return {r[0]: r[1] for r in self._conn.execute(sql.format(where=""), (k - 1,))}
        ids = list(ids)
        out: dict[str, float] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            where = f" AND record_id IN ({','.join('?' * len(chunk))})"
            out.update((r[0], r[1]) for r in self._conn.execute(sql.format(where=where), [k - 1, *chunk]))
        return out

    def connection_marks(self) -> int:
        """Records whose connections are marked computed (a deleted record's mark goes with it)."""
        return int(self._conn.execute("SELECT count(*) FROM connection_state").fetchone()[0])

    def mark_connections_fresh(self, ids: Iterable[str]) -> None:
        self._conn.executemany(
            "INSERT INTO connection_state (record_id, content_hash)"
            " SELECT id, content_hash FROM records WHERE id = ?"
            " ON CONFLICT(record_id) DO UPDATE SET content_hash = excluded.content_hash",
            [(i,) for i in ids],
        )

    def forget_connection_state(self) -> None:
        self._conn.execute("DELETE FROM connection_state")

    def ids_passing(self, ids: Iterable[str], area: str | None = None, kind: str | None = None,
                    since: str | None = None, until: str | None = None, author: str | None = None) -> set[str]:
        """Those of `ids` that pass the filters: the cost follows the ids asked about, not the store."""
        ids = list(dict.fromkeys(ids))
        if not any((area, kind, since, until, author)):
            return set(ids)
        where, args = self._filters(area, kind, since, until, author)  # type: ignore[attr-defined]
        out: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.update(r[0] for r in self._conn.execute(
                f"SELECT id FROM records {where} AND id IN ({','.join('?' * len(chunk))})", [*args, *chunk]))
        return out

    def abstracts(self, ids: Iterable[str]) -> dict[str, str]:
        ids = list(ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.update(self._conn.execute(
                f"SELECT id, abstract FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall())
        return out
