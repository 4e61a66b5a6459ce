"""What differs between the backends' SQL inside otherwise shared queries.

The store's queries are written once, in the SQL both SQLite and PostgreSQL accept; the few
expressions they spell differently come from the store's dialect (`self._sql`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    unlimited: int | None  # the LIMIT argument that means no limit
    like: str  # LIKE that ignores case (SQLite's LIKE folds ASCII)

    def nocase(self, expr: str) -> str:
        """`expr` as a key that compares and sorts without case (SQLite folds ASCII only)."""
        return f"{expr} COLLATE NOCASE" if self.name == "sqlite" else f"lower({expr})"

    def nocase_equals(self, expr: str) -> str:
        """A condition: `expr` equals the next parameter, ignoring case, on an indexed key."""
        return f"{expr} = ? COLLATE NOCASE" if self.name == "sqlite" else f"lower({expr}) = lower(?)"

    def group_concat(self, expr: str, sep: str = ",") -> str:
        quoted = "'" + sep.replace("'", "''") + "'"
        if self.name == "sqlite":
            return f"group_concat({expr}, {quoted})"
        return f"string_agg(({expr})::text, {quoted})"

    def indexed_by(self, index: str) -> str:
        """Read a table through `index` (after its name in FROM or JOIN) on SQLite, whose planner
        takes a table's unique key for a lookup by it even where another index holds every
        column asked for and reading the row costs a page per record (at a million records,
        graph_pending 4.2 -> 0.7 s warm); PostgreSQL's planner chooses by its statistics. Only
        in the build's queries: a read-only store (`serve`) is not migrated, so may lack the index."""
        return f" INDEXED BY {index}" if self.name == "sqlite" else ""

    def json_text(self, column: str, key: str) -> str:
        """The text of `key` in the JSON object stored as text in `column`."""
        if self.name == "sqlite":
            return f"json_extract({column}, '$.{key}')"
        return f"(({column})::jsonb ->> '{key}')"


SQLITE = Dialect("sqlite", unlimited=-1, like="LIKE")
POSTGRES = Dialect("postgresql", unlimited=None, like="ILIKE")
