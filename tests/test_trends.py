"""Trends: counts per year and quarter, emerging and fading lists over the last two years."""

from __future__ import annotations

import re

from .conftest import cli_json, run_cli


def test_trends_json(built_db):
    data = cli_json("trends", db=built_db)
    assert data["window"]["end"] == "2026-03-02"
    assert data["window"]["recent_start"] == "2024-03-02"
    assert sum(data["papers"]["years"].values()) == 460
    assert data["papers"]["years"]["2024"] == 119
    assert all(re.fullmatch(r"\d{4}-Q[1-4]", q) for q in data["papers"]["quarters"])
    emerging, fading = data["emerging"], data["fading"]
    assert emerging and fading
    support = data["window"]["min_support"]
    assert all(e["recent"] >= support and e["growth"] > 0 for e in emerging)
    assert all(f["prior"] >= support and f["growth"] < 0 for f in fading)
    assert [e["growth"] for e in emerging] == sorted((e["growth"] for e in emerging), reverse=True)
    assert not {e["name"] for e in emerging} & {f["name"] for f in fading}
    some = emerging[0]["name"]
    assert data["concepts"][some]["recent"] == emerging[0]["recent"]
    assert data["topics"] and (data["emerging_topics"] or data["fading_topics"])


def test_trends_text(built_db):
    out = run_cli("trends", db=built_db).output
    assert "emerging concepts" in out and "fading topics" in out


def test_the_build_counts_the_memberships_its_connections_read_as_the_store_counts_them(built_db):
    """The build's trends reuse the concept memberships the connections step read; trends
    computed now read them from the store: the same answer."""
    from landscape.enrich.trends import ARTIFACT, compute_trends
    from landscape.store import open_store

    with open_store(built_db, readonly=True) as store:
        stored = store.ls_get_json_artifact(ARTIFACT)
        assert stored["concepts"] and stored == compute_trends(store)
