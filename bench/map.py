"""Compare map layouts on a built store: trustworthiness, kNN preservation, time, placing.

    .venv/bin/python bench/map.py [--db landscape.db]

numpy (Landscape's own UMAP) against umap-learn, both seeded, on the stored embeddings.
Trustworthiness (k=10, cosine) near 1 means map neighbours are real neighbours. "place"
fits on all but 10 records and places those 10 as the build places records it did not fit,
reporting how far each lands from where the fit put its 10 nearest neighbours (median, in
units of the map's median neighbour gap).
Read-only. umap-learn's first fit in a process includes numba compilation; it is shown apart.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.manifold import trustworthiness

from landscape.config import Config
from landscape.enrich.embed import record_embeddings
from landscape.enrich.map import MapSettings, NumpyUMAP, knn, place
from landscape.store import Store


def knn_overlap(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    hi, _ = knn(X, X, k, exclude_self=True)
    Yn = Y - Y.mean(axis=0)
    d = ((Yn[:, None, :] - Yn[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    lo = np.argsort(d, axis=1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(hi, lo)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="landscape.db")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    store = Store(args.db, readonly=True)
    config = Config()
    ids, X = record_embeddings(store, config)
    settings = MapSettings()
    print(f"{len(ids)} records")
    print(f"{'backend':<22} {'seconds':>8} {'trust@10':>9} {'kNN@10':>7}")
    start = time.perf_counter()
    Y = NumpyUMAP(settings, config.seed).fit(X)
    t = time.perf_counter() - start
    print(f"{'numpy':<22} {t:>8.2f} {trustworthiness(X, Y, n_neighbors=10, metric='cosine'):>9.3f} {knn_overlap(X, Y):>7.3f}")
    start = time.perf_counter()
    fitted = NumpyUMAP(settings, config.seed)
    Y_fit = fitted.fit(X[:-10])
    fit_t = time.perf_counter() - start
    start = time.perf_counter()
    Y_new = place(X[-10:], X[:-10], Y_fit, settings.n_neighbors)
    tr_t = time.perf_counter() - start
    _, gaps = knn(X[:-10], X[:-10], 1, exclude_self=True)
    idx, _ = knn(X[-10:], X[:-10], 10, exclude_self=False)
    spread = np.median(np.linalg.norm(Y_fit[:, None] - Y_fit[knn(X[:-10], X[:-10], 1, exclude_self=True)[0]], axis=-1))
    miss = np.median(np.linalg.norm(Y_new - np.median(Y_fit[idx], axis=1), axis=1)) / max(spread, 1e-9)
    print(f"{'numpy place 10':<22} {tr_t:>8.2f}  (fit {fit_t:.2f}s; lands {miss:.2f} gaps from its neighbours)")
    try:
        import umap
    except ImportError:
        print("umap-learn not installed")
        return
    for label in ("umap-learn (1st, JIT)", "umap-learn"):
        start = time.perf_counter()
        Y2 = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=config.seed).fit_transform(X)
        t = time.perf_counter() - start
        print(f"{label:<22} {t:>8.2f} {trustworthiness(X, Y2, n_neighbors=10, metric='cosine'):>9.3f} {knn_overlap(X, Y2):>7.3f}")


if __name__ == "__main__":
    main()
