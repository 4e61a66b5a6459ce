"""Page data for the landscape's regions and people: concepts, topics, areas, authors, map, trends."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ..enrich.citations import author_citations
from ..models import LandscapeError
from ..store.interfaces import PageStore
from .context import Page, per_version, store_areas, store_stats
from .params import NotFound, Paging

RECENT_YEARS = 2
MIN_SUPPORT = 3


def _cards(store: PageStore, ids: list[str]) -> list[dict[str, Any]]:
    cards = store.page_cards(ids)
    return [cards[i] for i in ids if i in cards]


def _paged(ids: list[str], paging: Paging) -> list[str]:
    return ids[paging.offset : paging.offset + paging.size]


# --- concepts ----------------------------------------------------------------------------------


def concepts_page(store: PageStore, paging: Paging, prefix: str | None) -> Page:
    items, total = store.page_concepts(paging.size, paging.offset, prefix)
    return Page("concepts.html", "Concepts", {
        "concepts": items, "prefix": prefix or "", "paging": paging.info(total),
        "built": store.page_has("record_concepts"),
    })


def concept_page(store: PageStore, name: str, paging: Paging) -> Page:
    concept = store.page_concept(name)
    if concept is None:
        raise NotFound(f"no concept named {name!r}")
    name = concept["name"]

    def summary() -> dict[str, Any]:
        ids = store.page_concept_records(name)
        return {"count": len(ids), "years": store.page_years(ids),
                "related": store.page_top_concepts(ids, limit=15, exclude=name), "areas": _area_counts(store, ids)}

    counts = per_version(store, f"concept:{name}", summary)
    return Page("concept.html", f"Concept: {name}", {
        "concept": concept,
        "count": counts["count"],
        "records": _cards(store, store.page_concept_records(name, paging.size, paging.offset)),
        "paging": paging.info(counts["count"]),
        "years": counts["years"],
        "related": counts["related"],
        "areas": counts["areas"],
    })


def _area_counts(store: PageStore, ids: list[str]) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for card in store.page_cards(ids, max_authors=0).values():
        if card["area"]:
            counts[card["area"]] = counts.get(card["area"], 0) + 1
    return [{"name": a, "count": n} for a, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


# --- topics and areas -------------------------------------------------------------------------


def topics_page(store: PageStore) -> Page:
    return Page("topics.html", "Topics", {"topics": store.page_topics()})


def topic_page(store: PageStore, topic_id: int, paging: Paging) -> Page:
    topic = store.page_topic(topic_id)
    if topic is None:
        raise NotFound(f"no topic with id {topic_id}")
    def summary() -> dict[str, Any]:
        ids = store.page_topic_records(topic_id)
        return {"count": len(ids), "years": store.page_years(ids), "concepts": store.page_top_concepts(ids, limit=15),
                "areas": _area_counts(store, ids)}

    counts = per_version(store, f"topic:{topic_id}", summary)
    return Page("topic.html", f"Topic: {topic['label']}", {
        "topic": topic,
        "count": counts["count"],
        "records": _cards(store, store.page_topic_records(topic_id, paging.size, paging.offset)),
        "paging": paging.info(counts["count"]),
        "years": counts["years"],
        "concepts": counts["concepts"],
        "areas": counts["areas"],
    })


def areas_page(store: PageStore) -> Page:
    return Page("areas.html", "Areas", {"areas": store_areas(store)})


def area_page(store: PageStore, name: str, paging: Paging) -> Page:
    areas = {a["name"].lower(): a for a in store_areas(store)}
    area = areas.get(name.lower())
    if area is None:
        raise NotFound(f"no area named {name!r}")
    name = area["name"]

    def summary() -> dict[str, Any]:
        ids = store.page_area_records(name)
        return {"count": len(ids), "years": store.page_years(ids), "concepts": store.page_top_concepts(ids, limit=20),
                "topics": store.page_area_topics(name)}

    counts = per_version(store, f"area:{name}", summary)
    return Page("area.html", f"Area: {name}", {
        "area": area,
        "records": _cards(store, store.page_area_records(name, paging.size, paging.offset)),
        "paging": paging.info(counts["count"]),
        "years": counts["years"],
        "concepts": counts["concepts"],
        "topics": counts["topics"],
    })


# --- authors -----------------------------------------------------------------------------------


def authors_page(store: PageStore, paging: Paging, prefix: str | None) -> Page:
    items, total = store.page_authors(paging.size, paging.offset, prefix.lower() if prefix else None)
    return Page("authors.html", "Authors", {"authors": items, "prefix": prefix or "", "paging": paging.info(total)})


def _person(store: PageStore, key: str, people: tuple[dict[int, Any], dict[str, list[int]]] | None
            ) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """The author, their record ids and co-authors: merged name variants when the authors step
    is available (`people`), else the exact normalised name."""
    if people is not None:
        from ..enrich.authors import find_person

        persons, record_people = people
        try:
            person = find_person(persons, key)
        except LandscapeError:
            person = None
        if person is not None:
            ids = sorted(person.records)
            dates = {c["id"]: c["date"] or "" for c in store.page_cards(ids, max_authors=0).values()}
            ids.sort(key=lambda r: (dates.get(r, ""), r), reverse=True)
            co = Counter(pid for r in ids for pid in record_people.get(r, []) if persons[pid] is not person)
            coauthors = [{"key": persons[pid].key, "name": persons[pid].name, "count": n}
                         for pid, n in sorted(co.items(), key=lambda kv: (-kv[1], persons[kv[0]].name))[:24]]
            return {"key": person.key, "name": person.name, "variants": person.variants}, ids, coauthors
    author = store.page_author(key)
    if author is None:
        raise NotFound(f"no author {key!r}")
    return {**author, "variants": []}, store.page_author_records(key), store.page_coauthors(key, limit=24)


def author_page(store: PageStore, key: str, paging: Paging,
                people: tuple[dict[int, Any], dict[str, list[int]]] | None = None) -> Page:
    author, ids, coauthors = _person(store, key, people)
    all_cards = store.page_cards(ids, max_authors=0)
    years = store.page_years(ids)
    return Page("author.html", author["name"], {
        "author": author,
        "count": len(ids),
        "records": _cards(store, _paged(ids, paging)),
        "paging": paging.info(len(ids)),
        "years": years,
        "first_year": min(years) if years else None,
        "latest_year": max(years) if years else None,
        "areas": _area_counts(store, ids),
        "concepts": store.page_top_concepts(ids, limit=12),
        "coauthors": coauthors,
        "coauthor_edges": [
            {"source": a, "target": b, "count": n}
            for a, b, n in store.page_coauthor_edges([c["key"] for c in coauthors])
        ],
        "truncated": sum(1 for c in all_cards.values() if c["authors_truncated"]),
        "citations": author_citations(store.cited_counts(ids), {i: c["title"] for i, c in all_cards.items()}),
    })



# --- map -----------------------------------------------------------------------------------------


def map_data(store: PageStore) -> dict[str, Any]:
    """Every placed record in columns (compact for 100,000 points), plus topic label positions."""
    points = store.page_map_points()
    areas = sorted({p[4] for p in points if p[4]})
    area_index = {a: i for i, a in enumerate(areas)}
    topics = store.page_topic_centres()
    topic_index = {t["id"]: i for i, t in enumerate(topics)}
    return {
        "count": len(points),
        "ids": [p[0] for p in points],
        "x": [round(p[1], 4) for p in points],
        "y": [round(p[2], 4) for p in points],
        "kind": [0 if p[3] == "paper" else 1 for p in points],
        "area": [area_index.get(p[4], -1) for p in points],
        "topic": [topic_index.get(p[5], -1) for p in points],
        "title": [p[6] for p in points],
        "areas": areas,
        "topics": [{"id": t["id"], "label": t["label"], "x": round(t["x"], 4), "y": round(t["y"], 4),
                    "size": t["size"]} for t in topics],
    }


def map_page(store: PageStore, focus: str | None = None) -> Page:
    """The map page; `focus` (a record id) is marked and centred when it is on the map. Nothing
    here reads every record (the area choices come with the point file), so the page is as quick
    at a million records as at a hundred."""
    return Page("map.html", "Map", {
        "has_map": store.page_has("map_coords"),
        "focus": store.page_position(focus) if focus else None,
        "has_topics": store.page_has("topics"),
    })


# --- trends --------------------------------------------------------------------------------------


def growth_lists(series: dict[str, dict[str, int]], last_year: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Emerging and fading concepts by year counts, used only while the trends step has not run."""
    recent_years = {str(last_year - i) for i in range(RECENT_YEARS)}
    prior_years = {str(last_year - RECENT_YEARS - i) for i in range(RECENT_YEARS)}
    rows = []
    for name, counts in series.items():
        recent = sum(n for y, n in counts.items() if y in recent_years)
        prior = sum(n for y, n in counts.items() if y in prior_years)
        rows.append({"name": name, "recent": recent, "prior": prior,
                     "growth": round(math.log2((recent + 0.5) / (prior + 0.5)), 3)})
    emerging = sorted((r for r in rows if r["recent"] >= MIN_SUPPORT and r["growth"] > 0),
                      key=lambda r: (-r["growth"], -r["recent"], r["name"]))
    fading = sorted((r for r in rows if r["prior"] >= MIN_SUPPORT and r["growth"] < 0),
                    key=lambda r: (r["growth"], -r["prior"], r["name"]))
    return emerging[:15], fading[:15]


