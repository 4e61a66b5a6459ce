"""The area model: calibrated probabilities and a conformal prediction set for every record.

The classifier learns from whatever labelled records the store holds (the set of areas is
whatever the labels contain). Four base models each see the record differently:
  TF-IDF words and bigrams -> logistic regression,
  MiniLM embedding         -> logistic regression,
  authors                  -> how the same authors' labelled papers are spread over areas,
  nearest labelled papers  -> their areas, weighted by cosine similarity of the embeddings;
a logistic regression stacks their out-of-fold log-probabilities. Temperature scaling is fit
on held-out stacked probabilities, and split-conformal prediction on the same held-out
probabilities gives sets that hold the true area with the configured coverage.

Chosen by cross-validation inside the 366 papers of ../shared/corpus outside the frozen test
set (4 folds x 3 seeds, issue 17): the neighbours' labels raised macro-F1 by about 0.014, and a
stronger regularised stacker (C 0.1 instead of 1) lowered the calibration error (pooled over the
folds 0.044 -> 0.030) and the mean conformal set size. Embedding the whole abstract in 256-token
chunks (about half the abstracts are longer) lowered macro-F1 by 0.01 and was not kept.

Labelled records keep their given area; their probabilities are the held-out (cross-validated)
ones, so they say honestly whether the model agrees. With no labels at all, areas come
zero-shot from `config.area_descriptions` by embedding similarity.

Fitted models are stored as numpy-only predictors (`predictors.py`), so predicting new
records never imports scikit-learn, and kept in the store as their fitted numbers (artifact
kind "areas", `landscape.artifacts`): never a pickle. A stored model this version cannot read
(an older format, a pickle, damage) is refitted, and the build output says so.

Calibration is only as good as the records it was fit on (full abstracts). A record that says
little the model knows (an empty abstract, a one-word title, another language) has its
probabilities shrunk towards the label prior in proportion to how few known words it has, so
its prediction set grows instead of claiming a confidence nothing supports.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..artifacts import Artifact
from ..config import Config
from ..text import content_tokens, normalise_author
from .predictors import LiteLogistic, LiteTfidf, array_strings, prefixed, strings_array, unprefixed

MIN_PER_AREA = 2
LABELS_ARTIFACT = "areas.labels"
MODEL_KIND = "areas"
MODEL_VERSION = 2  # 1 was a pickle
EVIDENCE_FULL = 20  # distinct known content words at which a record counts as fully informative
EVIDENCE_KEPT = 20_000  # texts whose evidence a model keeps (more than one prediction batch)
META_C = 0.1  # the stacker's regularisation (cross-validated, see the module docstring)
NEIGHBOURS_K = 10
NEIGHBOURS_STORED = 20_000  # labelled embeddings kept by the neighbours model at most (float16)
MIN_SAMPLED = 10  # labelled records of each area a bounded fit keeps at least (all, where fewer)


@dataclass
class AreaSettings:
    """[extra.areas] settings.

    `fit_sample`: the most labelled records the model is fitted on. The fit cross-validates a
    stack of four base models, so its cost grows faster than the labels; above this bound it
    reads a sample stratified by area (each area in proportion, at least MIN_SAMPLED of each,
    seeded by `config.seed`), and the labelled records outside it are predicted by the fitted
    model like unlabelled ones (held out by construction, so their probabilities are as honest
    as the cross-validated ones of the sample). At or below the bound every labelled record is
    fitted on, exactly as without it. A changed bound takes effect at the next fit (labels
    changed past LABEL_DRIFT, or `build --full`), like any other change that is not a label's.
    `batch`: records predicted at a time (bounds the memory of the TF-IDF and stacked matrices).
    """

    fit_sample: int = 20_000
    batch: int = 5_000


def fit_sample(labels: Sequence[str], bound: int, seed: int) -> list[int]:
    """Positions (ascending) of the labelled records to fit on: all of them up to `bound`,
    else a seeded sample stratified by area of about `bound`."""
    if len(labels) <= bound:
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    by_area: dict[str, list[int]] = {}
    for k, label in enumerate(labels):
        by_area.setdefault(label, []).append(k)
    chosen: list[int] = []
    for area in sorted(by_area):
        members = by_area[area]
        take = min(len(members), max(MIN_SAMPLED, len(members) * bound // len(labels)))
        chosen.extend(rng.choice(members, size=take, replace=False).tolist())
    return sorted(chosen)


def single_thread() -> Any:
    """BLAS limited to one thread: these fits are small, and on a busy 2-core machine
    oversubscribed BLAS threads made them 20-50x slower (measured)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


