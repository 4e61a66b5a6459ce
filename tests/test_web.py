"""The web site and JSON API over HTTP (in-process), against the real listing and talks, built.

Each test reads a page the way a person would (status, headings, links, what the text says)
and its /api/v1 twin the way a script would. Escaping of hostile titles is checked on a store
holding only a few hostile records, ingested and not built, which is also the state of a
landscape before its first build.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from starlette.testclient import TestClient

from landscape.store import open_store
from landscape.web.app import create_app

from .conftest import cli_json, run_cli

HTML = "text/html; charset=utf-8"


class Page(HTMLParser):
    """What a reader meets on a page: its text, its links, its headings, its elements."""

    def __init__(self, html: str):
        super().__init__()
        self.text_parts: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.headings: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._href: str | None = None
        self._anchor: list[str] = []
        self._heading: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "a" and "href" in a:
            self._href, self._anchor = a["href"], []
        if tag in ("h1", "h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((" ".join("".join(self._anchor).split()), self._href))
            self._href = None
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None

    def handle_data(self, data):
        self.text_parts.append(data)
        if self._href is not None:
            self._anchor.append(data)
        if self._heading is not None:
            self._heading.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def hrefs(self, prefix: str) -> list[str]:
        return [h for _, h in self.links if h.startswith(prefix)]

    def having(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def by_class(self, cls: str) -> list[tuple[str, dict[str, str]]]:
        return [(t, a) for t, a in self.tags if cls in a.get("class", "").split()]


@pytest.fixture(scope="module")
def client(built_db):
    with TestClient(create_app(built_db), raise_server_exceptions=True) as c:
        yield c


@pytest.fixture(scope="module")
def sql(built_db):
    """Picks records with a given property (the assertions are made on what the site shows)."""
    store = open_store(built_db, readonly=True)

    def one(query: str) -> str:
        row = store.connection_for_tests.execute(query).fetchone()
        assert row is not None, query
        return row[0]

    yield one
    store.close()


def page(client, path: str) -> Page:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert r.headers["content-type"] == HTML
    return Page(r.text)


def api(client, path: str):
    r = client.get("/api/v1" + path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json"
    return r.json()


# --- pages ------------------------------------------------------------------------------------


def test_home_says_what_the_landscape_covers_and_leads_everywhere(client, built_db):
    home = page(client, "/")
    stats = cli_json("stats", db=built_db)
    assert f"{stats['papers']} papers" in home.text
    assert "Theoretical Physics" in home.text and "Astrophysics" in home.text
    assert {"Latest", "The map", "Emerging concepts"} <= set(home.headings)
    assert len(home.by_class("card")) == 8
    assert home.having("form", role="search", action="/search")
    assert home.having("meta", name="viewport")
    assert home.having("a", **{"class": "skip", "href": "#main"})
    assert home.having("main", id="main")
    assert home.having("div", **{"data-src": "/api/v1/map/points?sample=5000"})
    assert home.hrefs("/concepts/"), "emerging concepts link to their pages"
    assert home.headings[0].startswith("Navigate the landscape")


def test_every_page_has_one_h1_and_a_title_that_names_it(client, sql):
    rid = sql("SELECT id FROM records WHERE kind = 'paper' LIMIT 1")
    talk = sql("SELECT id FROM records WHERE kind = 'talk' LIMIT 1")
    titles = set()
    for path in ("/", "/posts", f"/records/{rid}", f"/records/{talk}", f"/graph/{rid}", "/search?q=dark+matter",
                 "/concepts", "/topics", "/topics/0", "/areas", "/areas/Astrophysics", "/authors", "/map", "/trends",
                 "/about", "/docs"):
        body = client.get(path).text
        shown = Page(body)
        assert len([t for t, _ in shown.tags if t == "h1"]) == 1, path
        title = unescape(re.search(r"<title>(.*?)</title>", body, re.S).group(1))
        assert title.endswith(" · Landscape") and len(title) >= len(" · Landscape") + 3, (path, title)
        titles.add(title)
    assert len(titles) == 16, "each page says which page it is"


def test_all_posts_pages_sort_and_combine_facets(client):
    first, second = page(client, "/posts"), page(client, "/posts?page=2")
    first_ids = set(first.hrefs("/records/"))
    assert first_ids and not first_ids & set(second.hrefs("/records/"))
    assert first.having("a", rel="next")
    newest = api(client, "/posts?limit=50")["records"]
    oldest = api(client, "/posts?limit=50&sort=oldest")["records"]
    assert [r["date"] for r in newest] == sorted((r["date"] for r in newest), reverse=True)
    assert [r["date"] for r in oldest] == sorted(r["date"] for r in oldest)
    combined = api(client, "/posts?area=Astrophysics&year=2023&limit=100")
    assert combined["paging"]["total"] > 3
    assert all(r["area"] == "Astrophysics" and r["date"].startswith("2023") for r in combined["records"])
    assert combined["paging"]["total"] < api(client, "/posts?area=Astrophysics")["paging"]["total"]
    talks = api(client, "/posts?kind=talk")["records"]
    assert len(talks) == 2 and all(r["kind"] == "talk" for r in talks)
    facets = page(client, "/posts?area=Astrophysics")
    combining = [h for h in facets.hrefs("/posts?") if "area=Astrophysics" in h and "year=2023" in h]
    assert "Astrophysics" in facets.text and combining


def test_posts_filter_by_concept_and_author_and_say_so(client):
    concept = api(client, "/concepts")["concepts"][0]["name"]
    by_concept = api(client, f"/posts?concept={quote(concept)}")
    assert by_concept["paging"]["total"] == api(client, f"/concepts/{quote(concept)}")["count"]
    author = api(client, "/authors")["authors"][0]
    shown = page(client, f"/posts?author={quote(author['key'])}")
    assert author["name"] in shown.text
    records = api(client, f"/posts?author={quote(author['key'])}&limit=100")["records"]
    assert records and all(any(a["key"] == author["key"] for a in r["authors"]) or r["authors_more"] for r in records)


def test_paper_page_shows_area_probability_dates_authors_summary_math_concepts_connections(client, sql):
    rid = sql("SELECT id FROM records WHERE authors_truncated = 1 AND abstract LIKE '%$%' AND kind = 'paper'"
              " ORDER BY date DESC LIMIT 1")
    data = api(client, f"/records/{rid}")
    paper = page(client, f"/records/{rid}")
    rec = data["record"]
    assert paper.headings[0] == " ".join(unescape(rec["display_title"]).split())
    assert f"{round(100 * data['area_probability'])}%" in paper.text
    assert rec["date"] in paper.text
    assert "et al." in paper.text
    authors = paper.hrefs("/authors/")
    assert len(authors) >= len(data["authors"]) and authors[0] == "/authors/" + quote(data["authors"][0]["key"], safe="")
    assert "TL;DR" in paper.text and rec["summary"][:40] in paper.text
    abstract = [a for t, a in paper.by_class("abstract")]
    assert abstract and "math" in abstract[0]["class"], "the abstract is handed to KaTeX"
    assert "$" in paper.text, "LaTeX stays as source for KaTeX to render in the browser"
    assert paper.hrefs("/concepts/")
    assert {"Abstract", "Concepts", "Connections", "On the map", "Sources"} <= set(paper.headings)
    first = data["connections"][0]
    assert "/records/" + quote(first["id"], safe="") in paper.hrefs("/records/")
    assert first["reasons"] and first["reasons"][0] in paper.text
    assert data["topic"]["label"] in paper.text and paper.hrefs(f"/topics/{data['topic']['id']}")
    x = sql(f"SELECT x FROM map_coords WHERE record_id = '{rid}'")
    assert [a for a in paper.having("div") if "map" in a.get("class", "") and float(a.get("data-focus-x", "nan")) == x], \
        "the small map is centred on the record"
    assert "landscape_dev.txt:" in paper.text
    assert paper.hrefs("/graph/")


def test_an_uncertain_area_shows_every_area_it_could_be(client, sql):
    rid = sql("SELECT id FROM records WHERE area_set LIKE '[%,%]' LIMIT 1")
    data = api(client, f"/records/{rid}")
    shown = page(client, f"/records/{rid}")
    assert "Uncertain:" in shown.text
    for area in data["area_set"]:
        assert "/areas/" + quote(area, safe="") in shown.hrefs("/areas/")
    certain = sql("SELECT id FROM records WHERE area_set LIKE '[_%]' AND area_set NOT LIKE '%,%' LIMIT 1")
    assert "Uncertain:" not in page(client, f"/records/{certain}").text


def test_talk_page_has_sections_with_summaries_and_the_papers_they_discuss(client, sql):
    rid = sql("SELECT id FROM records WHERE kind = 'talk' AND title LIKE '%physicist%'")
    data = api(client, f"/records/{rid}")
    talk = page(client, f"/records/{rid}")
    assert "Talk" in talk.text and "Gilles Louppe" in talk.text
    sections = data["sections"]
    assert len(sections) >= 3
    assert sum(1 for s in sections if s["summary"]) >= len(sections) // 2
    assert any(h.startswith("1. ") for h in talk.headings)
    linked = [r for s in sections for r in s["related"]]
    assert linked and "/records/" + quote(linked[0]["id"], safe="") in talk.hrefs("/records/")
    assert "Papers this section discusses" in talk.text


def test_concept_topic_area_and_author_pages(client):
    concept = api(client, "/concepts")["concepts"][0]["name"]
    c = page(client, f"/concepts/{quote(concept)}")
    assert c.headings[0].endswith(concept) and c.hrefs("/records/") and c.having("svg")
    assert len([h for h in c.hrefs("/concepts/") if h != "/concepts/" + quote(concept, safe="")]) >= 3

    topic = api(client, "/topics")["topics"][0]
    t = page(client, f"/topics/{topic['id']}")
    assert topic["label"] in t.headings[0] and t.having("svg") and t.hrefs("/concepts/")
    assert len(t.hrefs("/records/")) == min(20, topic["size"])

    a = page(client, "/areas/Astrophysics")
    assert "Astrophysics" in a.headings[0] and a.having("svg") and a.hrefs("/topics/") and a.hrefs("/concepts/")

    prolific = api(client, "/authors")["authors"][0]
    person = page(client, f"/authors/{quote(prolific['key'])}")
    assert prolific["name"] in person.headings[0]
    assert person.hrefs("/authors/"), "co-authors link to their pages"
    assert len(person.having("svg")) >= 2, "a trend plot and the co-author graph"


def test_lists_of_concepts_topics_areas_and_authors(client):
    for path, prefix in (("/concepts", "/concepts/"), ("/topics", "/topics/"), ("/areas", "/areas/"),
                         ("/authors", "/authors/")):
        listing = page(client, path)
        assert len(listing.hrefs(prefix)) >= 4, path
    assert page(client, "/concepts?prefix=neural").hrefs("/concepts/neural")


def test_map_page_and_its_data(client, built_db):
    shown = page(client, "/map")
    assert shown.having("canvas") and shown.having("select", id="map-colour")
    assert shown.having("option", value="topic") and shown.having("input", id="map-filter")
    data = api(client, "/map")
    n = data["count"]
    stats = cli_json("stats", db=built_db)
    assert n == stats["papers"] + stats["talks"]
    assert all(len(data[k]) == n for k in ("ids", "x", "y", "area", "topic", "title", "kind"))
    assert data["topics"] and all({"label", "x", "y"} <= set(t) for t in data["topics"])


def decode_map(body: bytes) -> tuple[dict, dict]:
    """The binary map file read by its documented layout (landscape/web/mapbin.py), not by its encoder."""
    magic, fmt, n, meta_len, min_x, max_x, min_y, max_y = struct.unpack_from("<4sIII4f", body)
    assert (magic, fmt) == (b"LMAP", 1)
    meta = json.loads(body[32 : 32 + meta_len])
    cols, offset = {}, 32 + meta_len
    for name, dtype in (("x", "<u2"), ("y", "<u2"), ("area", "u1"), ("kind", "u1"), ("topic", "<u2"),
                        *((("row", "<u4"),) if meta["sampled"] else ())):
        cols[name] = np.frombuffer(body, dtype=dtype, count=n, offset=offset)
        offset += -(-n * np.dtype(dtype).itemsize // 4) * 4
    cols["density"] = np.frombuffer(body, dtype="u1", count=256 * 256, offset=offset).reshape(256, 256)
    assert offset + 256 * 256 == len(body), "the file is exactly its header, metadata, arrays and density grid"
    cols["x"] = min_x + cols["x"] / 65535 * (max_x - min_x)
    cols["y"] = min_y + cols["y"] / 65535 * (max_y - min_y)
    cols["bounds"] = (min_x, max_x, min_y, max_y)
    return meta, cols


def test_map_points_are_a_compact_binary_file_of_the_stored_coordinates(client, built_db):
    r = client.get("/api/v1/map/points")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    meta, cols = decode_map(r.content)
    with open_store(built_db, readonly=True) as store:
        conn = store.connection_for_tests
        token, version = conn.execute("SELECT token, n FROM store_version").fetchone()
        stored = conn.execute(
            "SELECT r.id, m.x, m.y, r.area, r.kind, t.label, r.display_title FROM map_coords m JOIN records r ON r.id = m.record_id"
            " LEFT JOIN record_topics rt ON rt.record_id = r.id LEFT JOIN topics t ON t.id = rt.topic_id"
            " ORDER BY r.rowid").fetchall()
    n = len(stored)
    assert meta["version"] == f"{token}-{version}" and meta["version"] in r.headers["etag"]
    assert len(cols["x"]) == meta["total"] == n == api(client, "/stats")["papers"] + api(client, "/stats")["talks"]
    assert len(r.content) < 12 * n + len(json.dumps(meta).encode()) + 64 + 256 * 256, "a few bytes a point, never JSON"
    min_x, max_x, min_y, max_y = cols["bounds"]
    error = max(max_x - min_x, max_y - min_y) / 65535
    assert np.abs(cols["x"] - [s[1] for s in stored]).max() <= error
    assert np.abs(cols["y"] - [s[2] for s in stored]).max() <= error
    assert [meta["areas"][a] if a != 255 else None for a in cols["area"]] == [s[3] for s in stored]
    assert [["paper", "talk"][k] for k in cols["kind"]] == [s[4] for s in stored]
    assert [meta["topics"][t]["label"] if t != 65535 else None for t in cols["topic"]] == [s[5] for s in stored]
    levels = {lab["level"] for lab in meta["labels"]}
    assert len(levels) >= 2 and sum(1 for lab in meta["labels"] if lab["level"] == max(levels)) == len(meta["topics"])
    assert sum(1 for lab in meta["labels"] if lab["level"] == 0) < len(meta["topics"]), "coarse regions above topics"

    rows = client.get(f"/api/v1/map/rows?rows=0,{n - 1},{n}&v={meta['version']}").json()["rows"]
    assert [(x["row"], x["id"]) for x in rows] == [(0, stored[0][0]), (n - 1, stored[-1][0])]
    assert client.get("/api/v1/map/rows?rows=0&v=old-1").status_code == 409
    assert client.get("/api/v1/map/rows?rows=a,b").status_code == 400
    assert client.get("/api/v1/map/points", headers={"if-none-match": r.headers["etag"]}).status_code == 304
    assert "immutable" in client.get(f"/api/v1/map/points?v={meta['version']}").headers["cache-control"]
    found = client.get("/api/v1/map/match?q=stellar stream").json()
    assert found["rows"] == [i for i, s in enumerate(stored) if "stellar stream" in s[6].lower()] and found["rows"]
    assert all("stellar stream" in x["title"].lower() and stored[x["row"]][0] == x["id"] for x in found["first"])

    assert cols["density"].max() == 255 and (cols["density"] > 0).mean() < 0.9, "a density layer, not a flat one"
    sample_meta, sample = decode_map(client.get("/api/v1/map/points?sample=50").content)
    assert (sample["density"] == cols["density"]).all(), "a sample's density layer is of every point"
    assert sample_meta["sampled"] and len(sample["x"]) == 50 and sample_meta["total"] == n
    assert np.abs(sample["x"] - cols["x"][sample["row"]]).max() <= error


def test_connections_graph_of_a_paper(client, sql):
    rid = sql("SELECT id FROM records WHERE kind = 'paper' ORDER BY date DESC LIMIT 1")
    graph = page(client, f"/graph/{rid}")
    data = api(client, f"/graph/{rid}")
    assert graph.having("svg") and len(data["neighbours"]) >= 3 and data["second"]
    for n in data["neighbours"][:3]:
        assert "/records/" + quote(n["id"], safe="") in graph.hrefs("/records/")


def test_trends_page_plots_and_lists_what_rises(client):
    trends = page(client, "/trends")
    assert len(trends.having("svg")) >= 2
    assert {"Records per year", "Emerging concepts", "Fading concepts"} <= set(trends.headings)
    data = api(client, "/trends")
    assert data["emerging"] and data["emerging"][0]["name"] in trends.text


def test_search_is_hybrid_with_facets_and_highlighted_snippets(client):
    found = page(client, "/search?q=simulation-based+inference")
    assert "ranked by keywords and meaning together" in found.text
    assert "<mark>" in client.get("/search?q=simulation-based+inference").text
    assert len(found.by_class("card")) == 20
    assert found.hrefs("/search?q=simulation-based+inference&area=")
    data = api(client, "/search?q=simulation-based+inference&area=Astrophysics")
    assert data["method"] == "hybrid" and data["results"]
    assert all(r["area"] == "Astrophysics" for r in data["results"])
    assert "inference" in data["results"][0]["title"].lower() + data["results"][0]["snippet"].lower()
    assert page(client, "/search").having("input", id="q")


def test_search_facets_count_every_hit_and_cards_fill_the_page(built_db):
    """The facets count all the hits (not the 20 shown), by the same area, kind and year as the
    records' cards; the shown results carry their cards (authors, summary)."""
    from collections import Counter

    from landscape.config import Config
    from landscape.web import context as ctx
    from landscape.web.params import Paging

    with open_store(built_db, readonly=True) as store, store.page_snapshot():
        config = Config.load(None, db_path=built_db)
        shown = ctx.search_page(store, "dark matter", {}, Paging(2, 20), config).data
        hits, method = ctx.search_results(store, "dark matter", {}, config)
        cards = store.page_cards(h["id"] for h in hits)
    assert method == "hybrid" and len(hits) > 100
    expected = {"area": Counter(c["area"] for c in cards.values() if c["area"]),
                "kind": Counter(c["kind"] for c in cards.values()),
                "year": Counter(c["date"][:4] for c in cards.values() if c["date"])}
    assert {k: dict(v) for k, v in shown["facets"].items()} == {k: dict(v) for k, v in expected.items()}
    assert [r["id"] for r in shown["results"]] == [h["id"] for h in hits[20:40]]
    assert all(r["authors"] == cards[r["id"]]["authors"] and r["summary"] == cards[r["id"]]["summary"]
               for r in shown["results"])


