"""Load: `landscape serve` on 127.0.0.1 driven at 64 concurrent connections for 60 s.

The mix is search (page and API), record pages, related (API) and the map (page and data).
Every answer must be a 200; the table gives throughput and p50/p99 latency per endpoint, and
the server's resident memory is sampled every few seconds to show it stays flat.

    .venv/bin/python bench/load.py [--db STORE] [--seconds 60] [--connections 64] [--max-requests N]

Without --db a store is made from the listing and built with the tfidf embedder. The client
runs on the same machine as the server (one asyncio process with httpx), so on a small
machine the two share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
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
LANDSCAPE = str(Path(sys.executable).parent / "landscape")
QUERIES = ["dark matter", "neural network", "lattice QCD", "gravitational waves", "anomaly detection",
           "simulation-based inference", "jet tagging", "symbolic regression", "normalizing flows",
           "strong lensing", "equivariant", "galaxy", "collider", "quantum", "diffusion model", "xyzzy"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_store(tmp: Path) -> Path:
    db = tmp / "load.db"
    subprocess.run([LANDSCAPE, "ingest", str(SHARED / "corpus" / "landscape_dev.txt"), "--db", str(db)],
                   check=True, capture_output=True)
    subprocess.run([LANDSCAPE, "build", "--embedder", "tfidf", "--db", str(db)], check=True, capture_output=True)
    return db


def requests_mix(ids: list[str], rng: random.Random) -> tuple[str, str]:
    """(endpoint name, URL) drawn from the mix."""
    rid = quote(rng.choice(ids), safe="")
    q = quote(rng.choice(QUERIES))
    return rng.choice([
        ("search page", f"/search?q={q}"),
        ("search API", f"/api/v1/search?q={q}"),
        ("record page", f"/records/{rid}"),
        ("record API", f"/api/v1/records/{rid}"),
        ("related API", f"/api/v1/related?id={rid}"),
        ("map page", "/map"),
        ("map data", "/api/v1/map"),
    ])


async def drive(base: str, ids: list[str], seconds: float, connections: int, max_requests: int,
                pid: int) -> tuple[dict[str, list[float]], list[str], list[tuple[float, float]], float]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    memory: list[tuple[float, float]] = []
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def worker(n: int) -> None:
            nonlocal sent
            rng = random.Random(n)
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                name, url = requests_mix(ids, rng)
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
                memory.append((time.perf_counter() - start, rss_mb(pid)))
                await asyncio.sleep(5)
            memory.append((time.perf_counter() - start, rss_mb(pid)))

        await asyncio.gather(sampler(), *(worker(n) for n in range(connections)))
    return latencies, errors, memory, time.perf_counter() - start


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def report(latencies: dict[str, list[float]], errors: list[str], memory: list[tuple[float, float]],
           elapsed: float, connections: int) -> None:
    total = sum(len(v) for v in latencies.values())
    print(f"{total} requests in {elapsed:.1f} s at {connections} connections: {total / elapsed:.0f} req/s, "
          f"{len(errors)} errors (load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores)")
    print(f"\n{'endpoint':<14} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    everything = [x for v in latencies.values() for x in v]
    for name, values in sorted(latencies.items()) + [("all", everything)]:
        print(f"{name:<14} {len(values):>9} {pct(values, 0.5):>8.1f} {pct(values, 0.99):>8.1f} "
              f"{max(values) * 1000:>8.1f}")
    print("\nserver RSS (MB) over time: " + ", ".join(f"{t:.0f}s {m:.0f}" for t, m in memory))
    settled = [m for t, m in memory if t >= 10] or [m for _, m in memory]
    print(f"after the first 10 s: min {min(settled):.0f} MB, max {max(settled):.0f} MB, "
          f"end - start {settled[-1] - settled[0]:+.0f} MB; mean {statistics.mean(settled):.0f} MB")
    for e in errors[:10]:
        print("  error: " + e)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="", help="a built store (default: build one from the listing)")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="landscape-load-") as tmp:
        db = Path(args.db) if args.db else make_store(Path(tmp))
        port = free_port()
        log = Path(tmp) / "serve.log"
        with log.open("w") as out:
            cmd = [LANDSCAPE, "serve", "--port", str(port), "--db", str(db)]
            server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    ids = httpx.get(f"{base}/api/v1/map", timeout=30).json()["ids"]
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise SystemExit("the server did not start")
            print(f"store {db}: {len(ids)} records on the map; server pid {server.pid}")
            result = asyncio.run(drive(base, ids, args.seconds, args.connections, args.max_requests, server.pid))
            report(*result, args.connections)
            if result[1]:
                print("server log, last lines:\n" + "\n".join(log.read_text().splitlines()[-20:]))
        finally:
            server.terminate()
            server.wait(timeout=30)
        sys.exit(1 if result[1] else 0)


if __name__ == "__main__":
    main()
