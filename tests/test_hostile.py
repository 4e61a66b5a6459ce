"""Hostile record text (HTML, javascript: URLs, event handlers, CSS, LaTeX \\href and \\htmlData,
formulas, BibTeX breakers) stays inert on every page, in the JSON API and in every export.

The corpus is tests/fixtures/hostile.jsonl: each payload lands in a title, an abstract, an
author, a keyphrase, an area or a talk section, and a few in record ids. It is ingested beside
40 real listing entries and built with the tfidf embedder, then every page the site links to is
fetched and parsed: no element, attribute or URL from record text may survive as markup.
"""

from __future__ import annotations

import csv
import json
import re
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from starlette.testclient import TestClient

from landscape.web.app import create_app

from .conftest import FIXTURES, LISTING, run_cli

HOSTILE = FIXTURES / "hostile.jsonl"
URL_ATTRS = {"href", "src", "action", "formaction", "data", "xlink:href", "poster", "background", "srcset", "ping"}
NEVER = {"iframe", "object", "embed", "base", "frame", "frameset", "applet", "style", "svg:script"}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:text", "data:application")
FORMULA = ("=", "+", "-", "@", "\t", "\r")
MAX_PAGES = 700


def listing_head(path: Path, entries: int) -> Path:
    """The first `entries` papers of the real listing, as a file of the same format."""
    text = LISTING.read_text()
    starts = [m.start() for m in re.finditer(r"(?m)^[A-Z][A-Za-z ]+ [A-Z][a-z]{2} \d{1,2}, \d{4}$", text)]
    path.write_text(text[: starts[entries]])
    return path


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    db = tmp / "landscape.db"
    run_cli("ingest", listing_head(tmp / "listing.txt", 40), HOSTILE, db=db)
    run_cli("build", "--embedder", "tfidf", db=db)
    return db


@pytest.fixture(scope="module")
def client(hostile_db):
    with TestClient(create_app(hostile_db), raise_server_exceptions=False) as c:
        yield c


def payloads() -> list[str]:
    return [json.loads(line)["title"].split(": ", 1)[-1] for line in HOSTILE.read_text().splitlines()
            if json.loads(line)["id"].startswith("hostile-") and ": " in json.loads(line)["title"]]


class Inspector(HTMLParser):
    """Collects every way a page could run code or load something foreign; text stays text."""

    def __init__(self, static_ok: tuple[str, ...]):
        super().__init__(convert_charrefs=True)
        self.static_ok = static_ok
        self.problems: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        if tag in NEVER:
            self.problems.append(f"<{tag}> element")
        for name, value in a.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> event handler")
            if name in URL_ATTRS and re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith(BAD_SCHEMES):
                self.problems.append(f"<{tag} {name}={value[:40]!r}> scheme")
            if name == "style" and re.search(r"url\(|expression|javascript|@import", value, re.I):
                self.problems.append(f"<{tag} style={value[:40]!r}>")
        if tag == "script":
            self.in_script = True
            if not a.get("src", "").startswith(self.static_ok):
                self.problems.append(f"<script src={a.get('src')!r}>")
        if tag == "link" and not a.get("href", "").startswith(self.static_ok):
            self.problems.append(f"<link href={a.get('href')!r}>")
        if tag == "meta" and "http-equiv" in a and a["http-equiv"].lower() != "content-security-policy":
            self.problems.append(f"<meta http-equiv={a['http-equiv']!r}>")
        if tag == "form" and urlsplit(a.get("action", "")).scheme:
            self.problems.append(f"<form action={a.get('action')!r}>")
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.problems.append(f"inline script {data[:40]!r}")
        self.text.append(data)


def inspect(body: str, static_ok: tuple[str, ...]) -> Inspector:
    page = Inspector(static_ok)
    page.feed(body)
    page.close()
    return page


def crawl(client: TestClient, seeds: list[str]) -> dict[str, Inspector]:
    """Every same-site page reachable from the seeds (query-string variants once per path)."""
    seen: dict[str, Inspector] = {}
    paths_seen: set[str] = set()
    queue = deque(seeds)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        r = client.get(url)
        assert r.status_code in (200, 404, 503), f"{url}: {r.status_code}"
        if "text/html" not in r.headers["content-type"]:
            continue
        seen[url] = page = inspect(r.text, ("/static/",))
        for href in page.links:
            parts = urlsplit(urljoin(url, href))
            if parts.scheme or parts.netloc or parts.path.startswith(("/static/", "/api/", "/openapi")):
                continue
            if parts.query and parts.path in paths_seen:
                continue
            paths_seen.add(parts.path)
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return seen


def record_ids() -> list[str]:
    return [json.loads(line)["id"] for line in HOSTILE.read_text().splitlines()]


def test_every_page_of_the_site_keeps_hostile_text_inert(client):
    seeds = ["/", "/posts", "/concepts", "/topics", "/areas", "/authors", "/map", "/trends", "/about", "/docs"]
    seeds += [f"/search?q={q}" for q in ("alert", "javascript", "script", "href", "lattice")]
    pages = crawl(client, seeds)
    problems = {url: p.problems for url, p in pages.items() if p.problems}
    assert not problems
    visited = "\n".join(pages)
    for kind in ("/records/hostile-", "/authors/", "/concepts/", "/areas/", "/topics/", "/graph/"):
        assert kind in visited, f"the crawl reached no {kind} page"
    shown = "".join("".join(p.text) for p in pages.values())
    for payload in payloads():
        assert payload.strip() in shown, f"payload not shown as text: {payload!r}"


