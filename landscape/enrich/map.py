"""The 2-D map: a UMAP layout of the embeddings, fitted once and extended without moving anyone.

Default backend `numpy`: UMAP's algorithm (fuzzy kNN graph with per-point bandwidths, spectral
initialisation, attraction along graph edges and negative-sampling repulsion, a and b fitted
from min_dist) written with numpy and scipy. umap-learn computes the same thing, but its
numba kernels are compiled in every new process (12-20 s on this 2-core CPU, more than all
other landscape steps together) and `transform` compiles again; `bench/map.py` compares the
two layouts (trustworthiness) and times. `map.backend = "umap-learn"` in the config uses it.

The fitted model (training ids, their coordinates, a, b, settings) is kept in the artifact
`map.model`. A record added later is placed by `transform`: its kNN among the fitted records
gives fuzzy weights, it starts at their weighted mean and is refined against them while every
fitted point stays where it is. Only `landscape build --relayout` lays the map out anew.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Config
from ..models import LandscapeError
from .embed import record_embeddings

MODEL_ARTIFACT = "map.model"


@dataclass
class MapSettings:
    backend: str = "numpy"
    n_neighbors: int = 15
    min_dist: float = 0.1
    spread: float = 1.0
    negative_sample_rate: int = 5

    @classmethod
    def from_config(cls, config: Config) -> MapSettings:
        return config.settings("map", cls)


# --- the fuzzy graph ----------------------------------------------------------------------


def knn(query: np.ndarray, data: np.ndarray, k: int, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine distances of the k nearest rows of `data` (rows L2-normalised)."""
    k = min(k, data.shape[0] - (1 if exclude_self else 0))
    idx = np.zeros((query.shape[0], k), dtype=np.int64)
    dist = np.zeros((query.shape[0], k), dtype=np.float32)
    rows = max(1, 2**24 // max(data.shape[0], 1))  # bounded memory: 64 MB per block
    for start in range(0, query.shape[0], rows):
        d = 1.0 - query[start : start + rows] @ data.T
        if exclude_self:
            d[np.arange(d.shape[0]), start + np.arange(d.shape[0])] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        pd = np.take_along_axis(d, part, axis=1)
        order = np.lexsort((part, pd), axis=1)
        idx[start : start + len(d)] = np.take_along_axis(part, order, axis=1)
        dist[start : start + len(d)] = np.maximum(np.take_along_axis(pd, order, axis=1), 0)
    return idx, dist


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
    mean_d = max(float(dist.mean()), 1e-12)
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


def spectral_init(graph: Any, dim: int, seed: int) -> np.ndarray:
    """Eigenvectors of the normalised graph Laplacian, scaled to [-10, 10] (PCA-like fallback)."""
    from scipy.sparse import diags, identity
    from scipy.sparse.linalg import eigsh

    n = graph.shape[0]
    degree = np.asarray(graph.sum(axis=1)).ravel()
    d_inv = diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    laplacian = identity(n) - d_inv @ graph.tocsr() @ d_inv
    rng = np.random.default_rng(seed)
    try:
        values, vectors = eigsh(laplacian, k=dim + 1, which="SM", tol=1e-4, v0=rng.random(n),
                                maxiter=n * 5)
        coords = vectors[:, np.argsort(values)[1 : dim + 1]]
    except Exception:
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
    movable: np.ndarray | None = None,
    anchors: np.ndarray | None = None,
    negative_rate: int = 5,
) -> np.ndarray:
    """UMAP's stochastic layout, one vectorised step per epoch.

    Each edge is used in an epoch with probability proportional to its weight; the head is
    pulled to the tail (and the tail to the head, unless the tail is fixed) and pushed away from
    `negative_rate` random points. `anchors` are the points negatives are drawn from (defaults
    to all); `movable` marks the points allowed to move (transform moves only newcomers).
    """
    rng = np.random.default_rng(seed)
    Y = Y.astype(np.float64).copy()
    n = len(Y)
    pool = np.arange(n) if anchors is None else anchors
    can_move = np.ones(n, dtype=bool) if movable is None else movable
    prob = weights / weights.max()
    for epoch in range(n_epochs):
        alpha = 1.0 - epoch / n_epochs
        use = rng.random(len(head)) < prob
        h, t = head[use], tail[use]
        diff = Y[h] - Y[t]
        d2 = (diff**2).sum(axis=1)
        coeff = np.where(d2 > 0, (-2 * a * b * d2 ** (b - 1)) / (1 + a * d2**b), 0.0)
        grad = np.clip(coeff[:, None] * diff, -4, 4) * alpha
        move = np.zeros_like(Y)
        np.add.at(move, h, grad)
        np.add.at(move, t, -grad)
        nh = np.repeat(h, negative_rate)
        nt = pool[rng.integers(0, len(pool), len(nh))]
        ndiff = Y[nh] - Y[nt]
        nd2 = (ndiff**2).sum(axis=1)
        ncoeff = np.where(nd2 > 0, 2 * b / ((0.001 + nd2) * (1 + a * nd2**b)), 0.0)
        ngrad = np.where(nh[:, None] == nt[:, None], 0.0, np.clip(ncoeff[:, None] * ndiff, -4, 4)) * alpha
        np.add.at(move, nh, ngrad)
        counts = np.bincount(np.concatenate([h, t, nh]), minlength=n)[:, None]
        Y += np.where(can_move[:, None], move / np.sqrt(np.maximum(counts, 1)), 0.0)
    return Y


