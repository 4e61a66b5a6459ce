"""`landscape export --format site OUT`: the whole site as static files for any static host.

Every page is rendered by the same builders and templates as the live server, with
`StaticUrls`, so every link is a relative file path and the copy works from any folder of any
host (or opened from disk). What the live server computes per request is prebuilt: the map's
binary point file (`data/map.bin`, the bytes `/api/v1/map/points` serves), the same bytes as
base64 in a script and the rows' ids and titles as another (a script loads from `file://`
where `fetch` would not), and a search index. Lists that the server pages show whole here.

The export is written to a temporary folder beside OUT and renamed into place, so a failed
export leaves OUT as it was; OUT may be missing, empty, or an earlier export.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import Config
from ..models import LandscapeError
from ..store.interfaces import PageStore
from . import context as ctx
from . import context_landscape as land
from . import mapbin
from .params import Paging, decode_cursor
from .render import STATIC, StaticUrls, record_file, render, slug

MARKER = ".landscape-site"
WHOLE = Paging(page=1, size=10**9)
POSTS_PER_PAGE = 20
SNIPPET_CHARS = 240
_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in into is it its of on or that the their this to was we "
    "were which with our these those using via".split()
)


def tokens(text: str) -> list[str]:
    """The words the client-side search matches: lower case, letters and digits, no stopwords.

    static-search.js splits a query the same way."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


def stored_trends(store: PageStore) -> dict[str, Any] | None:
    module = ctx.optional_module("landscape.enrich.trends")
    return None if module is None else module.stored_trends(store)


def merged_people(store: PageStore) -> Any:
    module = ctx.optional_module("landscape.enrich.authors")
    if module is None or not hasattr(store, "ls_authorship_rows"):
        return None
    return module.people(store)


def export_site(store: PageStore, out: str | Path) -> int:
    """Write the static site to OUT; returns the number of record pages written."""
    target = Path(out)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MARKER).exists())):
        raise LandscapeError(f"{target}: expected a missing or empty folder or an earlier site export, found other files")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        with store.page_snapshot():
            n = SiteWriter(store, tmp).write_all()
        (tmp / MARKER).write_text("written by landscape export --format site\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n


class SiteWriter:
    """Renders each page once into `root`, under the file name `StaticUrls` links to."""

    def __init__(self, store: PageStore, root: Path):
        self.store = store
        self.root = root
        self.config = Config.load(None, db_path=store.path)
        self.trends = stored_trends(store)
        self.people = merged_people(store)

    def page(self, path: str, page: ctx.Page) -> None:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(render(page.template, StaticUrls(path), d=page.data, title=page.title), encoding="utf-8")

    def script(self, path: str, name: str, data: Any) -> None:
        """Data as a script that sets window[name]; JSON with every non-ASCII and '<' escaped."""
        body = json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c")
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"window.{name}={body};\n", encoding="ascii")

    def write_all(self) -> int:
        shutil.copytree(STATIC, self.root / "static")
        s = self.store
        self.page("index.html", ctx.home_page(s, land.trends_data(s, self.trends), self.config))
        self.write_posts()
        ids = s.record_ids()
        for rid in ids:
            self.page(f"records/{record_file(rid)}.html", ctx.record_page(s, rid))
            self.page(f"graph/{record_file(rid)}.html", ctx.graph_page(s, rid))
        self.page("search.html", ctx.Page("search.html", "Search", {
            "query": "", "results": [], "facets": {}, "filters": {}, "paging": WHOLE.info(0), "method": None}))
        self.write_lists()
        self.page("map.html", land.map_page(s))
        self.page("trends.html", land.trends_page(s, self.trends))
        self.page("about.html", ctx.about_page(s, self.config))
        self.write_map()
        self.script("data/search-index.js", "LANDSCAPE_SEARCH", search_index(s, ids))
        return len(ids)

    def write_posts(self) -> None:
        total = self.store.page_browse({}, limit=1)[1]
        pages = max(1, math.ceil(total / POSTS_PER_PAGE))
        after = None
        for n in range(1, pages + 1):  # by cursor, so each page costs the same (OFFSET made this quadratic)
            path = "posts/index.html" if n == 1 else f"posts/page-{n}.html"
            page = ctx.posts_page(self.store, {}, "newest", Paging(page=n, size=POSTS_PER_PAGE, after=after))
            self.page(path, page)
            after = decode_cursor(page.data["paging"]["next"] or "")

    def write_lists(self) -> None:
        s = self.store
        self.page("concepts/index.html", land.concepts_page(s, WHOLE, None))
        for c in land.concepts_page(s, WHOLE, None).data.get("concepts", []):
            self.page(f"concepts/{slug(c['name'])}.html", land.concept_page(s, c["name"], WHOLE))
        self.page("topics/index.html", land.topics_page(s))
        for t in s.page_topics():
            self.page(f"topics/{int(t['id'])}.html", land.topic_page(s, t["id"], WHOLE))
        self.page("areas/index.html", land.areas_page(s))
        for a in s.page_areas():
            self.page(f"areas/{slug(a['name'])}.html", land.area_page(s, a["name"], WHOLE))
        authors = land.authors_page(s, WHOLE, None)
        self.page("authors/index.html", authors)
        for a in authors.data.get("authors", []):
            self.page(f"authors/{slug(a['key'])}.html", land.author_page(s, a["key"], WHOLE, self.people))

    def write_map(self) -> None:
        """The point file, its base64 twin for pages opened from disk, and each row's id, file and title."""
        points = mapbin.read_points(self.store)
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "data" / "map.bin").write_bytes(points.body)
        encoded = base64.b64encode(points.body).decode("ascii")
        (self.root / "data" / "map-bin.js").write_text(f'window.LANDSCAPE_MAP_BIN="{encoded}";\n', encoding="ascii")
        found = self.store.page_map_rows([int(r) for r in points.rowids])
        rows = [found[int(r)] for r in points.rowids]
        self.script("data/map-rows.js", "LANDSCAPE_MAP_ROWS", {
            "ids": [r[0] for r in rows], "files": [record_file(r[0]) for r in rows], "titles": [r[1] for r in rows]})


