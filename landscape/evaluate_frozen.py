"""`landscape eval --frozen FILE`: figures on papers held out of every fit, beside baselines.

Cross-validated figures were tuned on the folds they were scored on, so they did not carry over
to new papers. The frozen set is chosen once (per area, the papers whose normalised-title hash
is lowest, at least 20%), committed, and never tuned on. Scoring writes the store's records into
a temporary store in which the frozen papers arrive as unseen papers do (no area, no keyphrase
line, no keyphrases), runs the real build there (the keyphrase split, then embed, concepts,
areas, connections) and reads what it stored for them. The baselines are fit on the same
training records in the same run. Every figure carries a bootstrap 95% interval over the frozen
papers (percentile, resampling papers), and so does its difference from the baseline; each row
says the goal issue 17 set for it and whether this run met it.

Topics are measured against the papers' own concepts (nothing was tuned on them): the share of
a paper's top concepts that are among its topic's top concepts (the paper itself left out of
its topic's counts), and the purity of the topics against k-means clusters of the papers'
concept vectors. The baseline of both is the same topics dealt out at random (same sizes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .models import LandscapeError, Record
from .store.interfaces import BuildStore
from .text import STOPWORDS, content_tokens, normalise_title, tokens

FROZEN_SHARE = 0.2
BOOTSTRAP = 1000
BUILD_STEPS = ["embed", "concepts", "areas", "connections", "topics"]
TOP_CONCEPTS = 5
TOPIC_TOP_CONCEPTS = 20
FROZEN_HEADER = """\
# Frozen test set of the Landscape corpus (issue 17). NOTHING MAY BE TUNED ON THESE PAPERS:
# tune by cross-validation on the other records, and score this set once per change you keep
# (`landscape eval --frozen FILE`, bench/quality.py --frozen FILE).
# Chosen by landscape.evaluate_frozen.frozen_split: within each area, papers sorted by the
# SHA-1 of their normalised title (landscape.text.normalise_title), the first ceil({share} * n).
# Source: {source}
# One paper a line: record id, area, title (tab-separated); only the id is read.
"""


# --- the split ----------------------------------------------------------------------------


def title_hash(title: str) -> str:
    return hashlib.sha1(normalise_title(title).encode()).hexdigest()


def frozen_split(records: Iterable[Record], share: float = FROZEN_SHARE) -> list[Record]:
    """At least `share` of each area's titled papers, picked by title hash (stable, unbiased)."""
    by_area: dict[str, list[Record]] = {}
    for rec in records:
        if rec.area and rec.title and not rec.title_derived:
            by_area.setdefault(rec.area, []).append(rec)
    chosen: list[Record] = []
    for area in sorted(by_area):
        ranked = sorted(by_area[area], key=lambda r: (title_hash(r.title or ""), r.id))
        chosen += ranked[: math.ceil(share * len(ranked))]
    return chosen


def frozen_file_text(records: Iterable[Record], source: str, share: float = FROZEN_SHARE) -> str:
    rows = [f"{r.id}\t{r.area}\t{' '.join((r.title or '').split())}" for r in frozen_split(records, share)]
    return FROZEN_HEADER.format(share=share, source=source) + "\n".join(rows) + "\n"