class NumpyUMAP:
    """UMAP fit/transform on cosine kNN with numpy (see module docstring)."""

    def __init__(self, settings: MapSettings, seed: int):
        self.settings = settings
        self.seed = seed
        self.a, self.b = find_ab(settings.spread, settings.min_dist)

    def fit(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        if n <= 2:
            return np.zeros((n, 2)) + np.arange(n)[:, None]
        idx, dist = knn(X, X, self.settings.n_neighbors, exclude_self=True)
        graph = fuzzy_graph(idx, fuzzy_weights(dist), n)
        graph.data[graph.data < graph.data.max() / 500] = 0
        graph.eliminate_zeros()
        Y = spectral_init(graph, 2, self.seed)
        epochs = 500 if n <= 10000 else 200
        Y = optimise(Y, graph.row, graph.col, graph.data, self.a, self.b, epochs, self.seed,
                     negative_rate=self.settings.negative_sample_rate)
        return Y - Y.mean(axis=0)

    def transform(self, X_new: np.ndarray, X_fit: np.ndarray, Y_fit: np.ndarray) -> np.ndarray:
        """Place new rows against the fitted ones, which do not move."""
        k = min(self.settings.n_neighbors, len(X_fit))
        idx, dist = knn(X_new, X_fit, k, exclude_self=False)
        weights = fuzzy_weights(dist).astype(np.float64)
        init = (weights[:, :, None] * Y_fit[idx]).sum(axis=1) / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        m = len(X_new)
        Y = np.vstack([init, Y_fit])
        head = np.repeat(np.arange(m), k)
        tail = idx.ravel() + m
        movable = np.zeros(len(Y), dtype=bool)
        movable[:m] = True
        Y = optimise(Y, head, tail, weights.ravel(), self.a, self.b, 100, self.seed, movable=movable,
                     anchors=np.arange(m, len(Y)), negative_rate=self.settings.negative_sample_rate)
        return Y[:m]


def umap_learn_fit(X: np.ndarray, settings: MapSettings, seed: int) -> tuple[np.ndarray, bytes]:
    try:
        import umap
    except ImportError:
        raise LandscapeError("map.backend umap-learn needs: pip install umap-learn") from None
    model = umap.UMAP(n_neighbors=settings.n_neighbors, min_dist=settings.min_dist, spread=settings.spread,
                      metric="cosine", random_state=seed, n_components=2)
    return model.fit_transform(X), pickle.dumps(model)


# --- the build step -------------------------------------------------------------------------


def save_model(ids: list[str], coords: np.ndarray, info: dict[str, Any], blob: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(
        buf, coords=coords, blob=np.frombuffer(blob, dtype=np.uint8),
        info=np.frombuffer(json.dumps({**info, "ids": ids}).encode(), dtype=np.uint8),
    )
    return buf.getvalue()


def load_model(raw: bytes | None) -> tuple[list[str], np.ndarray, dict[str, Any], bytes] | None:
    if raw is None:
        return None
    with np.load(io.BytesIO(raw)) as data:
        info = json.loads(data["info"].tobytes().decode())
        return info.pop("ids"), data["coords"], info, data["blob"].tobytes()


class MapStep:
    name = "map"

    def __init__(self, config: Config):
        self.config = config
        self.settings = MapSettings.from_config(config)

    def run(self, ctx: Any) -> dict[str, int]:
        store = ctx.store
        ids, X = record_embeddings(store, self.config)
        if not ids:
            return {"placed": 0}
        embedder = store.get_meta("embedder") or self.config.embedder
        model = load_model(store.ls_get_artifact(MODEL_ARTIFACT))
        if model is None or ctx.relayout or model[2].get("embedder") != embedder \
                or model[2].get("settings") != vars(self.settings):
            return self._fit(store, ids, X, embedder)
        fit_ids, fit_coords, info, blob = model
        have = store.ls_map_coords()
        pending = [i for i, rid in enumerate(ids) if rid not in have]
        if not pending:
            return {"placed": 0, "unchanged": len(ids)}
        row_of = {rid: i for i, rid in enumerate(ids)}
        kept = [j for j, rid in enumerate(fit_ids) if rid in row_of]
        X_fit = X[[row_of[fit_ids[j]] for j in kept]]
        Y_fit = fit_coords[kept]
        if self.settings.backend == "umap-learn":
            Y_new = pickle.loads(blob).transform(X[pending])
        else:
            Y_new = NumpyUMAP(self.settings, self.config.seed).transform(X[pending], X_fit, Y_fit)
        with store.transaction():
            store.ls_put_map_coords((ids[i], x, y) for i, (x, y) in zip(pending, Y_new))
        return {"placed": len(pending), "unchanged": len(ids) - len(pending)}

    def _fit(self, store: Any, ids: list[str], X: np.ndarray, embedder: str) -> dict[str, int]:
        blob = b""
        if self.settings.backend == "umap-learn":
            Y, blob = umap_learn_fit(X, self.settings, self.config.seed)
        elif self.settings.backend == "numpy":
            Y = NumpyUMAP(self.settings, self.config.seed).fit(X)
        else:
            raise LandscapeError(f"map.backend: expected numpy or umap-learn, found {self.settings.backend!r}")
        Y = np.round(np.asarray(Y, dtype=np.float64), 4)
        info = {"embedder": embedder, "settings": vars(self.settings), "seed": self.config.seed}
        with store.transaction():
            store.ls_put_map_coords(((rid, x, y) for rid, (x, y) in zip(ids, Y)), replace=True)
            store.ls_put_artifact(MODEL_ARTIFACT, save_model(ids, Y, info, blob))
        return {"placed": len(ids), "relayout": 1}


def step(config: Config) -> MapStep:
    return MapStep(config)