def _documents(store: PageStore, ids: list[str]) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """Each record's card and the texts it is found by, weighted by repetition (title x3, concepts x2)."""
    cards = store.page_cards(ids)
    for rid in ids:
        card = cards.get(rid)
        if card is None:
            continue
        rec = store.get_record(rid)
        concepts = [c["name"] for c in store.page_record_concepts(rid)]
        authors = " ".join(a["name"] for a in card.get("authors", []))
        body = " ".join(filter(None, [rec.abstract if rec else "", card.get("summary") or ""]))
        words = tokens(card["title"]) * 3 + tokens(" ".join(concepts)) * 2 + tokens(authors) * 2 + tokens(body)
        yield rid, {**card, "text": body}, words


def search_index(store: PageStore, ids: list[str], k1: float = 1.2, b: float = 0.75) -> dict[str, Any]:
    """A prebuilt BM25 index: for each term, the records holding it with their weight.

    The browser sums the weights of the query's terms (and of the vocabulary words the last
    term starts, so results come while typing); nothing is computed per record at query time."""
    docs: list[dict[str, Any]] = []
    bags: list[Counter[str]] = []
    for rid, card, words in _documents(store, ids):
        docs.append({
            "id": rid, "file": record_file(rid), "title": card["title"], "kind": card["kind"],
            "area": card.get("area") or "", "date": card.get("date") or "",
            "authors": [a["name"] for a in card.get("authors", [])] + (["et al."] if card.get("authors_truncated") else []),
            "text": _snippet(card["text"]),
        })
        bags.append(Counter(words))
    n = len(docs)
    avg = sum(sum(bag.values()) for bag in bags) / n if n else 1.0
    df: Counter[str] = Counter(t for bag in bags for t in bag)
    postings: dict[str, list[float]] = {}
    for d, bag in enumerate(bags):
        length = sum(bag.values())
        for term, tf in bag.items():
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            weight = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
            postings.setdefault(term, []).extend((d, round(weight, 3)))
    return {"version": 1, "docs": docs, "terms": dict(sorted(postings.items())),
            "stopwords": sorted(STOPWORDS)}


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"
