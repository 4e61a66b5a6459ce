"""What a user sees of a record, assembled once for the CLI, the API and the pages."""

from __future__ import annotations

from typing import Any

from .models import LandscapeError
from .store import Store


def record_detail(store: Store, record_id: str) -> dict[str, Any]:
    view = store.record_view(record_id)
    if view is None:
        raise LandscapeError(f"no record with id {record_id!r}")
    if view.get("kind") == "talk":
        view["sections"] = store.ls_talk_sections_view(record_id)
    view.update(store.ls_record_place(record_id))
    view.update(store.citation_view(record_id))
    return view
