"""A wrong or unusable PostgreSQL URL is one line on stderr naming the URL (never its password),
exit status 2, no traceback, and nothing written to the database.

The pgserver wheel the tests run on ships pgvector, so "a server without the vector extension"
is played by a role that may not create it (CREATE EXTENSION fails the same way, with another
reason): the product's path is the same, a failed CREATE EXTENSION."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from .conftest import BACKENDS, FIXTURES, _database, _with_database, new_pg_database

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="LANDSCAPE_TEST_BACKENDS leaves PostgreSQL out")

LANDSCAPE = str(Path(sys.executable).parent / "landscape")
SECRET = "hunter2-not-shown"


def with_login(url: str, user: str, password: str) -> str:
    """`url` as `user` with `password` (the test server trusts local sockets: the password is
    only there to be kept out of messages)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def fails_in_one_line(*args: str, db: str) -> str:
    done = subprocess.run([LANDSCAPE, *args, "--db", db], capture_output=True, text=True,
                          env={**os.environ, "LANDSCAPE_DB": ""}, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert SECRET not in done.stderr
    return lines[0]


def tables_and_extensions(url: str) -> tuple[list[str], list[str]]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S') ORDER BY 1")]
        extensions = [r[0] for r in conn.execute("SELECT extname FROM pg_extension ORDER BY 1")]
    return tables, extensions


@pytest.fixture
def weak_role(pg_admin):
    """A login role that owns nothing and may create nothing (no superuser, no CREATE on the
    public schema of a new database)."""
    name = f"landscape_weak_{os.getpid()}"
    with psycopg.connect(_with_database(pg_admin, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")
        conn.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    with psycopg.connect(_with_database(pg_admin, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_an_unreachable_server_is_one_line(pg_admin):
    url = f"postgresql://someone:{SECRET}@127.0.0.1:1/landscape"
    for command in (("list",), ("ingest", str(FIXTURES / "records.jsonl"))):
        line = fails_in_one_line(*command, db=url)
        assert line.startswith("error: postgresql://someone:***@127.0.0.1:1/landscape: cannot connect to PostgreSQL")


def test_a_password_given_as_a_parameter_is_not_shown_either(pg_admin):
    line = fails_in_one_line("list", db=f"postgresql://someone@127.0.0.1:1/landscape?password={SECRET}&sslmode=disable")
    assert line.startswith("error: postgresql://someone@127.0.0.1:1/landscape?password=***&sslmode=disable: cannot connect")


def test_a_database_that_does_not_exist_is_one_line_and_is_not_created(pg_admin):
    name = f"landscape_missing_{os.getpid()}"
    url = with_login(_with_database(pg_admin, name), "postgres", SECRET)
    line = fails_in_one_line("ingest", str(FIXTURES / "records.jsonl"), db=url)
    assert "postgres:***@" in line and f'database "{name}" does not exist' in line
    with psycopg.connect(_with_database(pg_admin, "postgres")) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def test_a_read_only_command_on_an_empty_database_is_one_line_and_writes_nothing(pg_admin):
    url = new_pg_database(pg_admin, "fault_empty")
    line = fails_in_one_line("list", db=with_login(url, "postgres", SECRET))
    assert "no Landscape store in this database" in line and "postgres:***@" in line
    assert tables_and_extensions(url) == ([], ["plpgsql"])


def test_a_database_without_the_vector_extension_is_one_line_and_left_as_it_was(pg_admin, weak_role):
    url = new_pg_database(pg_admin, "fault_novector")
    line = fails_in_one_line("ingest", str(FIXTURES / "records.jsonl"), db=with_login(url, weak_role, SECRET))
    assert "the pgvector extension is not available in this database" in line
    assert f"{weak_role}:***@" in line
    assert tables_and_extensions(url) == ([], ["plpgsql"])


def test_no_right_to_create_tables_is_one_line_and_leaves_nothing(pg_admin, weak_role):
    """pgvector is there (made by the administrator) but the role may not create tables: the
    migrations table was made outside the migrations' transaction, and this was a traceback."""
    url = new_pg_database(pg_admin, "fault_nocreate")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    line = fails_in_one_line("ingest", str(FIXTURES / "records.jsonl"), db=with_login(url, weak_role, SECRET))
    assert "cannot create the Landscape tables in this database (permission denied for schema public)" in line
    assert tables_and_extensions(url) == ([], ["plpgsql", "vector"])


def test_a_database_holding_other_tables_by_our_names_is_one_line_and_half_of_nothing(pg_admin):
    """Another application's database (a wrong URL): the first migration fails part way, and the
    database keeps only what it had: no migrations table, no extension, no Landscape table."""
    url = new_pg_database(pg_admin, "fault_taken")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE records (id TEXT PRIMARY KEY)")
    line = fails_in_one_line("ingest", str(FIXTURES / "records.jsonl"), db=with_login(url, "postgres", SECRET))
    assert 'cannot create the Landscape tables in this database (relation "records" already exists)' in line
    assert tables_and_extensions(url) == (["records"], ["plpgsql"])
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    assert _database(url) in line


def test_a_server_that_drops_the_build_mid_way_is_one_line_and_the_rerun_finishes(pg_admin, tmp_path):
    """The server ends the build's session while it works (as a restart or a failover would):
    one line, exit 2, and the next `landscape build` resumes to a complete store."""
    import time

    url = new_pg_database(pg_admin, "gone")
    listing = tmp_path / "listing.txt"
    text = (FIXTURES.parent.parent.parent / "shared" / "corpus" / "landscape_dev.txt").read_text(encoding="utf-8")
    listing.write_text(text, encoding="utf-8")
    subprocess.run([LANDSCAPE, "ingest", str(listing), "--db", url], check=True, capture_output=True, timeout=300)
    build = subprocess.Popen([LANDSCAPE, "build", "--embedder", "tfidf", "--db", url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with psycopg.connect(_with_database(pg_admin, "postgres"), autocommit=True) as admin:
        ended = 0
        deadline = time.monotonic() + 120
        while not ended and build.poll() is None and time.monotonic() < deadline:
            time.sleep(1.0)
            ended = len(admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (_database(url),)).fetchall())
    _, err = build.communicate(timeout=300)
    assert ended, "the build ended before the server could drop it"
    assert build.returncode == 2, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: the PostgreSQL server stopped answering")
    done = subprocess.run([LANDSCAPE, "build", "--embedder", "tfidf", "--db", url], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    shown = json.loads(subprocess.run([LANDSCAPE, "show", "t9017c41427d6", "--json", "--db", url],
                                      capture_output=True, text=True, check=True).stdout)
    assert shown["summary"] and shown["topic"] and shown["map"]
    related = json.loads(subprocess.run([LANDSCAPE, "related", "t9017c41427d6", "--json", "--db", url],
                                        capture_output=True, text=True, check=True).stdout)
    assert related
