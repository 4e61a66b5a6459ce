"""Big files are parsed in a child process: the store, the report and every error must be
what parsing in-process gives."""

from __future__ import annotations

import json
import pickle

import pytest

import landscape.ingest as ingest
from landscape.ingest import child

from .conftest import FIXTURES, LISTING, SEEDS, cli_json, run_cli
from .test_ingest_bad import error_line, listing_with_bad_entry


@pytest.fixture
def in_child(monkeypatch):
    """Every file, however small, parsed by a child process."""
    monkeypatch.setattr(ingest, "CHILD_PARSE_BYTES", 0)


def exported(db, path):
    run_cli("export", "--format", "jsonl", path, db=db)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for rec in records:
        for source in rec["sources"]:
            source.pop("ingested_at")
    return records


def test_every_format_parsed_in_a_child_gives_the_same_store(tmp_path, monkeypatch):
    files = [LISTING, SEEDS, FIXTURES / "records.jsonl", FIXTURES / "sample.bib", FIXTURES / "arxiv.atom"]
    here = run_cli("ingest", *files, db=tmp_path / "here.db").output
    monkeypatch.setattr(ingest, "CHILD_PARSE_BYTES", 0)
    there = run_cli("ingest", *files, db=tmp_path / "child.db").output
    assert there == here
    assert exported(tmp_path / "child.db", tmp_path / "c.jsonl") == exported(tmp_path / "here.db", tmp_path / "h.jsonl")
    assert cli_json("stats", db=tmp_path / "child.db")["papers"] == cli_json("stats", db=tmp_path / "here.db")["papers"]


def test_a_bad_record_from_the_child_stops_the_file_with_its_line(in_child, db, tmp_path):
    bad = listing_with_bad_entry(tmp_path / "listing.txt")
    line = error_line(run_cli("ingest", bad, db=db, expect=2))
    assert line == f"error: {bad}:11: expected a date like 'Mar 2, 2026', found 'Mar 42, 2026'"
    out = run_cli("ingest", bad, "--skip-bad", db=db).output
    assert f"skipped {bad}:11: expected a date" in out
    assert out.splitlines()[-1] == "2 new, 0 changed, 0 unchanged, 1 bad"


def test_a_file_the_child_finds_no_entry_in_fails_with_one_line(in_child, db, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Just some notes\n\nwith no listing entry at all\n")
    line = error_line(run_cli("ingest", path, "--format", "listing", db=db, expect=2))
    assert line == f"error: {path}:1: expected a listing entry header '<Area> <Mon D, YYYY>', found none in the file"


def test_a_parser_crash_in_the_child_is_sent_back_with_its_traceback(monkeypatch, capsysbinary, tmp_path):
    def broken(path, fmt):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(ingest, "parse_file", broken)
    child.main(str(tmp_path / "x.txt"), "listing")
    [(tag, text)] = pickle.loads(capsysbinary.readouterr().out)
    assert tag == child.CRASHED and "RuntimeError: parser bug" in text
