"""Engine: the same build with the local engine and with Ray at 1 and 2 CPUs; Ray's overhead and
its scaling from 1 to 2 CPUs.

    python bench/engine.py                        # 2,000 generated records, tfidf embedder
    python bench/engine.py --n 5000 --embedder fast --cpus 1,2,4

One corpus (bench/corpus_gen.py) is ingested once; each engine builds a copy of that store in its
own child process (`landscape build` as a library call), so every Ray run pays its own start-up,
reported apart from the build. Columns: the embed step (the per-record work the engine runs),
the whole build, and Ray's start-up. Both engines run at each CPU count (the local engine forks
that many processes, Ray gets that many CPUs): overhead is Ray against the local engine on the
same cores, scaling is each engine at 1 CPU against itself at 2.
`measure()` answers the rows for other benches (bench/scale_out.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

ENGINE_STEPS = ("embed", "summaries", "connections")  # the steps whose per-record work the engine runs

CHILD = """
import json, sys, time
from landscape.config import Config
from landscape.engine import get_engine
from landscape.enrich.pipeline import build
from landscape.store import Store
db, embedder, engine_name, cpus = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
engine = get_engine(engine_name, num_cpus=cpus or None)
start_s = time.perf_counter() - t0
config = Config(embedder=embedder)
with Store(db) as store:
    t1 = time.perf_counter()
    steps = build(store, config, engine=engine)
    build_s = time.perf_counter() - t1
engine.close()
print(json.dumps({"start_s": start_s, "build_s": build_s, "steps": {r.name: r.seconds for r in steps}}))
"""


def run_build(db: Path, embedder: str, engine: str, cpus: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(db), embedder, engine, str(cpus)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(n: int = 2000, embedder: str = "tfidf", cpus: tuple[int, ...] = (1, 2), workdir: Path | None = None) -> list[dict]:
    """One row per engine: {engine, cpus, embed_s, build_s, start_s}."""
    from corpus_gen import write_corpus

    work = Path(workdir or tempfile.mkdtemp(prefix="engine-bench-"))
    corpus = write_corpus(work / f"c{n}.txt", n)
    base = work / "base.db"
    base.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "landscape", "ingest", str(corpus), "--db", str(base)], cwd=ROOT,
                   capture_output=True, check=True)
    rows = []
    for engine, k in [*(("local", c) for c in cpus), *(("ray", c) for c in cpus)]:
        db = work / f"{engine}{k}.db"
        shutil.copy(base, db)
        started = time.perf_counter()
        result = run_build(db, embedder, engine, k)
        steps = result["steps"]
        rows.append({"engine": engine, "cpus": k, **{f"{s}_s": steps.get(s, 0.0) for s in ENGINE_STEPS},
                     "engine_s": sum(steps.get(s, 0.0) for s in ENGINE_STEPS),
                     "build_s": result["build_s"], "start_s": result["start_s"],
                     "wall_s": time.perf_counter() - started})
        db.unlink()
    return rows


def comparisons(rows: list[dict]) -> tuple[list[tuple[int, dict, dict]], list[tuple[str, dict, dict]]]:
    """(cpus, local row, Ray row) for each CPU count both engines ran at (the overhead), and
    (engine, 1-CPU row, 2-CPU row) for each engine run at both (the scaling). Rows of runs made
    before the local engine took a CPU count have none: they count as 0."""
    by = {(r["engine"], r["cpus"] or 0): r for r in rows}
    same = [(k, by[("local", k)], by[("ray", k)]) for k in sorted({k for _, k in by})
            if ("local", k) in by and ("ray", k) in by]
    scaling = [(e, by[(e, 1)], by[(e, 2)]) for e in ("local", "ray") if (e, 1) in by and (e, 2) in by]
    return same, scaling


def table(rows: list[dict], n: int, embedder: str) -> str:
    cols = [f"{s}_s" for s in ENGINE_STEPS] + ["engine_s", "build_s", "start_s"]
    heads = [*ENGINE_STEPS, "3 steps", "build", "ray start"]
    lines = [f"engine bench: {n} generated records, embedder {embedder}; seconds",
             f"{'engine':<10}" + "".join(f"{h:>13}" for h in heads)]
    for r in rows:
        lines.append(f"{r['engine'] + ' x' + str(r['cpus']):<10}" + "".join(f"{r[c]:>13.2f}" for c in cols))
    same, scaling = comparisons(rows)
    for k, local, ray in same:
        lines.append(f"Ray against local at {k} CPU{'s' if k > 1 else ''}: the 3 engine steps"
                     f" {100 * (ray['engine_s'] / local['engine_s'] - 1):+.0f}%, the build"
                     f" {100 * (ray['build_s'] / local['build_s'] - 1):+.0f}% (start-up apart; goal under 15%)")
    for engine, one, two in scaling:
        lines.append(f"{engine} scaling 1 -> 2 CPUs: the 3 engine steps {one['engine_s'] / two['engine_s']:.2f}x,"
                     f" the build {one['build_s'] / two['build_s']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--embedder", default="tfidf", help="tfidf (default), fast or minilm")
    parser.add_argument("--cpus", default="1,2", help="Ray CPU counts to run, comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="working folder (default: a temp folder)")
    args = parser.parse_args(argv)
    cpus = tuple(int(c) for c in args.cpus.split(","))
    load = os.getloadavg()[0]
    rows = measure(args.n, args.embedder, cpus, args.out)
    print(table(rows, args.n, args.embedder))
    print(f"load average (1 min) {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
