"""Bridges: papers that join two regions of the landscape (two topics, or two areas).

A paper bridges its own region A and another region B when both hold: it sits about as close
to B's centre as to A's (centre balance, the ratio of the two cosine similarities), and its
nearest papers are split between A and B (neighbour balance: the smaller count over the
larger, counting the paper itself in A). The score is the geometric mean of the two, so a
paper needs both kinds of evidence; at least two of its ten nearest papers must lie in B.
The nearest papers come from the build's neighbour graph, and similarities to the centres are
computed a batch of papers at a time, so nothing grows with n squared.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..config import Config
from ..store.interfaces import BridgeStore
from .embed import record_embeddings
from .neighbours import record_graph
from .topics import centroids, subgraph

NEIGHBOURS = 10
MIN_IN_OTHER = 2
BATCH = 8192


def region_bridges(
    ids: list[str],
    X: np.ndarray,
    idx: np.ndarray,
    region: list[int],
    names: dict[int, str],
    concepts: dict[str, list[str]],
    level: str,
) -> list[dict[str, Any]]:
    """Bridge candidates of one level, scored (see module docstring), best first; `idx` holds
    each row's nearest rows (-1 pads)."""
    labels = np.asarray(region)
    known = labels >= 0
    n_regions = int(labels.max()) + 1 if known.any() else 0
    if n_regions < 2:
        return []
    centres = centroids(X, labels, n_regions)
    region_concepts = [Counter() for _ in range(n_regions)]
    for i, rid in enumerate(ids):
        if known[i]:
            region_concepts[labels[i]].update(concepts.get(rid, []))
    out = []
    sims = np.zeros((0, n_regions), dtype=np.float32)
    for i, rid in enumerate(ids):
        if i % BATCH == 0:
            sims = X[i : i + BATCH] @ centres.T
        a, near = int(labels[i]), sims[i % BATCH]
        if a < 0:
            continue
        around = Counter(int(labels[j]) for j in idx[i] if j >= 0 and labels[j] >= 0)
        others = [(n, r) for r, n in around.items() if r != a]
        if not others:
            continue
        n_b, b = max(others, key=lambda nr: (nr[0], near[nr[1]], -nr[1]))
        if n_b < MIN_IN_OTHER:
            continue
        n_a = around.get(a, 0) + 1
        centre_balance = float(max(near[b], 0) / max(near[a], near[b], 1e-9))
        neighbour_balance = min(n_a, n_b) / max(n_a, n_b)
        score = float(np.sqrt(centre_balance * neighbour_balance))
        mine = concepts.get(rid, [])
        reasons = [
            f"similarity to the centres of {names[a]} and {names[b]}: {near[a]:.2f} / {near[b]:.2f}",
            f"{n_b} of its {NEIGHBOURS} nearest papers are in {names[b]}, {n_a - 1} in {names[a]}",
        ]
        from_a = [c for c in mine if region_concepts[a][c] >= 2 and region_concepts[a][c] >= region_concepts[b][c]]
        from_b = [c for c in mine if region_concepts[b][c] >= 2 and region_concepts[b][c] > region_concepts[a][c]]
        if from_a and from_b:
            reasons.append(f"concepts of both: {', '.join(from_a[:2])} / {', '.join(from_b[:2])}")
        out.append({
            "id": rid, "level": level, "score": round(score, 4),
            "joins": [names[a], names[b]], "regions": [a, b], "reasons": reasons,
        })
    out.sort(key=lambda b: (-b["score"], b["id"]))
    return out


def find_bridges(store: BridgeStore, by: str = "both", limit: int = 15, config: Config | None = None) -> list[dict[str, Any]]:
    """The strongest bridges between topics and/or areas, with the two regions each joins."""
    config = config or Config()
    ids, X = record_embeddings(store, config)
    rows = {r["id"]: r for r in store.ls_brief_rows()}
    keep = [i for i, rid in enumerate(ids) if rows[rid]["kind"] == "paper"]
    if not keep:
        return []
    graph = record_graph(store, config, ids, X)
    idx, _ = subgraph(graph.idx, graph.sims, np.asarray(keep), NEIGHBOURS)
    ids, X = [ids[i] for i in keep], X[keep]
    concepts = store.ls_record_concept_names(ids)
    found: list[dict[str, Any]] = []
    if by in ("topic", "both"):
        assigned = store.ls_topic_assignments()
        labels = {t["id"]: t["label"] for t in store.ls_topic_rows()}
        region = [assigned[r][0] if r in assigned and not assigned[r][1] else -1 for r in ids]
        found += region_bridges(ids, X, idx, region, labels, concepts, "topic")
    if by in ("area", "both"):
        areas = sorted({rows[r]["area"] for r in ids if rows[r]["area"]})
        number = {a: i for i, a in enumerate(areas)}
        region = [number.get(rows[r]["area"], -1) for r in ids]
        found += region_bridges(ids, X, idx, region, dict(enumerate(areas)), concepts, "area")
    found.sort(key=lambda b: (-b["score"], b["id"]))
    for b in found:
        b["title"] = rows[b["id"]]["title"]
    return found[:limit]
