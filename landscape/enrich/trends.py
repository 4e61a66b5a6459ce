"""Trends: how concepts and topics move over time, and which are emerging or fading.

Counts per year and per quarter (from record dates; undated records are left out). Growth
compares the last two years of the corpus (ending at its newest date) with the two years
before, as a log2 ratio of *shares* of all papers in each window, so a field that simply
publishes more does not make everything look like it is rising. Shares are smoothed with
half a count, and a minimum support keeps one-off phrases off the lists.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..store.interfaces import LandscapeReadStore

if TYPE_CHECKING:
    from .pipeline import BuildContext

ARTIFACT = "trends"
MIN_SUPPORT = 4
LIST_SIZE = 15


def parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        parts = [int(p) for p in text[:10].split("-")]
        return date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except (ValueError, IndexError):
        return None


def quarter(d: date) -> str:
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def windows(latest: date) -> tuple[date, date, date]:
    """Start of the prior window, start of the recent window, and the end (latest date)."""
    recent = latest - timedelta(days=730)
    return recent - timedelta(days=730), recent, latest


def growth(recent: int, prior: int, n_recent: int, n_prior: int) -> float:
    return math.log2(((recent + 0.5) / max(n_recent, 1)) / ((prior + 0.5) / max(n_prior, 1)))


def date_keys(dates: dict[str, date], bounds: tuple[date, date, date]) -> dict[str, tuple[str, bool, bool]]:
    """Per dated record: its quarter, whether it is in the recent window, and in the prior one,
    worked out once per record rather than once per (record, group)."""
    start, middle, _ = bounds
    return {rid: (quarter(d), d > middle, start < d <= middle) for rid, d in dates.items()}


def series(members: dict[str, set[str]], dates: dict[str, date], bounds: tuple[date, date, date],
           totals: tuple[int, int], keys: dict[str, tuple[str, bool, bool]] | None = None
           ) -> dict[str, dict[str, Any]]:
    """Per group: counts per year and quarter, counts in both windows, and growth."""
    keys = date_keys(dates, bounds) if keys is None else keys
    out = {}
    for name, ids in members.items():
        dated = [keys[r] for r in ids if r in keys]
        if not dated:
            continue
        quarters = Counter(q for q, _, _ in dated)
        years: Counter[str] = Counter()
        for q, n in quarters.items():
            years[q.rsplit("-Q", 1)[0]] += n
        recent = sum(1 for _, r, _ in dated if r)
        prior = sum(1 for _, _, p in dated if p)
        out[name] = {
            "total": len(dated),
            "years": dict(sorted(years.items())),
            "quarters": dict(sorted(quarters.items())),
            "recent": recent,
            "prior": prior,
            "growth": round(growth(recent, prior, *totals), 3),
        }
    return out


def ranked(data: dict[str, dict[str, Any]], rising: bool, min_support: int) -> list[dict[str, Any]]:
    if rising:
        pool = [(k, v) for k, v in data.items() if v["recent"] >= min_support and v["growth"] > 0]
        pool.sort(key=lambda kv: (-kv[1]["growth"], -kv[1]["recent"], kv[0]))
    else:
        pool = [(k, v) for k, v in data.items() if v["prior"] >= min_support and v["growth"] < 0]
        pool.sort(key=lambda kv: (kv[1]["growth"], -kv[1]["prior"], kv[0]))
    return [{"name": k, "recent": v["recent"], "prior": v["prior"], "growth": v["growth"]} for k, v in pool[:LIST_SIZE]]


def compute_trends(store: LandscapeReadStore, min_support: int = MIN_SUPPORT) -> dict[str, Any]:
    """Everything `landscape trends --json` shows."""
    dates = {rid: d for rid, text in store.ls_paper_dates() if (d := parse_date(text)) is not None}
    if not dates:
        return {"window": None, "concepts": {}, "topics": {}, "emerging": [], "fading": [],
                "emerging_topics": [], "fading_topics": []}
    bounds = windows(max(dates.values()))
    start, middle, end = bounds
    totals = (sum(1 for d in dates.values() if d > middle), sum(1 for d in dates.values() if start < d <= middle))
    by_concept: dict[str, set[str]] = defaultdict(set)
    for rid, name in store.ls_concept_memberships():
        if rid in dates:
            by_concept[name].add(rid)
    labels = {t["id"]: t["label"] for t in store.ls_topic_rows()}
    by_topic: dict[str, set[str]] = defaultdict(set)
    for rid, (topic, _, _) in store.ls_topic_assignments().items():
        if rid in dates and topic in labels:
            by_topic[f"{topic}: {labels[topic]}"].add(rid)
    keys = date_keys(dates, bounds)
    concepts = series(dict(sorted(by_concept.items())), dates, bounds, totals, keys)
    topics = series(by_topic, dates, bounds, totals, keys)
    return {
        "window": {"prior_start": start.isoformat(), "recent_start": middle.isoformat(), "end": end.isoformat(),
                   "papers_recent": totals[0], "papers_prior": totals[1], "min_support": min_support},
        "papers": series({"all": set(dates)}, dates, bounds, totals, keys)["all"],
        "emerging": ranked(concepts, True, min_support),
        "fading": ranked(concepts, False, min_support),
        "emerging_topics": ranked(topics, True, min_support),
        "fading_topics": ranked(topics, False, min_support),
        "concepts": {k: v for k, v in concepts.items() if v["total"] >= 2},
        "topics": topics,
    }


class TrendsStep:
    name = "trends"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: BuildContext) -> dict[str, int]:
        data = compute_trends(ctx.store, int(self.config.extra.get("trends_min_support", MIN_SUPPORT)))
        with ctx.store.transaction():
            ctx.store.ls_put_json_artifact(ARTIFACT, data)
        return {"concepts": len(data["concepts"]), "topics": len(data["topics"]),
                "emerging": len(data["emerging"]), "fading": len(data["fading"])}


def step(config: Config) -> TrendsStep:
    return TrendsStep(config)


def stored_trends(store: LandscapeReadStore) -> dict[str, Any]:
    """The trends the last build stored, or computed now when it has not run."""
    return store.ls_get_json_artifact(ARTIFACT) or compute_trends(store)
