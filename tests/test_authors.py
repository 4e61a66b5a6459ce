"""Authors: profiles, conservative merging of name variants, honesty about "et al."."""

from __future__ import annotations

from landscape.enrich.authors import given_match, merge_variants, split_name

from .conftest import cli_json, run_cli


def test_profile_merges_variants_and_says_lists_are_truncated(listing_db):
    p = cli_json("author", "Villar", db=listing_db)
    assert p["name"] == "Victoria Ashley Villar"
    assert set(p["variants"]) == {"Ashley Villar", "V. A. Villar", "V. Ashley Villar"}
    assert p["papers_count"] == 12 and p["first_year"] == 2022 and p["latest_year"] == 2026
    assert p["areas"]["Astrophysics"] == 11
    assert p["coauthors"][0]["name"] == "Alexander T. Gagliano"
    assert p["truncated_papers"] > 0 and not p["coauthors_complete"]
    assert "lower bounds" in p["coauthors_note"]
    assert p["top_concepts"] and len(p["papers"]) == 12


def test_initials_and_accents_find_the_person(listing_db):
    assert cli_json("author", "J. Thaler", db=listing_db)["name"] == "Jesse Thaler"
    assert cli_json("author", "jesse thaler", db=listing_db)["papers_count"] == 17
    p = cli_json("author", "Jacobson-Galan", db=listing_db)
    assert p["name"] == "Wynn Jacobson-Galán" and "W. V. Jacobson-Galán" in p["variants"]


def test_text_profile_and_errors(listing_db):
    out = run_cli("author", "Gagliano", db=listing_db).output
    assert "Alexander T. Gagliano" in out and "co-authors:" in out
    assert "no author matching" in run_cli("author", "Nobody Atall", db=listing_db, expect=2).output
    assert "ambiguous" in run_cli("author", "Chuang", db=listing_db, expect=2).output


def test_different_people_with_one_surname_stay_apart():
    assert given_match(*[split_name(n)[0] for n in ("Kyle Metzger", "Brian D. Metzger")]) is None
    assert given_match(*[split_name(n)[0] for n in ("Isaac Chuang", "Isaac L. Chuang")]) == "strong"
    names = {1: "Alice Smith", 2: "Adam Smith", 3: "A. Smith", 4: "CMS Collaboration", 5: "ATLAS Collaboration"}
    person = merge_variants(names, {})
    assert len({person[1], person[2], person[3]}) == 3
    assert person[4] != person[5]


def test_nicknames_merge_only_with_a_shared_coauthor():
    names = {1: "Alexander Gagliano", 2: "Alex Gagliano", 3: "Edo Berger"}
    assert merge_variants(names, {})[2] == 2
    together = merge_variants(names, {1: {3}, 2: {3}, 3: {1, 2}})
    assert together[1] == together[2]
