"""Compare topic clusterings on a built store: NMI with given areas, NPMI coherence, outliers, time.

    .venv/bin/python bench/topics.py [--db landscape.db]

Runs each method of landscape.enrich.topics on the stored embeddings of the papers, labels
the topics the way the build does, and prints one table. Read-only: nothing is written.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from landscape.config import Config
from landscape.enrich.embed import record_embeddings
from landscape.enrich.quality import npmi_coherence
from landscape.enrich.topics import Members, TopicSettings, cluster, describe_topics, record_tokens
from landscape.store import Store

CANDIDATES = [
    ("leiden", {"resolution": 1.0}),
    ("leiden", {"resolution": 1.5}),
    ("leiden", {"resolution": 2.0}),
    ("leiden", {"resolution": 2.5}),  # the default
    ("leiden", {"resolution": 3.0}),
    ("louvain", {"resolution": 1.5}),
    ("louvain", {"resolution": 2.0}),
    ("hdbscan", {}),
    ("agglomerative", {"resolution": 1.0}),
    ("agglomerative", {"resolution": 1.5}),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="landscape.db")
    args = parser.parse_args()
    store = Store(args.db, readonly=True)
    config = Config()
    ids, X = record_embeddings(store, config)
    rows = {r["id"]: r for r in store.ls_rows()}
    keep = [i for i, rid in enumerate(ids) if rows[rid]["kind"] == "paper"]
    ids, X = [ids[i] for i in keep], X[keep]
    concepts = store.ls_record_concept_names()
    documents = [set(record_tokens(rows[rid])) for rid in ids]
    labelled = [i for i, rid in enumerate(ids) if rows[rid]["area_source"] == "given"]
    areas = [rows[ids[i]]["area"] for i in labelled]
    print(f"{len(ids)} papers, {len(labelled)} with a given area")
    print(f"{'method':<14} {'setting':<16} {'topics':>6} {'NMI':>6} {'NPMI':>7} {'outliers':>8} {'seconds':>7}")
    for method, extra in CANDIDATES:
        settings = TopicSettings(method=method, **extra)
        start = time.perf_counter()
        labels, outlier = cluster(X, settings, config.seed)
        seconds = time.perf_counter() - start
        topics = describe_topics(ids, X, labels, outlier, [rows[r]["kind"] for r in ids], [rows[r]["area"] for r in ids],
                                 Members.of_names(ids, concepts),
                                 lambda batch: {r: (rows[r]["title"], rows[r]["abstract"]) for r in batch})
        npmi = np.mean(npmi_coherence([t["extra"]["top_terms"][:10] for t in topics], documents))
        nmi = normalized_mutual_info_score(areas, labels[labelled])
        setting = ",".join(f"{k}={v}" for k, v in extra.items()) or "-"
        print(f"{method:<14} {setting:<16} {int(labels.max()) + 1:>6} {nmi:>6.3f} {npmi:>7.3f}"
              f" {outlier.mean():>8.3f} {seconds:>7.2f}")


if __name__ == "__main__":
    main()
