"""A person in a real browser: Debian's chromium, driven by Playwright, against `landscape serve`.

One server process (a real `landscape serve` on a free port, over the built store of the real
listing and talks) and one browser serve every test here. Every page a test opens must log no
console error and throw no script error. Screenshots go to each test's tmp_path.

Without /usr/bin/chromium these tests fail when the CI variable is set (`make test` installs
it), and elsewhere skip saying why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from landscape.store import open_store

from .test_web import exported_site

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 90_000


def api(base: str, path: str):
    with urllib.request.urlopen(base + path, timeout=60) as r:
        return json.load(r)


def with_abstract(db: Path, record_url: str) -> str:
    """The abstract of the record a static-site link points to (its file name is the record id)."""
    with open_store(db, readonly=True) as store:
        record = store.get_record(Path(record_url).stem)
    return (record.abstract or "") if record else ""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; `make test` does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def server(built_db, chromium):
    """`landscape serve --port 0` in its own process; the address it prints, once it answers."""
    command = [sys.executable, "-c", "from landscape.cli import main; main()", "serve", "--port", "0",
               "--db", str(built_db)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = proc.stdout.readline()
    address = re.match(r"Landscape at (http://127\.0\.0\.1:\d+)/ ", first)
    if address is None:
        proc.kill()
        pytest.fail(f"landscape serve printed no address: {first}{proc.communicate()[0][-2000:]}")
    base = address.group(1)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(base + "/api/v1/stats", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"landscape serve did not start: {proc.communicate()[0][-2000:]}")
            time.sleep(0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh tab; after the test, every console error and script error it saw fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(f"console {m.type}: {m.text} ({tab.url})") if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(f"script error: {e} ({tab.url})"))
    yield tab
    tab.screenshot(path=str(tmp_path / "last.png"))
    context.close()
    assert not errors, errors


def test_search_open_a_paper_see_math_and_follow_a_connection(server, page, tmp_path):
    page.goto(server + "/")
    assert page.title().endswith("Landscape")
    page.fill("#home-q", "simulation-based inference")
    page.press("#home-q", "Enter")
    page.wait_for_selector(".results .card")
    page.screenshot(path=str(tmp_path / "search.png"))
    titles = page.locator(".results .card-title a").all_inner_texts()
    assert any("simulation-based inference" in t.lower() for t in titles[:3]), titles[:5]
    assert page.locator(".results mark").count() > 0

    hrefs = page.locator(".results .card-title a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    with_math = next(h for h in hrefs if "$" in api(server, "/api/v1" + h)["record"]["abstract"])
    page.click(f".results .card-title a[href='{with_math}']")
    page.wait_for_selector("article.record h1")
    assert "/records/" in page.url
    page.wait_for_selector(".abstract .katex")
    assert page.locator(".katex").count() >= 1
    assert page.locator(".katex-error").count() == 0
    page.screenshot(path=str(tmp_path / "paper.png"), full_page=True)

    paper_url = page.url
    connection = page.locator("ol.connections > li > a").first
    target = connection.inner_text()
    connection.click()
    page.wait_for_selector("article.record h1")
    assert page.url != paper_url
    assert " ".join(page.locator("article.record h1").inner_text().split())[:30] == " ".join(target.split())[:30]
    page.screenshot(path=str(tmp_path / "connection.png"))


def test_map_colours_highlights_hovers_and_opens_a_point(server, page, tmp_path):
    page.goto(server + "/map")
    page.wait_for_selector(".map.full[data-ready='1']")
    assert page.get_attribute(".map.full", "data-renderer") in ("webgl", "2d")
    assert "records on the map" in page.inner_text(".map-status")
    page.select_option("#map-colour", "topic")
    assert page.locator(".map-legend .swatch").count() >= 2
    page.fill("#map-filter", "stellar stream")
    page.locator(".map-status", has_text="highlighted").wait_for()
    page.locator(".map-matches a").first.wait_for()
    page.screenshot(path=str(tmp_path / "map.png"))
    x, y, row = page.evaluate("""() => {
        const map = document.querySelector('.map.full').landscapeMap;
        const i = map.match.indexOf(1), p = map.project(i), box = map.canvas.getBoundingClientRect();
        return [box.left + p[0], box.top + p[1], map.rowOf(i)];
    }""")
    title = api(server, f"/api/v1/map/rows?rows={row}")["rows"][0]["title"]
    assert "stellar stream" in title.lower()
    page.mouse.move(x, y)
    page.locator(".map-tip", has_text=title[:20]).wait_for()
    assert page.inner_text(".map-tip") == title
    with page.expect_navigation():
        page.mouse.click(x, y)
    assert "/records/" in page.url
    assert " ".join(page.locator("h1").inner_text().split()) == " ".join(title.split())


def test_the_map_draws_every_placed_record_with_webgl_and_a_hovered_point_opens(server, built_db, page, tmp_path):
    with open_store(built_db, readonly=True) as store:
        placed = len(store.ls_map_coords())
    page.goto(server + "/map")
    page.wait_for_selector(".map.full[data-ready='1']")
    assert page.get_attribute(".map.full", "data-renderer") == "webgl"
    assert page.locator(".map-fallback").count() == 0
    drawn, inked, labels = page.evaluate("""() => {
        const m = document.querySelector('.map.full').landscapeMap;
        m.drawNow();
        const px = m.renderer.pixels();
        let inked = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] < 200 || px[i + 1] < 200 || px[i + 2] < 200) inked++;
        return [m.drawn, inked, m.shownLabels.map(l => l.level)];
    }""")
    assert drawn == placed and inked > placed, (drawn, placed, inked)
    assert labels and min(labels) == 0, "coarse region labels show zoomed out"
    x, y = page.evaluate("""() => {  // zoom in on a fine label (where one lies depends on the layout)
        const m = document.querySelector('.map.full').landscapeMap, box = m.canvas.getBoundingClientRect();
        const at = m.levels[m.levels.length - 1].labels.map(l => m.toScreen(l.x, l.y))
            .find(p => p[0] > 100 && p[0] < m.w - 100 && p[1] > 60 && p[1] < m.h - 60);
        return [box.left + at[0], box.top + at[1]];
    }""")
    for _ in range(3):
        page.mouse.move(x, y)
        page.mouse.wheel(0, -400)
    page.wait_for_function("""() => { const m = document.querySelector('.map.full').landscapeMap, top = m.levels.length - 1;
        return m.visibleLevel() === top && m.shownLabels.some(l => l.level === top); }""")
    page.click("#map-reset")
    i, x, y = page.evaluate("""() => {
        const m = document.querySelector('.map.full').landscapeMap, box = m.canvas.getBoundingClientRect();
        const i = Math.floor(m.n / 3), p = m.project(i);
        return [i, box.left + p[0], box.top + p[1]];
    }""")
    page.mouse.move(x, y)
    page.wait_for_selector(".map-tip:not([hidden])")
    page.wait_for_function("() => document.querySelector('.map-tip').textContent !== '…'")
    hovered = page.evaluate("document.querySelector('.map.full').landscapeMap.hover")
    want = api(server, f"/api/v1/map/rows?rows={hovered}")["rows"][0]
    assert page.inner_text(".map-tip") == want["title"]
    page.screenshot(path=str(tmp_path / "hover.png"))
    with page.expect_navigation():
        page.mouse.click(x, y)
    assert page.url.endswith("/records/" + quote(want["id"], safe=""))


def test_without_webgl_the_map_falls_back_and_says_so(server, page):
    page.add_init_script("""(() => {
        const real = HTMLCanvasElement.prototype.getContext;
        HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
            return /webgl/.test(kind) ? null : real.call(this, kind, ...rest);
        };
    })()""")
    page.goto(server + "/map")
    page.wait_for_selector(".map.full[data-ready='1']")
    assert page.get_attribute(".map.full", "data-renderer") == "2d"
    assert "WebGL is not available" in page.inner_text(".map-fallback")
    assert page.evaluate("document.querySelector('.map.full').landscapeMap.drawn") > 0


def test_keyboard_reaches_content_and_a_phone_reads_without_sideways_scrolling(server, browser, page, tmp_path):
    page.goto(server + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"

    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    tab = phone.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        tab.goto(server + "/")
        record = tab.locator(".card-title a").first.get_attribute("href")
        for path in ("/", "/posts", "/search?q=dark+matter", "/trends", "/map", record):
            tab.goto(server + path)
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)
        tab.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    finally:
        phone.close()


def test_the_exported_static_site_searches_and_maps_from_plain_files(built_db, page, tmp_path, tmp_path_factory):
    out = exported_site(built_db, tmp_path_factory)
    page.goto((out / "index.html").as_uri())
    page.wait_for_selector(".map.small[data-ready='1']")
    page.fill("#site-q", "simulation-based inference")
    page.press("#site-q", "Enter")
    page.wait_for_selector("#static-search .card")
    titles = page.locator("#static-search .card-title a").all_inner_texts()
    assert any("simulation-based inference" in t.lower() for t in titles[:3]), titles[:5]
    assert page.locator("#static-search mark").count() > 0
    page.screenshot(path=str(tmp_path / "static-search.png"))
    hrefs = page.locator("#static-search .card-title a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    with_math = next(h for h in hrefs if "$" in with_abstract(built_db, h))
    page.click(f"#static-search .card-title a[href='{with_math}']")
    page.wait_for_selector(".abstract .katex")
    assert page.url.startswith(out.as_uri())
    page.goto((out / "map.html").as_uri())
    page.wait_for_selector(".map.full[data-ready='1']")
    x, y = page.evaluate("""() => {
        const m = document.querySelector('.map.full').landscapeMap, box = m.canvas.getBoundingClientRect(), p = m.project(0);
        return [box.left + p[0], box.top + p[1]];
    }""")
    page.mouse.move(x, y)
    page.wait_for_function("() => document.querySelector('.map-tip').textContent.length > 3")
    with page.expect_navigation():
        page.mouse.click(x, y)
    assert page.url.startswith(out.as_uri()) and "/records/" in page.url
