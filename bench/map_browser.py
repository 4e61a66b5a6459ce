"""The map in a real browser at a million points: first draw, bytes transferred, hover pick.

    .venv/bin/python bench/map_browser.py [--n 1000000] [--db /tmp/map_bench/map-1000000.db]

A store of n synthetic records (made through the store's own write methods: records, topics in
clusters grouped into areas, map coordinates; kept and reused at --db) is served by a real
`landscape serve`; Debian's chromium, headless with software GL (SwiftShader), opens /map and /.
Measured: seconds from navigation to the first frame drawn (the page sets data-first-draw-ms
after a pixel read-back, so the frame is really drawn), bytes transferred (the encoded bytes of
every response, from the DevTools protocol), the time of one hover pick (the grid index, over
2,000 cursor positions spread over the map), one full redraw and one while the view moves (a
stride sample of about 150,000 points), the time from moving the mouse onto a point until
its title shows (with the row fetch), and the home page's size. Baseline from the same run: the
JSON route /api/v1/map (every point as JSON, what the map loaded before). The machine is shared;
the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from landscape.models import Record
from landscape.store import Store

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
GL_ARGS = ["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
           "--disable-background-networking", "--disable-component-update", "--no-first-run"]
AREAS = ["Astrophysics", "Theoretical Physics", "Experimental Physics", "Foundational AI", "Applied AI", "Biology"]
WORDS = ("dark matter galaxy stellar stream lensing neutrino collider jet quark gauge string holography "
         "transformer diffusion graph kernel protein genome cell inference sampling spectra halo").split()
GOALS = {"first draw s": 5.0, "transferred MB": 12.0, "pick ms (p95)": 5.0, "home KB": 300.0}


def make_store(path: Path, n: int, seed: int = 7, batch: int = 20_000) -> None:
    """n records in 120 Gaussian clusters (topics) over 6 areas, with their map coordinates."""
    rng = np.random.default_rng(seed)
    k = 120
    centres = rng.uniform(-20, 20, size=(k, 2))
    spread = rng.uniform(0.4, 2.0, size=k)
    weights = rng.dirichlet(np.ones(k) * 2)
    topic_area = rng.integers(0, len(AREAS), size=k)
    topic = rng.choice(k, size=n, p=weights)
    xy = centres[topic] + rng.normal(size=(n, 2)) * spread[topic, None]
    labels = [f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7 + 3) % len(WORDS)]}" for i in range(k)]
    with Store(str(path)) as store:
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            recs = [Record(id=f"s{i:07d}", title=f"Synthetic paper {i} on {labels[topic[i]]}", date="2020-01-01",
                           area=AREAS[topic_area[topic[i]]], abstract="synthetic") for i in range(start, stop)]
            with store.transaction():
                store.upsert_records(recs)
                store.ls_put_map_coords((f"s{i:07d}", float(xy[i, 0]), float(xy[i, 1])) for i in range(start, stop))
        with store.transaction():
            store.ls_replace_topics(
                [{"id": t, "label": labels[t], "area": AREAS[topic_area[t]], "size": int((topic == t).sum())}
                 for t in range(k)],
                [(f"s{i:07d}", int(topic[i]), False, 1.0) for i in range(n)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "landscape", "serve", "--port", str(port), "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(base + "/static/app.js", timeout=5):
                return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"landscape serve did not start: {proc.communicate()[0][-2000:]}") from None
            time.sleep(0.3)


def timed_get(url: str, gzip: bool = True, timeout: float = 600) -> tuple[float, int]:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip else {})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        size = len(r.read())
    return time.perf_counter() - start, size


def open_page(browser, url: str, ready: str) -> dict:
    """Load `url` in a fresh tab; seconds to `ready`, encoded bytes of every response, the tab."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_navigation_timeout(600_000)
    cdp = context.new_cdp_session(tab)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sizes: dict[str, float] = {}
    cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
    start = time.perf_counter()
    tab.goto(url)
    tab.wait_for_selector(ready, timeout=180_000)
    wall = time.perf_counter() - start
    tab.wait_for_load_state("networkidle")
    return {"tab": tab, "context": context, "wall": wall, "bytes": sum(sizes.values()), "requests": len(sizes)}


