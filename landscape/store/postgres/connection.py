"""The PostgreSQL connection (psycopg 3) in the shape the store's shared queries use.

The shared queries are written with qmark placeholders and read rows by position or by name, as
with sqlite3; `PgConnection` turns `?` into psycopg's `%s`, gives rows that read both ways, and
counts changed rows so a write transaction knows whether to bump the store version. Parameters
are bound on the client (psycopg's ClientCursor): a parameter's type then comes from the value,
as with SQLite, so `? IS NULL` and `coalesce(?, x)` need no casts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import ClientCursor
from psycopg.adapt import Dumper
from psycopg.pq import TransactionStatus

from ...models import LandscapeError

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")
_CHANGING = ("INSERT", "UPDATE", "DELETE", "COPY", "MERGE")


def is_postgres_url(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


_QUERY_PASSWORD = re.compile(r"(?i)(^|&)(password=)[^&]*")


def shown_url(url: str) -> str:
    """The URL without its password (given before the host or as `?password=`), for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = _QUERY_PASSWORD.sub(r"\1\2***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


@functools.lru_cache(maxsize=4096)
def psycopg_sql(sql: str) -> str:
    """`sql` with qmark placeholders as %s and every literal % doubled (psycopg formats the
    whole text when parameters are given)."""
    def swap(m: re.Match[str]) -> str:
        token = m.group()
        if token == "?":
            return "%s"
        return "%%" if token == "%" else token.replace("%", "%%")

    return _TOKENS.sub(swap, sql)


class _RowBase(tuple):
    """A row read by position or column name, as sqlite3.Row; `dict(row)` gives its columns."""

    __slots__ = ()
    _names: tuple[str, ...] = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[_RowBase]:
    return type("Row", (_RowBase,), {"__slots__": (), "_names": names, "_index": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: Any) -> Any:
    names = tuple(c.name for c in cursor.description or ())
    return _row_class(names)


class _BoolAsInt(Dumper):
    """Python booleans go into the INTEGER columns both backends declare, as 0 and 1."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"

    def quote(self, obj: Any) -> bytes:
        return self.dump(obj)


class PgConnection:
    """One psycopg connection in autocommit mode; transactions are opened by the store."""

    def __init__(self, raw: psycopg.Connection[Any], url: str):
        self.raw = raw
        self.url = url
        self.total_changes = 0

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        cur = self.raw.cursor()
        if params:
            cur.execute(psycopg_sql(sql), tuple(params))
        else:
            cur.execute(sql)  # no parameters: psycopg sends the text as it is
        self._count(cur)
        return cur

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        rows = [tuple(p) for p in seq]
        if rows:
            cur.executemany(psycopg_sql(sql), rows)
            if sql.lstrip()[:6].upper() in _CHANGING and cur.rowcount > 0:
                self.total_changes += cur.rowcount
        return cur

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Write rows with COPY (PostgreSQL's bulk path); returns how many."""
        n = 0
        with self.raw.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        self.total_changes += n
        return n

    def at_least_maintenance_work_mem(self, mb: int) -> None:
        """For the rest of this transaction, maintenance_work_mem (what an index build may hold)
        of at least `mb` MB; a server configured with more keeps its own."""
        have = self.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'")
        if int(have.fetchone()[0]) < mb * 1024:  # the setting is in kB
            self.execute(f"SET LOCAL maintenance_work_mem = '{int(mb)}MB'")

    def _count(self, cur: psycopg.Cursor[Any]) -> None:
        status = cur.statusmessage or ""
        if status.startswith(_CHANGING) and cur.rowcount > 0:
            self.total_changes += cur.rowcount

    def close(self) -> None:
        self.raw.close()


def connect(url: str, readonly: bool = False) -> PgConnection:
    """A connection to the database at `url`, or one line saying why there is none."""
    try:
        raw = psycopg.connect(
            url, autocommit=True, cursor_factory=ClientCursor, row_factory=_row_factory, connect_timeout=10,
        )
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        raise LandscapeError(f"{shown_url(url)}: cannot connect to PostgreSQL ({reason})") from None
    raw.adapters.register_dumper(bool, _BoolAsInt)
    if readonly:
        raw.execute("SET default_transaction_read_only = on")
    return PgConnection(raw, url)

