"""Turning page data into HTML: the Jinja environment, its filters, and the two URL schemes.

Autoescaping is on for every template, so record text is always text. The only markup built
from record text is search highlighting, and that escapes first and adds <mark> after.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from . import svg

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES = WEB_DIR / "templates"
STATIC = WEB_DIR / "static"
HL_OPEN, HL_CLOSE = "\x02", "\x03"


def highlight(text: str | None) -> Markup:
    """Escape text, then turn the store's \\x02/\\x03 highlight markers into balanced <mark>s."""
    out, open_ = [], False
    for part in re.split(r"([\x02\x03])", str(escape(text or ""))):
        if part == HL_OPEN:
            if not open_:
                out.append("<mark>")
                open_ = True
        elif part == HL_CLOSE:
            if open_:
                out.append("</mark>")
                open_ = False
        else:
            out.append(part)
    if open_:
        out.append("</mark>")
    return Markup("".join(out))


def plain(text: str | None) -> str:
    """Text with highlight markers removed (for titles and attributes)."""
    return (text or "").replace(HL_OPEN, "").replace(HL_CLOSE, "")


def percent(p: float | None) -> str:
    return "" if p is None else f"{100 * p:.0f}%"


@cache
def asset_version(path: str) -> str:
    """A short content hash appended to asset URLs, so browsers may cache them for long."""
    file = STATIC / path
    return hashlib.sha1(file.read_bytes()).hexdigest()[:10] if file.is_file() else "0"


def slug(name: str) -> str:
    """A file name for a static page: readable, unique (hash suffix), safe on every host."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "x"
    return f"{base}-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def record_file(record_id: str) -> str:
    return record_id if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,80}", record_id) else slug(record_id)


class Urls:
    """Links of the live server: absolute paths, query strings for filters."""

    static_site = False

    def home(self) -> str:
        return "/"

    def page(self, name: str) -> str:
        return f"/{name}"

    def posts(self, page: int = 1, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        if page > 1:
            query["page"] = page
        return "/posts" + (f"?{urlencode(query)}" if query else "")

    def search(self, q: str = "", **params: Any) -> str:
        query = {"q": q, **{k: v for k, v in params.items() if v not in (None, "")}}
        return "/search?" + urlencode(query) if q else "/search"

    def record(self, record_id: str) -> str:
        return "/records/" + quote(record_id, safe="")

    def graph(self, record_id: str) -> str:
        return "/graph/" + quote(record_id, safe="")

    def concept(self, name: str) -> str:
        return "/concepts/" + quote(name, safe="")

    def topic(self, topic_id: int) -> str:
        return f"/topics/{int(topic_id)}"

    def area(self, name: str) -> str:
        return "/areas/" + quote(name, safe="")

    def author(self, key: str) -> str:
        return "/authors/" + quote(key, safe="")

    def static(self, path: str) -> str:
        return f"/static/{path}?v={asset_version(path)}"

    def api(self, path: str) -> str:
        return f"/api/v1/{path}"

    def paged(self, base: str, page: int, **params: Any) -> str:
        """Another page of a list (concepts, authors, a concept's records)."""
        query = {k: v for k, v in params.items() if v not in (None, "")}
        if page > 1:
            query["page"] = page
        return base + (f"?{urlencode(query)}" if query else "")


class StaticUrls(Urls):
    """Links of the exported static site: relative file paths from the current page."""

    static_site = True

    def __init__(self, current: str):
        self.current = current

    def _rel(self, target: str) -> str:
        return posixpath.relpath(target, posixpath.dirname(self.current) or ".")

    def home(self) -> str:
        return self._rel("index.html")

    def page(self, name: str) -> str:
        if name in ("concepts", "topics", "areas", "authors", "posts"):
            return self._rel(f"{name}/index.html")
        return self._rel(f"{name}.html")

    def posts(self, page: int = 1, **params: Any) -> str:
        return self._rel("posts/index.html" if page <= 1 else f"posts/page-{page}.html")

    def search(self, q: str = "", **params: Any) -> str:
        return self._rel("search.html") + (f"?{urlencode({'q': q})}" if q else "")

    def record(self, record_id: str) -> str:
        return self._rel(f"records/{record_file(record_id)}.html")

    def graph(self, record_id: str) -> str:
        return self._rel(f"graph/{record_file(record_id)}.html")

    def concept(self, name: str) -> str:
        return self._rel(f"concepts/{slug(name)}.html")

    def topic(self, topic_id: int) -> str:
        return self._rel(f"topics/{int(topic_id)}.html")

    def area(self, name: str) -> str:
        return self._rel(f"areas/{slug(name)}.html")

    def author(self, key: str) -> str:
        return self._rel(f"authors/{slug(key)}.html")

    def static(self, path: str) -> str:
        return self._rel(f"static/{path}")

    def api(self, path: str) -> str:
        return self._rel(f"data/{path}")

    def paged(self, base: str, page: int, **params: Any) -> str:
        return base


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(highlight=highlight, plain=plain, percent=percent)
    env.globals.update(
        trend_bars=svg.trend_bars, trend_lines=svg.trend_lines, radial_graph=svg.radial_graph,
        colour=svg.colour,
    )
    return env


_ENV: Environment | None = None


def render(template: str, urls: Urls, **context: Any) -> str:
    global _ENV
    if _ENV is None:
        _ENV = environment()
    return _ENV.get_template(template).render(urls=urls, **context)