@dataclass
class AreaData:
    """What the area model reads for a set of records: text, embedding and authors."""

    ids: list[str]
    texts: list[str]
    embeddings: np.ndarray
    authors: list[list[str]]
    labels: list[str | None] = field(default_factory=list)

    def take(self, index: Sequence[int]) -> AreaData:
        index = list(index)
        return AreaData(
            [self.ids[i] for i in index], [self.texts[i] for i in index], self.embeddings[index],
            [self.authors[i] for i in index], [self.labels[i] for i in index] if self.labels else [],
        )


def _aligned(proba: np.ndarray, have: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Probabilities over `labels`, from a model that only knew the classes `have`."""
    out = np.full((proba.shape[0], len(labels)), 1e-6)
    pos = {label: k for k, label in enumerate(labels)}
    for j, label in enumerate(have):
        out[:, pos[label]] = proba[:, j]
    return out / out.sum(axis=1, keepdims=True)


def _folds(y: Sequence[str], n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = Counter(y)
    n = max(2, min(n, len(y)))
    if min(counts.values()) >= n:
        splitter: Any = StratifiedKFold(n, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), list(y)))
    return list(KFold(n, shuffle=True, random_state=seed).split(np.zeros(len(y))))


class TfidfModel:
    def __init__(self, C: float = 10.0):
        self.C = C

    def fit(self, data: AreaData, labels: Sequence[str]) -> TfidfModel:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.labels = list(labels)
        self.vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, stop_words="english")
        try:
            X = self.vec.fit_transform(data.texts)
        except ValueError:
            self.vec = TfidfVectorizer(sublinear_tf=True, min_df=1)
            X = self.vec.fit_transform([t or "empty" for t in data.texts])
        self.model = LiteLogistic(LogisticRegression(C=self.C, solver="newton-cg", max_iter=500).fit(X, data.labels))
        self.vec = LiteTfidf(self.vec)
        return self

    def proba(self, data: AreaData) -> np.ndarray:
        X = self.vec.transform(data.texts)
        return _aligned(self.model.predict_proba(X), list(self.model.classes_), self.labels)

    def state(self) -> dict[str, np.ndarray]:
        return {**prefixed("vec.", self.vec.state()), **prefixed("model.", self.model.state())}

    def load(self, state: dict[str, np.ndarray], labels: Sequence[str]) -> TfidfModel:
        self.labels = list(labels)
        self.vec = LiteTfidf.from_state(unprefixed("vec.", state))
        self.model = _checked_logistic(LiteLogistic.from_state(unprefixed("model.", state)), labels)
        if self.model.coef.shape[1] != len(self.vec.idf):
            raise ValueError("areas tfidf: coefficients and vocabulary disagree")
        return self


class EmbeddingModel:
    def __init__(self, C: float = 10.0):
        self.C = C

    def fit(self, data: AreaData, labels: Sequence[str]) -> EmbeddingModel:
        from sklearn.linear_model import LogisticRegression

        self.labels = list(labels)
        model = LogisticRegression(C=self.C, solver="newton-cg", max_iter=500).fit(data.embeddings, data.labels)
        self.model = LiteLogistic(model)
        return self

    def proba(self, data: AreaData) -> np.ndarray:
        return _aligned(self.model.predict_proba(data.embeddings), list(self.model.classes_), self.labels)

    def state(self) -> dict[str, np.ndarray]:
        return self.model.state()

    def load(self, state: dict[str, np.ndarray], labels: Sequence[str]) -> EmbeddingModel:
        self.labels = list(labels)
        self.model = _checked_logistic(LiteLogistic.from_state(state), labels)
        return self


class AuthorModel:
    """P(area | authors): how the same authors' labelled papers spread over areas, smoothed."""

    def fit(self, data: AreaData, labels: Sequence[str]) -> AuthorModel:
        self.labels = list(labels)
        self.counts: dict[str, Counter[str]] = {}
        for authors, label in zip(data.authors, data.labels, strict=True):
            for a in authors:
                self.counts.setdefault(normalise_author(a), Counter())[label] += 1
        prior = Counter(data.labels)
        total = sum(prior.values())
        self.prior = np.array([prior[label] / total for label in self.labels])
        return self

    def proba(self, data: AreaData) -> np.ndarray:
        out = []
        for authors in data.authors:
            c: Counter[str] = Counter()
            for a in authors:
                c.update(self.counts.get(normalise_author(a), {}))
            v = np.array([c[label] for label in self.labels], dtype=float) + 2.0 * self.prior
            out.append(v / v.sum())
        return np.array(out).reshape(len(data.authors), len(self.labels))

    def state(self) -> dict[str, np.ndarray]:
        authors = sorted(self.counts)
        counts = np.array([[self.counts[a][label] for label in self.labels] for a in authors], dtype=np.int64)
        return {"authors": strings_array(authors), "counts": counts.reshape(len(authors), len(self.labels)),
                "prior": self.prior}

    def load(self, state: dict[str, np.ndarray], labels: Sequence[str]) -> AuthorModel:
        self.labels = list(labels)
        authors = array_strings(state["authors"])
        counts = np.asarray(state["counts"], dtype=np.int64)
        self.prior = np.asarray(state["prior"], dtype=np.float64)
        if counts.shape != (len(authors), len(self.labels)) or self.prior.shape != (len(self.labels),):
            raise ValueError("areas authors: counts, authors and labels disagree")
        self.counts = {
            a: Counter({label: int(n) for label, n in zip(self.labels, row, strict=True) if n})
            for a, row in zip(authors, counts, strict=True)
        }
        return self


class NeighbourModel:
    """P(area | the NEIGHBOURS_K most similar labelled papers): their areas weighted by cosine
    similarity, plus the label prior as one pseudo-vote. Keeps the labelled embeddings (float16,
    at most NEIGHBOURS_STORED of them, spread evenly over the labelled records), so a search costs
    at most that many dot products per record however large the store grows."""

    def __init__(self, k: int = NEIGHBOURS_K, prior_weight: float = 1.0):
        self.k = k
        self.prior_weight = prior_weight

    def fit(self, data: AreaData, labels: Sequence[str]) -> NeighbourModel:
        self.labels = list(labels)
        y = np.array([self.labels.index(label) for label in data.labels], dtype=np.int64)
        self.prior = np.bincount(y, minlength=len(self.labels)) / max(len(y), 1)
        keep = np.unique(np.linspace(0, len(y) - 1, num=min(len(y), NEIGHBOURS_STORED)).astype(int))
        self.vectors = _unit(data.embeddings[keep]).astype(np.float16)
        self.y = y[keep]
        return self

    def proba(self, data: AreaData) -> np.ndarray:
        from .neighbours import ExactIndex

        out = np.tile(self.prior_weight * self.prior, (len(data.ids), 1))
        if len(data.ids) and len(self.y):
            idx, sims = ExactIndex(self.vectors.astype(np.float32)).search(_unit(data.embeddings), self.k)
            np.add.at(out, (np.arange(len(data.ids))[:, None], self.y[idx]), np.maximum(sims, 0.0))
        return out / out.sum(axis=1, keepdims=True)

    def state(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors, "y": self.y, "prior": self.prior,
                "settings": np.array([self.k, self.prior_weight], dtype=np.float64)}

    def load(self, state: dict[str, np.ndarray], labels: Sequence[str]) -> NeighbourModel:
        self.labels = list(labels)
        self.vectors = np.asarray(state["vectors"], dtype=np.float16)
        self.y = np.asarray(state["y"], dtype=np.int64)
        self.prior = np.asarray(state["prior"], dtype=np.float64)
        k, self.prior_weight = (float(x) for x in state["settings"])
        self.k = int(k)
        if (self.vectors.ndim != 2 or len(self.vectors) != len(self.y) or self.prior.shape != (len(self.labels),)
                or (len(self.y) and not 0 <= self.y.min() <= self.y.max() < len(self.labels)) or self.k < 1):
            raise ValueError("areas neighbours: vectors, labels and prior disagree")
        return self


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def _checked_logistic(model: LiteLogistic, labels: Sequence[str]) -> LiteLogistic:
    if not set(map(str, model.classes_)) <= set(labels):
        raise ValueError("areas: a stored model knows classes that are not among the labels")
    return model


BASE_MODELS = {"tfidf": TfidfModel, "minilm": EmbeddingModel, "authors": AuthorModel, "neighbours": NeighbourModel}


def temperature_fit(proba: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises held-out negative log-likelihood (grid, then refine)."""
    logp = np.log(np.clip(proba, 1e-12, 1.0))

    def nll(t: float) -> float:
        z = logp / t
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))

    grid = np.exp(np.linspace(math.log(0.2), math.log(5.0), 61))
    best = min(grid, key=nll)
    fine = np.linspace(best * 0.9, best * 1.1, 21)
    return float(min(fine, key=nll))


def apply_temperature(proba: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(proba, 1e-12, 1.0)) / t
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def conformal_threshold(proba: np.ndarray, y: np.ndarray, coverage: float) -> float:
    """Split-conformal: the score quantile so that sets {k: 1 - p_k <= q} cover `coverage`."""
    scores = np.sort(1.0 - proba[np.arange(len(y)), y])
    n = len(scores)
    if n == 0:
        return 1.0
    rank = math.ceil((n + 1) * coverage)
    return 1.0 if rank > n else float(scores[rank - 1])


def prediction_sets(
    proba: np.ndarray, labels: Sequence[str], q: float, coverage: float = 0.9
) -> list[list[str]]:
    """Areas whose score is within the threshold, most likely first.

    An empty set means no area is likely enough: the model does not know, so the set falls
    back to the smallest one holding `coverage` of the probability mass (never empty).
    """
    out = []
    for row in proba:
        order = np.argsort(-row)
        chosen = [labels[k] for k in order if 1.0 - row[k] <= q + 1e-12]
        out.append(chosen or top_mass_sets(row[None, :], labels, coverage)[0])
    return out


class AreaModel:
    """Stacked, calibrated area classifier with conformal sets; see the module docstring."""

    def __init__(self, config: Config | None = None, inner_folds: int = 5, bases: Sequence[str] | None = None):
        self.config = config or Config()
        self.inner_folds = inner_folds
        self.bases = list(bases or BASE_MODELS)
        self._evidence: dict[str, float] = {}

    def _base_proba(self, train: AreaData, test: AreaData) -> np.ndarray:
        parts = [BASE_MODELS[b]().fit(train, self.labels).proba(test) for b in self.bases]
        return np.log(np.clip(np.hstack(parts), 1e-9, 1.0))

    def fit(self, data: AreaData) -> AreaModel:
        """Fit on labelled data; keeps held-out calibrated probabilities as `self.heldout`."""
        with single_thread():
            return self._fit(data)

    def _fit(self, data: AreaData) -> AreaModel:
        from sklearn.linear_model import LogisticRegression

        self.labels = sorted(set(data.labels))  # type: ignore[arg-type]
        y = np.array([self.labels.index(label) for label in data.labels])
        folds = _folds(data.labels, self.inner_folds, self.config.seed)  # type: ignore[arg-type]
        Z = np.zeros((len(y), len(self.labels) * len(self.bases)))
        for tr, te in folds:
            Z[te] = self._base_proba(data.take(tr), data.take(te))
        held = np.zeros((len(y), len(self.labels)))
        for tr, te in folds:
            meta = LogisticRegression(C=META_C, solver="newton-cg", max_iter=500).fit(Z[tr], y[tr])
            held[te] = _aligned(meta.predict_proba(Z[te]), [self.labels[c] for c in meta.classes_], self.labels)
        self.meta = LiteLogistic(LogisticRegression(C=META_C, solver="newton-cg", max_iter=500).fit(Z, y))
        self.prior = np.bincount(y, minlength=len(self.labels)) / len(y)
        self.known = known_words(data.texts)
        self._evidence = {}
        self.temperature = temperature_fit(held, y)
        self.heldout = self._shrunk(apply_temperature(held, self.temperature), data.texts)
        self.threshold = conformal_threshold(self.heldout, y, self.config.conformal_coverage)
        self.fitted = {b: BASE_MODELS[b]().fit(data, self.labels) for b in self.bases}
        return self

    def proba(self, data: AreaData) -> np.ndarray:
        if not data.ids:
            return np.zeros((0, len(self.labels)))
        with single_thread():
            parts = [self.fitted[b].proba(data) for b in self.bases]
            Z = np.log(np.clip(np.hstack(parts), 1e-9, 1.0))
            raw = _aligned(self.meta.predict_proba(Z), [self.labels[c] for c in self.meta.classes_], self.labels)
        return self._shrunk(apply_temperature(raw, self.temperature), data.texts)

    def artifact(self) -> Artifact:
        """The fitted model as data (see the module docstring); `from_artifact` reads it back."""
        meta = {"labels": self.labels, "bases": self.bases, "temperature": self.temperature,
                "threshold": self.threshold}
        arrays = {"prior": self.prior, "known": strings_array(sorted(self.known)),
                  **prefixed("meta.", self.meta.state())}
        for b in self.bases:
            arrays.update(prefixed(f"{b}.", self.fitted[b].state()))
        return Artifact(MODEL_KIND, MODEL_VERSION, meta, arrays)

    @classmethod
    def from_artifact(cls, artifact: Artifact, config: Config) -> AreaModel:
        """The model `artifact` holds; ValueError (or KeyError, TypeError) where it does not fit."""
        meta, arrays = artifact.meta, artifact.arrays
        labels, bases = meta["labels"], meta["bases"]
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels) and len(labels) >= 2
                and isinstance(bases, list) and bases and all(b in BASE_MODELS for b in bases)):
            raise ValueError("areas: stored labels or base models are not usable")
        model = cls(config, bases=bases)
        model.labels = labels
        model.temperature = float(meta["temperature"])
        model.threshold = float(meta["threshold"])
        if not model.temperature > 0:
            raise ValueError("areas: stored temperature is not positive")
        model.prior = np.asarray(arrays["prior"], dtype=np.float64)
        model.known = set(array_strings(arrays["known"]))
        model.meta = LiteLogistic.from_state(unprefixed("meta.", arrays))
        model.fitted = {b: BASE_MODELS[b]().load(unprefixed(f"{b}.", arrays), labels) for b in bases}
        if model.prior.shape != (len(labels),) or model.meta.coef.shape[1] != len(labels) * len(bases) \
                or not set(model.meta.classes_.tolist()) <= set(range(len(labels))):
            raise ValueError("areas: stored stacking model and labels disagree")
        return model

    def evidence(self, texts: Sequence[str]) -> np.ndarray:
        """How informative each text is for this model, 0..1 (see the module docstring). Kept
        for the last EVIDENCE_KEPT texts: a build asks for a record's twice (its probabilities,
        then its prediction set), and tokenising it again was a tenth of a full areas step."""
        kept = self._evidence
        out = np.empty(len(texts))
        for k, t in enumerate(texts):
            w = kept.get(t)
            if w is None:
                if len(kept) >= EVIDENCE_KEPT:
                    kept.clear()
                w = kept[t] = min(1.0, len(set(content_tokens(t)) & self.known) / EVIDENCE_FULL)
            out[k] = w
        return out

    def _shrunk(self, proba: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        w = self.evidence(texts)[:, None]
        return w * proba + (1.0 - w) * self.prior[None, :]

    def sets(self, proba: np.ndarray, texts: Sequence[str] | None = None) -> list[list[str]]:
        """Conformal sets; for records less informative than any the threshold was calibrated
        on (evidence < 1) the set also holds the smallest set with `coverage` of the mass."""
        coverage = self.config.conformal_coverage
        sets = prediction_sets(proba, self.labels, self.threshold, coverage)
        if texts is None:
            return sets
        for k, w in enumerate(self.evidence(texts)):
            if w < 1.0:
                extra = top_mass_sets(proba[k][None, :], self.labels, coverage)[0]
                sets[k] = sets[k] + [a for a in extra if a not in sets[k]]
        return sets


def known_words(texts: Sequence[str], min_df: int = 2) -> set[str]:
    """Content words seen in at least `min_df` training texts."""
    df = Counter(w for t in texts for w in set(content_tokens(t)))
    return {w for w, n in df.items() if n >= min_df}


# --- zero-shot ----------------------------------------------------------------------------


def zero_shot_proba(embeddings: np.ndarray, description_vectors: np.ndarray, scale: float = 20.0) -> np.ndarray:
    """Softmax of scaled cosine similarity to each area's description (no labels to learn from)."""
    logits = scale * embeddings @ description_vectors.T
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def top_mass_sets(proba: np.ndarray, labels: Sequence[str], coverage: float) -> list[list[str]]:
    """Without held-out labels no conformal guarantee exists: the smallest set holding `coverage`."""
    out = []
    for row in proba:
        order = np.argsort(-row)
        chosen, mass = [], 0.0
        for k in order:
            chosen.append(labels[k])
            mass += row[k]
            if mass >= coverage:
                break
        out.append(chosen)
    return out
