"""Speed of the semantic core on this machine, printed as tables.

1. build: `landscape build` of ../shared/corpus stage by stage (every step pipeline.build runs),
   embedding throughput, then adding the 10 records of ../shared/seeds (goal: under 10% of the
   full build).
2. latency: search, related (stored) and related --text p50/p95 at 574 records (the corpus plus
   114 extra records: the seeds and 104 synthetic variants of corpus papers).
3. ann: N synthetic 384-d unit vectors (default 1,000,000, clustered like real embeddings):
   exact search latency by size (where the exact/ANN threshold comes from), then an HNSW index
   (hnswlib): build time, memory, recall@10 against exact and p95 latency per ef.

    .venv/bin/python bench/speed.py [--part build|latency|ann|all] [--n 1000000] [--db BUILT]

No GPU is used: embedding runs on the CPU (torch threads = cores, longest-first batches,
256-token inputs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from landscape.config import Config  # noqa: E402
from landscape.enrich.pipeline import build  # noqa: E402
from landscape.ingest import ingest_paths  # noqa: E402
from landscape.store import Store  # noqa: E402

SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
SEEDS = SHARED / "seeds"


def table(title: str, head: tuple[str, ...], rows: list[tuple]) -> None:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print(f"\n{title}")
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    sys.stdout.flush()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def device_line() -> str:
    try:
        import torch

        gpu = torch.cuda.is_available()
        return f"CPU: {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}; " + (
            "GPU available" if gpu else "GPU: none available in this session (embedding measured on CPU only)"
        )
    except ImportError:
        return f"CPU: {os.cpu_count()} cores; torch not installed"


# --- 1. build ---------------------------------------------------------------------------------


def timed_build(store: Store, config: Config, **kw) -> list:
    return build(store, config, **kw)


def part_build(tmp: Path, config: Config) -> Path:
    db = tmp / "build.db"
    with Store(db) as store:
        t0 = time.perf_counter()
        ingest_paths(store, [str(CORPUS)])
        ingest_s = time.perf_counter() - t0
        n = store.count_records()
        full = timed_build(store, config)
        ingest_paths(store, [str(SEEDS)])
        added = store.count_records() - n
        incr = timed_build(store, config)
    full_total = sum(r.seconds for r in full)
    incr_total = sum(r.seconds for r in incr)
    rows = [("ingest", f"{ingest_s:.2f}", "", "")]
    incr_by = {r.name: r for r in incr}
    for r in full:
        i = incr_by.get(r.name)
        rows.append((r.name, f"{r.seconds:.2f}", f"{i.seconds:.2f}" if i else "-",
                     json.dumps(r.counts, separators=(",", ":"))))
    rows.append(("total build", f"{full_total:.2f}", f"{incr_total:.2f}",
                 f"incremental = {100 * incr_total / full_total:.1f}% of full (goal < 10%)"))
    mine = [r.name for r in full if r.name in ("embed", "connections")]
    mine_full = sum(r.seconds for r in full if r.name in mine)
    mine_incr = sum(r.seconds for r in incr if r.name in mine)
    if mine_full:
        rows.append(("semantic core (" + " + ".join(mine) + ")", f"{mine_full:.2f}", f"{mine_incr:.2f}",
                     f"incremental = {100 * mine_incr / mine_full:.1f}% of full (goal < 10%)"))
    table(f"build of {n} records, then + {added} records (seeds), seconds", ("step", "full", f"+{added}", "counts"),
          rows)
    embed = next((r for r in full if r.name == "embed"), None)
    if embed and embed.counts.get("embedded"):
        rate = embed.counts["embedded"] / embed.seconds
        table("embedding throughput (CPU)", ("model", "records", "seconds", "papers/s"),
              [(config.embedder, embed.counts["embedded"], f"{embed.seconds:.1f}", f"{rate:.1f}")])
    return db


# --- 2. latency at 574 records ----------------------------------------------------------------


def synthetic_variants(store: Store, n: int, seed: int = 0) -> Path:
    """n JSONL records: corpus papers with sentences shuffled and titles marked as variants."""
    rng = random.Random(seed)
    records = list(store.iter_records())
    rng.shuffle(records)
    out = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    with out.open("w", encoding="utf-8") as f:
        for k, rec in enumerate(records[:n]):
            sentences = rec.abstract.split(". ")
            rng.shuffle(sentences)
            row = rec.to_dict()
            row.update(id=f"synthetic-{k}", title=f"{rec.title} (variant {k})", abstract=". ".join(sentences),
                       sources=[], keyphrases=[], keyphrase_line=None)
            f.write(json.dumps(row) + "\n")
    return out


def part_latency(db: Path, config: Config, runs: int = 60) -> None:
    from landscape.enrich.connections import related
    from landscape.search import search

    with Store(db) as store:
        if store.count_records() < 470:
            ingest_paths(store, [str(SEEDS)])
        extra = 574 - store.count_records()
        if extra > 0:
            ingest_paths(store, [str(synthetic_variants(store, extra))])
        build(store, config, only=["embed", "connections"])
        n = store.count_records()
        ids = sorted(store.record_brief())
        titles = [store.record_brief([i])[i]["title"] for i in ids]
    rng = random.Random(1)
    queries = [" ".join(rng.sample(t.split(), min(3, len(t.split())))) for t in rng.sample(titles, runs)]
    texts = [store_text for store_text in rng.sample(titles, runs)]
    rows = []
    with Store(db, readonly=True) as store:
        for label, fn in (
            ("search (hybrid)", lambda i: search(store, queries[i], limit=20, config=config)),
            ("search --area Astrophysics", lambda i: search(store, queries[i], limit=20, config=config,
                                                            area="Astrophysics")),
            ("related ID (stored)", lambda i: related(store, record_id=ids[i * 7 % n], limit=10, config=config)),
            ("related --text", lambda i: related(store, text=texts[i] + " " + queries[i], limit=10, config=config)),
        ):
            t0 = time.perf_counter()
            fn(0)
            cold = time.perf_counter() - t0
            for i in range(5):
                fn(runs - 1 - i)
            times = []
            for i in range(runs):
                t0 = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - t0)
            rows.append((label, ms(cold), ms(pct(times, 50)), ms(pct(times, 95))))
    table(f"latency at {n} records, ms (first call loads the model/corpus; 5 warm-up calls; then {runs} timed)",
          ("operation", "first call", "p50", "p95"), rows)


# --- 3. approximate index at scale -----------------------------------------------------------


def clustered_vectors(n: int, dim: int, seed: int, centres: np.ndarray | None = None,
                      chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors scattered around 2,000 centres (real embeddings are clustered, not uniform)."""
    rng = np.random.default_rng(seed)
    if centres is None:
        centres = rng.standard_normal((2000, dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        pick = rng.integers(0, len(centres), m)
        x = centres[pick] + rng.standard_normal((m, dim)).astype(np.float32) * (0.9 / np.sqrt(dim))
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, centres


def exact_topk(data: np.ndarray, queries: np.ndarray, k: int = 10, chunk: int = 200_000) -> np.ndarray:
    best_idx = np.zeros((len(queries), 0), dtype=np.int64)
    best_val = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, len(data), chunk):
        s = queries @ data[start : start + chunk].T
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_idx = np.hstack([best_idx, idx + start])
        best_val = np.hstack([best_val, np.take_along_axis(s, idx, axis=1)])
        keep = np.argsort(-best_val, axis=1)[:, :k]
        best_idx = np.take_along_axis(best_idx, keep, axis=1)
        best_val = np.take_along_axis(best_val, keep, axis=1)
    return best_idx


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part_ann(n: int, dim: int = 384, n_queries: int = 300) -> None:
    from landscape.enrich.neighbours import EXACT_LIMIT, HNSW_EF_CONSTRUCTION, HNSW_M, ExactIndex, HnswIndex

    t0 = time.perf_counter()
    data, centres = clustered_vectors(n, dim, seed=0)
    queries, _ = clustered_vectors(n_queries, dim, seed=1, centres=centres)
    print(f"\n{n:,} synthetic {dim}-d vectors generated in {time.perf_counter() - t0:.1f}s")

    rows = []
    for size in [s for s in (10_000, 25_000, 50_000, 100_000, 200_000, 500_000, 1_000_000) if s <= n]:
        index = ExactIndex(data[:size])
        times = []
        for q in queries[:50]:
            t = time.perf_counter()
            index.search(q[None, :], 10)
            times.append(time.perf_counter() - t)
        rows.append((f"{size:,}", ms(pct(times, 50)), ms(pct(times, 95))))
    table(f"exact search, one query at a time, ms (threshold in use: EXACT_LIMIT = {EXACT_LIMIT:,})",
          ("vectors", "p50", "p95"), rows)

    t0 = time.perf_counter()
    truth = exact_topk(data, queries)
    exact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = HnswIndex(dim, n)
    step = 100_000
    for start in range(0, n, step):
        index.add(data[start : start + step], np.arange(start, min(n, start + step)))
    build_s = time.perf_counter() - t0
    print(f"exact ground truth for {n_queries} queries in {exact_s:.1f}s; HNSW (M={HNSW_M}, "
          f"ef_construction={HNSW_EF_CONSTRUCTION}) built in {build_s:.0f}s on {os.cpu_count()} threads; "
          f"peak RSS {rss_mb():,.0f} MB")
    index.index.set_num_threads(1)
    rows = []
    for ef in (32, 64, 96, 128, 200):
        index.index.set_ef(ef)
        times, hits = [], 0
        for qi, q in enumerate(queries):
            t = time.perf_counter()
            labels, _ = index.index.knn_query(q[None, :], k=10)
            times.append(time.perf_counter() - t)
            hits += len(set(labels[0].tolist()) & set(truth[qi].tolist()))
        rows.append((ef, f"{hits / (10 * n_queries):.4f}", ms(pct(times, 50)), ms(pct(times, 95))))
    table(f"HNSW at {n:,} vectors: recall@10 vs exact and latency, one query at a time (goal >= 0.95, p95 < 30 ms)",
          ("ef", "recall@10", "p50 ms", "p95 ms"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["build", "latency", "ann", "all"], default="all")
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors for the ANN part")
    parser.add_argument("--db", type=Path, help="a store built from the corpus (latency part skips the build)")
    parser.add_argument("--embedder", default="minilm")
    args = parser.parse_args()
    config = Config(embedder=args.embedder)
    print(device_line())
    tmp = Path(tempfile.mkdtemp(prefix="landscape-speed-"))
    db = None
    if args.part in ("build", "all"):
        db = part_build(tmp, config)
    if args.part in ("latency", "all"):
        if db is None:
            if not args.db:
                raise SystemExit("--part latency needs --db BUILT_STORE (or run --part all)")
            db = tmp / "latency.db"
            shutil.copy(args.db, db)
        part_latency(db, config)
    if args.part in ("ann", "all"):
        part_ann(args.n)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
