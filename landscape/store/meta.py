"""The store's key-value meta, its version and section titles: the same SQL on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .db import store_version


class MetaMixin:
    _conn: Any

    def version(self) -> tuple[str, int]:
        """Which state of the store this connection reads: changes with every committed write."""
        return store_version(self._conn)

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def section_titles(self) -> Iterator[tuple[str, str]]:
        """(record id, section title) of every section, record by record."""
        yield from self._conn.execute("SELECT record_id, title FROM sections ORDER BY record_id, position")
