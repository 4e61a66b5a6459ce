"""Speed of Landscape on this machine, printed as tables.

1. build: `landscape build` of ../shared/corpus stage by stage (every step pipeline.build runs),
   then of the 10 records of ../shared/seeds added afterwards, each in a fresh process (start,
   imports and model load included), wall and CPU seconds, and their ratio (goals: full build
   under 60 s, +10 under 5 s and under 10% of the full build).
2. embed: embedding throughput on corpus abstracts: Landscape's encoder, its forward pass alone
   on pre-tokenized batches, its numpy path, and a bare sentence-transformers `encode`.
3. latency: search, related (stored) and related --text p50/p95 at 574 records (the corpus plus
   114 extra records: the seeds and 104 synthetic variants of corpus papers).
4. ann (only with --part ann or all): N synthetic 384-d unit vectors (default 1,000,000,
   clustered like real embeddings): exact search latency by size (where the exact/ANN threshold
   comes from), then an HNSW index (hnswlib): build time, memory, recall@10 against exact and p95
   latency per ef.

    .venv/bin/python bench/speed.py [--part default|build|embed|latency|ann|all] [--n 1000000] [--db BUILT]

The load average is printed beside the figures: the machine may be shared, and wall time on two
busy cores says more about the neighbours than about Landscape; CPU seconds say what it costs.
No GPU is used: this session has none, so issue 4's GPU comparison is not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
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
        return f"CPU: {os.cpu_count()} cores, torch {torch.__version__} (threads per call: every core when idle, " \
            "one when other processes keep the cores busy); " + (
            "GPU available" if gpu else "GPU: none available in this session (embedding measured on CPU only)"
        )
    except ImportError:
        return f"CPU: {os.cpu_count()} cores; torch not installed"


# --- 1. build ---------------------------------------------------------------------------------


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def child_build(db: Path, embedder: str) -> None:
    """Run in a fresh process (as `landscape build` would): per-step wall and CPU seconds as JSON.

    CPU time is that of every thread of the process; on a machine shared with other work it
    says what a step costs when wall time says mostly how busy the machine was.
    """
    marks: list[tuple[str, float]] = []
    cpu0 = time.process_time()
    with Store(db) as store:
        results = build(store, Config(embedder=embedder),
                        log=lambda msg: marks.append((msg.split(":", 1)[0], time.process_time())))
    ends: dict[str, float] = {}
    for name, cpu in marks:
        ends[name] = cpu  # the last line a step logs is the pipeline's, after the step
    steps, before = [], cpu0
    for r in results:
        end = ends.get(r.name, before)
        steps.append({"step": r.name, "seconds": r.seconds, "cpu": end - before, "counts": r.counts})
        before = end
    print(json.dumps({"steps": steps, "threads": _torch_threads()}))


def _torch_threads() -> int | None:
    if "torch" not in sys.modules:
        return None
    return int(sys.modules["torch"].get_num_threads())


def fresh_build(db: Path, embedder: str) -> dict:
    """One build in a new Python process, timed from outside: start, imports and model load included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child-build", str(db), "--embedder", embedder],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(wall=wall, cpu=cpu)
    return out


def part_build(tmp: Path, config: Config) -> Path:
    db = tmp / "build.db"
    print(f"\nbuild part starts: {load_line()}")
    with Store(db) as store:
        t0 = time.perf_counter()
        ingest_paths(store, [str(CORPUS)])
        ingest_s = time.perf_counter() - t0
        n = store.count_records()
    full = fresh_build(db, config.embedder)
    with Store(db) as store:
        t0 = time.perf_counter()
        ingest_paths(store, [str(SEEDS)])
        ingest_seeds_s = time.perf_counter() - t0
        added = store.count_records() - n
        sections = store.connection_for_tests.execute("SELECT count(*) FROM sections").fetchone()[0]
    incr = fresh_build(db, config.embedder)
    print(f"build part ends: {load_line()}")

    rows = [("ingest (not part of build)", f"{ingest_s:.2f}", "", f"{ingest_seeds_s:.2f}", "", "")]
    incr_by = {r["step"]: r for r in incr["steps"]}
    for r in full["steps"]:
        i = incr_by.get(r["step"], {"seconds": 0.0, "cpu": 0.0, "counts": {}})
        rows.append((r["step"], f"{r['seconds']:.2f}", f"{r['cpu']:.2f}", f"{i['seconds']:.2f}", f"{i['cpu']:.2f}",
                     json.dumps(i["counts"], separators=(",", ":"))))
    outside = [full["wall"] - sum(r["seconds"] for r in full["steps"]),
               incr["wall"] - sum(r["seconds"] for r in incr["steps"])]
    rows.append(("start, imports, model load", f"{outside[0]:.2f}", "", f"{outside[1]:.2f}", "", "outside the steps"))
    rows.append(("total (fresh process)", f"{full['wall']:.2f}", f"{full['cpu']:.2f}", f"{incr['wall']:.2f}",
                 f"{incr['cpu']:.2f}", f"goals: full < 60 s, +{added} < 5 s"))
    table(f"`landscape build` of {n} records, then of + {added} records (the seeds: {sections} talk sections), "
          "each in a fresh process; seconds (wall) and CPU seconds (all threads)",
          ("step", "full", "full cpu", f"+{added}", f"+{added} cpu", f"+{added} counts"), rows)
    ratio_wall, ratio_cpu = incr["wall"] / full["wall"], incr["cpu"] / max(full["cpu"], 1e-9)
    print(f"+{added} / full: {100 * ratio_wall:.1f}% of the wall time, {100 * ratio_cpu:.1f}% of the CPU time "
          f"(goal < 10%); torch threads used: {full.get('threads')} (full), {incr.get('threads')} (+{added})")
    embed = next((r for r in full["steps"] if r["step"] == "embed"), None)
    if embed and embed["counts"].get("embedded"):
        k = embed["counts"]["embedded"]
        table("embedding throughput inside the full build (CPU)", ("model", "records", "seconds", "cpu s", "papers/s"),
              [(config.embedder, k, f"{embed['seconds']:.1f}", f"{embed['cpu']:.1f}", f"{k / embed['seconds']:.1f}")])
    return db