def trends_data(store: PageStore, stored: dict[str, Any] | None = None, pool: int = 300) -> dict[str, Any]:
    """Trends as the trends step stored them (`stored`), or a simple count-based stand-in."""
    if stored:
        return _adapt_stored_trends(store, stored)
    stats = store_stats(store)
    years = [int(y) for y in stats["years"] if y and y.isdigit()]
    concepts, _ = store.page_concepts(pool)
    series = store.page_concept_year_counts([c["name"] for c in concepts])
    emerging, fading = growth_lists(series, max(years)) if years else ([], [])
    topics = store.page_topics()
    topic_years = store.page_topic_year_counts()
    return {
        "years": stats["years"],
        "window": {"recent_start": f"{max(years) - RECENT_YEARS + 1}-01-01", "end": f"{max(years)}-12-31"}
        if years else None,
        "emerging": emerging,
        "fading": fading,
        "emerging_topics": [],
        "fading_topics": [],
        "top_concepts": [{"name": c["name"], "count": c["count"], "counts": series.get(c["name"], {})}
                         for c in concepts[:8]],
        "topics": [{"id": t["id"], "label": t["label"], "size": t["size"], "counts": topic_years.get(t["id"], {})}
                   for t in topics[:8]],
    }


def _topic_ref(name: str) -> tuple[int | None, str]:
    head, _, label = name.partition(": ")
    return (int(head), label) if head.isdigit() and label else (None, name)