def read_frozen(path: str | Path) -> list[str]:
    """The ids of a frozen-set file (first field of each line; '#' lines are comments)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LandscapeError(f"{path}: cannot read the frozen-set file ({exc.__class__.__name__})") from exc
    ids: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        rid = line.split("\t")[0].strip()
        if not rid or " " in rid:
            raise LandscapeError(f"{path}:{number}: expected a record id first on the line, found {line[:60]!r}")
        ids.append(rid)
    if not ids:
        raise LandscapeError(f"{path}:1: expected record ids, one a line, found none")
    return ids


# --- metrics ------------------------------------------------------------------------------


def proxy_relevance(lines: Sequence[str], rows: Sequence[int]) -> np.ndarray:
    """Relevance of every paper to each query row: keyphrase tokens their given lines share
    (stopwords and tokens in over 15% of the lines removed). Only the query rows are built."""
    toks = [{t for t in tokens(line) if t not in STOPWORDS} for line in lines]
    df = Counter(t for s in toks for t in s)
    n_lines = sum(1 for line in lines if line)
    common = {t for t, c in df.items() if c > 0.15 * n_lines}
    toks = [s - common for s in toks]
    index: dict[str, list[int]] = {}
    for j, s in enumerate(toks):
        for t in s:
            index.setdefault(t, []).append(j)
    rel = np.zeros((len(rows), len(lines)))
    for k, i in enumerate(rows):
        for t in toks[i]:
            rel[k, index[t]] += 1
        rel[k, i] = 0
    return rel


def ndcg_per_query(ranked: Sequence[Sequence[int]], rel: np.ndarray) -> np.ndarray:
    disc = 1 / np.log2(np.arange(2, 12))
    out = []
    for top, r in zip(ranked, rel, strict=True):
        top = list(top)[:10]
        ideal = np.sort(r)[::-1][:10]
        out.append(float((r[top] * disc[: len(top)]).sum() / (ideal * disc).sum()))
    return np.array(out)


def bm25_rows(texts: Sequence[str], rows: Sequence[int], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """BM25 of every text against the query rows' texts (sparse: never a texts x texts matrix
    of anything but the scores asked for)."""
    from scipy.sparse import csr_matrix

    docs = [Counter(content_tokens(t)) for t in texts]
    df = Counter(w for d in docs for w in d)
    vocab = {w: j for j, w in enumerate(df)}
    n = len(docs)
    avg = float(np.mean([sum(d.values()) for d in docs])) or 1.0
    data, cols, ptr = [], [], [0]
    for d in docs:
        length = sum(d.values())
        for w, f in d.items():
            idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
            data.append(idf * f * (k1 + 1) / (f + k1 * (1 - b + b * length / avg)))
            cols.append(vocab[w])
        ptr.append(len(data))
    weights = csr_matrix((data, cols, ptr), shape=(n, len(vocab)))
    qdata, qcols, qptr = [], [], [0]
    for i in rows:
        for w, f in docs[i].items():
            qdata.append(float(f))
            qcols.append(vocab[w])
        qptr.append(len(qdata))
    query = csr_matrix((qdata, qcols, qptr), shape=(len(rows), len(vocab)))
    return (query @ weights.T).toarray()


def rrf_top(matrices: Sequence[np.ndarray], rows: Sequence[int], k: int = 60, top: int = 10) -> list[list[int]]:
    """Reciprocal-rank fusion of score rows (each query's own column excluded)."""
    fused = np.zeros_like(matrices[0], dtype=float)
    for m in matrices:
        m = m.astype(float).copy()
        m[np.arange(len(rows)), list(rows)] = -np.inf
        order = np.argsort(-m, axis=1, kind="stable")
        ranks = np.empty_like(order)
        ranks[np.arange(len(m))[:, None], order] = np.arange(m.shape[1])[None, :]
        fused += 1.0 / (k + 1 + ranks)
    fused[np.arange(len(rows)), list(rows)] = -np.inf
    return np.argsort(-fused, axis=1, kind="stable")[:, :top].tolist()


def _macro_f1(y: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    f1s = []
    for c in range(n_labels):
        tp = float(np.sum((pred == c) & (y == c)))
        denom = float(np.sum(pred == c) + np.sum(y == c))
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def bootstrap(
    statistic: Callable[[np.ndarray], float], n: int, seed: int, reps: int = BOOTSTRAP
) -> tuple[float, float, np.ndarray]:
    """Percentile 95% interval of statistic(index) over resamples of n papers, and the draws."""
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(reps)])
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)), draws


def figure(
    name: str, ours: Callable[[np.ndarray], float], n: int, seed: int,
    base: Callable[[np.ndarray], float] | None = None, base_name: str = "",
) -> dict[str, Any]:
    """One row of the table: the value on all n papers, its interval, the baseline's and the
    paired difference's (same resamples for both)."""
    everyone = np.arange(n)
    lo, hi, draws = bootstrap(ours, n, seed)
    row: dict[str, Any] = {"measure": name, "papers": n, "landscape": round(ours(everyone), 4),
                           "landscape_ci": [round(lo, 4), round(hi, 4)]}
    if base is not None:
        blo, bhi, bdraws = bootstrap(base, n, seed)
        diff = draws - bdraws
        row.update({
            "baseline": base_name, "baseline_value": round(base(everyone), 4),
            "baseline_ci": [round(blo, 4), round(bhi, 4)],
            "difference_ci": [round(float(np.percentile(diff, 2.5)), 4), round(float(np.percentile(diff, 97.5)), 4)],
        })
    return row


# --- the temporary store ------------------------------------------------------------------


def unseen(rec: Record) -> Record:
    """The record as a paper nobody labelled: no area, no keyphrase line, no keyphrases."""
    return dataclasses.replace(rec, area=None, keyphrases=[], keyphrase_line=None)


