"""Bridges: papers joining two topics or two areas, each with the two regions it joins."""

from __future__ import annotations

from .conftest import cli_json, run_cli


def test_bridges_join_two_regions(built_db):
    found = cli_json("bridges", "--limit", "40", db=built_db)
    assert len(found) == 40
    assert {b["level"] for b in found} == {"topic", "area"}
    for b in found:
        assert len(b["joins"]) == 2 and b["joins"][0] != b["joins"][1]
        assert 0 < b["score"] <= 1 and b["reasons"] and b["title"]
    assert [b["score"] for b in found] == sorted((b["score"] for b in found), reverse=True)
    areas = {p["id"]: p["area"] for p in cli_json("list", "--kind", "paper", db=built_db)}
    assert all(areas[b["id"]] == b["joins"][0] for b in found if b["level"] == "area")


def test_bridges_by_topic(built_db):
    found = cli_json("bridges", "--by", "topic", db=built_db)
    topics = {t["label"] for t in cli_json("topics", db=built_db)}
    assert found and all(b["level"] == "topic" and set(b["joins"]) <= topics for b in found)
    assert "joins topics:" in run_cli("bridges", "--by", "topic", db=built_db).output
