"""Trends: how concepts and topics move over time, and which are emerging or fading.

Counts per year and per quarter (from record dates; undated records are left out). Growth
compares the last two years of the corpus (ending at its newest date) with the two years
before, as a log2 ratio of *shares* of all papers in each window, so a field that simply
publishes more does not make everything look like it is rising. Shares are smoothed with
half a count, and a minimum support keeps one-off phrases off the lists.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays import unique_counts, unique_values
from ..config import Config
from ..store.interfaces import LandscapeReadStore
from .connection_rows import MEMBERSHIPS
from .embed import held_value

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


class Dated:
    """The dated papers as arrays: row i's quarter (an index into `quarters`, which sort in time
    order) and whether it falls in the recent and the prior window."""

    def __init__(self, dates: dict[str, date], bounds: tuple[date, date, date]):
        start, middle, _ = bounds
        self.pos = {rid: i for i, rid in enumerate(dates)}
        per_day = {d: (quarter(d), d > middle, start < d <= middle) for d in set(dates.values())}
        self.quarters = sorted({q for q, _, _ in per_day.values()})
        column = {q: j for j, q in enumerate(self.quarters)}
        facts = [per_day[d] for d in dates.values()]
        self.quarter = np.fromiter((column[q] for q, _, _ in facts), dtype=np.int64, count=len(facts))
        self.recent = np.fromiter((r for _, r, _ in facts), dtype=bool, count=len(facts))
        self.prior = np.fromiter((p for _, _, p in facts), dtype=bool, count=len(facts))


def series(pairs: Iterable[tuple[str, Any]], dated: Dated, totals: tuple[int, int]) -> dict[Any, dict[str, Any]]:
    """Per group, from (record, group) pairs (repeats count once; undated records are left out):
    counts per year and quarter, counts in both windows, and growth. Groups come in the order
    they first appear. Counted with numpy over the pairs: at a million papers a concept
    membership is one of some ten million."""
    groups: dict[Any, int] = {}
    g_list, r_list = array("q"), array("q")
    position, group_of, add_group, add_row = dated.pos.get, groups.get, g_list.append, r_list.append
    for rid, name in pairs:
        i = position(rid)
        if i is None:
            continue
        g = group_of(name)
        if g is None:
            g = groups[name] = len(groups)
        add_group(g)
        add_row(i)
    return counted(list(groups), np.frombuffer(g_list, dtype=np.int64), np.frombuffer(r_list, dtype=np.int64),
                   dated, totals)


def _held_series(held: tuple[list[str], np.ndarray], dated: Dated, totals: tuple[int, int]) -> dict[Any, dict[str, Any]]:
    """`series` of the concept memberships this build's connections step read (record ids, and
    a 2 x m array of their rows and concept ids): at a million papers, reading the 13.8 million
    rows again took 14 s."""
    ids, (rows, concepts) = held
    to_dated = np.fromiter((dated.pos.get(rid, -1) for rid in ids), dtype=np.int64, count=len(ids))
    r = to_dated[rows]
    inside = r >= 0
    keys = unique_values(concepts[inside])
    return counted(keys.tolist(), np.searchsorted(keys, concepts[inside]), r[inside], dated, totals)


def counted(keys: list[Any], g: np.ndarray, r: np.ndarray, dated: Dated, totals: tuple[int, int]
            ) -> dict[Any, dict[str, Any]]:
    """`series` of the pairs (keys[g[j]], dated row r[j])."""
    groups = {key: k for k, key in enumerate(keys)}
    if not groups:
        return {}
    n = len(dated.pos)
    unique = unique_values(g * n + r)
    group, rows = unique // n, unique % n
    width = len(groups)
    total = np.bincount(group, minlength=width)
    recent = np.bincount(group, weights=dated.recent[rows], minlength=width).astype(np.int64)
    prior = np.bincount(group, weights=dated.prior[rows], minlength=width).astype(np.int64)
    q = len(dated.quarters)
    cells, counts = unique_counts(group * q + dated.quarter[rows])
    quarters: list[dict[str, int]] = [{} for _ in range(width)]
    for cell, count in zip(cells.tolist(), counts.tolist(), strict=True):
        quarters[cell // q][dated.quarters[cell % q]] = count
    out = {}
    for name, k in groups.items():
        years: Counter[str] = Counter()
        for qname, count in quarters[k].items():
            years[qname.rsplit("-Q", 1)[0]] += count
        out[name] = {
            "total": int(total[k]),
            "years": dict(sorted(years.items())),
            "quarters": quarters[k],
            "recent": int(recent[k]),
            "prior": int(prior[k]),
            "growth": round(growth(int(recent[k]), int(prior[k]), *totals), 3),
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
    parsed: dict[str | None, date | None] = {}
    dates: dict[str, date] = {}
    for rid, text in store.ls_paper_dates():
        if text not in parsed:
            parsed[text] = parse_date(text)
        d = parsed[text]
        if d is not None:
            dates[rid] = d
    if not dates:
        return {"window": None, "concepts": {}, "topics": {}, "emerging": [], "fading": [],
                "emerging_topics": [], "fading_topics": []}
    bounds = windows(max(dates.values()))
    start, middle, end = bounds
    dated = Dated(dates, bounds)
    totals = (int(dated.recent.sum()), int(dated.prior.sum()))
    names, memberships = store.ls_concept_memberships()
    held = held_value(store, MEMBERSHIPS) if store.ls_concepts_built() else None
    by_key = (_held_series(held, dated, totals) if held is not None and dated.pos.keys() <= set(held[0])
              else series(memberships, dated, totals))
    concepts = dict(sorted((names[key], counts) for key, counts in by_key.items()))
    labels = {t["id"]: t["label"] for t in store.ls_topic_rows()}
    topics = series(((rid, f"{topic}: {labels[topic]}") for rid, (topic, _, _) in store.ls_topic_assignments().items()
                     if topic in labels), dated, totals)
    return {
        "window": {"prior_start": start.isoformat(), "recent_start": middle.isoformat(), "end": end.isoformat(),
                   "papers_recent": totals[0], "papers_prior": totals[1], "min_support": min_support},
        "papers": series(((rid, "all") for rid in dates), dated, totals)["all"],
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