def held_out_store(path: Path, records: Sequence[Record], frozen: set[str]) -> Any:
    """A store holding the training records as they are and the frozen ones as unseen papers,
    finished as an ingest is (search index, keyphrase lines re-split from training lines only)."""
    from .ingest import finish_ingest
    from .store import Store

    store = Store(path)
    with store.bulk_write():
        with store.transaction():
            for k in range(0, len(records), 500):
                store.upsert_records([unseen(r) if r.id in frozen else r for r in records[k : k + 500]])
        finish_ingest(store)
    return store


# --- the evaluation -----------------------------------------------------------------------


def evaluate_frozen(store: BuildStore, config: Config, frozen_path: str | Path, seed: int | None = None) -> dict[str, Any]:
    frozen_ids = read_frozen(frozen_path)
    records = list(store.iter_records())
    by_id = {r.id: r for r in records}
    missing = [rid for rid in frozen_ids if rid not in by_id]
    if missing:
        raise LandscapeError(
            f"{frozen_path}: expected ids of records in the store, found {len(missing)} that are not (first {missing[0]!r})"
        )
    frozen = set(frozen_ids)
    seed = config.seed if seed is None else seed
    with tempfile.TemporaryDirectory(prefix="landscape-frozen-") as tmp:
        held = held_out_store(Path(tmp) / "held.db", records, frozen)
        try:
            from .enrich.pipeline import build

            build(held, config, only=BUILD_STEPS)
            report = {
                "frozen_file": str(frozen_path), "frozen": len(frozen), "records": len(records),
                "embedder": config.embedder, "bootstrap": BOOTSTRAP,
            }
            areas, area_rows = _area_rows(held, config, by_id, frozen_ids, seed)
            kp, kp_rows = _keyphrase_rows(held, by_id, frozen_ids, seed)
            conn, conn_rows = _connection_rows(held, config, records, frozen_ids, seed)
            topics, topic_rows = _topic_rows(held, frozen_ids, seed)
            report.update({"areas": areas, "keyphrases": kp, "connections": conn, "topics": topics,
                           "rows": with_goals(area_rows + kp_rows + conn_rows + topic_rows, config)})
        finally:
            held.close()
    return report


def _area_rows(held: Any, config: Config, by_id: dict[str, Record], frozen_ids: list[str], seed: int) -> tuple[dict, list]:
    from .enrich.area_model import TfidfModel, single_thread
    from .enrich.areas import area_data
    from .evaluate import expected_calibration_error

    train = [r for r in held.iter_records() if r.area]
    labels = sorted({r.area for r in train})
    scored = [rid for rid in frozen_ids if by_id[rid].area in labels]
    if len(labels) < 2 or not scored:
        return {"papers": 0, "note": "no labelled frozen papers in two or more areas"}, []
    y = np.array([labels.index(by_id[rid].area) for rid in scored])
    views = [held.record_view(rid) for rid in scored]
    ours = np.array([[(v["area_probabilities"] or {}).get(a, 0.0) for a in labels] for v in views])
    sets = [v["area_set"] or [] for v in views]
    with single_thread():
        base_model = TfidfModel().fit(area_data(held, config, train), labels)
        base = base_model.proba(area_data(held, config, [held.get_record(rid) for rid in scored]))
    covered = np.array([labels[t] in s for t, s in zip(y, sets, strict=True)], dtype=float)
    size = np.array([len(s) for s in sets], dtype=float)
    n, k = len(scored), len(labels)
    rows = [
        figure("area macro-F1", lambda i: _macro_f1(y[i], ours[i].argmax(1), k), n, seed,
               lambda i: _macro_f1(y[i], base[i].argmax(1), k), "TF-IDF + LR"),
        figure("area ECE (10 bins)", lambda i: expected_calibration_error(ours[i], y[i]), n, seed,
               lambda i: expected_calibration_error(base[i], y[i]), "TF-IDF + LR"),
        figure(f"conformal coverage (nominal {config.conformal_coverage:.2f})", lambda i: float(covered[i].mean()), n, seed),
        figure("conformal mean set size", lambda i: float(size[i].mean()), n, seed),
    ]
    return {"papers": n, "labels": labels, "trained_on": sorted(r.id for r in train)}, rows


