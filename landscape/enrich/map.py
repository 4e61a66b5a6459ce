"""The 2-D map: UMAP fitted on a bounded sample, everyone else placed among their neighbours.

Default backend `numpy`: UMAP's algorithm (fuzzy kNN graph with per-point bandwidths, spectral
initialisation, attraction along graph edges and negative-sampling repulsion, a and b fitted
from min_dist) written with numpy and scipy. umap-learn computes the same thing, but its
numba kernels are compiled in every new process (12-20 s on this 2-core CPU, more than all
other landscape steps together); `bench/map.py` compares the two layouts (trustworthiness) and
times. `map.backend = "umap-learn"` in the config uses it.

Either backend lays out at most `map.fit_sample` records (50,000 by default; a seeded random
sample when there are more). Every other record, and every record added later, is placed at
the similarity-weighted mean of the coordinates of its nearest fitted records (cosine over the
embeddings, UMAP's fuzzy membership weights, found with the neighbour index of
`neighbours.py` in batches): no n x n matrix, no refit, and no fitted point moves. The artifact
`map.model` keeps the sample's ids and coordinates as arrays (kind "map", `landscape.artifacts`),
never a pickled UMAP. Only `landscape build --relayout` (or a changed embedder or setting) lays
the map out anew.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts import Artifact, describe, pack, unpack
from ..config import Config
from ..models import LandscapeError
from .embed import record_embeddings
from .neighbours import EXACT_LIMIT, ExactIndex, build_index
from .predictors import array_strings, strings_array

if TYPE_CHECKING:
    from .pipeline import BuildContext

MODEL_ARTIFACT = "map.model"
MODEL_KIND = "map"
MODEL_VERSION = 2  # 1 held every fitted id and, for umap-learn, a pickle
BATCH = 4096  # records placed per neighbour search
EXACT_QUERIES = 5000  # up to this many records to place, an exact search beats building an index
SMALL_GRAPH = 200  # up to this many points the spectral layout is a dense eigendecomposition


@dataclass
class MapSettings:
    backend: str = "numpy"
    n_neighbors: int = 15
    min_dist: float = 0.1
    spread: float = 1.0
    negative_sample_rate: int = 5
    fit_sample: int = 50_000

    @classmethod
    def from_config(cls, config: Config) -> MapSettings:
        return config.settings("map", cls)


# --- the fuzzy graph ----------------------------------------------------------------------


def knn(query: np.ndarray, data: np.ndarray, k: int, exclude_self: bool,
        index: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine distances of the k nearest rows of `data` (rows L2-normalised), nearest
    first, from the neighbour index (`index`, or one built here: exact when small, HNSW when
    large) in batches. With `exclude_self`, `query` is `data` and a row is not its own neighbour."""
    k = max(0, min(k, data.shape[0] - (1 if exclude_self else 0)))
    index = build_index(data) if index is None else index
    idx = np.zeros((query.shape[0], k), dtype=np.int64)
    dist = np.zeros((query.shape[0], k), dtype=np.float32)
    for start in range(0, query.shape[0], BATCH):
        found, sims = index.search(query[start : start + BATCH], k + (1 if exclude_self else 0))
        if exclude_self:
            found, sims = _without_self(found, sims, start)
        idx[start : start + len(found)] = found
        dist[start : start + len(found)] = np.maximum(1.0 - sims, 0.0)
    return idx, dist


