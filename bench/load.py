"""Load: `landscape serve` with 1 and N worker processes, one client and then 64 connections.

For each worker count the server is started on 127.0.0.1 and warmed up (not measured); then
1. one client, one request at a time: p50/p95 of the record page and of hybrid search;
2. --connections concurrent connections for --seconds: record pages, hybrid search (the page)
   and related (the API) in equal shares; per endpoint requests/s, p50/p95/p99 and errors.
Every answer must be a 200. The server's resident memory (all its processes) is sampled.

    .venv/bin/python bench/load.py --db STORE [--workers 1,2] [--seconds 60] [--connections 64]
        [--single 200] [--warmup 10] [--mix record,search,related]

Without --db a store is made from the listing and built with the tfidf embedder. The client
runs on the same machine (one asyncio process with httpx), so on a small machine the client and
the server share the cores, and the figures say so with the load average.

Goals (issue 14, at 1,000,000 records): one client p95 record page < 50 ms and hybrid search
< 150 ms; at 64 connections >= 800 record pages/s and >= 100 searches/s, no errors, p99 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
QUERIES = ["dark matter", "neural network", "lattice QCD", "gravitational waves", "anomaly detection",
           "simulation-based inference", "jet tagging", "symbolic regression", "normalizing flows",
           "strong lensing", "equivariant", "galaxy", "collider", "quantum", "diffusion model", "xyzzy"]
ENDPOINTS = {
    "record": ("record page", lambda rid, q: f"/records/{rid}"),
    "search": ("search page", lambda rid, q: f"/search?q={q}"),
    "related": ("related API", lambda rid, q: f"/api/v1/related?id={rid}"),
    "search-api": ("search API", lambda rid, q: f"/api/v1/search?q={q}"),
    "record-api": ("record API", lambda rid, q: f"/api/v1/records/{rid}"),
    "posts": ("posts page", lambda rid, q: "/posts"),
}
GOALS = {"record page": (50, 800), "search page": (150, 100)}  # one-client p95 ms, req/s at 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """A process and its descendants (the server's workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree_rss_mb(pid: int) -> float:
    """Resident memory of the server's processes, in MB."""
    total = 0.0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the server's processes have used: divided by the requests
    answered, the work per request, which a busy shared machine does not inflate as it does
    latency."""
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def settle(pid: int, limit_s: float = 300) -> None:
    """Wait until the server is idle (each worker's warm-up, which counts the store and loads the
    search index in the background, has finished), so the phases measure only their requests."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = tree_cpu_s(pid)
        time.sleep(1)
        if tree_cpu_s(pid) - before < 0.05:
            return


def make_store(tmp: Path) -> Path:
    db = tmp / "load.db"
    cli = [sys.executable, "-m", "landscape"]
    subprocess.run([*cli, "ingest", str(SHARED / "corpus" / "landscape_dev.txt"), "--db", str(db)],
                   check=True, capture_output=True)
    subprocess.run([*cli, "build", "--embedder", "tfidf", "--db", str(db)], check=True, capture_output=True)
    return db


def sample(db: Path, n: int, seed: int) -> tuple[list[str], list[str]]:
    """Record ids to ask for, and queries: the fixed ones plus words from sampled titles."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    count = conn.execute("SELECT max(rowid) FROM records").fetchone()[0] or 0
    rng = random.Random(seed)
    rowids = sorted({rng.randint(1, count) for _ in range(n)})
    rows = []
    for start in range(0, len(rowids), 500):
        chunk = rowids[start : start + 500]
        rows += conn.execute(f"SELECT id, display_title FROM records WHERE rowid IN ({','.join('?' * len(chunk))})",
                             chunk).fetchall()
    conn.close()
    queries = list(QUERIES)
    for _, title in rows[: n // 4]:
        words = [w for w in re.findall(r"[A-Za-z]{4,}", title)]
        if len(words) >= 2:
            start = rng.randrange(len(words) - 1)
            queries.append(" ".join(words[start : start + rng.choice((1, 2, 3))]))
    return [quote(rid, safe="") for rid, _ in rows], [quote(q) for q in queries]


def start_server(db: Path, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "landscape", "serve", "--port", str(port), "--workers", str(workers), "--db", str(db)]
    with log.open("w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/api/v1/stats", timeout=60).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")


async def drive(base: str, urls: list[tuple[str, str]], seconds: float, connections: int, pid: int,
                max_requests: int = 10**9) -> dict:
    """Requests from `urls` (drawn at random) over `connections` connections for `seconds`."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    memory: list[float] = []
    sent = 0
    start = time.perf_counter()
    cpu = tree_cpu_s(pid)
    deadline = start + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def worker(n: int) -> None:
            nonlocal sent
            rng = random.Random(n)
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                name, url = rng.choice(urls)
                t = time.perf_counter()
                try:
                    r = await client.get(url)
                    await r.aread()
                    if r.status_code != 200:
                        errors.append(f"{url}: {r.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(f"{url}: {type(exc).__name__}")
                latencies[name].append(time.perf_counter() - t)

        async def sampler() -> None:
            while time.perf_counter() < deadline and sent < max_requests:
                memory.append(tree_rss_mb(pid))
                await asyncio.sleep(2)

        await asyncio.gather(sampler(), *(worker(n) for n in range(connections)))
    return {"latencies": latencies, "errors": errors, "memory": memory, "elapsed": time.perf_counter() - start,
            "cpu_ms": (tree_cpu_s(pid) - cpu) * 1000 / max(1, sum(len(v) for v in latencies.values()))}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else float("nan")


def mix_urls(mix: list[str], ids: list[str], queries: list[str], rng: random.Random, n: int = 4000) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        name, make = ENDPOINTS[mix[i % len(mix)]]
        out.append((name, make(rng.choice(ids), rng.choice(queries))))
    return out


def run_workers(db: Path, workers: int, args: argparse.Namespace, ids: list[str], queries: list[str],
                tmp: Path) -> dict:
    server, base = start_server(db, workers, tmp / f"serve{workers}.log")
    rng = random.Random(args.seed)
    mix = args.mix.split(",")
    try:
        warm = asyncio.run(drive(base, mix_urls(mix, ids, queries, rng), args.warmup, 2 * workers, server.pid))
        settle(server.pid)
        single = {}
        for key in ("record", "search"):
            name, _ = ENDPOINTS[key]
            urls = mix_urls([key], ids, queries, rng, args.single)
            single[name] = asyncio.run(drive(base, urls, 600, 1, server.pid, max_requests=args.single))
        load_avg = os.getloadavg()[0]
        busy = asyncio.run(drive(base, mix_urls(mix, ids, queries, rng), args.seconds, args.connections, server.pid))
        log_tail = (tmp / f"serve{workers}.log").read_text().splitlines()[-20:]
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {"workers": workers, "warm_errors": len(warm["errors"]), "load_before": round(load_avg, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "single": {k: {"n": len(v["latencies"][k]), "p50": pct(v["latencies"][k], 0.5),
                           "p95": pct(v["latencies"][k], 0.95), "errors": len(v["errors"]), "cpu_ms": v["cpu_ms"]}
                       for k, v in single.items()},
            "busy": {"elapsed": busy["elapsed"], "cpu_ms": busy["cpu_ms"], "errors": busy["errors"][:10], "error_count": len(busy["errors"]),
                     "memory_mb": [round(m) for m in busy["memory"]],
                     "endpoints": {k: {"n": len(v), "rps": len(v) / busy["elapsed"], "p50": pct(v, 0.5),
                                       "p95": pct(v, 0.95), "p99": pct(v, 0.99), "max": max(v) * 1000}
                                   for k, v in busy["latencies"].items()}},
            "log_tail": log_tail if busy["errors"] else []}


def report(results: list[dict], n_records: int, connections: int, seconds: float) -> str:
    lines = [f"store: {n_records:,} records; {os.cpu_count()} CPUs; client in the same machine (httpx, one process)"]
    lines.append("\none client, one request at a time (p95 goal at 1,000,000 records):")
    lines.append(f"{'workers':>7} {'endpoint':<12} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms':>7}"
                 f" {'req/s/core':>10}  goal")
    for r in results:
        for name, s in r["single"].items():
            goal = GOALS.get(name, (None,))[0]
            verdict = "" if goal is None else f"p95 < {goal} ms: {'met' if s['p95'] < goal else 'MISSED'}"
            lines.append(f"{r['workers']:>7} {name:<12} {s['n']:>8} {s['p50']:>8.1f} {s['p95']:>8.1f}"
                         f" {s['cpu_ms']:>7.1f} {1000 / max(s['cpu_ms'], 1e-3):>10.0f}  {verdict}")
    lines.append("(CPU ms: the server's CPU time per request; req/s/core: what one free core would answer)")
    lines.append(f"\n{connections} connections for {seconds:.0f} s:")
    lines.append(f"{'workers':>7} {'endpoint':<12} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}"
                 f" {'p99 ms':>8} {'max ms':>8}  goal")
    for r in results:
        busy = r["busy"]
        for name, e in sorted(busy["endpoints"].items()):
            goal = GOALS.get(name, (None, None))[1]
            verdict = "" if goal is None else f">= {goal}/s: {'met' if e['rps'] >= goal else 'MISSED'}"
            lines.append(f"{r['workers']:>7} {name:<12} {e['n']:>8} {e['rps']:>7.1f} {e['p50']:>8.1f} {e['p95']:>8.1f}"
                         f" {e['p99']:>8.1f} {e['max']:>8.1f}  {verdict}")
        everything = sum(e["n"] for e in busy["endpoints"].values())
        p99_ok = all(e["p99"] < 1000 for e in busy["endpoints"].values())
        lines.append(f"{r['workers']:>7} {'all':<12} {everything:>8} {everything / busy['elapsed']:>7.1f}"
                     f"   errors {busy['error_count']} (goal 0), p99 < 1 s: {'met' if p99_ok else 'MISSED'};"
                     f" load average {r['load_before']} before, {r['load_after']} after;"
                     f" server RSS {min(busy['memory_mb'], default=0)}-{max(busy['memory_mb'], default=0)} MB;"
                     f" server CPU {busy['cpu_ms']:.1f} ms a request")
        for e in busy["errors"]:
            lines.append("    error: " + e)
        for line in r["log_tail"]:
            lines.append("    server: " + line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="", help="a built store (default: build one from the listing)")
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}", help="worker counts to measure, comma-separated")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--single", type=int, default=200, help="one-client requests per endpoint")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of unmeasured requests after start")
    parser.add_argument("--mix", default="record,search,related", help=f"endpoints: {', '.join(ENDPOINTS)}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    unknown = set(args.mix.split(",")) - set(ENDPOINTS)
    if unknown:
        raise SystemExit(f"--mix: expected {', '.join(ENDPOINTS)}, found {sorted(unknown)[0]!r}")
    with tempfile.TemporaryDirectory(prefix="landscape-load-") as tmp:
        db = Path(args.db) if args.db else make_store(Path(tmp))
        ids, queries = sample(db, 2000, args.seed)
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        n_records = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        conn.close()
        results = []
        for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
            print(f"[{workers} worker(s)] load average {os.getloadavg()[0]:.2f}", flush=True)
            results.append(run_workers(db, workers, args, ids, queries, Path(tmp)))
            print(report(results[-1:], n_records, args.connections, args.seconds), flush=True)
        print("\n" + report(results, n_records, args.connections, args.seconds))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        sys.exit(1 if any(r["busy"]["error_count"] for r in results) else 0)


if __name__ == "__main__":
    main()
