"""One sync: pages from a client, each loaded in one transaction with its cursor.

A source's state is {"query", "since", "next"}: while a run is under way `next` is the cursor
of the first page not yet committed, so a run stopped anywhere (Ctrl-C, SIGKILL, a lost
network) restarts there: the page in flight was rolled back with its cursor, nothing is lost,
and the same records arriving again merge into themselves, so nothing is duplicated. When a
run completes, `next` is cleared and `since` becomes the day it started, so the next bare
`landscape sync` asks only for what is newer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from ..ingest import SPLIT_PENDING, finish_ingest
from ..models import Record
from ..store.interfaces import SyncStore
from . import Client, Reference


@dataclass
class SyncReport:
    source: str
    pages: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0
    citations: int = 0
    resumed: bool = False
    complete: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "up to date" if self.complete else "stopped at --limit; run again to go on"
        return (f"{self.source}: {self.pages} pages, {self.new} new, {self.changed} changed,"
                f" {self.unchanged} unchanged, {self.citations} citation links ({state})")


def source_key(service: str, query: str | None) -> str:
    return f"{service}:{query}" if query else service


def sync_source(
    store: SyncStore,
    client: Client,
    query: str | None = None,
    since: str | None = None,
    limit: int | None = None,
    key: str | None = None,
    since_floor: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
    today: Callable[[], str] = lambda: dt.date.today().isoformat(),
) -> SyncReport:
    """Fetch pages and load each; returns counts. Raises SyncError/ParseError on a fault,
    with every page before it committed. `since` asks from that date whatever ran before;
    `since_floor` (a configured source's date) gives way to the day the last run finished."""
    key = key or source_key(client.name, query)
    report = SyncReport(key)
    state = store.sync_state(key)
    started = today()
    if state.get("next") and state.get("query") == query and (since is None or since == state.get("since")):
        cursor, since = state["next"], state.get("since")
        report.resumed = True
        log(f"{key}: resuming where the last run stopped")
    else:
        cursor = None
        since = since or max(filter(None, (since_floor, state.get("done_since"))), default=None)
    done = (state.get("done_since"), started)
    loaded = 0
    with store.bulk_write():
        try:
            for page in client.pages(query, since, cursor):
                items, next_cursor = page.items, page.next
                if page.note:
                    report.notes.append(page.note)
                if limit is not None and loaded + len(items) >= limit:
                    if loaded + len(items) > limit:
                        items, next_cursor = items[: limit - loaded], cursor if cursor is not None else {}  # this page again next time
                    report.complete = next_cursor is None
                    _load(store, report, key, items, page.skipped, query, since, next_cursor, done)
                    loaded += len(items)
                    break
                _load(store, report, key, items, page.skipped, query, since, next_cursor, done)
                loaded += len(items)
                log(report.summary())
                cursor = next_cursor
                if cursor is None:
                    report.complete = True
                    break
            else:
                report.complete = True
        finally:
            if store.get_meta(SPLIT_PENDING) or store.pending_index_count():
                finish_ingest(store)
    return report


def _load(
    store: SyncStore, report: SyncReport, key: str, items: list[tuple[Record, list[Reference]]], skipped: int,
    query: str | None, since: str | None, next_cursor: dict | None, done: tuple[str | None, str],
) -> None:
    """One page, one transaction: records (merged by identity), their ids, their citations,
    and the cursor past them."""
    with store.transaction():
        records = _merge_within_page(store, items)
        statuses = store.upsert_records([rec for rec, _ in records]) if records else []
        for status in statuses:
            setattr(report, status, getattr(report, status) + 1)
        both = [rec for rec, _ in records] + store.get_records([rec.id for rec, _ in records])
        store.add_record_keys(both)  # the ids of this answer and those the record had
        store.link_citation_targets(both)
        for rec, refs in records:
            report.citations += store.add_citations(rec.id, [(r.ids, r.title) for r in refs])
        if report.new or report.changed:
            store.set_meta(SPLIT_PENDING, "1")
        state = {"query": query, "since": since, "next": next_cursor,
                 "done_since": done[1] if next_cursor is None else done[0]}
        store.set_sync_state(key, state, records=len(records))
    report.pages += 1
    report.skipped += skipped


def _merge_within_page(store: SyncStore, items: list[tuple[Record, list[Reference]]]) -> list[tuple[Record, list[Reference]]]:
    """Give each record the id of the stored record it is (any shared id, else the title),
    and fold records of one page that are the same paper (by any key) into one."""
    from ..store.records import merge_records
    from ..store.sync import record_keys

    out: dict[str, tuple[Record, list[Reference]]] = {}
    seen: dict[str, str] = {}
    for rec, refs in items:
        keys = record_keys(rec)
        found = store.resolve_record_id(rec) or next((seen[k] for k in keys if k in seen), None)
        if found:
            rec.id = found
        if rec.id in out:
            old, old_refs = out[rec.id]
            out[rec.id] = (merge_records(old, rec), old_refs + refs)
        else:
            out[rec.id] = (rec, refs)
        for key in keys:
            seen.setdefault(key, rec.id)
    return list(out.values())
