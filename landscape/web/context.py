"""What each page shows, as plain JSON-able data: the HTML page and its /api/v1 twin share it.

A builder takes the store (and parsed parameters) and returns a `Page`: the template that
renders it, a title, and the data. Pages read whatever the build has stored so far; a step
that has not run yet leaves its part empty and the template says so.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ..config import Config
from ..models import LandscapeError, NotBuiltError
from ..snapshot import SNAPSHOTS
from ..store.fulltext import FTS_RANK_BUDGET
from ..store.interfaces import PageStore
from ..text import normalise_author
from ..views import record_detail, stats_line
from .identifiers import bibtex_entry, identifier_links
from .params import BadRequest, NotFound, Paging, Unavailable, backend_filters, encode_cursor

SEARCH_POOL = 200


@dataclass
class Page:
    template: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)


def optional_module(name: str) -> ModuleType | None:
    """A module another part of Landscape provides, or None while it does not exist yet."""
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except ModuleNotFoundError:
        return None
    return importlib.import_module(name)


def reason_text(reason: Any) -> str:
    """One readable reason, whatever shape the connections step stored it in."""
    if isinstance(reason, str):
        return reason
    if isinstance(reason, dict):
        for key in ("text", "label", "description", "reason"):
            if isinstance(reason.get(key), str):
                return reason[key]
        kind = reason.get("kind") or reason.get("type") or ""
        value = reason.get("value") or reason.get("names") or reason.get("items") or reason.get("score")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        return f"{kind}: {value}".strip(": ") if value is not None else str(kind)
    return str(reason)


def area_probability(view: dict[str, Any]) -> float | None:
    probs = view.get("area_probabilities")
    area = view.get("area")
    if isinstance(probs, dict):
        p = probs.get(area)
        return float(p) if isinstance(p, int | float) else None
    if isinstance(probs, list):
        for item in probs:
            if isinstance(item, list | tuple) and len(item) == 2 and item[0] == area:
                return float(item[1])
            if isinstance(item, dict) and item.get("area") == area:
                return float(item.get("probability") or item.get("p") or 0)
    return None


def sorted_probabilities(view: dict[str, Any]) -> list[dict[str, Any]]:
    probs = view.get("area_probabilities")
    pairs: list[tuple[str, float]] = []
    if isinstance(probs, dict):
        pairs = [(str(k), float(v)) for k, v in probs.items() if isinstance(v, int | float)]
    elif isinstance(probs, list):
        for item in probs:
            if isinstance(item, list | tuple) and len(item) == 2:
                pairs.append((str(item[0]), float(item[1])))
            elif isinstance(item, dict) and "area" in item:
                pairs.append((str(item["area"]), float(item.get("probability") or item.get("p") or 0)))
    return [{"area": a, "probability": p} for a, p in sorted(pairs, key=lambda kv: -kv[1])]


def linked(store: PageStore, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Connections or section links joined with the cards of the records they point to."""
    cards = store.page_cards(link["id"] for link in links)
    return [
        {**cards[link["id"]], "score": link["score"], "reasons": [reason_text(r) for r in link["reasons"]]}
        for link in links
        if link["id"] in cards
    ]


# --- record pages ---------------------------------------------------------------------------


def record_page(store: PageStore, record_id: str) -> Page:
    try:
        view = record_detail(store, record_id)
    except LandscapeError:
        raise NotFound(f"no record with id {record_id!r}") from None
    view["sources"] = public_sources(view.get("sources") or [])
    area_set = view.get("area_set") or []
    data = {
        "record": view,
        "authors": store.page_record_authors(record_id),
        "area_probability": area_probability(view),
        "area_probabilities": sorted_probabilities(view),
        "area_set": area_set if isinstance(area_set, list) else [],
        "concepts": store.page_record_concepts(record_id),
        "connections": linked(store, store.page_connections([record_id])[record_id]),
        "topic": store.page_record_topic(record_id),
        "position": store.page_position(record_id),
        "identifiers": identifier_links(record_id, view.get("extra") or {}),
        "venue": (view.get("extra") or {}).get("venue"),
        "references": linked_references(store, view.get("references") or []),
        "cited_by": list(store.page_cards(view.get("cited_by") or []).values()),
    }
    rec = store.get_record(record_id)
    data["bibtex"] = bibtex_entry(rec) if rec and rec.kind == "paper" else ""
    if view["kind"] == "talk":
        links = store.page_section_links(record_id)
        data["sections"] = [
            {"title": s.title, "summary": s.summary, "text": s.text, "related": linked(store, links.get(i, []))}
            for i, s in enumerate(rec.sections if rec else [])
        ]
        return Page("talk.html", view["display_title"], data)
    return Page("paper.html", view["display_title"], data)


