"""arXiv's bulk metadata file: sniffed, read line by line, bad lines as in every format, areas
from categories that never count as human labels."""

from __future__ import annotations

import json

import pytest

import landscape.ingest as ingest
from landscape.store import open_store

from .conftest import FIXTURES, cli_json, run_cli
from .test_ingest_bad import error_line
from .test_ingest_child import exported

SNAPSHOT = FIXTURES / "arxiv-snapshot.json"
EDGE = FIXTURES / "arxiv-snapshot-edge.json"
AREAS = '[area_categories]\n"hep-*" = "Theory"\n"astro-ph*" = "Astrophysics"\n"cs.*" = "Machine Learning"\n'


def show(db, rid):
    return cli_json("show", rid, db=db)


def test_snapshot_is_sniffed_and_each_line_becomes_a_record(db):
    out = run_cli("ingest", SNAPSHOT, db=db).output
    assert f"{SNAPSHOT} (arxiv-snapshot): 4 new" in out
    first = show(db, "arxiv:0704.0001")
    assert first["title"] == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert first["authors"] == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert first["date"] == "2007-04-02"  # the first version's, not update_date
    assert first["abstract"].startswith("A fully differential calculation in perturbative quantum chromodynamics is presented")
    assert "\n" not in first["abstract"] and "  " not in first["abstract"]
    assert first["extra"]["categories"] == ["hep-ph"]
    assert first["extra"]["doi"] == "10.1103/physrevd.76.013009"
    assert first["extra"]["venue"] == "Phys.Rev.D76:013009,2007"
    sparse = show(db, "arxiv:0704.0002")
    assert sparse["extra"]["categories"] == ["math.CO", "cs.CG"] and sparse["extra"]["category"] == "math.CO"
    assert "the $(k,\\ell)$-pebble game with colors" in sparse["abstract"]  # math stays math
    old = show(db, "arxiv:hep-th/9608091")
    assert old["authors"] == ["D. Fioravanti", "A. Mariottini", "E. Quattrini", "F. Ravanini"]  # no affiliations
    assert old["date"] == "1996-08-14"
    assert run_cli("ingest", SNAPSHOT, db=db).output.splitlines()[-1] == "0 new, 0 changed, 4 unchanged"


def test_snapshot_edge_cases_accents_old_ids_missing_versions_and_bad_lines(db):
    line = error_line(run_cli("ingest", EDGE, db=db, expect=2))
    assert line == (
        f"error: {EDGE}:3: expected authors_parsed as a list of [last, first, suffix] lists, found 'Writer, B.'"
    )
    with open_store(db) as store:
        assert store.count_records() == 0
    out = run_cli("ingest", EDGE, "--skip-bad", db=db).output
    assert f"{EDGE}:4: expected a JSON object, found unterminated string" in out
    assert out.splitlines()[-1] == "3 new, 0 changed, 0 unchanged, 2 bad"
    toy = show(db, "arxiv:hep-th/9603067")
    assert toy["authors"] == ["C. Balázs", "Jörg Müller Jr", "P. Erdős"]
    assert toy["title"] == "Rényi entropies of toy black holes in $AdS_3$ – a “minimal” model"
    assert toy["abstract"].startswith(
        "We compute the Rényi entropy $S_\\alpha = \\frac{1}{1-\\alpha}\\log {\\rm Tr}\\,\\rho^\\alpha$ of a toy model;"
    )
    assert "about 50% of the entropy" in toy["abstract"] and "Schrödinger's" in toy["abstract"]
    assert toy["date"] == "1996-03-12"
    assert show(db, "arxiv:1501.09999")["date"] == "2015-01"  # no versions: the id's year and month
    assert show(db, "arxiv:2402.01236")["date"] == "2024-02-03"  # 23:30 at -0800 is the 3rd in UTC


def test_a_big_snapshot_parsed_in_the_child_process_gives_the_same_records_and_errors(tmp_path, monkeypatch):
    here = run_cli("ingest", SNAPSHOT, EDGE, "--skip-bad", db=tmp_path / "here.db").output
    monkeypatch.setattr(ingest, "CHILD_PARSE_BYTES", 0)
    there = run_cli("ingest", SNAPSHOT, EDGE, "--skip-bad", db=tmp_path / "child.db").output
    assert there == here and "7 new, 0 changed, 0 unchanged, 2 bad" in there
    assert exported(tmp_path / "child.db", tmp_path / "c.jsonl") == exported(tmp_path / "here.db", tmp_path / "h.jsonl")


@pytest.fixture
def category_db(tmp_path):
    config = tmp_path / "areas.toml"
    config.write_text('embedder = "tfidf"\n' + AREAS)
    db = tmp_path / "landscape.db"
    run_cli("ingest", SNAPSHOT, EDGE, "--skip-bad", "--config", config, db=db)
    return db, config


def test_area_comes_from_the_primary_category_and_is_marked_category(category_db):
    db, _ = category_db
    toy = show(db, "arxiv:hep-th/9603067")
    assert (toy["area"], toy["area_source"]) == ("Theory", "category")
    assert show(db, "arxiv:1501.09999")["area"] == "Astrophysics"
    assert show(db, "arxiv:2101.11408")["area"] == "Machine Learning"
    assert show(db, "arxiv:0704.0002")["area"] is None  # math.CO matches no pattern (cs.CG is not primary)


def test_a_given_area_read_later_replaces_a_category_area(category_db, tmp_path):
    db, _ = category_db
    given = tmp_path / "given.jsonl"
    given.write_text(json.dumps({"id": "arxiv:hep-th/9603067", "title": "x", "area": "Cosmology"}) + "\n")
    run_cli("ingest", given, db=db)
    toy = show(db, "arxiv:hep-th/9603067")
    assert (toy["area"], toy["area_source"]) == ("Cosmology", "given")


def test_category_areas_are_never_labels_for_eval_or_the_areas_step(category_db):
    db, config = category_db
    line = error_line(run_cli("eval", "--config", config, db=db, expect=2))
    assert line == "error: eval needs labelled records in at least two areas (ingest a listing with areas)"
    more = config.parent / "more.json"
    rows = [json.loads(x) for x in EDGE.read_text().splitlines()[:2]]
    with more.open("w") as f:
        for i, row in enumerate(rows * 3):
            f.write(json.dumps(row | {"id": f"{row['id'][:-1]}{i}", "title": f"{row['title']} {i}"}) + "\n")
    run_cli("ingest", more, "--config", config, db=db)
    run_cli("build", "--config", config, "--only", "embed", "--only", "areas", db=db)
    toy = show(db, "arxiv:hep-th/9603067")
    assert (toy["area"], toy["area_source"]) == ("Theory", "category")


def test_bad_area_categories_config_is_one_line(db, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('area_categories = ["astro-ph*"]\n')
    line = error_line(run_cli("ingest", SNAPSHOT, "--config", config, db=db, expect=2))
    assert line == 'error: config: expected [area_categories] as "pattern" = "area name" lines'
