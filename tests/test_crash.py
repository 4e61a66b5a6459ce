"""A small version of bench/crash.py: SIGKILL `landscape ingest` and `landscape build` at three
points each (a build twice on PostgreSQL, where it is slower), then the store opens with
integrity ok, no file is half stored, and a rerun reaches the same state as an uninterrupted
run. The outcome does not depend on where the kill lands (a run that ends before its kill must
pass the same checks). On SQLite and on PostgreSQL: the stores are files in the test's temp dir
or databases on the test server (`where`)."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest

from .conftest import FIXTURES, LISTING, ROOT
from .test_hostile import listing_head

_spec = importlib.util.spec_from_file_location("crash_bench", ROOT / "bench" / "crash.py")
crash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crash)


def inputs(tmp: Path) -> list[Path]:
    head = listing_head(tmp / "head.txt", 30)
    parts = [tmp / "a.txt", tmp / "b.txt"]
    text = head.read_text()
    cut = len(listing_head(tmp / "cut.txt", 15).read_text())
    parts[0].write_text(text[:cut])
    parts[1].write_text(text[cut:])
    return parts + [FIXTURES / "records.jsonl", FIXTURES / "sample.bib", FIXTURES / "hostile.jsonl"]


@pytest.fixture
def where(backend, request, tmp_path):
    """Where the bench's helpers put stores: this test's temp dir (SQLite) or the test server
    (PostgreSQL: new databases named for the test process, left to the test server as the
    conftest stores are; dropping each forces a checkpoint, seconds apiece)."""
    return tmp_path if backend == "sqlite" else request.getfixturevalue("pg_admin")


def test_killed_ingest_leaves_whole_files_and_a_rerun_reaches_the_same_state(tmp_path, where):
    files = inputs(tmp_path)
    ref = crash.store_at(where, "ref")
    crash.fresh_store(ref)
    cmd = [crash.LANDSCAPE, "ingest", *map(str, files), "--db"]
    length = crash.timed(cmd + [str(ref)])
    want_state, want_export = crash.state(ref), crash.exported(ref, tmp_path)
    want_ids = crash.ids_by_file(ref, files)
    for fraction in (0.5, 0.75, 0.9):
        db = crash.store_at(where, f"killed-{fraction}")
        crash.fresh_store(db)
        crash.kill_at(cmd + [str(db)], length * fraction)
        if crash.has_store(db):
            assert crash.integrity(db) == "ok"
            have = crash.ids_by_file(db, files)
            stored = [f for f in files if have.get(str(f))]
            assert all(have[str(f)] == want_ids[str(f)] for f in stored)
            assert stored == files[: len(stored)]
        crash.timed(cmd + [str(db)])
        assert crash.compare("ingest", db, want_state, want_export, tmp_path) == []


def test_killed_build_keeps_the_store_sound_and_a_rerun_reaches_the_same_state(tmp_path, where):
    base = crash.store_at(where, "base")
    crash.fresh_store(base)
    crash.landscape("ingest", *inputs(tmp_path), db=base)
    ref = crash.store_at(where, "ref")
    crash.copy_store(base, ref)
    cmd = [crash.LANDSCAPE, "build", "--embedder", "tfidf", "--db"]
    length = crash.timed(cmd + [str(ref)])
    want_state, want_export = crash.state(ref), crash.exported(ref, tmp_path)
    for fraction in (0.4, 0.85) if crash.is_pg(where) else (0.3, 0.6, 0.85):  # a build is slower on PostgreSQL
        db = crash.store_at(where, f"killed-{fraction}")
        crash.copy_store(base, db)
        crash.kill_at(cmd + [str(db)], length * fraction)
        assert crash.integrity(db) == "ok"
        crash.timed(cmd + [str(db)])
        assert crash.compare("build", db, want_state, want_export, tmp_path) == []


def test_the_state_digest_sees_a_changed_row(where):
    db = crash.store_at(where, "x")
    crash.fresh_store(db)
    crash.landscape("ingest", FIXTURES / "records.jsonl", db=db)
    before = crash.state(db)
    change = "UPDATE records SET abstract = abstract || '!' WHERE rowid = 1"
    if crash.is_pg(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as pg:
            pg.execute(change)
    else:
        with sqlite3.connect(db) as conn:
            conn.execute(change)
    assert [k for k, v in crash.state(db).items() if v != before[k]] == ["records"]


def test_an_ingest_stopped_before_the_keyphrase_split_finishes_it_on_the_rerun(tmp_path, where, monkeypatch):
    """Files commit one by one, the keyphrase re-split after them. A kill between the two used to
    leave the listing's keyphrase lines unsplit for good: the rerun found nothing new to split."""
    import landscape.ingest as ingest
    from landscape.store import open_store

    files = [listing_head(tmp_path / "head.txt", 30)]
    ref, killed_db = crash.store_at(where, "ref"), crash.store_at(where, "killed")
    crash.fresh_store(ref)
    crash.fresh_store(killed_db)
    with open_store(ref) as store:
        ingest.ingest_paths(store, files)

    def killed(store, *args, **kwargs):
        raise KeyboardInterrupt

    split = ingest.split_keyphrase_lines
    monkeypatch.setattr(ingest, "split_keyphrase_lines", killed)
    with open_store(killed_db) as store:
        try:
            ingest.ingest_paths(store, files)
        except KeyboardInterrupt:
            pass
    monkeypatch.setattr(ingest, "split_keyphrase_lines", split)
    with open_store(killed_db) as store:
        assert ingest.ingest_paths(store, files).summary() == "0 new, 0 changed, 30 unchanged"
    want, rerun = crash.state(ref), crash.state(killed_db)
    assert [k for k in want if want[k] != rerun[k]] == []


def test_two_builds_agree_whatever_the_string_hash_seed(tmp_path):
    """A rerun must reach the state of an uninterrupted run, so a build may not depend on Python's
    per-process string hashing: the concepts step ranked candidates in set order (keyphrases and
    record concepts differed between two identical builds)."""
    import os
    import subprocess

    base = tmp_path / "base.db"
    crash.landscape("ingest", LISTING, db=base)
    states = []
    for seed in ("1", "2"):
        db = tmp_path / f"seed{seed}.db"
        crash.copy_store(base, db)
        subprocess.run([crash.LANDSCAPE, "build", "--embedder", "tfidf", "--only", "embed", "--only", "concepts",
                        "--db", str(db)], check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed})
        states.append(crash.state(db))
    assert [k for k in states[0] if states[0][k] != states[1][k]] == []
