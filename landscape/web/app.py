"""The read-only web app: server-rendered pages, their JSON twins under /api/v1, static assets.

Each page is one builder in `context`/`context_landscape` returning data; the HTML route
renders it with a template and the API route returns the same data as JSON. Every response
carries the security headers; every error has one shape (an HTML page, or on the API the
JSON envelope {"error": {"status", "message"}}). Nothing here writes to the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Config
from ..models import LandscapeError
from ..snapshot import SNAPSHOTS
from ..store import AnyStore, open_store
from ..store.interfaces import PageStore
from . import context as ctx
from . import context_landscape as land
from . import mapbin
from .openapi import spec
from .params import (
    MAX_PAGE_SIZE,
    MAX_QUERY,
    BadRequest,
    NotFound,
    WebError,
    browse_filters,
    browse_paging,
    choice_param,
    int_param,
    paging,
    search_filters,
    text_param,
)
from .render import STATIC, Urls, render

log = logging.getLogger("landscape.web")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
PAGE_CACHE = "public, max-age=60"
ASSET_CACHE = "public, max-age=31536000, immutable"
STATUS_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 409: "Changed", 500: "Server error",
                 503: "Not available yet"}
MAP_ROWS_MAX = 200
MAP_MATCH_MAX = 50_000
MAP_MATCH_LISTED = 25
MAP_SAMPLE_MAX = 10_000_000
MAP_JSON_MAX = 100_000


class SecurityHeaders:
    """Adds the security headers to every response, static files and errors included."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_asset = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if is_asset and b"cache-control" not in names:
                    headers.append((b"cache-control", ASSET_CACHE.encode() if b"v=" in scope.get(
                        "query_string", b"") else b"public, max-age=3600"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Site:
    """The store (one read-only connection per worker thread) and the configuration."""

    def __init__(self, db_path: str | Path, config: Config | None = None):
        self.db_path = str(db_path)
        open_store(self.db_path, readonly=True).close()
        self.config = config or Config.load(None, db_path=self.db_path)
        self._local = threading.local()

    def store(self) -> AnyStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.db_path, readonly=True)
        return store

    def memo(self, store: PageStore, name: str, compute: Callable[[], Any]) -> Any:
        """A whole-corpus result (trends, merged authors) built once per store version."""
        return SNAPSHOTS.get(store, f"memo:{name}", lambda _store: compute())

    def trends(self, store: PageStore) -> dict[str, Any] | None:
        module = ctx.optional_module("landscape.enrich.trends")
        return None if module is None else self.memo(store, "trends", lambda: module.stored_trends(store))

    def people(self, store: PageStore) -> Any:
        module = ctx.optional_module("landscape.enrich.authors")
        if module is None or not hasattr(store, "ls_authorship_rows"):
            return None
        return self.memo(store, "people", lambda: module.people(store))


Builder = Callable[[Site, PageStore, Request], ctx.Page]


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def error_response(request: Request, status: int, message: str) -> Response:
    if is_api(request):
        body = json.dumps({"error": {"status": status, "message": message}}, ensure_ascii=False)
        return Response(body, status_code=status, media_type="application/json",
                        headers={"cache-control": "no-store"})
    page = render("error.html", Urls(), title=STATUS_TITLES.get(status, "Error"),
                  d={"status": status, "title": STATUS_TITLES.get(status, "Error"), "message": message})
    return Response(page, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"cache-control": "no-store"})


