"""Store queries for the pages part of Landscape (all SQL stays in this package)."""

from __future__ import annotations

import sqlite3


class PagesMixin:
    conn: sqlite3.Connection
