"""Topics: the field's regions, found as communities of the kNN graph of the embeddings.

Clustering: Leiden (leidenalg) on the cosine kNN graph by default; HDBSCAN, agglomerative
(Ward) and Louvain (networkx) are there to measure against (`bench/topics.py`). Every method
is seeded, records are ordered by id and topics numbered by size, so the same corpus always
gives the same topics. Communities smaller than `min_topic_size` are dissolved: their members
are *outliers*, assigned to the nearest topic centre and flagged.

Labels: 2 to 4 words from the topic's most distinctive concepts (class-based TF-IDF over the
records' concepts), falling back to distinctive words of titles and abstracts. A topic is
nested under the area most of its papers belong to.

Incremental: the topic centres are kept (artifact `topics.model`); a record added later is
assigned to its nearest centre without touching the others. The whole corpus is reclustered
when more than `recluster_fraction` of it is new or changed, on `build --relayout`, or when
the embedder changes.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import zipfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays import unique_counts, unique_values
from ..config import Config
from ..store.interfaces import LandscapeReadStore
from ..text import content_tokens
from .connection_rows import MEMBERSHIPS
from .embed import held_value, record_embeddings
from .neighbours import graph_of

if TYPE_CHECKING:
    from .pipeline import BuildContext

MODEL_ARTIFACT = "topics.model"
TEXT_BATCH = 5000
METHODS = ("leiden", "louvain", "hdbscan", "agglomerative")


@dataclass
class TopicSettings:
    method: str = "leiden"
    k: int = 10
    resolution: float = 2.5
    min_topic_size: int = 5
    recluster_fraction: float = 0.1
    max_iterations: int = 10

    @classmethod
    def from_config(cls, config: Config) -> TopicSettings:
        return config.settings("topics", cls)


# --- clustering -------------------------------------------------------------------------


def knn_graph(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of each row's k nearest rows (rows L2-normalised), -1 pads.

    For callers without a stored graph (bench/topics.py): the same index as the build's graph,
    exact below its size limit and HNSW above, queried in batches.
    """
    from .neighbours import build_index

    n = X.shape[0]
    k = max(1, min(k, n - 1))
    index = build_index(X)
    idx = np.full((n, k), -1, dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    for start in range(0, n, 2048):
        found, vals = index.search(X[start : start + 2048], k + 1)
        own = np.arange(start, start + len(found))[:, None]
        order = np.argsort(found == own, axis=1, kind="stable")[:, :k]  # self last, then dropped
        idx[start : start + len(found)] = np.take_along_axis(found, order, axis=1)
        sims[start : start + len(found)] = np.take_along_axis(vals, order, axis=1)
    return idx, sims


def subgraph(idx: np.ndarray, sims: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The graph among `rows` only (positions renumbered to rows' order), each row's first k
    neighbours that are among them, -1 pads."""
    inside = np.full(idx.shape[0], -1, dtype=np.int64)
    inside[rows] = np.arange(len(rows))
    sub = np.where(idx[rows] >= 0, inside[np.maximum(idx[rows], 0)], -1)
    order = np.argsort(sub < 0, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sub, order, axis=1), np.take_along_axis(sims[rows], order, axis=1)


def graph_edges(idx: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The symmetric kNN graph as sorted edges (a < b) with positive weights (the larger of the
    two directions' similarities), as three arrays: at a million records a list of Python pairs
    was 3-4 GB, most of the step's peak."""
    rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
    cols = idx.ravel()
    keep = (cols >= 0) & (cols != rows)
    a, b = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]
    w = np.maximum(sims.ravel()[keep].astype(np.float64), 1e-6)
    order = np.lexsort((-w, b, a))
    a, b, w = a[order], b[order], w[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[first], b[first], w[first]


def edge_pairs(a: np.ndarray, b: np.ndarray, chunk: int = 65536) -> Iterator[tuple[int, int]]:
    """The edges as (a, b) pairs, made a chunk at a time as igraph or networkx reads them."""
    for start in range(0, len(a), chunk):
        yield from zip(a[start : start + chunk].tolist(), b[start : start + chunk].tolist())


def leiden_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("igraph", "leidenalg"))


def _graph(X: np.ndarray, settings: TopicSettings, graph: tuple[np.ndarray, np.ndarray] | None
           ) -> tuple[np.ndarray, np.ndarray]:
    if graph is None:
        return knn_graph(X, settings.k)
    return graph[0][:, : settings.k], graph[1][:, : settings.k]


def leiden_labels(X: np.ndarray, settings: TopicSettings, seed: int,
                  graph: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Leiden communities, at most `max_iterations` passes (each linear in the edges).

    Run to convergence the number of passes grows with the corpus (17 at 6,000 records, 31 at
    24,000), every one after the second moving the quality by under 0.3%; the cap keeps the
    step linear and a corpus that converges sooner gets the same partition as before."""
    try:
        import igraph
        import leidenalg
    except ImportError:  # the ml extra brings them; without it, the next best graph method
        return louvain_labels(X, settings, seed, graph)
    a, b, weights = graph_edges(*_graph(X, settings, graph))
    graph_ = igraph.Graph(n=X.shape[0], edges=edge_pairs(a, b))
    part = leidenalg.RBConfigurationVertexPartition(graph_, weights=weights, resolution_parameter=settings.resolution)
    optimiser = leidenalg.Optimiser()
    optimiser.set_rng_seed(seed)
    for _ in range(settings.max_iterations):
        if optimiser.optimise_partition(part, n_iterations=1) <= 0:
            break
    return np.asarray(part.membership, dtype=np.int64)


def louvain_labels(X: np.ndarray, settings: TopicSettings, seed: int,
                   graph: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    import networkx as nx

    a, b, weights = graph_edges(*_graph(X, settings, graph))
    graph = nx.Graph()
    graph.add_nodes_from(range(X.shape[0]))
    graph.add_weighted_edges_from((i, j, w) for (i, j), w in zip(edge_pairs(a, b), map(float, weights)))
    labels = np.zeros(X.shape[0], dtype=np.int64)
    communities = nx.community.louvain_communities(graph, resolution=settings.resolution, seed=seed)
    for c, members in enumerate(sorted(communities, key=lambda m: (-len(m), min(m)))):
        labels[list(members)] = c
    return labels


def hdbscan_labels(X: np.ndarray, settings: TopicSettings, seed: int, graph: Any = None) -> np.ndarray:
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    reduced = PCA(n_components=min(20, X.shape[0] - 1, X.shape[1]), random_state=seed).fit_transform(X)
    return HDBSCAN(min_cluster_size=settings.min_topic_size, min_samples=3).fit_predict(reduced)


def agglomerative_labels(X: np.ndarray, settings: TopicSettings, seed: int, graph: Any = None) -> np.ndarray:
    """Ward linkage needs every pairwise distance: for measuring against, never for large n."""
    from sklearn.cluster import AgglomerativeClustering

    n_clusters = max(2, round(math.sqrt(X.shape[0] / 2) * settings.resolution))
    return AgglomerativeClustering(n_clusters=min(n_clusters, X.shape[0]), linkage="ward").fit_predict(X)


CLUSTERERS = {
    "leiden": leiden_labels,
    "louvain": louvain_labels,
    "hdbscan": hdbscan_labels,
    "agglomerative": agglomerative_labels,
}


def cluster(X: np.ndarray, settings: TopicSettings, seed: int,
            graph: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Topic of each row (0 = largest topic) and whether the row is an outlier.

    Rows of communities smaller than min_topic_size, and noise of HDBSCAN, are outliers,
    given the topic whose centre is nearest. `graph` is the rows' neighbour graph (indices and
    similarities), read by the graph methods instead of computing one.
    """
    if settings.method not in CLUSTERERS:
        from ..models import LandscapeError

        raise LandscapeError(f"topics.method: expected one of {', '.join(METHODS)}, found {settings.method!r}")
    if X.shape[0] < 2 * settings.min_topic_size:
        return np.zeros(X.shape[0], dtype=np.int64), np.zeros(X.shape[0], dtype=bool)
    raw = CLUSTERERS[settings.method](X, settings, seed, graph)
    sizes = Counter(int(c) for c in raw if c >= 0)
    kept = [c for c, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])) if n >= settings.min_topic_size]
    if not kept:
        return np.zeros(X.shape[0], dtype=np.int64), np.zeros(X.shape[0], dtype=bool)
    renumber = {c: i for i, c in enumerate(kept)}
    labels = np.array([renumber.get(int(c), -1) for c in raw], dtype=np.int64)
    outlier = labels < 0
    centres = centroids(X, labels, len(kept))
    if outlier.any():
        labels[outlier] = nearest_centre(X[outlier], centres)[0]
    return labels, outlier