def test_about_says_how_each_part_is_made_and_how_sure_it_is(client):
    about = page(client, "/about")
    for word in ("area", "concept", "summar", "connection"):
        assert word in about.text.lower()
    assert "%" in about.text or "probabilit" in about.text.lower()
    from landscape.enrich.pipeline import STEPS

    built = about.text.split("The latest build finished", 1)[1]
    assert all(step in built for step in STEPS)


# --- the JSON API ---------------------------------------------------------------------------


def test_api_mirrors_the_cli(client, built_db):
    stats = api(client, "/stats")
    cli = cli_json("stats", db=built_db)
    assert {k: stats[k] for k in cli} == cli
    assert api(client, "/records?limit=3")["records"] == api(client, "/posts?limit=3")["records"]
    for path, key in (("/posts", "records"), ("/concepts", "concepts"), ("/topics", "topics"),
                      ("/authors", "authors"), ("/areas", "areas")):
        assert api(client, path)[key], path
    rid = api(client, "/posts")["records"][0]["id"]
    related = api(client, f"/related?id={rid}&limit=5")["results"]
    assert len(related) == 5 and all(r["reasons"] for r in related)
    by_text = api(client, "/related?text=dark+matter+substructure+in+stellar+streams&limit=3")["results"]
    assert len(by_text) == 3


