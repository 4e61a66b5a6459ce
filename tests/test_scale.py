"""A full build of 5,000 generated records through every step, as a user runs it.

Landscape was only ever built on about 600 records, and a store over 4,096 records crashed in
the map step; a size-dependent failure (a block size, a quadratic step out of memory) now fails
`make test`. The corpus comes from ../shared/corpus through bench/corpus_gen.py (sentences
recombined within an area, unique titles, authors and dates spread): a listing, and its last
SNAPSHOT records in the layout of arXiv's metadata snapshot, areas from their categories by the
config's [area_categories], as bench/scale.py ingests them. Built with `--embedder tfidf` so no
model download or torch is needed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from landscape.enrich.pipeline import STEPS
from landscape.store import Store, open_store

from .conftest import LISTING, cli_json, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from corpus_gen import AREA_CATEGORIES, area_categories_toml, read_source, write_corpus  # noqa: E402

N = 5000
SNAPSHOT = 500
ADDED = 100


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    tmp = tmp_path_factory.mktemp("scale")
    db = tmp / "landscape.db"
    source = read_source(LISTING)
    config = tmp / "landscape.toml"
    config.write_text(area_categories_toml())
    run_cli("ingest", write_corpus(tmp / "corpus.txt", N - SNAPSHOT, source=source),
            write_corpus(tmp / "corpus.snapshot.json", N, source=source, start=N - SNAPSHOT),
            "--config", str(config), db=db)
    steps = {s["step"]: s for s in cli_json("build", "--embedder", "tfidf", db=db)}
    return db, steps


def sqlite_steps(store: Store) -> list[int]:
    """A counter of SQLite's virtual-machine steps (in hundreds) on the store's connection:
    steps[0] grows as queries run; set it to 0 to start again."""
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    store.connection_for_tests.set_progress_handler(step, 100)
    return steps


def test_every_step_runs(big):
    _, steps = big
    assert list(steps) == STEPS
    assert steps["embed"]["embedded"] == N
    assert steps["neighbours"]["queried"] == N


def test_stats_count_every_record(big):
    db, _ = big
    stats = cli_json("stats", db=db)
    assert stats["papers"] == N and sum(stats["areas"].values()) == N
    assert len(stats["years"]) >= 15


def test_snapshot_records_have_areas_from_their_categories(big):
    db, _ = big
    with open_store(db, readonly=True) as store:
        counts = dict(store.connection_for_tests.execute(
            "SELECT coalesce(area_source, '-'), count(*) FROM records WHERE id LIKE 'arxiv:%' GROUP BY 1").fetchall())
    assert counts == {"category": SNAPSHOT}
    shown = cli_json("show", "arxiv:1501.04551", db=db)
    assert shown["area"] in AREA_CATEGORIES and "\n" not in shown["title"] and "\\" not in "".join(shown["authors"])


def test_every_record_has_explained_connections(big):
    db, _ = big
    with open_store(db) as store:
        counts = dict(store.connection_for_tests.execute("SELECT record_id, count(*) FROM connections GROUP BY record_id"))
        ids = [r[0] for r in store.connection_for_tests.execute("SELECT id FROM records ORDER BY id")]
    assert len(counts) == N and set(counts.values()) == {10}
    for rid in ids[:: N // 5]:
        related = cli_json("related", rid, db=db)
        assert len(related) == 10 and rid not in {r["id"] for r in related}
        assert all(r["reasons"][0].startswith("meaning similarity") for r in related)


def test_every_record_is_on_the_map(big):
    db, _ = big
    with open_store(db) as store:
        coords = store.ls_map_coords()
    assert len(coords) == N
    xs, ys = [x for x, _ in coords.values()], [y for _, y in coords.values()]
    assert all(math.isfinite(v) for v in xs + ys)
    assert len({(round(x, 3), round(y, 3)) for x, y in coords.values()}) > N * 0.9


def test_topics_cover_every_record(big):
    db, _ = big
    topics = cli_json("topics", db=db)
    assert len(topics) >= 5
    assert sum(t["size"] for t in topics) == N
    labels = [t["label"] for t in topics]
    assert len(set(labels)) == len(labels) and all(labels)


def test_bridges_and_trends_answer(big):
    db, _ = big
    bridges = cli_json("bridges", "--limit", "10", db=db)
    assert bridges and all(len(b["joins"]) == 2 and b["joins"][0] != b["joins"][1] for b in bridges)
    assert "emerging" in run_cli("trends", db=db).output.lower()


@pytest.fixture(scope="module")
def grown(big, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """The built store plus ADDED records, built again (incrementally)."""
    db, _ = big
    tmp = tmp_path_factory.mktemp("grown")
    path = tmp / "grown.db"
    with open_store(db) as src, open_store(path) as dst:
        src.connection_for_tests.backup(dst.connection_for_tests)
    run_cli("ingest", write_corpus(tmp / "more.txt", N + ADDED, source=read_source(LISTING), start=N), db=path)
    return path, {s["step"]: s for s in cli_json("build", "--embedder", "tfidf", db=path)}


def test_adding_records_recomputes_only_what_they_touch(grown):
    path, steps = grown
    assert steps["embed"]["embedded"] == ADDED
    assert steps["neighbours"]["queried"] == ADDED
    # a k-nearest-neighbour list has k entries, so a newcomer enters about k = 30 lists on
    # average (measured: 100 newcomers entered 2,174 of 5,000); connections keep 10 each
    assert 0 < steps["neighbours"]["entered"] < 1.5 * 30 * ADDED
    assert steps["connections"]["computed"] == ADDED
    assert 0 < steps["connections"]["updated"] < 3 * 10 * ADDED
    assert steps["connections"]["read"] == ADDED  # only the new texts are tokenised
    # labels moved by 2%, under the 10% refit threshold: the stored models read the new records
    assert steps["concepts"]["records"] == ADDED and steps["concepts"]["unchanged"] == N
    assert steps["areas"]["retrained"] == 0
    assert steps["map"]["placed"] == ADDED
    with open_store(path) as store:
        assert store.connection_for_tests.execute("SELECT count(DISTINCT record_id) FROM connections").fetchone()[0] == N + ADDED


def test_added_records_connect_as_a_full_rebuild_connects_them(big, grown, tmp_path):
    """The incremental connections of the new records (stored terms, frozen idf and statistics)
    against `build --full`, which re-reads every text: nearly the same top 10."""
    path, _ = grown
    full = tmp_path / "full.db"
    with open_store(path) as src, open_store(full) as dst:
        src.connection_for_tests.backup(dst.connection_for_tests)
    steps = {s["step"]: s for s in cli_json("build", "--full", "--only", "connections", "--embedder", "tfidf", db=full)}
    assert steps["connections"]["read"] == N + ADDED
    with open_store(big[0]) as before, open_store(path) as a, open_store(full) as b:
        old = {r[0] for r in before.connection_for_tests.execute("SELECT id FROM records")}
        new = [r[0] for r in a.connection_for_tests.execute("SELECT id FROM records") if r[0] not in old]
        assert len(new) == ADDED
        overlap = [len({c["id"] for c in a.get_connections(rid)} & {c["id"] for c in b.get_connections(rid)}) / 10
                   for rid in new]
    assert sum(overlap) / len(overlap) >= 0.9, sorted(overlap)[:10]


def test_graph_candidates_find_what_scoring_every_record_finds(big):
    """Parity with the exhaustive ranking the graph replaced: on a sample of queries, the stored
    connections (scored among graph candidates) hold nearly all of the top 10 that scoring every
    record gives."""
    import numpy as np

    from landscape.config import Config
    from landscape.enrich.connections import corpus_for, load_state
    from landscape.enrich.neighbours import top_k_rows

    db, _ = big
    with open_store(db) as store:
        corpus = corpus_for(store, Config(embedder="tfidf"))
        stats = load_state(store)["stats"]
        rows = list(range(0, len(corpus), len(corpus) // 200))
        score, _ = corpus.scores(corpus.records_as_queries(rows), stats, exclude=rows)
        best, _ = top_k_rows(score, 10)
        found = [len({corpus.ids[c] for c in best[r]} & {c["id"] for c in store.get_connections(corpus.ids[q])}) / 10
                 for r, q in enumerate(rows)]
    assert np.mean(found) >= 0.95


def walk(client, url: str, direction: str = "next") -> list[list[str]]:
    """Every page of a browse list, following its cursor links from `url`: the ids of each page."""
    pages = []
    page = client.get(url).json()
    while True:
        pages.append([r["id"] for r in page["records"]])
        cursor = page["paging"][direction]
        if not cursor:
            return pages
        page = client.get(f"{url}&{'after' if direction == 'next' else 'before'}={cursor}").json()


def test_browse_cursors_visit_every_record_exactly_once(big):
    from starlette.testclient import TestClient

    from landscape.web.app import create_app

    db, _ = big
    with TestClient(create_app(db)) as client:
        areas = cli_json("stats", db=db)["areas"]
        for sort, area in (("newest", None), ("title", None), ("oldest", "Astrophysics")):
            url = f"/api/v1/posts?limit=100&sort={sort}" + (f"&area={area}" if area else "")
            pages = walk(client, url)
            seen = [rid for ids in pages for rid in ids]
            assert len(seen) == len(set(seen)) == (areas[area] if area else N)
            assert client.get(url).json()["paging"]["total"] == len(seen)
            head = client.get(url).json()["paging"]
            assert head["prev"] is None and head["next"]
            # from the last page back to the first by `before`, the same pages in reverse
            end = pages[-1]
            cursor = client.get(f"{url}&page={len(pages)}").json()
            assert [r["id"] for r in cursor["records"]] == end  # an old numbered link still works
            back = [end]
            while cursor["paging"]["prev"]:
                cursor = client.get(f"{url}&before={cursor['paging']['prev']}").json()
                back.insert(0, [r["id"] for r in cursor["records"]])
            assert back == pages
        html = client.get("/posts?sort=title").text
        assert 'rel="next" href="/posts?sort=title&amp;after=' in html
        assert client.get("/api/v1/posts?after=not-a-cursor").status_code == 400


def test_a_deep_browse_page_costs_what_the_first_does(big):
    """Work is counted in SQLite virtual-machine steps, in hundreds (not time): with OFFSET, page
    40 read the 780 rows before it, and every visit counted and faceted the whole store."""
    from landscape.web.context import posts_page
    from landscape.web.params import browse_paging

    db, _ = big
    with open_store(db, readonly=True) as store:
        steps = sqlite_steps(store)

        def cost(params: dict[str, str]) -> tuple[int, dict]:
            steps[0] = 0
            with store.page_snapshot():
                page = posts_page(store, {}, "newest", browse_paging(params, "newest"))
            return steps[0], page.data

        cost({})  # the total and the facet counts: once per store version
        first, _ = cost({})
        _, forty = cost({"page": "40"})
        deep, data = cost({"after": forty["paging"]["next"]})
        assert len(data["records"]) == 20 and data["paging"]["total"] == N
        # fewer steps than the store has records (in hundreds of steps), and a deep page as cheap
        assert first * 100 < N and deep < 2 * first + 10, (first, deep)


def test_facet_counts_are_bounded_and_say_how_many_more(big):
    from starlette.testclient import TestClient

    from landscape.web.app import create_app

    db, _ = big
    with TestClient(create_app(db)) as client:
        facets = client.get("/api/v1/posts").json()["facets"]
        concepts = client.get("/api/v1/concepts").json()["paging"]["total"]
        for name in ("area", "concept", "author"):
            assert 0 < len(facets[name]) <= 12
        assert facets["more"]["concept"] > 0 and len(facets["concept"]) + facets["more"]["concept"] == concepts
        assert facets["more"]["author"] > 0
        assert sum(f["count"] for f in facets["year"]) == N
        assert f"and {facets['more']['author']} more" in client.get("/posts").text


def test_keyword_ranking_of_very_common_words_is_bounded_and_says_so(big, monkeypatch):
    """BM25 ranks every match, so a query of common words cost in proportion to the store: past
    FTS_RANK_BUDGET matches, records holding every word come first, each part among its newest
    matches, and the search page says so."""
    from starlette.testclient import TestClient

    from landscape.store import fulltext
    from landscape.web import context
    from landscape.web.app import create_app

    db, _ = big
    with open_store(db, readonly=True) as store:
        steps = sqlite_steps(store)
        whole = store.fts_search("model data", limit=50, snippets=False)
        unbounded, steps[0] = steps[0], 0
        assert {h["scope"] for h in whole} == {"all"}
        monkeypatch.setattr(fulltext, "FTS_RANK_BUDGET", 300)
        bounded = store.fts_search("model data", limit=50, snippets=False)
        assert {h["scope"] for h in bounded} == {"newest"} and len(bounded) == 50
        assert steps[0] * 2 < unbounded, (steps[0], unbounded)
        both = {r[0] for r in store.connection_for_tests.execute(
            "SELECT f.id FROM records_fts f WHERE records_fts MATCH '\"model\" AND \"data\"'")}
        assert len(both) > 50 and all(h["id"] in both for h in bounded)  # records holding both words first
        assert store.fts_search("lattice", limit=5, snippets=False)[0]["scope"] in ("all", "newest")
    monkeypatch.setattr(context, "FTS_RANK_BUDGET", 300)
    with TestClient(create_app(db)) as client:
        data = client.get("/api/v1/search?q=model+data").json()
        assert "newest 300" in data["note"] and data["results"]
        assert client.get("/api/v1/search?q=xyzzy+plugh").json()["note"] is None