def centroids(X: np.ndarray, labels: np.ndarray, n_topics: int) -> np.ndarray:
    """Normalised mean embedding of each topic's (non-negative label) rows, in one pass."""
    from scipy.sparse import csr_matrix

    labels = np.asarray(labels)
    rows = np.flatnonzero(labels >= 0)
    member = csr_matrix((np.ones(len(rows), dtype=np.float32), (labels[rows], rows)), shape=(n_topics, X.shape[0]))
    out = np.asarray(member @ X, dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def centre_similarity(X: np.ndarray, centres: np.ndarray, labels: np.ndarray, batch: int = 16384) -> np.ndarray:
    """Each row's similarity to its own topic's centre, a batch of rows at a time (centres[labels]
    whole is another copy of X)."""
    out = np.empty(len(X), dtype=np.float32)
    for start in range(0, len(X), batch):
        out[start : start + batch] = np.einsum("ij,ij->i", X[start : start + batch], centres[labels[start : start + batch]])
    return out


def nearest_centre(X: np.ndarray, centres: np.ndarray, batch: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most similar centre and that similarity, a batch of rows at a time."""
    best = np.zeros(len(X), dtype=np.int64)
    sims = np.zeros(len(X), dtype=np.float32)
    for start in range(0, len(X), batch):
        block = X[start : start + batch] @ centres.T
        best[start : start + batch] = np.argmax(block, axis=1)
        sims[start : start + batch] = block[np.arange(len(block)), best[start : start + batch]]
    return best, sims


# --- labels -----------------------------------------------------------------------------


def ctfidf(groups: list[Counter[str]], min_count: int = 2) -> list[list[tuple[str, float]]]:
    """Class-based TF-IDF: per group, terms ranked by frequency in it over frequency everywhere."""
    total: Counter[str] = Counter()
    for g in groups:
        total.update(g)
    avg = sum(sum(g.values()) for g in groups) / max(1, len(groups))
    ranked = []
    for g in groups:
        size = max(1, sum(g.values()))
        scores = [
            (term, (n / size) * math.log(1 + avg / total[term]))
            for term, n in g.items()
            if n >= min_count
        ]
        ranked.append(sorted(scores, key=lambda ts: (-ts[1], ts[0])))
    return ranked


def _stems(phrase: str) -> set[str]:
    return {w[:5] for w in phrase.replace("-", " ").split()}


def topic_label(
    concepts: list[tuple[str, float]], terms: list[tuple[str, float]], taken: set[str],
    generic: frozenset[str] = frozenset(),
) -> str:
    """2 to 4 words: the most distinctive concept, joined by a second one or a word when short.

    Concepts carried across the whole field (`generic`, e.g. "machine learning") never head a
    label, and the second part never repeats a word stem of the first.
    """
    phrases = [c for c, _ in concepts if 1 <= len(c.split()) <= 4 and c not in generic] + [t for t, _ in terms]
    for first_i, first in enumerate(phrases):
        words = first.split()
        label = first
        if len(words) < 2 or first in taken:
            extra = next(
                (p for p in phrases[first_i + 1 :]
                 if len(words) + len(p.split()) <= 4 and p not in taken and not _stems(p) & _stems(first)),
                None,
            )
            if extra is None:
                continue
            label = f"{first}, {extra}"
        if label not in taken:
            return label
    return "miscellaneous"


class Members:
    """Records' concepts as deduplicated (row, code) pairs and each code's name: compact where a
    dict of name lists per record was 1.1 GB at a million records."""

    def __init__(self, rows: np.ndarray, codes: np.ndarray, names: list[str]):
        width = max(1, len(names))
        pairs = unique_values(np.asarray(rows, dtype=np.int64) * width + np.asarray(codes, dtype=np.int64))
        self.rows, self.codes, self.names = pairs // width, pairs % width, names

    @classmethod
    def of_names(cls, ids: list[str], concepts: dict[str, list[str]]) -> Members:
        code: dict[str, int] = {}
        pairs = [(i, code.setdefault(c, len(code))) for i, rid in enumerate(ids) for c in concepts.get(rid, [])]
        return cls(np.asarray([p[0] for p in pairs]), np.asarray([p[1] for p in pairs]), list(code))

    def per_group(self, groups: np.ndarray, n_groups: int) -> list[Counter[str]]:
        """Per group, how many of its records carry each concept name (rows grouped by `groups`)."""
        width = max(1, len(self.names))
        keys, counts = unique_counts(groups[self.rows] * width + self.codes)
        out: list[Counter[str]] = [Counter() for _ in range(n_groups)]
        for key, n in zip(keys.tolist(), counts.tolist()):
            out[key // width][self.names[key % width]] += n
        return out


def concept_members(store: LandscapeReadStore, ids: list[str]) -> Members:
    """The records' concepts: the memberships this build's connections step read when it ran, else
    streamed from the store."""
    pos = {rid: i for i, rid in enumerate(ids)}
    names_by_key, stream = store.ls_concept_memberships()
    held = held_value(store, MEMBERSHIPS) if store.ls_concepts_built() else None
    if held is not None:
        held_ids, (held_rows, keys) = held
        to_pos = np.fromiter((pos.get(rid, -1) for rid in held_ids), dtype=np.int64, count=len(held_ids))
        rows = to_pos[held_rows]
        inside = (rows >= 0) & np.isin(keys, np.fromiter(names_by_key, dtype=np.int64, count=len(names_by_key)))
        used = unique_values(keys[inside])
        return Members(rows[inside], np.searchsorted(used, keys[inside]), [names_by_key[int(k)] for k in used])
    code: dict[Any, int] = {}
    pairs = array("q")
    for rid, key in stream:
        i = pos.get(rid)
        if i is not None and key in names_by_key:
            pairs.extend((i, code.setdefault(key, len(code))))
    flat = np.frombuffer(pairs, dtype=np.int64).reshape(-1, 2)
    return Members(flat[:, 0], flat[:, 1], [names_by_key[k] for k in code])


def record_tokens(row: dict[str, Any]) -> list[str]:
    return content_tokens(f"{row.get('title') or ''} {row.get('abstract') or ''}")


def describe_topics(
    ids: list[str],
    X: np.ndarray,
    labels: np.ndarray,
    outlier: np.ndarray,
    kinds: Sequence[str],
    areas: Sequence[str | None],
    memberships: Members,
    texts: Callable[[list[str]], dict[str, tuple[str, str]]],
) -> list[dict[str, Any]]:
    """Each topic's id, label, area, size and extra (top concepts, terms, papers, area share).

    `kinds` and `areas` are the records', in the order of `ids`; titles and abstracts come from
    `texts` a batch of ids at a time (so the whole corpus's text is never held at once)."""
    n_topics = int(labels.max()) + 1 if len(labels) else 0
    centres = centroids(X, np.where(outlier, -1, labels), n_topics)
    concept_groups = memberships.per_group(labels, n_topics)
    term_groups: list[Counter[str]] = [Counter() for _ in range(n_topics)]
    for start in range(0, len(ids), TEXT_BATCH):
        batch = ids[start : start + TEXT_BATCH]
        fetched = texts(batch)
        for i, rid in enumerate(batch, start):
            if rid in fetched:
                title, abstract = fetched[rid]
                term_groups[int(labels[i])].update(set(record_tokens({"title": title, "abstract": abstract})))
    concept_rank = ctfidf(concept_groups)
    carried = memberships.per_group(np.zeros(len(ids), dtype=np.int64), 1)[0]
    generic = frozenset(c for c, n in carried.items() if n > 0.12 * len(ids))
    term_rank = ctfidf(term_groups)
    topics, taken = [], set()
    to_centre = centre_similarity(X, centres, labels)
    by_topic = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[by_topic], np.arange(n_topics + 1))
    for t in range(n_topics):
        members = by_topic[bounds[t] : bounds[t + 1]].tolist()
        central = sorted(members, key=lambda i: (-float(to_centre[i]), ids[i]))
        shares = Counter(areas[i] for i in members if areas[i])
        area, area_n = shares.most_common(1)[0] if shares else (None, 0)
        label = topic_label(concept_rank[t], term_rank[t], taken, generic)
        taken.add(label)
        top_concepts = [c for c, _ in concept_rank[t][:8]] or [
            c for c, _ in sorted(concept_groups[t].items(), key=lambda cn: (-cn[1], cn[0]))[:8]]
        topics.append({
            "id": t,
            "label": label,
            "area": area,
            "size": len(members),
            "extra": {
                "top_concepts": top_concepts,
                "top_terms": [w for w, _ in term_rank[t][:10]],
                "top_papers": [ids[i] for i in central if kinds[i] == "paper"][:5],
                "area_share": round(area_n / max(1, sum(shares.values())), 3),
                "areas": dict(shares.most_common()),
                "outliers": int(sum(bool(outlier[i]) for i in members)),
            },
        })
    return topics


# --- the build step ---------------------------------------------------------------------


def save_model(centres: np.ndarray, info: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, centres=centres, info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8))
    return buf.getvalue()


def load_model(raw: bytes | None) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The stored centres and their info, or None for anything this version cannot read as
    plain arrays (never unpickled): the step then reclusters."""
    if raw is None:
        return None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            info = json.loads(data["info"].tobytes().decode())
            centres = np.asarray(data["centres"])
    except (ValueError, OSError, KeyError, EOFError, UnicodeDecodeError, zipfile.BadZipFile):
        return None
    return (centres, info) if isinstance(info, dict) and centres.ndim == 2 else None


def outlier_thresholds(scores: np.ndarray, labels: np.ndarray, outlier: np.ndarray, n_topics: int) -> list[float]:
    """Per topic, the similarity to its centre below which a record is an outlier (mean - 2 sd):
    `scores` are the records' similarities to their topics' centres."""
    sims = scores.astype(np.float64)
    kept = ~outlier
    t = labels[kept]
    count = np.bincount(t, minlength=n_topics)
    total = np.bincount(t, weights=sims[kept], minlength=n_topics)
    squares = np.bincount(t, weights=sims[kept] ** 2, minlength=n_topics)
    mean = total / np.maximum(count, 1)
    spread = np.sqrt(np.maximum(squares / np.maximum(count, 1) - mean**2, 0))
    return [float(m - 2 * s) if c > 1 else -1.0 for m, s, c in zip(mean, spread, count)]


class TopicsStep:
    name = "topics"

    def __init__(self, config: Config):
        self.config = config
        self.settings = TopicSettings.from_config(config)

    def run(self, ctx: BuildContext) -> dict[str, int]:
        store = ctx.store
        ids, X = record_embeddings(store, self.config)
        if not ids:
            return {"topics": 0, "assigned": 0}
        marks = store.ls_kinds_and_hashes()  # one index scan; titles are read when reclustering
        raw = store.ls_get_artifact(MODEL_ARTIFACT)
        model = load_model(raw)
        if model is None and raw is not None:
            ctx.log("topics: the stored topic model is not in a format this version reads (reclustering)")
        embedder = store.get_meta("embedder") or self.config.embedder
        assigned = store.ls_topic_assignments()
        if model is not None and not (ctx.relayout or getattr(ctx, "full", False)):
            centres, info = model
            hashes = info.get("hashes", {})
            pending = [i for i, rid in enumerate(ids) if rid not in assigned or hashes.get(rid) != marks[rid][1]]
            small = len(pending) <= self.settings.recluster_fraction * max(1, len(hashes))
            if info.get("embedder") == embedder and info.get("settings") == vars(self.settings) and small:
                return self._assign(store, ids, X, marks, pending, centres, info, assigned)
        if self.settings.method == "leiden" and not leiden_installed():
            ctx.fallback("topics: Louvain (networkx) instead of Leiden, which needs igraph and leidenalg:"
                         " pip install 'landscape[ml]'")
        return self._recluster(ctx, ids, X, marks, embedder)

    def _recluster(self, ctx: BuildContext, ids: list[str], X: np.ndarray, marks: dict[str, tuple[str, str]],
                   embedder: str) -> dict[str, int]:
        """Cluster every paper anew. `marks`: each record's kind and content hash."""
        kinds = [marks[rid][0] for rid in ids]
        papers = [i for i, kind in enumerate(kinds) if kind != "talk"] or list(range(len(ids)))
        store = ctx.store
        graph = graph_of(ctx, self.config, ids, X)
        among = subgraph(graph.idx, graph.sims, np.asarray(papers), self.settings.k)
        X_papers = X if len(papers) == len(ids) else X[papers]  # a copy of X otherwise
        labels_p, outlier_p = cluster(X_papers, self.settings, self.config.seed, among)
        n_topics = int(labels_p.max()) + 1
        centres = centroids(X_papers, np.where(outlier_p, -1, labels_p), n_topics)
        del X_papers
        labels = np.zeros(len(ids), dtype=np.int64)
        outlier = np.ones(len(ids), dtype=bool)
        talks = np.ones(len(ids), dtype=bool)
        labels[papers], outlier[papers], talks[papers] = labels_p, outlier_p, False
        if talks.any():
            labels[talks] = nearest_centre(X[talks], centres)[0]
        scores = centre_similarity(X, centres, labels)
        thresholds = outlier_thresholds(scores, labels, outlier, n_topics)
        outlier |= scores < np.asarray(thresholds)[labels]
        area_of = store.record_areas()
        areas = [area_of.get(rid) for rid in ids]
        del area_of
        topics = describe_topics(ids, X, labels, outlier, kinds, areas, concept_members(store, ids), store.ls_texts)
        info = {
            "embedder": embedder,
            "settings": vars(self.settings),
            "thresholds": thresholds,
            "hashes": {rid: marks[rid][1] for rid in ids},
        }
        with store.transaction():
            store.ls_replace_topics(
                topics, [(rid, int(labels[i]), bool(outlier[i]), float(scores[i])) for i, rid in enumerate(ids)]
            )
            store.ls_put_artifact(MODEL_ARTIFACT, save_model(centres, info))
        return {"topics": n_topics, "clustered": len(ids), "outliers": int(outlier.sum()), "assigned": 0}

    def _assign(self, store, ids, X, marks, pending, centres, info, assigned) -> dict[str, int]:
        """Newcomers join their nearest topic; far ones are flagged as outliers. `marks`: each
        record's kind and content hash."""
        stale = store.ls_delete_stale_topic_rows(ids) if set(assigned) - set(ids) else 0
        if not pending and not stale:
            return {"topics": len(centres), "assigned": 0, "unchanged": len(ids)}
        sims = X[pending] @ centres.T
        best = np.argmax(sims, axis=1)
        thresholds = info["thresholds"]
        rows_out = []
        for j, i in enumerate(pending):
            t = int(best[j])
            s = float(sims[j, t])
            kind, content_hash = marks[ids[i]]
            far = s < thresholds[t] or kind == "talk"
            rows_out.append((ids[i], t, far, s))
            info["hashes"][ids[i]] = content_hash
        with store.transaction():
            store.ls_put_record_topics(rows_out)
            store.ls_refresh_topic_sizes()
            store.ls_put_artifact(MODEL_ARTIFACT, save_model(centres, info))
        return {"topics": len(centres), "assigned": len(pending), "unchanged": len(ids) - len(pending)}


def step(config: Config) -> TopicsStep:
    return TopicsStep(config)


def topics_listing(store: LandscapeReadStore, top_papers: int = 5) -> list[dict[str, Any]]:
    """What `landscape topics` shows: id, label, area, size, top concepts, top papers."""
    titles = {r["id"]: r["title"] for r in store.ls_rows()}
    out = []
    for t in store.ls_topic_rows():
        extra = t["extra"]
        out.append({
            "id": t["id"],
            "label": t["label"],
            "area": t["area"],
            "size": t["size"],
            "outliers": extra.get("outliers", 0),
            "top_concepts": extra.get("top_concepts", [])[:6],
            "top_terms": extra.get("top_terms", [])[:6],
            "top_papers": [{"id": p, "title": titles.get(p)} for p in extra.get("top_papers", [])[:top_papers]],
        })
    return out