def _keyphrase_rows(held: Any, by_id: dict[str, Record], frozen_ids: list[str], seed: int) -> tuple[dict, list]:
    from .enrich.concepts import clean_text, refine_given
    from .evaluate import KEYPHRASE_TOP, _borrow_baseline, token_scores

    scored = [rid for rid in frozen_ids if by_id[rid].keyphrase_line]
    train = [r for r in held.iter_records() if r.keyphrases]
    if not scored or len(train) < 10:
        return {"papers": 0, "note": "no frozen papers with a keyphrase line"}, []
    given = refine_given({r.id: r.keyphrases for r in train})
    borrow = _borrow_baseline([r.text for r in train], [given[r.id] for r in train])
    ours, base, stored = [], [], []
    for rid in scored:
        view = held.record_view(rid)
        phrases = view["keyphrases"][:KEYPHRASE_TOP] if view["keyphrases_source"] == "predicted" else []
        stored.append(phrases)
        gold = by_id[rid].keyphrase_line or ""
        ours.append(token_scores(gold, phrases)[2])
        base.append(token_scores(gold, borrow(clean_text(held.get_record(rid).text)))[2])
    a, b = np.array(ours), np.array(base)
    row = figure(f"keyphrase token F1 (top {KEYPHRASE_TOP})", lambda i: float(a[i].mean()), len(a), seed,
                 lambda i: float(b[i].mean()), "borrow from TF-IDF neighbours")
    examples = [{"id": rid, "gold": by_id[rid].keyphrase_line, "predicted": p} for rid, p in zip(scored[:3], stored, strict=False)]
    return {"papers": len(a), "trained_on": sorted(r.id for r in train), "examples": examples}, [row]


def _connection_rows(held: Any, config: Config, records: list[Record], frozen_ids: list[str], seed: int) -> tuple[dict, list]:
    from .enrich.embed import record_embeddings

    ids, matrix = record_embeddings(held, config)
    pos = {rid: k for k, rid in enumerate(ids)}
    gold = {r.id: r.keyphrase_line or "" for r in records}
    lines = [gold.get(rid, "") for rid in ids]
    candidates = [pos[rid] for rid in frozen_ids if rid in pos and gold.get(rid)]
    rel = proxy_relevance(lines, candidates)
    keep = [k for k in range(len(candidates)) if rel[k].max() > 0]
    rows_ = [candidates[k] for k in keep]
    rel = rel[keep]
    if not rows_:
        return {"queries": 0, "note": "no frozen query with a relevant paper"}, []
    stored = held.all_connections()
    ours = ndcg_per_query([[pos[o] for o, _ in stored.get(ids[i], [])] for i in rows_], rel)
    texts = held.record_texts(ids)
    lexical = bm25_rows([texts[rid] for rid in ids], rows_)
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    dense = unit[rows_] @ unit.T
    base = ndcg_per_query(rrf_top([lexical, dense], rows_), rel)
    row = figure("connections nDCG@10 (keyphrase proxy)", lambda i: float(ours[i].mean()), len(rows_), seed,
                 lambda i: float(base[i].mean()), f"BM25 + {config.embedder} fusion (RRF)")
    return {"queries": len(rows_), "candidates": len(ids)}, [row]


def _topic_rows(held: Any, frozen_ids: list[str], seed: int) -> tuple[dict, list]:
    """Topic-concept agreement and purity for the frozen papers that have a topic and concepts."""
    concepts = held.record_concepts()
    assigned = {rid: t for rid, (t, outlier, _) in held.ls_topic_assignments().items() if not outlier and t >= 0}
    top = {rid: _top_concepts(c) for rid, c in concepts.items() if rid in assigned and c}
    scored = [rid for rid in frozen_ids if rid in top]
    topic_ids = sorted({assigned[rid] for rid in top})
    if len(scored) < 2 or len(topic_ids) < 2:
        return {"papers": 0, "note": "fewer than two frozen papers with a topic and concepts"}, []
    counts: dict[int, Counter[str]] = {}
    for rid, names in top.items():
        counts.setdefault(assigned[rid], Counter()).update(names)
    rng = np.random.default_rng(seed)
    pool = sorted(top)
    dealt = dict(zip(pool, rng.permutation([assigned[rid] for rid in pool]).tolist(), strict=True))
    ours = np.array([_agreement(top[rid], counts[assigned[rid]], top[rid]) for rid in scored])
    base = np.array([_agreement(top[rid], counts[dealt[rid]], top[rid] if dealt[rid] == assigned[rid] else [])
                     for rid in scored])
    clusters = _concept_clusters(pool, top, len(topic_ids), seed)
    pure = _in_majority(scored, assigned, clusters, pool)
    pure_random = _in_majority(scored, dealt, clusters, pool)
    n = len(scored)
    rows = [
        figure(f"topic-concept agreement (top {TOP_CONCEPTS} in topic's top {TOPIC_TOP_CONCEPTS})",
               lambda i: float(ours[i].mean()), n, seed, lambda i: float(base[i].mean()), "random topics (same sizes)"),
        figure("topic purity vs concept clusters", lambda i: float(pure[i].mean()), n, seed,
               lambda i: float(pure_random[i].mean()), "random topics (same sizes)"),
    ]
    return {"papers": n, "topics": len(topic_ids), "clustered": len(pool)}, rows


