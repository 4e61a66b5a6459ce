"""Fixtures: real stores built from the real files in ../shared, in temp dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
LISTING = SHARED / "corpus" / "landscape_dev.txt"
SEEDS = SHARED / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run_cli(*args: str, db: Path | None = None, expect: int = 0):
    argv = [str(a) for a in args] + (["--db", str(db)] if db else [])
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == expect, f"exit {result.exit_code}: {result.output}"
    return result


def cli_json(*args: str, db: Path | None = None):
    return json.loads(run_cli(*args, "--json", db=db).output)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "landscape.db"


@pytest.fixture(scope="session")
def listing_db(tmp_path_factory) -> Path:
    """A store holding the real 460-paper listing (read-only for tests that share it)."""
    path = tmp_path_factory.mktemp("listing") / "landscape.db"
    run_cli("ingest", LISTING, db=path)
    return path


@pytest.fixture
def store(db: Path):
    with Store(db) as s:
        yield s


@pytest.fixture(scope="session")
def built_db(tmp_path_factory) -> Path:
    """The real listing and the two talks, ingested and built with every step (read-only for tests)."""
    path = tmp_path_factory.mktemp("built") / "landscape.db"
    run_cli("ingest", LISTING, SEEDS / "003_00411ab6291d3934.txt", SEEDS / "004_983411919a72a1a9.txt", db=path)
    run_cli("build", db=path)
    return path