def _without_self(found: np.ndarray, sims: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's own index dropped (or, where the search did not return it, its last hit)."""
    own = found == (start + np.arange(len(found)))[:, None]
    own[~own.any(axis=1), -1] = True
    keep = ~own
    k = found.shape[1] - 1
    return found[keep].reshape(-1, k), sims[keep].reshape(-1, k)


def fuzzy_weights(dist: np.ndarray, n_iter: int = 64) -> np.ndarray:
    """UMAP's membership strengths: exp(-(d - rho) / sigma) with sum = log2(k) per row."""
    k = dist.shape[1]
    target = np.log2(k)
    rho = np.where(dist > 0, dist, np.inf).min(axis=1)
    rho = np.where(np.isfinite(rho), rho, 0.0)[:, None]
    excess = np.maximum(dist - rho, 0.0)
    lo = np.zeros(len(dist))
    hi = np.full(len(dist), np.inf)
    sigma = np.ones(len(dist))
    for _ in range(n_iter):
        total = np.exp(-excess / sigma[:, None]).sum(axis=1)
        too_big = total > target
        hi = np.where(too_big, sigma, hi)
        lo = np.where(too_big, lo, sigma)
        sigma = np.where(np.isinf(hi), sigma * 2, (lo + hi) / 2)
    mean_d = max(float(dist.mean()), 1e-12) if dist.size else 1.0
    sigma = np.maximum(sigma, 1e-3 * mean_d)
    return np.exp(-excess / sigma[:, None]).astype(np.float32)


def fuzzy_graph(idx: np.ndarray, weights: np.ndarray, n: int) -> Any:
    """The symmetric fuzzy union W + W' - W*W' as a sparse matrix."""
    from scipy.sparse import coo_matrix

    rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
    W = coo_matrix((weights.ravel(), (rows, idx.ravel())), shape=(n, n)).tocsr()
    W.sum_duplicates()
    T = W.T.tocsr()
    return (W + T - W.multiply(T)).tocoo()


def find_ab(spread: float, min_dist: float) -> tuple[float, float]:
    """The curve 1 / (1 + a d^2b) closest to UMAP's target for min_dist (as umap-learn fits it)."""
    from scipy.optimize import curve_fit

    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xv, yv)
    return float(a), float(b)


def spectral_init(graph: Any, dim: int, seed: int, fallback: Callable[[str], None]) -> np.ndarray:
    """Eigenvectors of the normalised graph Laplacian, scaled to [-10, 10].

    The smallest eigenvectors of L = I - D^-1/2 W D^-1/2 are the largest of D^-1/2 W D^-1/2,
    which Lanczos finds in far fewer iterations (measured: the "SM" form took minutes at 50,000
    points). Where the solver fails the layout starts from random positions, and `fallback`
    says so."""
    from scipy.sparse import diags
    from scipy.sparse.linalg import eigsh

    n = graph.shape[0]
    rng = np.random.default_rng(seed)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    d_inv = diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    adjacency = d_inv @ graph.tocsr() @ d_inv
    try:
        if n <= SMALL_GRAPH:
            values, vectors = np.linalg.eigh(adjacency.toarray())
        else:
            values, vectors = eigsh(adjacency, k=dim + 1, which="LA", tol=1e-4, v0=rng.random(n), maxiter=n * 5)
        coords = vectors[:, np.argsort(-values)[1 : dim + 1]]
        if not np.all(np.isfinite(coords)):
            raise ValueError("the eigenvectors are not finite")
    except Exception as exc:  # noqa: BLE001 - any solver failure means the same fallback
        fallback(f"map: spectral initialisation failed ({type(exc).__name__}: {str(exc)[:120]});"
                 " the layout started from random positions")
        coords = rng.normal(size=(n, dim))
    coords = coords / max(np.abs(coords).max(), 1e-12) * 10
    return coords + rng.normal(scale=1e-4, size=coords.shape)


# --- optimisation -------------------------------------------------------------------------


def optimise(
    Y: np.ndarray,
    head: np.ndarray,
    tail: np.ndarray,
    weights: np.ndarray,
    a: float,
    b: float,
    n_epochs: int,
    seed: int,
    negative_rate: int = 5,
) -> np.ndarray:
    """UMAP's stochastic layout, one vectorised step per epoch.

    Each edge is used in an epoch with probability proportional to its weight; the head is
    pulled to the tail and the tail to the head, and the head pushed away from `negative_rate`
    random points. Coordinates are kept as two rows (x and y) and moves summed with bincount:
    gathering 1-D rows and bincount are several times faster than 2-D fancy indexing and
    np.add.at (measured at 6,000 points, where this loop is nearly all of the map's time).
    """
    rng = np.random.default_rng(seed)
    P = np.array(Y, dtype=np.float64).T.copy()
    n = P.shape[1]
    prob = weights / weights.max()
    for epoch in range(n_epochs):
        alpha = 1.0 - epoch / n_epochs
        use = rng.random(len(head)) < prob
        h, t = head[use], tail[use]
        diff = P[:, h] - P[:, t]
        d2 = diff[0] ** 2 + diff[1] ** 2
        d2b = d2**b
        coeff = np.divide(-2 * a * b * d2b, d2 * (1 + a * d2b), out=np.zeros_like(d2), where=d2 > 0)
        grad = np.clip(coeff * diff, -4, 4) * alpha
        nh = np.repeat(h, negative_rate)
        nt = rng.integers(0, n, len(nh))
        ndiff = P[:, nh] - P[:, nt]
        nd2 = ndiff[0] ** 2 + ndiff[1] ** 2
        ngrad = np.clip(2 * b / ((0.001 + nd2) * (1 + a * nd2**b)) * ndiff, -4, 4) * alpha
        hits = np.bincount(h, minlength=n)
        scale = 1.0 / np.sqrt(np.maximum((1 + negative_rate) * hits + np.bincount(t, minlength=n), 1))
        for d in range(2):
            move = (np.bincount(h, weights=grad[d], minlength=n) - np.bincount(t, weights=grad[d], minlength=n)
                    + np.bincount(nh, weights=ngrad[d], minlength=n))
            P[d] += move * scale
    return P.T.copy()