def _top_concepts(weights: dict[str, float]) -> list[str]:
    return [name for name, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CONCEPTS]]


def _agreement(mine: list[str], topic: Counter[str], own: list[str]) -> float:
    """Share of `mine` among the topic's most frequent concepts, `own` taken out of its counts."""
    rest = topic - Counter(own)
    best = {name for name, _ in sorted(rest.items(), key=lambda kv: (-kv[1], kv[0]))[:TOPIC_TOP_CONCEPTS]}
    return sum(name in best for name in mine) / len(mine)


def _concept_clusters(ids: list[str], top: dict[str, list[str]], k: int, seed: int) -> dict[str, int]:
    """k-means of the papers' top-concept sets (idf-weighted, unit length)."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=lambda names: names, norm="l2")
    X = vec.fit_transform([top[rid] for rid in ids])
    labels = KMeans(n_clusters=min(k, len(ids)), n_init=4, random_state=seed).fit_predict(X)
    return dict(zip(ids, labels.tolist(), strict=True))


def _in_majority(scored: list[str], topic: dict[str, int], clusters: dict[str, int], pool: list[str]) -> np.ndarray:
    """1 for each scored paper in the concept cluster most common in its topic (over every
    clustered paper): its mean is the topics' purity, and it resamples paper by paper."""
    pairs = Counter((topic[rid], clusters[rid]) for rid in pool)
    majority: dict[int, tuple[int, int]] = {}
    for (t, c), count in sorted(pairs.items()):
        if count > majority.get(t, (-1, 0))[1]:
            majority[t] = (c, count)
    return np.array([float(clusters[rid] == majority[topic[rid]][0]) for rid in scored])


def with_goals(rows: list[dict[str, Any]], config: Config) -> list[dict[str, Any]]:
    """Each row with issue 17's goal for it and whether this run met it (None: reported only)."""
    nominal = config.conformal_coverage
    for r in rows:
        name, value = r["measure"], r["landscape"]
        goal, met = "reported", None
        if name == "area macro-F1":
            goal = "baseline + 0.04, difference interval above 0"
            met = value - r["baseline_value"] >= 0.04 and r["difference_ci"][0] > 0
        elif name.startswith("area ECE"):
            goal, met = "< 0.05", value < 0.05
        elif name.startswith("conformal coverage"):
            goal, met = f"{nominal:.2f} +/- 0.03", abs(value - nominal) <= 0.03
        elif name == "conformal mean set size":
            goal, met = "< 1.5", value < 1.5
        elif name.startswith("keyphrase token F1"):
            goal, met = ">= 0.50", value >= 0.5
        elif name.startswith("connections nDCG@10"):
            r["ratio"] = round(value / r["baseline_value"], 4) if r["baseline_value"] else None
            goal, met = ">= 1.08 x baseline", bool(r["ratio"] and r["ratio"] >= 1.08)
        r["goal"], r["met"] = goal, None if met is None else bool(met)
    return rows


def format_frozen(report: dict[str, Any]) -> str:
    head = ("measure", "Landscape [95% CI]", "baseline [95% CI]", "difference [95% CI]", "baseline", "goal", "met")
    body = []
    for r in report["rows"]:
        ours = f"{r['landscape']:.3f} [{r['landscape_ci'][0]:.3f}, {r['landscape_ci'][1]:.3f}]"
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        goal = r["goal"] + (f" (now {r['ratio']:.3f} x)" if r.get("ratio") else "")
        if "baseline" in r:
            base = f"{r['baseline_value']:.3f} [{r['baseline_ci'][0]:.3f}, {r['baseline_ci'][1]:.3f}]"
            diff = f"{r['landscape'] - r['baseline_value']:+.3f} [{r['difference_ci'][0]:+.3f}, {r['difference_ci'][1]:+.3f}]"
            body.append((f"{r['measure']} (n={r['papers']})", ours, base, diff, r["baseline"], goal, met))
        else:
            body.append((f"{r['measure']} (n={r['papers']})", ours, "", "", "", goal, met))
    widths = [max(len(row[c]) for row in [head, *body]) for c in range(len(head))]
    lines = [
        f"frozen set: {report['frozen']} of {report['records']} records from {report['frozen_file']}, "
        f"ingested without area or keyphrases; everything fit on the other records; embedder {report['embedder']}; "
        f"bootstrap {report['bootstrap']} resamples of the frozen papers",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body]
    for part in ("areas", "keyphrases", "connections", "topics"):
        note = report[part].get("note")
        if note:
            lines.append(f"{part}: {note}")
    return "\n".join(lines)
