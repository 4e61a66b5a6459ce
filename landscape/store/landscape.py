"""Store queries for the landscape part of Landscape (all SQL stays in this package)."""

from __future__ import annotations

import sqlite3


class LandscapeMixin:
    conn: sqlite3.Connection
