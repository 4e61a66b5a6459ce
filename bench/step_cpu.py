"""Time build steps recomputed in full on a copy of a built SQLite store: wall-clock and CPU
seconds of each, and peak RSS. For comparing two versions of a step on the same stores (run it
once per tree, PYTHONPATH choosing the code) on a machine shared with other work, where only
the CPU seconds are comparable.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/step_cpu.py /tmp/scale/scale_5000.db \\
        --steps connections,summaries,areas --label mine
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
    args = parser.parse_args(argv)
    import landscape
    from landscape.config import Config
    from landscape.enrich.pipeline import BuildContext, load_step
    from landscape.store import Store

    copy = args.store.with_name(f"{args.store.name}.{args.label}.db")
    with sqlite3.connect(args.store) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    config = Config.load(None, db_path=str(copy))
    config.embedder = args.embedder
    out: dict = {"code": landscape.__file__, "store": str(copy), "steps": {}}
    with Store(str(copy)) as store:
        ctx = BuildContext(store=store, config=config, full=True)
        for name in [s for s in args.steps.split(",") if s]:
            wall, cpu = time.perf_counter(), time.process_time()
            counts = load_step(name, config).run(ctx)
            out["steps"][name] = {"wall_s": round(time.perf_counter() - wall, 1),
                                  "cpu_s": round(time.process_time() - cpu, 1), "counts": counts}
            print(f"{args.label} {name}: {out['steps'][name]}", flush=True)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
