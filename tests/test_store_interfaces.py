"""The store is reached only through its typed interfaces: no SQL or connection outside store/."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Protocol

import landscape
from landscape.store import Store, interfaces

PACKAGE = Path(landscape.__file__).resolve().parent
SQL = re.compile(r"\bimport sqlite3\b|\.conn\b|\._conn\b|connection_for_tests|\b(SELECT|INSERT INTO|DELETE FROM|PRAGMA)\b|\bUPDATE \w+ SET\b")


def outside_store() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "store" not in p.relative_to(PACKAGE).parts[:1]]


def test_no_sql_and_no_connection_outside_the_store():
    found = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in outside_store()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SQL.search(line)
    ]
    assert found == []


def protocols() -> list[type]:
    return [
        obj for obj in vars(interfaces).values()
        if isinstance(obj, type) and Protocol in obj.__mro__[1:] and obj.__module__ == interfaces.__name__
    ]


def signatures() -> list[str]:
    return [
        f"{name}{inspect.signature(member)}"
        for proto in protocols()
        for name, member in vars(proto).items()
        if not name.startswith("_") and callable(member)
    ]


def test_interfaces_name_nothing_of_sqlite():
    """A PostgreSQL store implements the same interfaces: no connection, row or FTS5 type in them."""
    assert len(signatures()) > 100
    assert [s for s in signatures() if re.search(r"sqlite|\bConnection\b|\bCursor\b|\bRow\b|rowid", s, re.I)] == []


def test_sqlite_store_has_every_interface_method_with_the_same_parameters():
    """mypy checks the types (`make typecheck`); this checks names and parameters at run time:
    the interface's parameters first, then only optional ones of SQLite's own."""
    assert {p.__name__ for p in protocols()} >= {
        "IngestStore", "SyncStore", "BuildStore", "SearchStore", "PageStore"}
    for proto in protocols():
        for name, member in vars(proto).items():
            if name.startswith("_") or not callable(member):
                continue
            wanted = list(inspect.signature(member).parameters)
            have = inspect.signature(getattr(Store, name)).parameters
            assert list(have)[: len(wanted)] == wanted, (proto.__name__, name)
            extra = list(have.values())[len(wanted):]  # a backend's own tuning knobs, never required
            assert all(p.default is not p.empty for p in extra), (proto.__name__, name)
