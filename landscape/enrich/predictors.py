"""Fitted scikit-learn models as numpy-only predictors, for the incremental build.

Fitting needs scikit-learn; predicting with a stored model should not. Importing scikit-learn
costs 1.5 s on an idle 2-core machine and 7-11 s on a busy one (measured), more than the
whole budget of an incremental build that adds ten records. So the models the areas and
concepts steps store are converted right after fitting into these small classes, which give
the same numbers (checked in tests) with numpy and scipy.sparse only.

Each predictor is also plain data: `state()` gives its fitted numbers as named numpy arrays
(no Python objects) and `from_state` rebuilds it, checking shapes and indices, so a step can keep
it in the store with `landscape.artifacts` (never pickle). A state that does not fit raises
`ValueError`, and the step refits.

`LiteBoostedTrees` reads the trees of a fitted `HistGradientBoostingClassifier` from
scikit-learn's private `_predictors` and `_baseline_prediction`: scikit-learn has no public way
to export them, and the alternatives cost more (a public-tree `GradientBoostingClassifier` fits
far slower on the ranker's rows; skops would store scikit-learn objects and need scikit-learn
to predict). So the conversion is pinned instead: pyproject bounds scikit-learn below the next
minor version, and a parity test compares `predict_proba` with scikit-learn's after a trip
through the store format.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def strings_array(strings: Sequence[str]) -> np.ndarray:
    """A list of strings as one uint8 array (UTF-8 JSON): compact, and no object dtype."""
    return np.frombuffer(json.dumps(list(strings), ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def array_strings(array: np.ndarray) -> list[str]:
    """The strings `strings_array` packed; ValueError if the array holds anything else."""
    try:
        out = json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"expected a packed list of strings: {exc}") from None
    if not isinstance(out, list) or not all(isinstance(x, str) for x in out):
        raise ValueError("expected a packed list of strings")
    return out


def prefixed(prefix: str, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}{name}": a for name, a in state.items()}


def unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name[len(prefix):]: a for name, a in arrays.items() if name.startswith(prefix)}


def _array(state: dict[str, np.ndarray], name: str, dtype: Any, ndim: int) -> np.ndarray:
    if name not in state:
        raise ValueError(f"stored predictor lacks {name!r}")
    a = np.asarray(state[name])
    if a.ndim != ndim or a.dtype.hasobject:
        raise ValueError(f"stored predictor: {name!r} has shape {a.shape}, expected {ndim} dimensions")
    try:
        return a.astype(dtype, casting="same_kind" if a.dtype.kind in "fc" else "unsafe")
    except TypeError as exc:
        raise ValueError(f"stored predictor: {name!r}: {exc}") from None


def _classes(state: dict[str, np.ndarray]) -> np.ndarray:
    """Class labels: numbers stay numbers, anything else is a packed list of strings."""
    if "classes_text" in state:
        return np.asarray(array_strings(state["classes_text"]))
    if "classes_float" in state:
        return _array(state, "classes_float", np.float64, 1)
    return _array(state, "classes", np.int64, 1)


def _classes_state(classes: np.ndarray) -> dict[str, np.ndarray]:
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return {"classes": classes.astype(np.int64)}
    if classes.dtype.kind == "f":
        return {"classes_float": classes.astype(np.float64)}
    return {"classes_text": strings_array([str(c) for c in classes])}


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

    def state(self) -> dict[str, np.ndarray]:
        """The fitted numbers; the preprocessor is kept by name only (the caller supplies it)."""
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        if [self.vocabulary[t] for t in terms] != list(range(len(terms))) or len(terms) != len(self.idf):
            raise ValueError("LiteTfidf: vocabulary columns are not 0..n-1")
        return {
            "terms": strings_array(terms), "idf": self.idf, "stop": strings_array(sorted(self.stop)),
            "ngram": np.asarray(self.ngram, dtype=np.int64),
            "flags": np.asarray([self.sublinear, self.lowercase], dtype=bool),
            "preprocessor": strings_array([_callable_name(self.preprocessor)]),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray],
                   preprocessor: Callable[[str], str] | None = None) -> LiteTfidf:
        """Rebuild from `state`; `preprocessor` must be the function it was fitted with."""
        stored = array_strings(_array(state, "preprocessor", np.uint8, 1))
        if stored != [_callable_name(preprocessor)]:
            raise ValueError(f"LiteTfidf: fitted with preprocessor {stored}, given {_callable_name(preprocessor)!r}")
        obj = cls.__new__(cls)
        terms = array_strings(_array(state, "terms", np.uint8, 1))
        obj.vocabulary = {t: i for i, t in enumerate(terms)}
        obj.idf = _array(state, "idf", np.float64, 1)
        if len(obj.vocabulary) != len(terms) or len(obj.idf) != len(terms):
            raise ValueError("LiteTfidf: terms and idf disagree")
        obj.stop = frozenset(array_strings(_array(state, "stop", np.uint8, 1)))
        ngram = _array(state, "ngram", np.int64, 1)
        flags = _array(state, "flags", bool, 1)
        if len(ngram) != 2 or not 1 <= ngram[0] <= ngram[1] or len(flags) != 2:
            raise ValueError("LiteTfidf: bad ngram range or flags")
        obj.ngram = (int(ngram[0]), int(ngram[1]))
        obj.sublinear, obj.lowercase = bool(flags[0]), bool(flags[1])
        obj.preprocessor = preprocessor
        return obj

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


def _callable_name(f: Callable[..., Any] | None) -> str:
    if f is None:
        return ""
    return f"{getattr(f, '__module__', None) or ''}.{getattr(f, '__qualname__', None) or repr(f)}"


class LiteLogistic:
    """`LogisticRegression.predict_proba` (multinomial softmax; sigmoid for two classes)."""

    def __init__(self, model: Any):
        self.coef = np.asarray(model.coef_, dtype=np.float64)
        self.intercept = np.asarray(model.intercept_, dtype=np.float64)
        self.classes_ = np.asarray(model.classes_)

    def state(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "intercept": self.intercept, **_classes_state(self.classes_)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> LiteLogistic:
        obj = cls.__new__(cls)
        obj.coef = _array(state, "coef", np.float64, 2)
        obj.intercept = _array(state, "intercept", np.float64, 1)
        obj.classes_ = _classes(state)
        rows = obj.coef.shape[0]
        if len(obj.intercept) != rows or len(obj.classes_) != (2 if rows == 1 else rows):
            raise ValueError("LiteLogistic: coefficients, intercepts and classes disagree")
        return obj

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
        if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
            raise ValueError("LiteBoostedTrees supports numeric features only")
        if not hasattr(model, "_predictors") or not hasattr(model, "_baseline_prediction"):
            raise ValueError("LiteBoostedTrees reads HistGradientBoostingClassifier's fitted trees as"
                             " scikit-learn 1.4-1.9 keeps them; this scikit-learn keeps them otherwise")
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
        self.n_features = int(model.n_features_in_)

    _NODE_ARRAYS = (("roots", np.int64), ("feature", np.int64), ("threshold", np.float64),
                    ("missing_left", bool), ("left", np.int64), ("right", np.int64),
                    ("is_leaf", bool), ("value", np.float64))

    def state(self) -> dict[str, np.ndarray]:
        return {**{name: getattr(self, name) for name, _ in self._NODE_ARRAYS},
                "baseline": np.asarray([self.baseline]), "n_features": np.asarray([self.n_features]),
                **_classes_state(self.classes_)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> LiteBoostedTrees:
        """Rebuild from `state`, checking that every walk from a root ends at a leaf (children
        come after their parent, as scikit-learn numbers them), so a damaged state cannot loop."""
        obj = cls.__new__(cls)
        for name, dtype in cls._NODE_ARRAYS:
            setattr(obj, name, _array(state, name, dtype, 1))
        n = len(obj.feature)
        if any(len(getattr(obj, name)) != n for name, _ in cls._NODE_ARRAYS if name != "roots"):
            raise ValueError("LiteBoostedTrees: node arrays differ in length")
        node = np.arange(n)
        inner = ~obj.is_leaf
        ok = (np.all((obj.roots >= 0) & (obj.roots < n))
              and np.all((obj.left[inner] > node[inner]) & (obj.left[inner] < n))
              and np.all((obj.right[inner] > node[inner]) & (obj.right[inner] < n))
              and np.all(obj.feature[inner] >= 0))
        if not ok:
            raise ValueError("LiteBoostedTrees: node indices out of order or range")
        baseline = _array(state, "baseline", np.float64, 1)
        n_features = _array(state, "n_features", np.int64, 1)
        if len(baseline) != 1 or len(n_features) != 1 or np.any(obj.feature[inner] >= n_features[0]):
            raise ValueError("LiteBoostedTrees: bad baseline or feature count")
        obj.baseline = float(baseline[0])
        obj.n_features = int(n_features[0])
        obj.classes_ = _classes(state)
        return obj

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
