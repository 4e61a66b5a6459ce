"""Connection quality on ../shared/corpus: nDCG@10 against a keyphrase-overlap proxy, in one run.

Relevance of B for query A = the number of keyphrase tokens their given keyphrase lines share
(stopwords and tokens found in over 15% of the lines removed). Every paper with a keyphrase
line and at least one relevant other paper is a query. Printed side by side, all in this run:
BM25 alone (query = the paper's title + abstract, over titles + abstracts), dense MiniLM alone,
their reciprocal-rank fusion (k=60), each signal of Landscape's connections alone, and the
connections themselves as `landscape build` stores them.

The query's own keyphrases and area are never read when it is scored (see
landscape/enrich/connections.py); the last table checks it: a copy of the store in which 20
query papers lost their keyphrases and area, rebuilt from scratch, ranks them as well.

    .venv/bin/python bench/quality.py [--corpus PATH] [--db BUILT_STORE]
    .venv/bin/python bench/quality.py --frozen tests/fixtures/frozen_test_ids.txt [--embedder tfidf]
    .venv/bin/python bench/quality.py --citations [--fixtures DIR]

With --frozen FILE it prints instead the frozen-set table of `landscape eval --frozen FILE`
(areas, calibration, conformal sets, keyphrases, connections, and topics against the papers'
own concepts, each with a bootstrap 95% interval, beside baselines fit in the same run on the
records not in FILE, with issue 17's goal for each row and whether it was met). The frozen set
is never tuned on: score it once per change you keep, and log it in
tests/fixtures/README.quality.md.

With --citations it prints instead what citation reasons do to connections, with and without
the citation signal in one run, on a corpus synced from the recorded answers under
tests/fixtures/sync (held-out citation links and the keyphrase proxy, with bootstrap
intervals; see bench/quality_citations.py).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from landscape.config import Config  # noqa: E402
from landscape.enrich.connections import WEIGHTS, Corpus  # noqa: E402
from landscape.enrich.pipeline import build  # noqa: E402
from landscape.evaluate_frozen import evaluate_frozen, format_frozen  # noqa: E402
from landscape.ingest import ingest_paths  # noqa: E402
from landscape.store import Store  # noqa: E402
from landscape.text import STOPWORDS, content_tokens, tokens  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
STEPS = ["embed", "connections"]


def relevance(lines: list[str]) -> np.ndarray:
    toks = [{t for t in tokens(line) if t not in STOPWORDS} for line in lines]
    df = Counter(t for s in toks for t in s)
    n_lines = sum(1 for line in lines if line)
    common = {t for t, c in df.items() if c > 0.15 * n_lines}
    toks = [s - common for s in toks]
    n = len(lines)
    rel = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                rel[i, j] = len(toks[i] & toks[j])
    return rel


def ndcg_at_10(ranked: dict[int, list[int]], rel: np.ndarray, queries: list[int]) -> float:
    disc = 1 / np.log2(np.arange(2, 12))
    out = []
    for i in queries:
        top = ranked[i][:10]
        ideal = np.sort(rel[i])[::-1][:10]
        out.append(float((rel[i][top] * disc[: len(top)]).sum() / (ideal * disc).sum()))
    return float(np.mean(out))


def rank_rows(scores: np.ndarray) -> dict[int, list[int]]:
    scores = scores.astype(float).copy()
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")
    return {i: order[i, :10].tolist() for i in range(len(scores))}


def bm25_matrix(texts: list[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    docs = [Counter(content_tokens(t)) for t in texts]
    n = len(docs)
    df = Counter(w for d in docs for w in d)
    vocab = {w: j for j, w in enumerate(df)}
    avg = np.mean([sum(d.values()) for d in docs])
    weights = np.zeros((n, len(vocab)))
    query = np.zeros((n, len(vocab)))
    for j, d in enumerate(docs):
        length = sum(d.values())
        for w, f in d.items():
            idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
            weights[j, vocab[w]] = idf * f * (k1 + 1) / (f + k1 * (1 - b + b * length / avg))
            query[j, vocab[w]] = f
    return query @ weights.T


def rrf_matrix(*matrices: np.ndarray, k: int = 60) -> np.ndarray:
    out = np.zeros_like(matrices[0], dtype=float)
    for m in matrices:
        m = m.astype(float).copy()
        np.fill_diagonal(m, -np.inf)
        order = np.argsort(-m, axis=1, kind="stable")
        ranks = np.empty_like(order)
        rows = np.arange(len(m))[:, None]
        ranks[rows, order] = np.arange(m.shape[1])[None, :]
        out += 1.0 / (k + 1 + ranks)
    return out


def stored_rankings(store: Store, ids: list[str]) -> dict[int, list[int]]:
    pos = {rid: i for i, rid in enumerate(ids)}
    return {pos[rid]: [pos[o] for o, _ in conns] for rid, conns in store.all_connections().items()}


def built_store(corpus: Path, db: Path, config: Config) -> float:
    with Store(db) as store:
        ingest_paths(store, [str(corpus)])
        start = time.perf_counter()
        build(store, config, only=STEPS)
        return time.perf_counter() - start


def table(title: str, rows: list[tuple[str, ...]], head: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print(f"\n{title}")
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def frozen_table(corpus: Path, frozen: Path, config: Config) -> None:
    with tempfile.TemporaryDirectory(prefix="landscape-quality-") as tmp, Store(Path(tmp) / "corpus.db") as store:
        ingest_paths(store, [str(corpus)])
        start = time.perf_counter()
        report = evaluate_frozen(store, config, frozen)
        print(format_frozen(report))
        print(f"\n(scored in {time.perf_counter() - start:.0f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--db", type=Path, help="a store already built from the corpus (skips the build)")
    parser.add_argument("--victims", type=int, default=20)
    parser.add_argument("--frozen", type=Path, help="print the frozen-set table for the papers listed in FILE")
    parser.add_argument("--embedder", default=None, help="minilm (default), tfidf or sentence-transformers:PATH")
    parser.add_argument("--citations", action="store_true", help="score citation reasons on recorded answers")
    parser.add_argument("--fixtures", type=Path, help="recorded answers for --citations (tests/fixtures/sync)")
    args = parser.parse_args()
    config = Config()
    if args.embedder:
        config.embedder = args.embedder
    if args.frozen:
        frozen_table(args.corpus, args.frozen, config)
        return
    if args.citations:
        from quality_citations import FIXTURES, citation_tables

        citation_tables(args.fixtures or FIXTURES, config, relevance, table)
        return
    tmp = Path(tempfile.mkdtemp(prefix="landscape-quality-"))
    db = tmp / "landscape.db"
    if args.db:
        shutil.copy(args.db, db)
        with Store(db) as store:
            build(store, config, only=STEPS)
        print(f"store: copy of {args.db} (brought up to date)")
    else:
        seconds = built_store(args.corpus, db, config)
        print(f"store: {args.corpus} ingested and built ({' + '.join(STEPS)}) in {seconds:.1f}s")

    with Store(db) as store:
        corpus = Corpus.from_store(store, config)
        ids = corpus.ids
        lines = [store.get_record(rid).keyphrase_line or "" for rid in ids]
        texts = store.record_texts(ids)
        rel = relevance(lines)
        queries = [i for i in range(len(ids)) if lines[i] and rel[i].max() > 0]
        bm25 = bm25_matrix([texts[rid] for rid in ids])
        dense = corpus.vectors @ corpus.vectors.T
        rows: list[tuple[str, ...]] = []
        fusion = ndcg_at_10(rank_rows(rrf_matrix(bm25, dense)), rel, queries)
        for name, matrix in (("BM25 alone", bm25), (f"dense {store.get_meta('embedder')} alone", dense)):
            rows.append((name, f"{ndcg_at_10(rank_rows(matrix), rel, queries):.4f}"))
        rows.append(("RRF(BM25, dense)", f"{fusion:.4f}"))
        signals = corpus.signals(corpus.records_as_queries(range(len(ids))))
        for name in [*WEIGHTS, "authors"]:
            rows.append((f"connections signal '{name}' alone", f"{ndcg_at_10(rank_rows(signals[name]), rel, queries):.4f}"))
        landscape = ndcg_at_10(stored_rankings(store, ids), rel, queries)
        rows.append(("Landscape connections (stored)", f"{landscape:.4f}"))
    table(f"nDCG@10, {len(queries)} query papers of {len(ids)}", rows, ("method", "nDCG@10"))
    print(f"\nconnections / fusion = {landscape / fusion:.3f} (goal >= 1.08 on the frozen set: --frozen)")

    victims = queries[:: max(1, len(queries) // args.victims)][: args.victims]
    wiped = tmp / "wiped.db"
    shutil.copy(db, wiped)
    with Store(wiped) as store:
        with store.transaction():
            for i in victims:
                store.set_keyphrases(ids[i], [], "given")
                store.connection_for_tests.execute("UPDATE records SET area = NULL, area_source = NULL WHERE id = ?", (ids[i],))
        build(store, config, only=STEPS, full=True)
        after = stored_rankings(store, ids)
    with Store(db) as store:
        before = stored_rankings(store, ids)
    same = sum(before[i][:10] == after[i][:10] for i in victims)
    table(
        f"the same {len(victims)} query papers with and without their own keyphrases and area (full rebuild)",
        [("with", f"{ndcg_at_10(before, rel, victims):.4f}", "-"),
         ("wiped", f"{ndcg_at_10(after, rel, victims):.4f}", f"{same}/{len(victims)}")],
        ("query papers", "nDCG@10", "identical top-10"),
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