def part_embed(config: Config, n: int = 128) -> None:
    """Throughput on the same corpus texts: Landscape's encoder against a bare sentence-transformers
    `encode` (issue 4's reference (a)) and the forward pass alone on pre-tokenized batches ((b))."""
    if config.embedder != "minilm":
        return
    from landscape.enrich.embed import _quiet_transformers, get_embedder, minilm_path

    tmp = Path(tempfile.mkdtemp(prefix="landscape-embed-"))
    with Store(tmp / "e.db") as store:
        ingest_paths(store, [str(CORPUS)])
        texts = list(store.record_texts().values())[:n]
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nembedding part starts: {load_line()}")
    rows = []
    embedder = get_embedder("minilm", config)
    t0 = time.perf_counter()
    embedder.encode(texts[:2])
    load_s = time.perf_counter() - t0

    def timed(label: str, fn, count: int = len(texts)) -> np.ndarray:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append((label, count, f"{wall:.2f}", f"{cpu:.2f}", f"{count / wall:.1f}"))
        return out

    ours = timed("Landscape encoder (torch forward, token-length batches)", lambda: embedder.encode(texts))
    bert = embedder.bert
    ids = bert.token_ids(texts)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batches = [[ids[i] for i in order[s : s + bert.batch_size]] for s in range(0, len(order), bert.batch_size)]
    bert.backend = "torch"
    timed("(b) forward pass alone, pre-tokenized batches", lambda: [bert.forward(b) for b in batches])
    bert.backend = "numpy"
    timed("numpy forward (for <= 8 texts, or without torch)", lambda: bert.encode(texts[:32]), 32)
    t0 = time.perf_counter()
    import torch
    from sentence_transformers import SentenceTransformer

    _quiet_transformers()
    reference = SentenceTransformer(minilm_path(), device="cpu")
    reference.max_seq_length = 256
    st_load = time.perf_counter() - t0

    def bare() -> np.ndarray:
        with torch.inference_mode():
            return reference.encode(texts, batch_size=config.batch_size, normalize_embeddings=True)

    expected = timed("(a) bare sentence-transformers encode", bare)
    diff = float(np.abs(ours - expected).max())
    table(f"embedding throughput on {len(texts)} corpus abstracts (CPU; torch threads {torch.get_num_threads()}); "
          f"{load_line()}", ("encoder", "texts", "seconds", "cpu s", "papers/s"), rows)
    print(f"model load: Landscape encoder {load_s:.2f}s (tokenizer + safetensors, no torch import for 2 texts); "
          f"sentence-transformers {st_load:.2f}s (imports transformers). Largest difference between the two "
          f"encoders' vectors: {diff:.1e}")
    print("GPU: none available in this session, so the GPU comparison of issue 4 (item 6) is not measured here.")


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
    from landscape.enrich.related import related
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
    for ef in (64, 200, 400, 600, 800):
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
    parser.add_argument("--part", choices=["default", "build", "embed", "latency", "ann", "all"], default="default",
                        help="default: build, embed and latency (about 10 minutes); all adds the 1M-vector ANN part")
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors for the ANN part")
    parser.add_argument("--db", type=Path, help="a store built from the corpus (latency part skips the build)")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--child-build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_build:
        return child_build(args.child_build, args.embedder)
    config = Config(embedder=args.embedder)
    print(device_line())
    parts = {"default": ("build", "embed", "latency"), "all": ("build", "embed", "latency", "ann")}.get(
        args.part, (args.part,))
    tmp = Path(tempfile.mkdtemp(prefix="landscape-speed-"))
    db = None
    if "build" in parts:
        db = part_build(tmp, config)
    if "embed" in parts:
        part_embed(config)
    if "latency" in parts:
        if db is None:
            if not args.db:
                raise SystemExit("--part latency needs --db BUILT_STORE (or run the default parts)")
            db = tmp / "latency.db"
            shutil.copy(args.db, db)
        part_latency(db, config)
    if "ann" in parts:
        part_ann(args.n)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