def test_api_pages_are_bounded_and_consistent(client):
    a = api(client, "/posts?limit=7&page=1")
    b = api(client, "/posts?limit=7&page=2")
    assert len(a["records"]) == 7 and a["paging"]["size"] == 7 and a["paging"]["pages"] > 2
    assert not {r["id"] for r in a["records"]} & {r["id"] for r in b["records"]}
    too_big = client.get("/api/v1/posts?limit=100000")
    assert too_big.status_code == 400 and too_big.json()["error"]["status"] == 400


def test_records_carry_etags_and_cache_headers(client):
    rid = api(client, "/posts")["records"][0]["id"]
    r = client.get(f"/api/v1/records/{rid}")
    assert r.headers["etag"] and "max-age" in r.headers["cache-control"]
    again = client.get(f"/api/v1/records/{rid}", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    html = client.get(f"/records/{rid}")
    assert html.headers["etag"] != r.headers["etag"]


def test_errors_have_one_shape(client):
    missing = client.get("/api/v1/records/no-such-record")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    assert missing.json() == {"error": {"status": 404, "message": "no record with id 'no-such-record'"}}
    assert client.get("/api/v1/search").json()["error"]["status"] == 400
    page404 = client.get("/records/no-such-record")
    assert page404.status_code == 404 and page404.headers["content-type"] == HTML
    assert "Not found" in Page(page404.text).headings[0]


def test_openapi_documents_every_api_route(client):
    spec = client.get("/openapi.json")
    assert spec.headers["content-type"] == "application/json"
    paths = spec.json()["paths"]
    for route in ("/api/v1/records/{id}", "/api/v1/records", "/api/v1/search", "/api/v1/related", "/api/v1/stats",
                  "/api/v1/concepts", "/api/v1/topics", "/api/v1/trends", "/api/v1/authors", "/api/v1/map"):
        assert route in paths, route
    docs = page(client, "/docs")
    assert "/api/v1/search" in docs.text


def test_static_assets_are_local_and_long_cached(client):
    home = client.get("/").text
    assets = re.findall(r'(?:src|href|data-[a-z-]+)="(/static/[^"]+)"', home)
    assert any("katex.min.js" in a for a in assets) and any("map.js" in a for a in assets)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', home), "no CDN"
    for asset in assets:
        r = client.get(unescape(asset))
        assert r.status_code == 200, asset
        assert "immutable" in r.headers["cache-control"]
    assert client.get("/static/app.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "LICENSE" in {p.name for p in (Path(__file__).parent.parent / "landscape/web/static/vendor/katex").iterdir()}


def test_no_inline_scripts_or_handlers_in_any_template():
    templates = Path(__file__).parent.parent / "landscape" / "web" / "templates"
    for file in templates.glob("*.html"):
        text = file.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", text), file.name
        assert not re.search(r"\son[a-z]+=", text), file.name


def test_serve_get_answers_one_request_without_a_port(built_db):
    out = run_cli("serve", "--get", "/api/v1/stats", db=built_db).output
    assert json.loads(out)["papers"] == cli_json("stats", db=built_db)["papers"]


# --- the static site --------------------------------------------------------------------------


def exported_site(db: Path, tmp_path_factory) -> Path:
    """`landscape export --format site` of the built store, written once per store and test session."""
    out = tmp_path_factory.getbasetemp() / f"exported-site-{hashlib.sha256(str(db).encode()).hexdigest()[:12]}"
    if not (out / "index.html").exists():
        run_cli("export", "--format", "site", out, db=db)
    return out


def local_links(html: str) -> list[str]:
    urls = re.findall(r'(?:href|src|data-(?:src|index|[a-z]+-(?:css|js|auto)))="([^"]*)"', html)
    return [unescape(u) for u in urls if not u.startswith(("#", "http:", "https:", "mailto:"))]


def test_static_site_links_are_relative_and_all_resolve(built_db, tmp_path_factory):
    site = exported_site(built_db, tmp_path_factory)
    pages = list(site.rglob("*.html"))
    stats = cli_json("stats", db=built_db)
    assert len(list((site / "records").glob("*.html"))) == stats["papers"] + stats["talks"]
    for sub in ("index.html", "posts/index.html", "search.html", "map.html", "trends.html", "about.html",
                "concepts/index.html", "topics/index.html", "areas/index.html", "authors/index.html"):
        assert (site / sub).is_file(), sub
    checked = 0
    for file in pages:
        for url in local_links(file.read_text(encoding="utf-8")):
            assert not url.startswith("/"), (file, url)
            target = url.split("#")[0].split("?")[0]
            if target and "__ID__" not in target:
                assert (file.parent / target).exists(), (file, url)
                checked += 1
    assert checked > 20_000


def test_static_site_carries_its_search_index_and_map(built_db, tmp_path_factory, client):
    site = exported_site(built_db, tmp_path_factory)
    script = (site / "data" / "search-index.js").read_text(encoding="ascii")
    assert script.startswith("window.LANDSCAPE_SEARCH=") and "<" not in script
    index = json.loads(script.removeprefix("window.LANDSCAPE_SEARCH=").rstrip().rstrip(";"))
    assert len(index["docs"]) == api(client, "/map")["count"] and all((site / "records" / f"{d['file']}.html").exists() for d in index["docs"])
    weights = dict(zip(index["terms"]["inference"][::2], index["terms"]["inference"][1::2]))
    sbi = [d for d, doc in enumerate(index["docs"]) if "simulation-based inference" in doc["title"].lower()]
    assert sbi and all(weights[d] > 0 for d in sbi)
    served = client.get("/api/v1/map/points").content
    assert (site / "data" / "map.bin").read_bytes() == served, "the export writes the file the server serves"
    script = (site / "data" / "map-bin.js").read_text(encoding="ascii")
    assert base64.b64decode(script.removeprefix('window.LANDSCAPE_MAP_BIN="').rstrip().removesuffix('";')) == served
    rows = json.loads((site / "data" / "map-rows.js").read_text().removeprefix("window.LANDSCAPE_MAP_ROWS=").rstrip()[:-1])
    first = client.get(f"/api/v1/map/rows?rows=0,{len(rows['ids']) - 1}").json()["rows"]
    assert [rows["ids"][0], rows["ids"][-1]] == [x["id"] for x in first] and len(rows["ids"]) == decode_map(served)[0]["total"]
    assert all((site / "records" / f"{f}.html").exists() for f in rows["files"])
    assert not (site / "data" / "map.js").exists()
    search = (site / "search.html").read_text()
    assert 'id="static-search"' in search and "static-search.js" in search
    assert (site / "static" / "vendor" / "katex" / "katex.min.js").is_file()


def test_static_export_refuses_a_folder_of_other_files_and_replaces_its_own(hostile_db, tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    run_cli("export", "--format", "site", other, db=hostile_db, expect=2)
    assert (other / "notes.txt").read_text() == "keep me"
    out = tmp_path / "site"
    run_cli("export", "--format", "site", out, db=hostile_db)
    (out / "stale.html").write_text("old")
    run_cli("export", "--format", "site", out, db=hostile_db)
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- hostile titles, before any build --------------------------------------------------------

HOSTILE = [
    {"id": "h1", "title": "<script>alert(1)</script> in neural networks", "abstract": "A <b>bold</b> claim $x<y$.",
     "authors": ["<script>alert(2)</script>", "Ada Lovelace"], "date": "2021-03-04", "area": "Astrophysics",
     "keyphrases": ["<script>alert(3)</script>"]},
    {"id": "h2", "title": '"><img src=x onerror=alert(1)> dark matter', "abstract": "'><svg onload=alert(4)>",
     "authors": ['"><img src=x onerror=alert(5)>'], "date": "2022-05-06", "area": '"><img src=x onerror=alert(6)>',
     "keyphrases": ["dark matter"]},
]


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile-web")
    source = tmp / "hostile.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in HOSTILE))
    db = tmp / "landscape.db"
    run_cli("ingest", source, db=db)
    return db


@pytest.fixture(scope="module")
def hostile_client(hostile_db):
    with TestClient(create_app(hostile_db), raise_server_exceptions=True) as c:
        yield c


def test_hostile_titles_are_shown_as_text_everywhere(hostile_client):
    paths = ["/", "/posts", "/records/h1", "/records/h2", "/search?q=neural", "/search?q=dark+matter",
             "/authors", "/areas", "/graph/h1", "/posts?area=" + quote('"><img src=x onerror=alert(6)>'),
             "/search?q=" + quote("<script>alert(9)</script>")]
    for path in paths:
        r = hostile_client.get(path)
        assert r.status_code == 200, path
        body = r.text
        assert "<script>alert" not in body and "<img src=x" not in body and "<svg onload" not in body, path
        assert "<b>bold" not in body, path
        parsed = Page(body)
        assert not [t for t, a in parsed.tags if any(k.startswith("on") for k in a)], path
        assert all("src" in a for t, a in parsed.tags if t == "script"), path
    shown = Page(hostile_client.get("/records/h1").text)
    assert "<script>alert(1)</script> in neural networks" in shown.headings[0]
    assert '"><img src=x onerror=alert(1)> dark matter' in Page(hostile_client.get("/records/h2").text).headings[0]


def test_hostile_titles_in_the_api_are_json_strings(hostile_client):
    r = hostile_client.get("/api/v1/records/h2")
    assert r.headers["content-type"] == "application/json"
    assert r.json()["record"]["title"] == '"><img src=x onerror=alert(1)> dark matter'


def test_pages_say_what_to_run_before_the_first_build(hostile_client):
    paper = page(hostile_client, "/records/h1")
    assert "landscape build" in paper.text
    assert "landscape build" in page(hostile_client, "/map").text
    assert page(hostile_client, "/search?q=neural").by_class("card")


def test_record_pages_name_the_source_file_and_line_not_the_ingesting_machines_folders(hostile_db, hostile_client,
                                                                                           tmp_path):
    folder = str(hostile_db.parent)
    html = hostile_client.get("/records/h2").text
    assert "hostile.jsonl:2" in Page(html).text and folder not in html
    data = hostile_client.get("/api/v1/records/h2").json()
    assert data["record"]["sources"][0]["file"] == "hostile.jsonl" and data["record"]["sources"][0]["line"] == 2
    assert folder not in json.dumps(data)
    run_cli("export", "--format", "site", tmp_path / "site", db=hostile_db)
    pages = list((tmp_path / "site").rglob("*.html")) + list((tmp_path / "site" / "data").rglob("*.js"))
    assert not [p for p in pages if folder in p.read_text(encoding="utf-8")]
    assert "hostile.jsonl:2" in (tmp_path / "site" / "records").joinpath(
        next(p.name for p in (tmp_path / "site" / "records").iterdir() if "h2" in p.name)).read_text()
    shown = run_cli("show", "h2", db=hostile_db).output
    assert "hostile.jsonl:2" in shown


def test_the_web_layer_does_not_import_the_cli_and_lists_areas_by_count(hostile_client):
    import subprocess
    import sys

    code = "import sys, landscape.web.app, landscape.web.static_site; print('landscape.cli' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    stats = hostile_client.get("/api/v1/stats").json()
    counts = [int(n) for n in re.findall(r" (\d+) ", " " + stats["line"].split(" papers ", 1)[1] + " ")]
    assert len(counts) == len(stats["areas"]) and counts == sorted(counts, reverse=True), stats["line"]


def test_a_worker_builds_at_most_its_page_threads_at_once(built_db, monkeypatch):
    """anyio would run 40 page builders at once; `serve --threads N` (LANDSCAPE_PAGE_THREADS)
    holds a worker to N, 2 by default."""
    import anyio.to_thread

    from landscape.web.app import THREADS_ENV

    def tokens() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    for setting, expected in ((None, 2), ("3", 3), ("many", 2)):
        if setting is None:
            monkeypatch.delenv(THREADS_ENV, raising=False)
        else:
            monkeypatch.setenv(THREADS_ENV, setting)
        with TestClient(create_app(built_db)) as c:
            assert c.portal.call(tokens) == expected
            assert c.get("/search?q=dark+matter").status_code == 200