def linked_references(store: PageStore, references: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each reference with its record's card when it is in the corpus, else its title and ids."""
    cards = store.page_cards(r["record_id"] for r in references if r.get("record_id"))
    return [{"title": r.get("title"), "ids": r.get("ids") or {}, "record": cards.get(r.get("record_id"))}
            for r in references]


def public_sources(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where a record came from, as a visitor may see it: the file's name and line, never the
    folders of the machine that ingested it."""
    return [
        {"file": re.split(r"[\\/]", str(s.get("path") or ""))[-1], "line": s.get("line"), "format": s.get("format"),
         "extra": s.get("extra") or {}}
        for s in sources
    ]


def graph_page(store: PageStore, record_id: str, limit: int = 8) -> Page:
    """A record, its connections, and their connections: the neighbourhood as a graph."""
    meta = store.page_record_meta(record_id)
    if meta is None:
        raise NotFound(f"no record with id {record_id!r}")
    first = store.page_connections([record_id])[record_id][:limit]
    first_ids = [c["id"] for c in first]
    second_links = store.page_connections(first_ids)
    seen = {record_id, *first_ids}
    second_ids: list[str] = []
    edges: list[tuple[str, str, float]] = [(record_id, c["id"], c["score"]) for c in first]
    for rid in first_ids:
        for c in second_links.get(rid, [])[:4]:
            edges.append((rid, c["id"], c["score"]))
            if c["id"] not in seen:
                seen.add(c["id"])
                second_ids.append(c["id"])
    cards = store.page_cards([record_id, *first_ids, *second_ids])
    return Page("graph.html", f"Connections of {meta['display_title']}", {
        "record": cards[record_id],
        "neighbours": [{**cards[c["id"]], "score": c["score"],
                        "reasons": [reason_text(r) for r in c["reasons"]]} for c in first if c["id"] in cards],
        "second": [cards[i] for i in second_ids if i in cards],
        "edges": [{"source": a, "target": b, "score": s} for a, b, s in edges],
    })


# --- lists --------------------------------------------------------------------------------


def posts_page(store: PageStore, filters: dict[str, Any], sort: str, paging: Paging) -> Page:
    """One page of the browse list, read by keyset from its cursor; an old `page=N` link first
    finds the cursor where that page starts. The total and facet counts are kept per store version."""
    after, before = paging.after, paging.before
    if after is None and before is None and paging.page > 1:
        after = store.page_browse_key_at(filters, sort, paging.offset - 1)
    if after is None and before is None and paging.page > 1:
        ids, following, preceding = list[str](), None, None
    else:
        ids, following, preceding = store.page_browse_keyset(filters, sort, paging.size, after=after, before=before)
    summary = browse_summary(store, filters)
    cards = store.page_cards(ids)
    author = store.page_author(filters["author"]) if filters.get("author") else None
    return Page("posts.html", "All posts", {
        "records": [cards[i] for i in ids if i in cards],
        "filters": filters,
        "author_name": author["name"] if author else filters.get("author"),
        "sort": sort,
        "paging": {**paging.info(summary["total"]), "next": encode_cursor(following),
                   "prev": encode_cursor(preceding)},
        "facets": summary["facets"],
    })


_SUMMARIES: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_SUMMARIES_LOCK = threading.Lock()
_BUILDING: dict[tuple[Any, ...], threading.Lock] = {}
SUMMARIES_KEPT = 256


def browse_summary(store: PageStore, filters: dict[str, Any]) -> dict[str, Any]:
    """How many records the filters select and their facet counts, once per store version."""

    def compute() -> dict[str, Any]:
        facets = store.page_facets(filters)
        return {"total": sum(f["count"] for f in facets["kind"]), "facets": facets}

    return per_version(store, "browse:" + json.dumps(filters, sort_keys=True, default=str), compute)


def per_version(store: PageStore, name: str, compute: Callable[[], Any]) -> Any:
    """What `compute` answers for this store version and name (counts over a set of records),
    computed once: the newest SUMMARIES_KEPT are kept, and a second request for the same one
    waits for the first instead of counting again."""
    key = (store.path, store.version(), name)
    with _SUMMARIES_LOCK:
        hit = _SUMMARIES.get(key)
        if hit is not None:
            _SUMMARIES.move_to_end(key)
            return hit
        building = _BUILDING.setdefault(key, threading.Lock())
    with building:
        with _SUMMARIES_LOCK:
            hit = _SUMMARIES.get(key)
        if hit is not None:
            return hit
        try:
            value = compute()
            with _SUMMARIES_LOCK:
                _SUMMARIES[key] = value
                while len(_SUMMARIES) > SUMMARIES_KEPT:
                    _SUMMARIES.popitem(last=False)
        finally:
            with _SUMMARIES_LOCK:
                _BUILDING.pop(key, None)
    return value


def store_stats(store: PageStore) -> dict[str, Any]:
    """The store's counts (records, areas, years), computed once per store version."""
    return SNAPSHOTS.get(store, "memo:stats", lambda s: s.stats())


def store_areas(store: PageStore) -> list[dict[str, Any]]:
    return SNAPSHOTS.get(store, "memo:areas", lambda s: s.page_areas())


def home_page(store: PageStore, trends: dict[str, Any] | None = None, config: Config | None = None) -> Page:
    stats = store_stats(store)
    ids = store.page_browse_keyset({}, "newest", 8)[0]
    cards = store.page_cards(ids)
    years = [y for y in stats["years"] if y]
    return Page("home.html", "Navigate the landscape of research", {
        "stats": stats,
        "stats_line": stats_line(stats, (config or Config()).area_order),
        "years": [years[0], years[-1]] if years else [],
        "areas": store_areas(store),
        "latest": [cards[i] for i in ids if i in cards],
        "emerging": (trends or {}).get("emerging", [])[:8],
        "topics": store.page_topics()[:10],
        "has_map": store.page_has("map_coords"),
    })


# --- search ---------------------------------------------------------------------------------


def search_results(store: PageStore, query: str, filters: dict[str, Any], config: Config,
                   limit: int = SEARCH_POOL, snippets: int | None = None) -> tuple[list[dict[str, Any]], str]:
    """Hybrid search when the semantic core is built, else full-text BM25; and which one ran.
    The first `snippets` results (all when None) carry a snippet."""
    search = optional_module("landscape.search")
    method = "bm25"
    if search is not None and store.page_has("embeddings"):
        try:
            raw = search.search(store, query, limit=limit, config=config, snippets=snippets, **backend_filters(filters))
            method = "hybrid"
        except LandscapeError as exc:
            raise BadRequest(str(exc)) from None
    else:
        raw = store.fts_search(query, limit=limit, snippets=False, **backend_filters(filters))
        shown = store.fts_snippets(query, [r["id"] for r in raw][:snippets])
        raw = [{**r, "snippet": shown.get(r["id"], ("", None))[0], "title_highlighted": shown.get(r["id"], ("", None))[1]}
               for r in raw]
    return [_hit(r) for r in raw], method


def _hit(result: Any) -> dict[str, Any]:
    data = result if isinstance(result, dict) else dict(vars(result))
    hit = {
        "id": data["id"],
        "score": data.get("score", data.get("bm25")),
        "keyword_scope": data.get("keyword_scope", data.get("scope")),
        "snippet": data.get("snippet") or "",
        "title_highlighted": data.get("title_highlighted") or data.get("title_hl"),
    }
    if "kind" in data:  # hybrid hits carry what the facets count
        hit.update(area=data.get("area"), kind=data["kind"], date=data.get("date"))
    return hit


def search_page(store: PageStore, query: str | None, filters: dict[str, Any], paging: Paging, config: Config) -> Page:
    title = f"Search: {query}" if query else "Search"
    if not query:
        return Page("search.html", title, {"query": "", "results": [], "facets": {}, "filters": filters,
                                           "paging": paging.info(0), "method": None, "note": None})
    hits, method = search_results(store, query, filters, config, snippets=paging.offset + paging.size)
    if all("kind" in h for h in hits):  # the facets count what the hits carry: cards for the page only
        cards = store.page_cards(h["id"] for h in hits[paging.offset : paging.offset + paging.size])
        counted: list[dict[str, Any]] = hits
    else:
        cards = store.page_cards(h["id"] for h in hits)
        hits = [h for h in hits if h["id"] in cards]
        counted = [cards[h["id"]] for h in hits]
    facets: dict[str, dict[str, int]] = {"area": {}, "kind": {}, "year": {}}
    for row in counted:
        for name, value in (("area", row["area"]), ("kind", row["kind"]), ("year", (row["date"] or "")[:4])):
            if value:
                facets[name][value] = facets[name].get(value, 0) + 1
    page_hits = [h for h in hits[paging.offset : paging.offset + paging.size] if h["id"] in cards]
    bounded = any(h.get("keyword_scope") == "newest" for h in hits)
    return Page("search.html", title, {
        "query": query,
        "method": method,
        "results": [{**cards[h["id"]], **h} for h in page_hits],
        "facets": {k: sorted(v.items(), key=lambda kv: (-kv[1], kv[0])) for k, v in facets.items()},
        "filters": filters,
        "paging": paging.info(len(hits)),
        "note": (f"These words are in more than {FTS_RANK_BUDGET:,} records: keyword matches are ranked among"
                 f" the newest {FTS_RANK_BUDGET:,} of them (matches by meaning cover every record)." if bounded else None),
    })


def related_by_text(store: PageStore, text: str, limit: int, config: Config) -> list[dict[str, Any]]:
    connections = optional_module("landscape.enrich.connections")
    related = optional_module("landscape.enrich.related")
    if connections is None or related is None or not store.page_has("embeddings"):
        raise Unavailable("related by text needs the semantic core: run `landscape build` first")
    try:
        stored = SNAPSHOTS.get(store, "connections:text", related.text_scoring)
        if stored is not None:  # only the text's candidates are read (enrich/text_related.py)
            raw = related.related_by_stats(store, stored[0], text, stored[1], max(1, limit), config,
                                           embedder=_search_embedder(store, config))
        else:
            corpus, stats = SNAPSHOTS.get(store, "connections", lambda s: _connections_corpus(connections, s, config))
            embedder, nearest = _text_search(store, corpus, config)
            raw = related.related_to_text(store, corpus, text, stats, max(1, limit), config,
                                          embedder=embedder, nearest=nearest)
    except NotBuiltError as exc:
        raise Unavailable(str(exc)) from None
    except LandscapeError as exc:
        raise BadRequest(str(exc)) from None
    links = [r if isinstance(r, dict) else dict(vars(r)) for r in raw]
    return linked(store, [{"id": r["id"], "score": r.get("score", 0.0), "reasons": r.get("reasons", [])}
                          for r in links])


def _search_embedder(store: PageStore, config: Config) -> Any:
    """The embedder the search index holds for this store version (None: none loaded yet)."""
    search = optional_module("landscape.search")
    return None if search is None else search.dense_index(store, config).embedder


def _text_search(store: PageStore, corpus: Any, config: Config) -> tuple[Any, Any]:
    """The embedder and the nearest-records lookup the search index holds for this store version
    (None, None when it has none: related_to_text then loads its own)."""
    search = optional_module("landscape.search")
    if search is None:
        return None, None
    dense = search.dense_index(store, config)
    if dense.embedder is None:
        return None, None

    def nearest(vector: Any, m: int) -> Any:
        import numpy as np

        hits = dense.nearest(store, vector, m)[0]
        return np.asarray([corpus.pos.get(rid, -1) for rid, _ in hits], dtype=np.int64)

    return dense.embedder, nearest


def _connections_corpus(connections: ModuleType, store: PageStore, config: Config) -> tuple[Any, Any]:
    """The corpus related-by-text scores against, and the score statistics the build fitted."""
    corpus = connections.corpus_for(store, config)  # with the neighbour graph its candidates come from
    state = connections.load_state(store)
    stats = state["stats"] if state and state.get("weights") == connections.WEIGHTS else corpus.fit_stats()
    return corpus, stats


# --- about and stats ---------------------------------------------------------------------------


def about_page(store: PageStore, config: Config | None = None) -> Page:
    stats = store_stats(store)
    return Page("about.html", "About this landscape", {
        "stats": stats,
        "stats_line": stats_line(stats, (config or Config()).area_order),
        "last_build": store.page_last_build(),
        "has": {t: store.page_has(t) for t in ("embeddings", "connections", "record_concepts",
                                                 "topics", "map_coords", "section_links")},
        "areas": store_areas(store),
    })


def stats_data(store: PageStore, config: Config | None = None) -> dict[str, Any]:
    stats = store_stats(store)
    fallbacks = (store.page_last_build() or {}).get("fallbacks", [])
    return {**stats, "line": stats_line(stats, (config or Config()).area_order), "fallbacks": fallbacks}


def author_key(name: str) -> str:
    return normalise_author(name)