def cached(request: Request, body: bytes, media_type: str) -> Response:
    """A response with an ETag from its content; 304 when the client already has it."""
    etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
    headers = {"etag": etag, "cache-control": PAGE_CACHE, "vary": "Accept-Encoding"}
    inm = request.headers.get("if-none-match", "")
    if etag in {t.strip().removeprefix("W/") for t in inm.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _run(site: Site, request: Request, builder: Builder) -> ctx.Page | Response:
    store = site.store()
    try:
        with store.page_snapshot():
            return builder(site, store, request)
    except WebError as exc:
        return error_response(request, exc.status, str(exc))
    except LandscapeError as exc:
        return error_response(request, 400, str(exc))


def html(builder: Builder, site: Site) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        page = _run(site, request, builder)
        if isinstance(page, Response):
            return page
        body = render(page.template, Urls(), d=page.data, title=page.title)
        return cached(request, body.encode("utf-8"), "text/html; charset=utf-8")

    return endpoint


def api(builder: Builder, site: Site) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        page = _run(site, request, builder)
        if isinstance(page, Response):
            return page
        body = json.dumps(page.data, ensure_ascii=False, separators=(",", ":"), default=str)
        return cached(request, body.encode("utf-8"), "application/json")

    return endpoint


# --- builders: parse the request, call one page builder ----------------------------------------


def _home(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return ctx.home_page(store, land.trends_data(store, site.trends(store)), site.config)


def _posts(site: Site, store: PageStore, request: Request) -> ctx.Page:
    q = request.query_params
    sort = choice_param(q, "sort", ("newest", "oldest", "title"), "newest") or "newest"
    return ctx.posts_page(store, browse_filters(q), sort, browse_paging(q, sort))


def _record(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return ctx.record_page(store, request.path_params["record_id"])


def _graph(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return ctx.graph_page(store, request.path_params["record_id"])


def _search(site: Site, store: PageStore, request: Request) -> ctx.Page:
    q = request.query_params
    query = text_param(q, "q", limit=MAX_QUERY)
    if query is None and is_api(request):
        raise BadRequest("q: expected a query, found nothing")
    return ctx.search_page(store, query, search_filters(q), paging(q), site.config)


def _related(site: Site, store: PageStore, request: Request) -> ctx.Page:
    q = request.query_params
    limit = int_param(q, "limit", 10, 1, MAX_PAGE_SIZE)
    record_id, text = text_param(q, "id"), text_param(q, "text", limit=MAX_QUERY)
    if record_id:
        if store.page_record_meta(record_id) is None:
            raise NotFound(f"no record with id {record_id!r}")
        results = ctx.linked(store, store.page_connections([record_id])[record_id][:limit])
        return ctx.Page("", "Related", {"id": record_id, "results": results})
    if text:
        return ctx.Page("", "Related", {"text": text[:200], "results": ctx.related_by_text(store, text, limit, site.config)})
    raise BadRequest("expected id=RECORD or text=TEXT, found neither")


def _stats(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return ctx.Page("", "Stats", ctx.stats_data(store, site.config))


def _concepts(site: Site, store: PageStore, request: Request) -> ctx.Page:
    q = request.query_params
    return land.concepts_page(store, paging(q, 60), text_param(q, "prefix"))


def _concept(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return land.concept_page(store, request.path_params["name"], paging(request.query_params))


def _topics(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return land.topics_page(store)


def _topic(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return land.topic_page(store, request.path_params["topic_id"], paging(request.query_params))


def _areas(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return land.areas_page(store)


def _area(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return land.area_page(store, request.path_params["name"], paging(request.query_params))


def _authors(site: Site, store: PageStore, request: Request) -> ctx.Page:
    q = request.query_params
    return land.authors_page(store, paging(q, 60), text_param(q, "prefix"))


def _author(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return land.author_page(store, request.path_params["key"], paging(request.query_params), site.people(store))


def _map(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return land.map_page(store, text_param(request.query_params, "focus"))


def _map_data(site: Site, store: PageStore, request: Request) -> ctx.Page:
    """Every point as JSON: fine for a few thousand, but at a million it is over 100 MB to build
    per request (measured: 111 s), so above MAP_JSON_MAX the binary file is the way."""
    n = mapbin.cached_points(store).n
    if n > MAP_JSON_MAX:
        raise BadRequest(f"the map has {n} points, more than {MAP_JSON_MAX} as JSON: use /api/v1/map/points "
                         "(a binary file, a few bytes a point) and /api/v1/map/rows")
    return ctx.Page("", "Map data", land.map_data(store))


class Stale(WebError):
    status = 409


def _map_version(store: PageStore, request: Request) -> mapbin.MapPoints:
    """The map's points, provided the client's `v` (if given) is still the store's version:
    rows are positions in one version's file, so a row from another would name another record."""
    points = mapbin.cached_points(store)
    asked = text_param(request.query_params, "v")
    if asked and asked != points.version:
        raise Stale(f"v: the map changed since it was loaded (now {points.version}, asked {asked[:40]}); reload it")
    return points


def _map_rows(site: Site, store: PageStore, request: Request) -> ctx.Page:
    raw = text_param(request.query_params, "rows") or ""
    parts = [p for p in raw.split(",") if p]
    if not parts or len(parts) > MAP_ROWS_MAX or not all(p.isdigit() and len(p) <= 9 for p in parts):
        raise BadRequest(f"rows: expected 1 to {MAP_ROWS_MAX} row numbers separated by commas, found {raw[:60]!r}")
    points = _map_version(store, request)
    return ctx.Page("", "Map rows", {"version": points.version,
                                     "rows": mapbin.row_records(store, points, [int(p) for p in parts])})


def _map_match(site: Site, store: PageStore, request: Request) -> ctx.Page:
    q = request.query_params
    text = text_param(q, "q", limit=200)
    if text is None:
        raise BadRequest("q: expected text to find in titles, found nothing")
    limit = int_param(q, "limit", MAP_MATCH_MAX, 1, MAP_MATCH_MAX)
    points = _map_version(store, request)
    rows, total = mapbin.title_matches(store, points, text, limit)
    return ctx.Page("", "Map matches", {"version": points.version, "total": total, "rows": rows,
                                        "first": mapbin.row_records(store, points, rows[:MAP_MATCH_LISTED])})


def map_points(site: Site) -> Callable[[Request], Response]:
    """The binary point file (see `mapbin`): gzipped once per store version, ETag the version,
    immutable when asked for by version; `?sample=N` gives an evenly spread N of the points."""

    def endpoint(request: Request) -> Response:
        store = site.store()
        try:
            with store.page_snapshot():
                points = _map_version(store, request)
            sample = int_param(request.query_params, "sample", 0, 0, MAP_SAMPLE_MAX)
        except WebError as exc:
            return error_response(request, exc.status, str(exc))
        sampled = 0 < sample < points.n
        etag = f'"{points.version}-{sample if sampled else "all"}"'
        headers = {"etag": etag, "vary": "Accept-Encoding",
                   "cache-control": ASSET_CACHE if request.query_params.get("v") else "no-cache"}
        if etag in {t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")}:
            return Response(status_code=304, headers=headers)
        if sampled:
            body = mapbin.encode(points, mapbin.sample_rows(points.n, sample))
        elif "gzip" in request.headers.get("accept-encoding", ""):
            body, headers["content-encoding"] = points.gzipped, "gzip"
        else:
            body = points.body
        return Response(body, media_type="application/octet-stream", headers=headers)

    return endpoint


def _trends(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return land.trends_page(store, site.trends(store))


def _about(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return ctx.about_page(store, site.config)


def _docs(site: Site, store: PageStore, request: Request) -> ctx.Page:
    return ctx.Page("docs.html", "JSON API", {"spec": spec(), "max_limit": MAX_PAGE_SIZE})


PAGES: list[tuple[str, Builder]] = [
    ("/", _home),
    ("/posts", _posts),
    ("/records/{record_id:path}", _record),
    ("/graph/{record_id:path}", _graph),
    ("/search", _search),
    ("/concepts", _concepts),
    ("/concepts/{name:path}", _concept),
    ("/topics", _topics),
    ("/topics/{topic_id:int}", _topic),
    ("/areas", _areas),
    ("/areas/{name:path}", _area),
    ("/authors", _authors),
    ("/authors/{key:path}", _author),
    ("/map", _map),
    ("/trends", _trends),
    ("/about", _about),
]
API_ONLY: list[tuple[str, Builder]] = [
    ("/records", _posts),
    ("/stats", _stats),
    ("/related", _related),
    ("/map", _map_data),
    ("/map/rows", _map_rows),
    ("/map/match", _map_match),
    ("/home", _home),
]


def warm_up(db_path: str | Path, config: Config | None = None) -> None:
    """Count the records and facets, load the search model and index, and build the map's point
    file, once, so the first visitor's browse page, search and map are fast.

    Run by `landscape serve` in a background thread; a failure only means the first search
    or map request builds them itself."""
    try:
        with open_store(str(db_path), readonly=True) as store:
            with store.page_snapshot():
                ctx.browse_summary(store, {})
                ctx.store_stats(store)
            if store.page_has("embeddings"):
                ctx.search_results(store, "warm up", {}, config or Config.load(None, db_path=str(db_path)), limit=1)
            if store.page_has("map_coords"):
                with store.page_snapshot():
                    mapbin.cached_points(store)
    except Exception:  # noqa: BLE001 - best effort; the request path reports real errors
        log.warning("search warm-up failed", exc_info=True)


DB_ENV = "LANDSCAPE_SERVE_DB"


def worker_app() -> Starlette:
    """The app of one `landscape serve --workers N` process: uvicorn imports it by name in each
    worker, the store's path comes from the environment the supervisor set."""
    db = os.environ[DB_ENV]
    threading.Thread(target=warm_up, args=(db,), daemon=True, name="warm-up").start()
    return create_app(db)


def create_app(db_path: str | Path, config: Config | None = None) -> Starlette:
    site = Site(db_path, config)
    routes: list[Route | Mount] = [Route(path, html(b, site), methods=["GET", "HEAD"]) for path, b in PAGES]
    api_paths = [(p if p != "/" else "/home", b) for p, b in PAGES if p not in ("/", "/map")]
    routes += [Route("/api/v1" + p, api(b, site), methods=["GET", "HEAD"]) for p, b in API_ONLY + api_paths]
    routes += [
        Route("/api/v1/map/points", map_points(site), methods=["GET", "HEAD"]),
        Route("/docs", html(_docs, site), methods=["GET", "HEAD"]),
        Route("/openapi.json", api(lambda s, st, r: ctx.Page("", "OpenAPI", spec()), site), methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = {404: f"nothing at {request.url.path[:200]}", 405: "this site is read-only: only GET and HEAD"}.get(
            status, STATUS_TITLES.get(status, "error"))
        return error_response(request, status, message)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("error serving %s", request.url.path)
        return error_response(request, 500, "the server could not build this page")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = page_threads()
        yield

    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(GZipMiddleware, minimum_size=800)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )


THREADS_ENV = "LANDSCAPE_PAGE_THREADS"
PAGE_THREADS = 2


def page_threads() -> int:
    """Threads that build pages at once in one worker process (`serve --threads`).

    Page builders are mostly Python, so threads beyond the cores only contend for the GIL, and
    each keeps its own store connection with a cold page cache: at anyio's default of 40, 64
    connections of searches cost one worker 53 ms of CPU a page against 19 ms for one client
    (docs/serving-scale.md, session 16). Two per worker let one wait on the disk while another
    computes; more workers, not threads, use more cores."""
    try:
        return max(1, int(os.environ.get(THREADS_ENV) or PAGE_THREADS))
    except ValueError:
        log.warning("%s=%r: expected a whole number of threads; using %d", THREADS_ENV,
                    os.environ.get(THREADS_ENV), PAGE_THREADS)
        return PAGE_THREADS
