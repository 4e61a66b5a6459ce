"""What a user sees of a record, assembled once for the CLI, the API and the pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .models import LandscapeError
from .store.interfaces import PageStore


def record_detail(store: PageStore, record_id: str) -> dict[str, Any]:
    view = store.record_view(record_id)
    if view is None:
        raise LandscapeError(f"no record with id {record_id!r}")
    if view.get("kind") == "talk":
        view["sections"] = store.ls_talk_sections_view(record_id)
    view.update(store.ls_record_place(record_id))
    view.update(store.citation_view(record_id))
    return view


def ordered_areas(areas: dict[str, int], order: Sequence[str] = ()) -> list[str]:
    """The configured `area_order` first, then the rest by how many records they hold."""
    first = [a for a in order if a in areas]
    return first + sorted((a for a in areas if a not in first), key=lambda a: (-areas[a], a))


def stats_line(stats: dict[str, Any], area_order: Sequence[str] = ()) -> str:
    """The counts line: '460 papers 162 Foundational AI 122 Astrophysics ...'."""
    areas = stats["areas"]
    line = f"{stats['papers']} papers " + " ".join(f"{areas[a]} {a}" for a in ordered_areas(areas, area_order))
    return line.strip()
