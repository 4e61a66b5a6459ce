"""Hybrid search: keywords and meaning fused, filters, highlighted snippets, any text safe."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landscape.search import search
from landscape.store import open_store

from .conftest import cli_json, run_cli
from .test_embed import write_listing


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("search")
    db = tmp / "landscape.db"
    run_cli("ingest", write_listing(tmp / "l.txt", 0, 60), db=db)
    run_cli("build", "--only", "embed", db=db)
    return db


def test_keyword_hits_come_first_with_highlighted_snippets(built):
    hits = cli_json("search", "Clebsch-Gordan tensor products", "--limit", "5", db=built)
    assert hits[0]["title"].startswith("Asymptotically Fast Clebsch-Gordan Tensor Products")
    assert set(hits[0]) == {"id", "title", "score", "snippet", "area", "date", "kind", "keyword_scope"}
    assert "[" in hits[0]["snippet"] and "]" in hits[0]["snippet"]
    out = run_cli("search", "Clebsch-Gordan", "--limit", "2", db=built).output
    assert "Clebsch-Gordan" in out


def test_meaning_finds_papers_that_use_other_words(built):
    with open_store(built, readonly=True) as store:
        keyword_only = {h["id"] for h in store.fts_search("galaxies shaped by unseen mass", limit=100)}
        hits = search(store, "galaxies shaped by unseen mass", limit=10)
    assert hits and any(h["id"] not in keyword_only for h in hits)
    assert all("\x02" not in h["title"] for h in hits)


def test_filters_apply_to_both_sides(built):
    for hit in cli_json("search", "neural networks", "--area", "Astrophysics", db=built):
        assert hit["area"] == "Astrophysics"
    dated = cli_json("search", "neural networks", "--since", "2025-06-01", "--until", "2025-12-31", db=built)
    assert dated and all("2025-06-01" <= h["date"] <= "2025-12-31" for h in dated)
    assert cli_json("search", "neural networks", "--kind", "talk", db=built) == []
    some = cli_json("list", "--limit", "1", db=built)[0]
    author = some["authors"][0]
    by_author = cli_json("search", some["title"], "--author", author, db=built)
    assert by_author[0]["id"] == some["id"]


def test_nothing_found_says_so(built):
    assert run_cli("search", "zzqxv wqpfk", db=built).output.strip() == "no results"
    assert run_cli("search", "   ", db=built).output.strip() == "no results"
    assert cli_json("search", "zzqxv", db=built) == []


@pytest.mark.parametrize("query", [
    'AND OR NOT NEAR("x" "y")', '"unbalanced quote', "title:foo* ^bar", "'; DROP TABLE records; --",
    "\x00\x01\x02\x03", "a" * 10_000, "neural " * 2_000, "😀 ∂μ $\\frac{1}{2}$", "-", "*", "()", "NEAR/3",
])
def test_hostile_queries_never_raise(built, query):
    run_cli("search", query, db=built)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=300), area=st.sampled_from([None, "Astrophysics", "x' OR 1=1 --"]))
def test_any_text_is_safe(built, query, area):
    with open_store(built, readonly=True) as store:
        hits = search(store, query, limit=5, area=area)
    assert len(hits) <= 5
    assert all(area is None or h["area"] == area for h in hits)
