"""Bad input: one clear line and exit status 2, nothing half-written; --skip-bad lists each bad record."""

from __future__ import annotations

from landscape.ingest import reader
from landscape.store import open_store

from .conftest import FIXTURES, cli_json, run_cli

ENTRY = "Astrophysics Mar 2, 2026\n\nA Good Paper {n}\n\nAda Lovelace\n\nAn abstract.\n\nsome phrases here\n\n"


def listing_with_bad_entry(path):
    bad_header = "Astrophysics Mar 42, 2026\n\nBroken Date\n\nA. Author\n\nAbstract.\n\n"
    path.write_text(ENTRY.format(n=1) + bad_header + ENTRY.format(n=2))
    return path


def count(db):
    with open_store(db) as store:
        return store.count_records()


def error_line(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_malformed_file_exits_2_with_one_line_and_writes_nothing_of_it(db, tmp_path):
    run_cli("ingest", FIXTURES / "sample.bib", db=db)
    bad = listing_with_bad_entry(tmp_path / "listing.txt")
    line = error_line(run_cli("ingest", bad, db=db, expect=2))
    assert line == f"error: {bad}:11: expected a date like 'Mar 2, 2026', found 'Mar 42, 2026'"
    assert count(db) == 3  # the BibTeX file ingested before stays; nothing of the bad listing


def test_skip_bad_lands_good_records_and_lists_bad_ones(db, tmp_path):
    bad = listing_with_bad_entry(tmp_path / "listing.txt")
    out = run_cli("ingest", bad, "--skip-bad", db=db).output
    assert f"skipped {bad}:11: expected a date" in out
    assert out.splitlines()[-1] == "2 new, 0 changed, 0 unchanged, 1 bad"
    assert {r["title"] for r in cli_json("list", db=db)} == {"A Good Paper 1", "A Good Paper 2"}


def test_bad_jsonl_line_names_line_and_problem(db, tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"title": "Fine", "abstract": "ok"}\n{"title": ["not", "a", "string"]}\n{"title": "x"\n')
    line = error_line(run_cli("ingest", path, db=db, expect=2))
    assert line == f"error: {path}:2: expected title as a string, found a list"
    assert count(db) == 0
    out = run_cli("ingest", path, "--skip-bad", db=db).output
    assert f"{path}:2: expected title as a string" in out
    assert f"{path}:3: expected a JSON object, found expecting ',' delimiter" in out
    assert count(db) == 1


def test_bad_bibtex_and_atom_name_their_line(db, tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text("@article{ok, title={Fine}}\n\n@article{bad,\n  title = {Unclosed\n")
    assert error_line(run_cli("ingest", bib, db=db, expect=2)).startswith(f"error: {bib}:4: expected a closing '}}', found '{{Unclosed'")
    atom = tmp_path / "feed.xml"
    atom.write_text('<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n<entry><title>x</entry>\n</feed>\n')
    assert error_line(run_cli("ingest", atom, db=db, expect=2)).startswith(f"error: {atom}:3: expected well-formed XML")
    assert count(db) == 0


def test_saved_arxiv_error_feed_is_refused_not_a_paper_titled_error(db, tmp_path):
    """arXiv's API answers a bad query with a feed whose one entry is the error (the feed printed
    in arXiv's API manual, tests/fixtures/sync/arxiv_atom_error.xml)."""
    run_cli("ingest", FIXTURES / "sample.bib", db=db)
    saved = tmp_path / "answer.xml"
    saved.write_bytes((FIXTURES / "sync" / "arxiv_atom_error.xml").read_bytes())
    said = f"{saved}:11: expected an arXiv API answer with papers (this one reports an API error), found" \
        " 'incorrect id format for 1234.12345'"
    for extra in (["--format", "arxiv-atom"], []):
        assert error_line(run_cli("ingest", saved, *extra, db=db, expect=2)) == f"error: {said}"
    assert f"skipped {said}" in run_cli("ingest", saved, "--skip-bad", db=db).output  # listed like any bad file
    assert count(db) == 3  # the BibTeX file ingested before, nothing of the error feed


def test_missing_file(db, tmp_path):
    missing = tmp_path / "nope.txt"
    line = error_line(run_cli("ingest", missing, db=db, expect=2))
    assert line == f"error: {missing}:0: expected an existing file, found nothing (no such file)"


def test_empty_and_blank_files_say_so(db, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n  \n\t\n")
    out = run_cli("ingest", tmp_path / "empty.txt", tmp_path / "blank.txt", db=db).output
    assert f"{tmp_path / 'empty.txt'}: empty file, nothing to ingest" in out
    assert f"{tmp_path / 'blank.txt'}: empty file, nothing to ingest" in out
    assert out.splitlines()[-1] == "0 new, 0 changed, 0 unchanged"


def test_binary_file(db, tmp_path):
    blob = tmp_path / "figure.png"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert error_line(run_cli("ingest", blob, db=db, expect=2)) == (
        f"error: {blob}:3: expected a text document, found binary data (NUL byte)"
    )


def test_non_utf8_file_names_line_and_byte(db, tmp_path):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes((ENTRY.format(n=1) + "Astrophysics Mar 2, 2026\n\nCaf\u00e9 Physics\n").encode("latin-1"))
    line = error_line(run_cli("ingest", latin, db=db, expect=2))
    assert line == f"error: {latin}:13: expected UTF-8 text, found byte 0xe9 at column 4"
    assert count(db) == 0


def test_enormous_line_is_refused_without_reading_it_whole(db, tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 1 << 20)
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"title": "fine", "abstract": "a"}\n{"title": "' + "x" * (2 << 20) + '"}\n')
    line = error_line(run_cli("ingest", huge, db=db, expect=2))
    assert line == f"error: {huge}:2: expected a line under 1 MB, found a longer line"
    assert count(db) == 0


def test_skip_bad_goes_on_past_unreadable_files(db, tmp_path):
    blob = tmp_path / "a.bin"
    blob.write_bytes(b"\x00\x01")
    out = run_cli("ingest", blob, FIXTURES / "arxiv.atom", "--skip-bad", db=db).output
    assert f"skipped {blob}:1: expected a text document" in out
    assert out.splitlines()[-1] == "2 new, 0 changed, 0 unchanged, 1 bad"


def test_unknown_shape_is_named(db, tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_text("just one line of prose\n")
    line = error_line(run_cli("ingest", odd, db=db, expect=2))
    assert line.startswith(f"error: {odd}:1: expected a known document format (listing, abstracts")
