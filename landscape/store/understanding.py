"""Store queries for the understanding part of Landscape (all SQL stays in this package)."""

from __future__ import annotations

import sqlite3


class UnderstandingMixin:
    conn: sqlite3.Connection
