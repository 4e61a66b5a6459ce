"""Fitted scikit-learn models as numpy-only predictors, for the incremental build.

Fitting needs scikit-learn; predicting with a stored model should not. Importing scikit-learn
costs 1.5 s on an idle 2-core machine and 7-11 s on a busy one (measured), more than the
whole budget of an incremental build that adds ten records. So the models the areas and
concepts steps store are converted right after fitting into these small classes, which give
the same numbers (checked in tests) with numpy and scipy.sparse only.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class LiteTfidf:
    """`TfidfVectorizer.transform` of a fitted word-level vectorizer (l2 norm, smooth idf)."""

    def __init__(self, vectorizer: Any):
        v = vectorizer
        unsupported = (v.analyzer != "word" or v.tokenizer is not None or v.token_pattern != r"(?u)\b\w\w+\b"
                       or v.strip_accents is not None or v.norm != "l2" or not v.use_idf or v.binary)
        if unsupported:
            raise ValueError("LiteTfidf supports word analyzers with the default tokens, l2 norm and idf")
        self.vocabulary: dict[str, int] = {t: int(i) for t, i in v.vocabulary_.items()}
        self.idf = np.asarray(v.idf_, dtype=np.float64)
        self.stop = frozenset(v.get_stop_words() or ())
        self.ngram = tuple(v.ngram_range)
        self.sublinear = bool(v.sublinear_tf)
        self.preprocessor: Callable[[str], str] | None = v.preprocessor
        self.lowercase = bool(v.lowercase)

    def analyse(self, text: str) -> list[str]:
        if self.preprocessor is not None:
            text = self.preprocessor(text)
        elif self.lowercase:
            text = text.lower()
        toks = [t for t in _TOKEN.findall(text) if t not in self.stop]
        low, high = self.ngram
        grams = list(toks) if low == 1 else []
        for n in range(max(low, 2), high + 1):
            grams.extend(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
        return grams

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix

        data: list[float] = []
        cols: list[int] = []
        indptr = [0]
        for text in texts:
            counts = Counter(self.vocabulary[g] for g in self.analyse(text) if g in self.vocabulary)
            row = {j: ((1.0 + math.log(c)) if self.sublinear else float(c)) * self.idf[j] for j, c in counts.items()}
            norm = math.sqrt(sum(v * v for v in row.values())) or 1.0
            for j in sorted(row):
                cols.append(j)
                data.append(row[j] / norm)
            indptr.append(len(cols))
        return csr_matrix((data, cols, indptr), shape=(len(texts), len(self.idf)))


class LiteLogistic:
    """`LogisticRegression.predict_proba` (multinomial softmax; sigmoid for two classes)."""

    def __init__(self, model: Any):
        self.coef = np.asarray(model.coef_, dtype=np.float64)
        self.intercept = np.asarray(model.intercept_, dtype=np.float64)
        self.classes_ = np.asarray(model.classes_)

    def predict_proba(self, X: Any) -> np.ndarray:
        z = np.asarray(X @ self.coef.T) + self.intercept
        if self.coef.shape[0] == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1.0 - p, p])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class LiteBoostedTrees:
    """`HistGradientBoostingClassifier.predict_proba` for a binary model on numeric features:
    every tree's nodes in flat arrays, all trees walked at once, depth by depth."""

    def __init__(self, model: Any):
        if model.n_trees_per_iteration_ != 1:
            raise ValueError("LiteBoostedTrees supports binary classifiers")
        trees = [predictors[0].nodes for predictors in model._predictors]
        offsets = np.cumsum([0] + [len(t) for t in trees[:-1]])
        nodes = np.concatenate(trees)
        self.roots = offsets.astype(np.int64)
        shift = np.repeat(offsets, [len(t) for t in trees])
        self.feature = nodes["feature_idx"].astype(np.int64)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.left = nodes["left"].astype(np.int64) + shift
        self.right = nodes["right"].astype(np.int64) + shift
        self.is_leaf = nodes["is_leaf"].astype(bool)
        self.value = nodes["value"].astype(np.float64)
        self.baseline = float(np.ravel(model._baseline_prediction)[0])
        self.classes_ = np.asarray(model.classes_)

    def predict_proba(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        node = np.broadcast_to(self.roots, (X.shape[0], len(self.roots))).copy()
        rows = np.arange(X.shape[0])[:, None]
        while True:
            inner = ~self.is_leaf[node]
            if not inner.any():
                break
            x = X[rows, self.feature[node]]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        raw = self.baseline + self.value[node].sum(axis=1)
        p = 1.0 / (1.0 + np.exp(-raw))
        return np.column_stack([1.0 - p, p])
