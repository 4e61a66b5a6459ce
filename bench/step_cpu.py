"""Time build steps on a copy of a built SQLite store: wall-clock and CPU seconds of each, and
peak RSS. Recomputed in full, or with `--add FILE` as the build after ingesting FILE (what
adding records costs). For comparing two versions of a step on the same stores (run it once per
tree, PYTHONPATH choosing the code) on a machine shared with other work, where only the CPU
seconds are comparable.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/step_cpu.py /tmp/scale/scale_5000.db \\
        --steps connections,summaries,areas --label mine
    PYTHONPATH=. python bench/step_cpu.py /tmp/scale/scale_100000.db --add more.txt --steps all
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):  # PYTHONPATH chooses the tree whose code is timed
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path, help="a built SQLite store (left as it is: a copy is timed)")
    parser.add_argument("--steps", default="connections,summaries,areas", help="comma-separated build steps")
    parser.add_argument("--label", default="run", help="names the copy: STORE.LABEL.db")
    parser.add_argument("--embedder", default="tfidf")
    parser.add_argument("--add", type=Path, default=None,
                        help="ingest this file into the copy first, then build only what it changed")
    args = parser.parse_args(argv)
    import landscape
    from landscape.config import Config
    from landscape.enrich.pipeline import STEPS, BuildContext, run_steps
    from landscape.ingest import ingest_paths
    from landscape.store import Store

    copy = args.store.with_name(f"{args.store.name}.{args.label}.db")
    with sqlite3.connect(args.store) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    config = Config.load(None, db_path=str(copy))
    config.embedder = args.embedder
    out: dict = {"code": landscape.__file__, "store": str(copy), "steps": {}}
    sidecars = args.store.parent.glob(f"{args.store.name}.*.graph.hnsw")  # the neighbour graph's index
    for sidecar in (s for s in sidecars if ".db." not in s.name[len(args.store.name):]):  # not an earlier copy's
        (copy.parent / sidecar.name.replace(args.store.name, copy.name, 1)).write_bytes(sidecar.read_bytes())
    steps = STEPS if args.steps == "all" else [s for s in args.steps.split(",") if s]
    with Store(str(copy)) as store:
        if args.add:
            wall, cpu = time.perf_counter(), time.process_time()
            ingest_paths(store, [args.add])
            out["steps"]["ingest"] = {"wall_s": round(time.perf_counter() - wall, 1),
                                      "cpu_s": round(time.process_time() - cpu, 1)}
            print(f"{args.label} ingest: {out['steps']['ingest']}", flush=True)
        ctx = BuildContext(store=store, config=config, full=args.add is None)
        running = run_steps(ctx, steps)  # as `landscape build` runs them
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            done = next(running, None)
            if done is None:
                break
            name, counts = done
            out["steps"][name] = {"wall_s": round(time.perf_counter() - wall, 1),
                                  "cpu_s": round(time.process_time() - cpu, 1), "counts": counts}
            print(f"{args.label} {name}: {out['steps'][name]}", flush=True)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    total = {k: round(sum(v[k] for v in out["steps"].values()), 1) for k in ("wall_s", "cpu_s")}
    print(f"{args.label} total: {total}, peak {out['peak_rss_mb']} MB", flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