def measure(base: str, home_timeout: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=GL_ARGS)
        got = open_page(browser, base + "/map", ".map.full[data-ready='1']")
        tab = got["tab"]
        out["renderer"] = tab.get_attribute(".map.full", "data-renderer")
        out["first draw s"] = float(tab.get_attribute(".map.full", "data-first-draw-ms")) / 1000
        out["ready wall s"] = got["wall"]
        out["transferred MB"] = got["bytes"] / 1e6
        out["requests"] = got["requests"]
        out["points drawn"] = tab.evaluate("document.querySelector('.map.full').landscapeMap.drawn")
        print("page timings (ms since navigation):",
              tab.evaluate("document.querySelector('.map.full').landscapeMap.timings"), flush=True)
        picks = tab.evaluate("""() => {
            const m = document.querySelector('.map.full').landscapeMap, times = [];
            let seed = 1, hits = 0;
            const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
            for (let k = 0; k < 2000; k++) {
                const x = rnd() * m.w, y = rnd() * m.h, t = performance.now();
                if (m.pick(x, y) >= 0) hits++;
                times.push(performance.now() - t);
            }
            const mean = times.reduce((a, b) => a + b, 0) / times.length;
            times.sort((a, b) => a - b);
            return [mean, times[1000], times[1900], times[1999], hits];
        }""")
        (out["pick ms (mean)"], out["pick ms (median)"], out["pick ms (p95)"], out["pick ms (max)"],
         out["pick hits of 2000"]) = picks
        frame = tab.evaluate("""() => new Promise(r => { const m = document.querySelector('.map.full').landscapeMap;
            const t = performance.now(); m.view.scale *= 1.5; m.drawNow(); m.renderer.finish(); r(performance.now() - t); })""")
        out["redraw ms (zoom)"] = frame
        out["redraw ms (moving)"] = tab.evaluate("""() => { const m = document.querySelector('.map.full').landscapeMap;
            const t = performance.now(); m.moving = true; m.view.scale *= 1.2; m.drawNow(); m.renderer.finish();
            const ms = performance.now() - t; m.moving = false; return ms; }""")
        x, y = tab.evaluate("""() => { const m = document.querySelector('.map.full').landscapeMap,
            p = m.project(12345 % m.n), b = m.canvas.getBoundingClientRect(); return [b.left + p[0], b.top + p[1]]; }""")
        start = time.perf_counter()
        tab.mouse.move(x, y)
        tab.wait_for_function("() => { const t = document.querySelector('.map-tip'); return !t.hidden && t.textContent !== '…'; }")
        out["hover to title s"] = time.perf_counter() - start
        got["context"].close()
        print("map page:", {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}, flush=True)
        try:
            seconds, html = timed_get(base + "/", gzip=False, timeout=home_timeout)
        except OSError as exc:
            print(f"home page: no answer in {home_timeout:.0f}s ({exc}); its size is not measured here", flush=True)
        else:
            out["home HTML KB"] = html / 1e3
            out["home server s"] = seconds
            home = open_page(browser, base + "/", ".map.small[data-ready='1']")
            out["home KB"] = home["bytes"] / 1e3
            home["context"].close()
        browser.close()
    return out


def json_baseline(db: Path) -> tuple[float, int]:
    """Seconds and gzipped bytes of every point as JSON (`map_data`, what the map loaded before;
    the JSON route now refuses a map this big), built in this process."""
    import gzip
    import json

    from landscape.web.context_landscape import map_data

    start = time.perf_counter()
    with Store(str(db), readonly=True) as store:
        body = json.dumps(map_data(store), separators=(",", ":")).encode()
    size = len(gzip.compress(body, compresslevel=6))
    return time.perf_counter() - start, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--no-baseline", action="store_true", help="skip the JSON route (slow at a million)")
    parser.add_argument("--home-timeout", type=float, default=240, help="seconds to wait for the home page")
    args = parser.parse_args()
    db = args.db or Path(f"/tmp/map_bench/map-{args.n}.db")
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        make_store(db, args.n)
        print(f"made {db} ({args.n} records) in {time.perf_counter() - start:.0f}s")
    proc, base = serve(db)
    try:
        first, size = timed_get(base + "/api/v1/map/points")
        again, _ = timed_get(base + "/api/v1/map/points")
        print(f"binary route: {size / 1e6:.2f} MB gzipped; first request {first:.1f}s (builds it for this store "
              f"version), then {again:.2f}s")
        figures = measure(base, args.home_timeout)
        baseline = None if args.no_baseline else json_baseline(db)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    load = os.getloadavg()
    print(f"\n{args.n:,} points; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs "
          "(a shared machine)")
    print(f"{'figure':<22} {'value':>10}  goal")
    for name, value in figures.items():
        goal = GOALS.get(name)
        mark = "" if goal is None else (f"< {goal:g}  " + ("met" if float(value) < goal else "MISSED"))
        shown = value if isinstance(value, str) else f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{name:<22} {shown:>10}  {mark}")
    if baseline is not None:
        print(f"baseline, every point as JSON (the map before): {baseline[1] / 1e6:.1f} MB gzipped, "
              f"{baseline[0]:.1f}s to build")
    if not re.fullmatch(r"webgl", str(figures.get("renderer"))):
        print("note: the map did not draw with WebGL in this browser")


if __name__ == "__main__":
    main()
