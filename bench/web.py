"""Speed and weight of the web site on this machine, printed as tables.

1. home: bytes a browser transfers to show the home page, apart from the map data (goal: under
   300 KB), measured in Debian's chromium (Playwright) against a real `landscape serve`, each
   resource listed; and, without a browser, the page and the assets it always loads.
2. paper: paper page latency p50/p95 over HTTP from a real `landscape serve` (uvicorn, one
   process) at 574 records: the corpus, the seeds and synthetic variants of corpus papers, built
   (goal: p95 under 50 ms). Every request asks for a different record, without If-None-Match.
3. map: the map page with 100,000 synthetic points in chromium (software rendering: the tests'
   --disable-gpu flags): time until drawn, frame time while panning, hover pick time.

    .venv/bin/python bench/web.py [--db BUILT] [--part home|paper|map|all] [--requests 400]

With --db, a copy of that built store is used (the build is skipped, the variants still added).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from speed import synthetic_variants, table  # noqa: E402

from landscape.config import Config  # noqa: E402
from landscape.enrich.pipeline import build  # noqa: E402
from landscape.ingest import ingest_paths  # noqa: E402
from landscape.store import Store  # noqa: E402

SHARED = ROOT.parent / "shared"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TARGET_RECORDS = 574


def kb(n: float) -> str:
    return f"{n / 1024:.1f}"


def prepared_store(tmp: Path, built: Path | None) -> Path:
    """A built store of TARGET_RECORDS records: the corpus and seeds, plus synthetic variants."""
    db = tmp / "web.db"
    config = Config()
    if built:
        shutil.copy(built, db)
    with Store(db) as store:
        if not built:
            ingest_paths(store, [str(SHARED / "corpus"), str(SHARED / "seeds")])
        extra = TARGET_RECORDS - store.count_records()
        if extra > 0:
            ingest_paths(store, [str(synthetic_variants(store, extra))])
        t0 = time.perf_counter()
        build(store, config)
        print(f"store: {store.count_records()} records, built in {time.perf_counter() - t0:.0f} s")
    return db


class Server:
    """`landscape serve` in its own process on a free port."""

    def __init__(self, db: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-c", "from landscape.cli import main; main()", "serve",
                                      "--port", str(self.port), "--db", str(db)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.base + "/api/v1/stats", timeout=5):
                    pass
                # the server warms the search model up in the background: let that finish first
                urllib.request.urlopen(self.base + "/search?q=warm+up", timeout=600).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("landscape serve did not start") from None
                time.sleep(0.3)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def home_without_browser(server: Server) -> None:
    """The home HTML and the assets it always loads, raw and gzip-compressed as served."""
    import re

    html = urllib.request.urlopen(server.base + "/").read()
    assets = re.findall(rb'(?:src|href)="(/static/[^"]+)"', html)
    maps = re.findall(rb'data-map-js="(/static/[^"]+)"', html)
    rows, total_raw, total_gz = [], 0, 0
    for path in [b"/", *assets, *maps]:
        body = urllib.request.urlopen(server.base + path.decode().replace("&amp;", "&")).read()
        gz = len(gzip.compress(body, 6))
        total_raw, total_gz = total_raw + len(body), total_gz + gz
        rows.append((path.decode().split("?")[0], kb(len(body)), kb(gz)))
    rows.append(("total", kb(total_raw), kb(total_gz)))
    table("home page without a browser: HTML and the assets it always loads, KB", ("resource", "raw", "gzip"), rows)


def home_in_browser(server: Server) -> None:
    from playwright.sync_api import sync_playwright

    sizes: list[tuple[str, int]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def finished(request) -> None:
            s = request.sizes()
            sizes.append((request.url.replace(server.base, ""), s["responseBodySize"] + s["responseHeadersSize"]))

        page.on("requestfinished", finished)
        page.goto(server.base + "/", wait_until="networkidle")
        page.wait_for_selector(".map.small[data-ready='1']")
        page.wait_for_load_state("networkidle")
        browser.close()
    rows = [(url.split("?")[0], kb(n)) for url, n in sizes]
    other = sum(n for url, n in sizes if not url.startswith("/api/v1/map"))
    rows.append(("total apart from the map data (goal < 300)", kb(other)))
    table("home page in chromium: bytes transferred per resource (headers + encoded body), KB",
          ("resource", "KB"), rows)


def paper_latency(server: Server, db: Path, n_requests: int) -> None:
    import httpx

    with Store(db, readonly=True) as store:
        ids = sorted(i for i, b in store.record_brief().items() if b.get("kind", "paper") == "paper")
        total = store.count_records()
    rng = random.Random(0)
    order = [rng.choice(ids) for _ in range(n_requests)]
    times, sizes = [], []
    with httpx.Client(base_url=server.base, headers={"accept-encoding": "gzip"}) as client:
        for rid in order[:20]:
            client.get(f"/records/{rid}")
        for rid in order:
            t0 = time.perf_counter()
            r = client.get(f"/records/{rid}")
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, (rid, r.status_code)
            sizes.append(len(r.content))
    q = statistics.quantiles(times, n=100)
    table(f"paper page over HTTP at {total} records ({n_requests} requests, random records, after 20 warm-up)",
          ("p50 ms", "p95 ms", "max ms", "goal p95 ms", "mean page KB"),
          [(f"{q[49] * 1000:.1f}", f"{q[94] * 1000:.1f}", f"{max(times) * 1000:.1f}", "50",
            kb(statistics.mean(sizes)))])


def synthetic_map(n: int, seed: int = 0) -> dict:
    """n points in 40 clusters, like a real map: columns, 4 areas, 40 topics with labels."""
    rng = random.Random(seed)
    centres = [(rng.uniform(-10, 10), rng.uniform(-10, 10)) for _ in range(40)]
    topic = [rng.randrange(40) for _ in range(n)]
    x = [round(centres[t][0] + rng.gauss(0, 0.8), 4) for t in topic]
    y = [round(centres[t][1] + rng.gauss(0, 0.8), 4) for t in topic]
    return {"count": n, "ids": [f"p{i}" for i in range(n)], "x": x, "y": y, "kind": [0] * n,
            "area": [t % 4 for t in topic], "topic": topic, "title": [f"Synthetic paper {i}" for i in range(n)],
            "areas": ["Astrophysics", "Experimental Physics", "Foundational AI", "Theoretical Physics"],
            "topics": [{"id": k, "label": f"topic {k}", "x": c[0], "y": c[1], "size": topic.count(k)}
                       for k, c in enumerate(centres)]}


FRAMES_JS = """async (steps) => {
  const map = document.querySelector('.map.full').landscapeMap;
  const frame = () => new Promise(r => requestAnimationFrame(r));
  await frame();
  const times = [];
  for (let k = 0; k < steps; k++) {
    const t0 = performance.now();
    map.view.cx += 0.05; map.redraw();
    await frame(); await frame();
    times.push(performance.now() - t0);
  }
  const picks = [];
  for (let k = 0; k < 200; k++) {
    const t0 = performance.now();
    map.pick((k * 37) % map.w, (k * 53) % map.h);
    picks.push(performance.now() - t0);
  }
  return {frames: times, picks: picks, renderer: map.renderer.kind};
}"""


def map_at_scale(server: Server, n: int) -> None:
    from playwright.sync_api import sync_playwright

    body = json.dumps(synthetic_map(n), separators=(",", ":")).encode()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/api/v1/map", lambda route: route.fulfill(status=200, body=body,
                                                                 headers={"content-type": "application/json"}))
        t0 = time.perf_counter()
        page.goto(server.base + "/map")
        page.wait_for_selector(".map.full[data-ready='1']", timeout=120_000)
        ready = time.perf_counter() - t0
        result = page.evaluate(FRAMES_JS, 60)
        browser.close()
    frames, picks = sorted(result["frames"]), sorted(result["picks"])

    def pq(v: list[float], q: float) -> str:
        return f"{v[min(len(v) - 1, int(q * len(v)))]:.1f}"

    table(f"map page with {n:,} synthetic points in chromium ({result['renderer']}, software rendering)",
          ("data KB (gzip)", "load to drawn s", "pan frame p50 ms", "pan frame p95 ms", "hover pick p95 ms"),
          [(kb(len(gzip.compress(body, 6))), f"{ready:.2f}", pq(frames, 0.5), pq(frames, 0.95), pq(picks, 0.95))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a built store of the corpus (skips the build)")
    parser.add_argument("--part", choices=["home", "paper", "map", "all"], default="all")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="landscape-web-bench-"))
    try:
        db = prepared_store(tmp, args.db)
        server = Server(db)
        try:
            have_browser = Path(CHROMIUM).exists()
            if args.part in ("home", "all"):
                home_without_browser(server)
                if have_browser:
                    home_in_browser(server)
            if args.part in ("paper", "all"):
                paper_latency(server, db, args.requests)
            if args.part in ("map", "all") and have_browser:
                map_at_scale(server, args.points)
            if not have_browser:
                print(f"\n{CHROMIUM} is missing: browser measurements skipped")
        finally:
            server.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