class NumpyUMAP:
    """UMAP fit on cosine kNN with numpy (see module docstring)."""

    def __init__(self, settings: MapSettings, seed: int, fallback: Callable[[str], None] = lambda _m: None):
        self.settings = settings
        self.seed = seed
        self.fallback = fallback
        self.a, self.b = find_ab(settings.spread, settings.min_dist)

    def fit(self, X: np.ndarray, index: Any = None) -> np.ndarray:
        """The layout of X's rows; `index` is a neighbour index over X if the caller has one."""
        n = X.shape[0]
        if n <= 2:
            return np.zeros((n, 2)) + np.arange(n)[:, None]
        idx, dist = knn(X, X, self.settings.n_neighbors, exclude_self=True, index=index)
        graph = fuzzy_graph(idx, fuzzy_weights(dist), n)
        graph.data[graph.data < graph.data.max() / 500] = 0
        graph.eliminate_zeros()
        Y = spectral_init(graph, 2, self.seed, self.fallback)
        epochs = 500 if n <= 10000 else 200
        Y = optimise(Y, graph.row, graph.col, graph.data, self.a, self.b, epochs, self.seed,
                     negative_rate=self.settings.negative_sample_rate)
        return Y - Y.mean(axis=0)


def umap_learn_fit(X: np.ndarray, settings: MapSettings, seed: int, fallback: Callable[[str], None]) -> np.ndarray:
    """umap-learn's layout of X; its own warning that spectral initialisation failed becomes a
    fallback line (umap-learn then starts from random positions too)."""
    try:
        import umap
    except ImportError:
        raise LandscapeError("map.backend umap-learn needs: pip install umap-learn") from None
    model = umap.UMAP(n_neighbors=settings.n_neighbors, min_dist=settings.min_dist, spread=settings.spread,
                      negative_sample_rate=settings.negative_sample_rate, metric="cosine",
                      random_state=seed, n_components=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Y = model.fit_transform(X)
    for w in caught:
        if "Spectral initialisation failed" in str(w.message):
            fallback("map: umap-learn's spectral initialisation failed; the layout started from random positions")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return np.asarray(Y, dtype=np.float64)


# --- placing records among the fitted ones --------------------------------------------------


def place(X_new: np.ndarray, X_fit: np.ndarray, Y_fit: np.ndarray, k: int, index: Any = None) -> np.ndarray:
    """Each new row at the mean of its k nearest fitted rows' coordinates, weighted by UMAP's
    fuzzy membership (the nearest counts fully, the rest by how close they are). `index` is a
    neighbour index over X_fit; without one, a few rows are searched exactly (cheaper than
    building an index), many through `build_index`."""
    out = np.zeros((len(X_new), 2))
    k = min(k, len(X_fit))
    if not len(X_new) or k == 0:
        return out
    if index is None:
        exact = len(X_fit) < EXACT_LIMIT or len(X_new) <= EXACT_QUERIES
        index = ExactIndex(X_fit) if exact else build_index(X_fit)
    for start in range(0, len(X_new), BATCH):
        idx, sims = index.search(X_new[start : start + BATCH], k)
        w = fuzzy_weights(np.maximum(1.0 - sims, 0.0)).astype(np.float64)
        total = np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        out[start : start + len(idx)] = (w[:, :, None] * Y_fit[idx]).sum(axis=1) / total
    return out


PLACE_CHUNK = 65536  # rows placed per call when the rest of a corpus is placed after the fit


def fit_sample(n: int, size: int, seed: int) -> np.ndarray:
    """Which rows the layout is fitted on: all of them, or a seeded random `size` of them."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


# --- label layers ---------------------------------------------------------------------------

COARSE_MAX = 12  # regions at the coarsest level, the few labels seen zoomed out
LEVEL_STEP = 4  # each finer level has about this many times the labels of the one above


def level_sizes(n_topics: int) -> list[int]:
    """How many regions each coarse level has, coarsest first: none for a handful of topics,
    then 12 (or a quarter of the topics), 4x more per level while that still merges topics."""
    if n_topics < 8:
        return []
    sizes = [min(COARSE_MAX, max(2, n_topics // 4))]
    while sizes[-1] * LEVEL_STEP * 2 <= n_topics:
        sizes.append(sizes[-1] * LEVEL_STEP)
    return sizes


def region_name(labels: list[str], weights: list[float]) -> str:
    """A region's label from its topics' labels: the phrases most of its records carry (a topic
    label is one or two phrases joined by ", ", the first the more distinctive, which breaks
    ties), two of them unless they share a word."""
    score: dict[str, float] = {}
    place: dict[str, int] = {}
    for label, w in zip(labels, weights):
        for i, phrase in enumerate(label.split(", ")):
            score[phrase] = score.get(phrase, 0.0) + w
            place[phrase] = min(place.get(phrase, i), i)
    ranked = sorted(score, key=lambda p: (-score[p], place[p], p))
    if not ranked:
        return ""
    second = next((p for p in ranked[1:] if not set(p.split()) & set(ranked[0].split())), None)
    return ranked[0] if second is None else f"{ranked[0]} · {second}"


def label_levels(x: np.ndarray, y: np.ndarray, topic: np.ndarray, labels: list[str],
                 seed: int = 0) -> list[dict[str, Any]]:
    """Map labels at several zoom levels, coarsest (level 0) first, the topics themselves last.

    Topics have one level, so the coarser ones are derived: the topics' centres on the map
    (means of their points, found with bincount) are grouped by k-means weighted by size, so a
    region is a contiguous part of the map. Each label sits at the mean of its points. Cost:
    O(points) for the centres, O(topics x regions) for the grouping; never topics squared."""
    n_topics = len(labels)
    valid = topic < n_topics
    t = topic[valid].astype(np.int64)
    size = np.bincount(t, minlength=n_topics).astype(np.float64)
    cx = np.bincount(t, weights=x[valid], minlength=n_topics) / np.maximum(size, 1)
    cy = np.bincount(t, weights=y[valid], minlength=n_topics) / np.maximum(size, 1)
    present = np.flatnonzero(size > 0)
    sizes = level_sizes(len(present))
    out: list[dict[str, Any]] = []
    if sizes:
        from sklearn.cluster import KMeans

        centres = np.column_stack([cx[present], cy[present]])
        for level, k in enumerate(sizes):
            groups = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(centres, sample_weight=size[present])
            for g in range(k):
                members = present[groups == g]
                if not len(members):
                    continue
                w = size[members]
                out.append({"level": level, "label": region_name([labels[i] for i in members], list(w)),
                            "x": round(float((cx[members] * w).sum() / w.sum()), 4),
                            "y": round(float((cy[members] * w).sum() / w.sum()), 4), "size": int(w.sum())})
    out += [{"level": len(sizes), "label": labels[i], "x": round(float(cx[i]), 4), "y": round(float(cy[i]), 4),
             "size": int(size[i]), "topic": int(i)} for i in present]
    return out


# --- the build step -------------------------------------------------------------------------


class MapStep:
    name = "map"

    def __init__(self, config: Config):
        self.config = config
        self.settings = MapSettings.from_config(config)

    def run(self, ctx: BuildContext) -> dict[str, int]:
        store = ctx.store
        ids, X = record_embeddings(store, self.config)
        if not ids:
            return {"placed": 0}
        embedder = store.get_meta("embedder") or self.config.embedder
        fitted = None if ctx.relayout else self._stored(ctx, embedder)
        if fitted is None:
            return self._fit(ctx, ids, X, embedder)
        fit_ids, fit_coords = fitted
        unplaced = store.ls_unplaced_ids()
        pending = [i for i, rid in enumerate(ids) if rid in unplaced]
        if not pending:
            return {"placed": 0, "unchanged": len(ids)}
        row_of = {rid: i for i, rid in enumerate(ids)}
        kept = [j for j, rid in enumerate(fit_ids) if rid in row_of]
        if not kept:
            return self._fit(ctx, ids, X, embedder)
        X_fit = X[[row_of[fit_ids[j]] for j in kept]]
        Y_new = place(X[pending], X_fit, fit_coords[kept], self.settings.n_neighbors)
        with store.transaction():
            store.ls_put_map_coords((ids[i], x, y) for i, (x, y) in zip(pending, np.round(Y_new, 4)))
        return {"placed": len(pending), "unchanged": len(ids) - len(pending)}

    def _stored(self, ctx: BuildContext, embedder: str) -> tuple[list[str], np.ndarray] | None:
        """The fitted sample's ids and coordinates, if stored for this embedder and these settings;
        a stored model this version cannot read is refitted with a line in the build output."""
        blob = ctx.store.ls_get_artifact(MODEL_ARTIFACT)
        artifact = unpack(blob, MODEL_KIND, MODEL_VERSION)
        if artifact is None:
            if blob is not None:
                ctx.log(f"map: {describe(blob, MODEL_KIND, MODEL_VERSION)}")
            return None
        if artifact.meta.get("embedder") != embedder or artifact.meta.get("settings") != vars(self.settings):
            return None
        try:
            fit_ids = array_strings(artifact.arrays["ids"])
            coords = np.asarray(artifact.arrays["coords"], dtype=np.float64)
        except (KeyError, ValueError, TypeError):
            coords, fit_ids = np.zeros((0, 0)), []
        if coords.shape != (len(fit_ids), 2) or not fit_ids or not np.all(np.isfinite(coords)):
            ctx.log(f"map: stored {MODEL_KIND} model is damaged (refitting)")
            return None
        return fit_ids, coords

    def _fit(self, ctx: BuildContext, ids: list[str], X: np.ndarray, embedder: str) -> dict[str, int]:
        store = ctx.store
        if self.settings.backend not in ("numpy", "umap-learn"):
            raise LandscapeError(f"map.backend: expected numpy or umap-learn, found {self.settings.backend!r}")
        sample = fit_sample(len(ids), max(int(self.settings.fit_sample), 3), self.config.seed)
        X_fit = X[sample]
        rest = np.setdiff1d(np.arange(len(ids)), sample)
        index = build_index(X_fit) if self.settings.backend == "numpy" or len(rest) else None
        if self.settings.backend == "umap-learn":
            Y_fit = umap_learn_fit(X_fit, self.settings, self.config.seed, ctx.fallback)
        else:
            Y_fit = NumpyUMAP(self.settings, self.config.seed, ctx.fallback).fit(X_fit, index)
        Y_fit = np.round(np.asarray(Y_fit, dtype=np.float64), 4)
        Y = np.zeros((len(ids), 2))
        Y[sample] = Y_fit
        for start in range(0, len(rest), PLACE_CHUNK):  # X[rest] whole would be another copy of X
            part = rest[start : start + PLACE_CHUNK]
            Y[part] = np.round(place(X[part], X_fit, Y_fit, self.settings.n_neighbors, index), 4)
        model = Artifact(
            MODEL_KIND, MODEL_VERSION,
            {"embedder": embedder, "settings": vars(self.settings), "seed": self.config.seed},
            {"ids": strings_array([ids[i] for i in sample]), "coords": Y_fit},
        )
        with store.transaction():
            store.ls_put_map_coords(((rid, x, y) for rid, (x, y) in zip(ids, Y)), replace=True)
            store.ls_put_artifact(MODEL_ARTIFACT, pack(model))
        return {"placed": len(ids), "fitted": len(sample), "relayout": 1}


def step(config: Config) -> MapStep:
    return MapStep(config)