def _adapt_stored_trends(store: PageStore, t: dict[str, Any]) -> dict[str, Any]:
    concepts = sorted((t.get("concepts") or {}).items(), key=lambda kv: (-kv[1].get("total", 0), kv[0]))
    topics = sorted((t.get("topics") or {}).items(), key=lambda kv: (-kv[1].get("total", 0), kv[0]))

    def topic_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**i, "id": _topic_ref(i["name"])[0], "name": _topic_ref(i["name"])[1]} for i in items]

    return {
        "years": (t.get("papers") or {}).get("years") or store_stats(store)["years"],
        "window": t.get("window"),
        "emerging": t.get("emerging") or [],
        "fading": t.get("fading") or [],
        "emerging_topics": topic_rows(t.get("emerging_topics") or []),
        "fading_topics": topic_rows(t.get("fading_topics") or []),
        "top_concepts": [{"name": n, "count": v.get("total", 0), "counts": v.get("years", {})}
                         for n, v in concepts[:8]],
        "topics": [{"id": _topic_ref(n)[0], "label": _topic_ref(n)[1], "size": v.get("total", 0),
                    "counts": v.get("years", {})} for n, v in topics[:8]],
    }


def trends_page(store: PageStore, stored: dict[str, Any] | None = None) -> Page:
    return Page("trends.html", "Trends", trends_data(store, stored))
