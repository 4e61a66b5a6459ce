"""Export: JSONL and CSV read back into an identical store; BibTeX keeps hostile text inert."""

from __future__ import annotations

import csv
import json

import pytest

from landscape.ingest.bibtex import tex_escape, write_bibtex
from landscape.models import Record
from landscape.store import open_store

from .conftest import FIXTURES, LISTING, SEEDS, cli_json, run_cli

TABLES = ("records", "authors", "authorship", "keyphrases", "sources", "sections")
TIMESTAMPS = {"created_at", "updated_at"}
HOSTILE = [
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "=HYPERLINK(\"http://evil\")",
    "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", r"\href{javascript:alert(1)}{click}", r"\htmlData{x=1}{y}",
    "} @misc{evil, title={pwned}", "50% of $x$ & #1 with_under ~tilde ^caret \\backslash {brace",
]


@pytest.fixture(scope="module")
def full_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("full") / "landscape.db"
    run_cli("ingest", LISTING, SEEDS, FIXTURES / "sample.bib", FIXTURES / "arxiv.atom", db=db)
    return db


def comparable(db):
    """Every table as plain rows: timestamps dropped, author and source ids replaced by content."""
    with open_store(db) as store:
        conn = store.connection_for_tests
        out = {}
        for table in TABLES:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in TIMESTAMPS]
            cols = [c for c in cols if not (table in ("authors", "sources") and c == "id")]
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            out[table] = sorted(tuple(r) for r in rows)
        out["authorship"] = sorted(
            tuple(r) for r in conn.execute(
                "SELECT a.record_id, a.position, au.key FROM authorship a JOIN authors au ON au.id = a.author_id"
            )
        )
        return out


def test_jsonl_export_then_ingest_gives_an_identical_store(full_db, tmp_path):
    out = tmp_path / "all.jsonl"
    assert run_cli("export", "--format", "jsonl", out, db=full_db).output.strip() == f"475 records written to {out}"
    copy = tmp_path / "copy.db"
    assert run_cli("ingest", out, db=copy).output.splitlines()[-1] == "475 new, 0 changed, 0 unchanged"
    assert comparable(copy) == comparable(full_db)
    assert cli_json("stats", db=copy) == cli_json("stats", db=full_db)


def test_csv_export_then_ingest_gives_an_identical_store(full_db, tmp_path):
    out = tmp_path / "all.csv"
    run_cli("export", "--format", "csv", out, db=full_db)
    copy = tmp_path / "copy.db"
    run_cli("ingest", out, db=copy)
    assert comparable(copy) == comparable(full_db)


def hostile_db(tmp_path):
    jsonl = tmp_path / "hostile.jsonl"
    with jsonl.open("w") as f:
        for i, text in enumerate(HOSTILE):
            f.write(json.dumps({
                "title": f"{text} #{i}", "abstract": text, "authors": [text, "Ada Lovelace"],
                "keyphrases": [text], "date": "2024-01-02",
            }) + "\n")
    db = tmp_path / "hostile.db"
    run_cli("ingest", jsonl, db=db)
    return db


def test_csv_cells_never_start_a_formula_and_read_back_exactly(tmp_path):
    db = hostile_db(tmp_path)
    out = tmp_path / "hostile.csv"
    run_cli("export", "--format", "csv", out, db=db)
    with out.open(newline="") as f:
        for row in csv.DictReader(f):
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
    copy = tmp_path / "copy.db"
    run_cli("ingest", out, db=copy)
    assert comparable(copy)["records"] == comparable(db)["records"]


def test_bibtex_export_is_inert_and_reads_back_the_same_text(tmp_path):
    db = hostile_db(tmp_path)
    out = tmp_path / "hostile.bib"
    assert "10 records written" in run_cli("export", "--format", "bibtex", out, db=db).output
    text = out.read_text()
    assert text.count("\n@") + text.startswith("@") == 10  # no entry injected by a title
    assert "\\href" not in text and "\\htmlData" not in text
    copy = tmp_path / "copy.db"
    assert run_cli("ingest", out, db=copy).output.splitlines()[-1] == "10 new, 0 changed, 0 unchanged"
    before = {r["title"]: r for r in cli_json("list", db=db)}
    after = {r["title"]: r for r in cli_json("list", db=copy)}
    assert set(after) == set(before)
    for title, rec in before.items():
        assert after[title]["abstract"] == rec["abstract"]
        assert after[title]["authors"] == rec["authors"]
        assert after[title]["date"] == "2024-01-02"


def test_tex_escape_leaves_no_live_command():
    escaped = tex_escape(r"\href{javascript:x} $a$ {b}")
    assert escaped == r"\textbackslash{}href\{javascript:x\} \$a\$ \{b\}"


def test_bibtex_of_listing_papers_keeps_authors_and_truncation(listing_db, tmp_path):
    with open_store(listing_db) as store:
        rec = next(r for r in store.iter_records() if r.authors_truncated)
    out = tmp_path / "one.bib"
    with out.open("w") as f:
        assert write_bibtex([rec, Record(id="arxiv:2401.01234", title="T", abstract="A")], f) == 2
    text = out.read_text()
    assert " and others}" in text and "eprint = {2401.01234}" in text
    copy = tmp_path / "one.db"
    run_cli("ingest", out, db=copy)
    back = {r["title"]: r for r in cli_json("list", db=copy)}
    assert back[rec.title]["authors"] == rec.authors and back[rec.title]["authors_truncated"] is True
    assert back["T"]["id"] == "arxiv:2401.01234"