def test_record_pages_of_hostile_ids_and_talk_sections_are_inert(client):
    from urllib.parse import quote

    for rid in record_ids():
        for prefix in ("/records/", "/graph/"):
            r = client.get(prefix + quote(rid, safe=""))
            assert r.status_code == 200, (rid, r.status_code)
            assert not inspect(r.text, ("/static/",)).problems, rid
        r = client.get("/api/v1/records/" + quote(rid, safe=""))
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert rid in r.json().values() or rid == r.json().get("record", {}).get("id")


def test_every_api_answer_about_hostile_records_is_json_not_html(client):
    for url in ("/api/v1/posts?limit=100", "/api/v1/search?q=alert", "/api/v1/concepts?limit=100", "/api/v1/authors",
                "/api/v1/map", "/api/v1/related?id=hostile-talk", "/api/v1/related?text=%3Cscript%3Ealert(1)",
                "/api/v1/topics", "/api/v1/areas", "/api/v1/trends", "/api/v1/home", "/api/v1/stats"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith("application/json"), url
        assert r.headers["x-content-type-options"] == "nosniff"
        json.loads(r.text)


def test_katex_runs_with_trust_off_and_bounded_expansion():
    js = (Path(__file__).resolve().parent.parent / "landscape" / "web" / "static" / "app.js").read_text()
    assert re.search(r"trust:\s*false", js) and not re.search(r"trust:\s*(true|function|\()", js)
    assert re.search(r"maxExpand:\s*\d+", js)


def test_csv_export_neutralises_formulas_and_keeps_the_text(hostile_db, tmp_path):
    out = tmp_path / "out.csv"
    run_cli("export", "--format", "csv", out, db=hostile_db)
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 81
    cells = [cell for row in rows for cell in row.values()]
    assert not [c for c in cells if c.startswith(FORMULA)]
    assert any(row["abstract"].startswith("Neural networks") for row in rows)
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in {row["keyphrases"].split("; ")[0] for row in rows}


def test_bibtex_export_has_one_entry_per_record_and_no_live_commands(hostile_db, tmp_path):
    out = tmp_path / "out.bib"
    run_cli("export", "--format", "bibtex", out, db=hostile_db)
    text = out.read_text()
    entries = re.findall(r"(?m)^@(\w+)\{", text)
    assert len(entries) == 81
    for command in ("\\href", "\\url", "\\htmlData", "\\htmlStyle", "\\input", "\\write18", "\\includegraphics"):
        assert command not in text, command
    copy = tmp_path / "copy.db"
    assert run_cli("ingest", out, db=copy).output.splitlines()[-1].startswith("81 new")


def test_static_site_export_is_inert(hostile_db, tmp_path):
    out = tmp_path / "site"
    run_cli("export", "--format", "site", out, db=hostile_db)
    pages = sorted(out.rglob("*.html"))
    assert len(pages) > 81
    for page in pages:
        assert out.resolve() in page.resolve().parents
        rel_static = ("static/", "../static/", "../../static/", "./static/")
        found = inspect(page.read_text(encoding="utf-8"), rel_static)
        assert not found.problems, (page, found.problems)
    assert not (tmp_path / "etc").exists()


def test_the_inspector_flags_the_markup_payloads_when_they_are_not_escaped():
    flagged = [p for p in payloads() if inspect(p, ("/static/",)).problems]
    assert len(flagged) >= 15
    assert not inspect('<script src="/static/app.js"></script><a href="/records/x">x</a>', ("/static/",)).problems


def test_in_a_browser_katex_renders_hostile_latex_without_links_handlers_or_dialogs(hostile_db):
    """Chromium loads the pages of the LaTeX and markup payloads from a real server: math is
    rendered (KaTeX ran), yet no javascript: link, event handler, data attribute or dialog appears."""
    from playwright.sync_api import sync_playwright

    from .test_concurrency import serving

    with serving(hostile_db) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        rendered = 0
        for n in range(0, 25):
            page.goto(f"{base}/records/hostile-{n:02d}")
            page.wait_for_load_state("networkidle")
            if page.locator(".math").count() and n in range(14, 20):
                page.wait_for_selector(".math-rendered", timeout=20_000)
                rendered += page.locator(".katex").count() > 0
            found = page.evaluate("""() => Array.from(document.querySelectorAll('*')).flatMap(el =>
                Array.from(el.attributes).filter(a => /^on/i.test(a.name) || /^data-(foo|onclick)/i.test(a.name)
                  || (/href|src|action/i.test(a.name) && /^\\s*javascript:/i.test(a.value)))
                  .map(a => el.tagName + ' ' + a.name + '=' + a.value))""")
            assert not found, (n, found)
        browser.close()
    assert rendered >= 5
    assert not dialogs
