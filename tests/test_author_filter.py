"""One author filter: search, browse (pages and API) and `list` find the same records for a name."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from landscape.web.app import create_app

from .conftest import cli_json


@pytest.fixture(scope="module")
def client(listing_db):
    with TestClient(create_app(listing_db)) as c:
        yield c


def browsed(client, author: str) -> set[str]:
    r = client.get("/api/v1/posts", params={"author": author, "limit": 100})
    assert r.status_code == 200, r.text[:300]
    return {card["id"] for card in r.json()["records"]}


def searched(listing_db, author: str, titles: list[str]) -> set[str]:
    found: set[str] = set()
    for title in titles:
        found |= {h["id"] for h in cli_json("search", title, "--author", author, "--limit", "100", db=listing_db)}
    return found


@pytest.mark.parametrize("typed", ["Thaler", "thaler", "Jesse Thaler", "J. Thaler"])
def test_search_browse_and_list_agree_on_a_surname_or_a_name(listing_db, client, typed):
    everything = cli_json("list", "--limit", "1000", db=listing_db)
    truth = {r["id"] for r in everything if any(a.split()[-1] == "Thaler" for a in r["authors"])}
    assert truth
    listed = {r["id"] for r in cli_json("list", "--author", typed, "--limit", "1000", db=listing_db)}
    if typed == "J. Thaler":  # initials are words of their own: "j thaler" is not "jesse thaler"
        assert listed == browsed(client, typed) == set()
        return
    assert listed == truth
    assert browsed(client, typed) == truth
    titles = [r["title"] for r in everything if r["id"] in truth]
    assert searched(listing_db, typed, titles) == truth


def test_part_of_a_word_is_not_a_name(listing_db, client):
    """"haler" is inside "thaler" but names no one: every front end says so alike."""
    assert cli_json("list", "--author", "haler", db=listing_db) == []
    assert browsed(client, "haler") == set()
    assert cli_json("search", "jets", "--author", "haler", db=listing_db) == []
