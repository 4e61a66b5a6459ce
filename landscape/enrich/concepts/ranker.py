"""The keyphrase ranker: 5 to 8 phrases for a record without a keyphrase line.

Candidates are vocabulary concepts found in the text, concepts of the TF-IDF-nearest labelled
records, and new phrases the text repeats. A gradient-boosted model learned from labelled
records scores them; `KeyphrasePredictor.chosen` picks the set with the best expected token F1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ...config import Config
from ...text import STOPWORDS, content_tokens
from ..predictors import LiteBoostedTrees, LiteTfidf
from .normalise import lowered_clean_text
from .vocabulary import Vocabulary

_EDGE_STOP = frozenset(STOPWORDS) | {"per", "first", "new", "novel", "different", "various", "several", "large", "small"}


def new_phrase_candidates(vocab: Vocabulary, text: str) -> dict[str, str]:
    """key -> surface of 2-3 word phrases the text repeats (or names in its title) but the
    vocabulary lacks: how a record names something new. A phrase starts and ends at whole
    words, never inside a hyphenated one ('informed neural' of 'physics-informed neural')."""
    counts: Counter[str] = Counter()
    surface: dict[str, str] = {}
    for pairs in vocab.key_tokens(text):
        for n in (2, 3):
            for i in range(len(pairs) - n + 1):
                gram = pairs[i : i + n]
                if gram[-1][1].endswith("-") or (i and pairs[i - 1][1].endswith("-")):
                    continue
                keys = [k for k, _ in gram]
                if keys[0] in _EDGE_STOP or keys[-1] in _EDGE_STOP or any(
                    k.isdigit() or len(k) < 2 for k in keys
                ):
                    continue
                if any(k in STOPWORDS for k in keys[1:-1]):
                    continue
                key = " ".join(keys)
                if key in vocab.concepts:
                    continue
                counts[key] += 1
                surface.setdefault(key, "".join(s for _, s in gram).strip(" -"))
    return {k: surface[k] for k, c in counts.items() if c >= 2}


def token_share(phrase: str, gold_tokens: set[str]) -> float:
    """The share of a phrase's content words that the gold keyphrase line holds."""
    toks = set(content_tokens(phrase))
    return len(toks & gold_tokens) / len(toks) if toks else 0.0


def unit_vector(vector: Any) -> Any:
    import numpy as np

    v = np.asarray(vector, dtype=np.float32).ravel()
    return v / (float(np.linalg.norm(v)) or 1.0)


def unit_rows(embeddings: dict[str, Any] | None, ids: list[str]) -> Any:
    """The ids' embeddings as unit rows, or None unless every id has one."""
    import numpy as np

    if not embeddings or any(i not in embeddings for i in ids):
        return None
    return np.vstack([unit_vector(embeddings[i]) for i in ids])


FIT_BLOCK = 256  # training rows whose similarities to the sample are held at once


@dataclass
class Candidate:
    key: str
    name: str
    features: list[float]


class KeyphrasePredictor:
    """Ranks candidate phrases for a text with a model learned from labelled records.

    Candidates are vocabulary concepts found in the text, concepts of the TF-IDF-nearest
    labelled records, and new phrases the text repeats. Features describe how the text uses a
    candidate (count, title, position), how often the concept is a keyphrase when it appears
    (keyphraseness) and how strongly the neighbours vote for it. Training features are computed
    leave-one-out so training looks like prediction on a paper the model has not seen.
    """

    def __init__(self, config: Config | None = None, neighbours: int = 20, top: int = 6):
        self.config = config or Config()
        self.k = neighbours
        self.top = top

    def fit(
        self, texts: dict[str, str], given: dict[str, list[str]], vocab: Vocabulary | None = None,
        embeddings: dict[str, Any] | None = None,
    ) -> KeyphrasePredictor:
        """`embeddings` (record id -> vector, optional) add votes of the semantically nearest
        labelled records to those of the TF-IDF-nearest."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from threadpoolctl import threadpool_limits

        self.ids = sorted(set(texts) & set(given))
        self.vocab = vocab or Vocabulary.build({i: given[i] for i in self.ids}, (texts[i] for i in self.ids))
        self.gold = {i: {k for k in map(self.vocab.resolve, given[i]) if k in self.vocab.concepts} for i in self.ids}
        self.tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english", ngram_range=(1, 2), min_df=2,
                                     preprocessor=lowered_clean_text)
        self.matrix = self.tfidf.fit_transform([texts[i] for i in self.ids])
        self.found = {i: self.vocab.find(texts[i]) for i in self.ids}
        self.present: Counter[str] = Counter()
        self.present_given: Counter[str] = Counter()
        self.given_df: Counter[str] = Counter()
        for i in self.ids:
            self.present.update(self.found[i].keys())
            self.present_given.update(k for k in self.found[i] if k in self.gold[i])
            self.given_df.update(self.gold[i])
        self.emb = unit_rows(embeddings, self.ids)
        X, y = [], []
        gold_tokens = {i: set(content_tokens(" ".join(given[i]))) for i in self.ids}
        for start in range(0, len(self.ids), FIT_BLOCK):
            block = self.ids[start : start + FIT_BLOCK]
            sims = (self.matrix[start : start + len(block)] @ self.matrix.T).toarray()
            esims = self.emb[start : start + len(block)] @ self.emb.T if self.emb is not None else None
            for row, i in enumerate(block):
                sims[row, start + row] = -1.0
                if esims is not None:
                    esims[row, start + row] = -1.0
                erow = esims[row] if esims is not None else None
                for cand in self._candidates(texts[i], sims[row], exclude=i, esims=erow):
                    X.append(cand.features)
                    y.append(token_share(cand.name, gold_tokens[i]))
        with threadpool_limits(1):
            self.model = LiteBoostedTrees(self._fit_model(X, y))
        self.tfidf = LiteTfidf(self.tfidf)
        self.expected_gold = 0.6 * sum(len(t) for t in gold_tokens.values()) / max(len(gold_tokens), 1)
        self.found = {}
        return self

    def _fit_model(self, X: list[list[float]], y: list[float]) -> Any:
        """Soft labels (the share of a candidate's words in the gold line) as two weighted rows:
        the classifier's probability then estimates that share, which is what token F1 rewards."""
        import numpy as np
        from sklearn.ensemble import HistGradientBoostingClassifier

        share = np.asarray(y, dtype=np.float64)
        rows = np.concatenate([np.asarray(X, dtype=np.float64)] * 2)
        labels = np.concatenate([np.ones(len(share)), np.zeros(len(share))])
        weights = np.concatenate([share, 1.0 - share])
        keep = weights > 0
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.06, max_leaf_nodes=15,
                                                    l2_regularization=1.0, random_state=self.config.seed)
        return model.fit(rows[keep], labels[keep], sample_weight=weights[keep])

    def _votes(self, sims: Any) -> tuple[Counter[str], dict[str, float]]:
        """Similarity-weighted share of the nearest labelled records carrying each concept,
        and the similarity of the nearest one that does."""
        import numpy as np

        order = np.argsort(-sims)[: self.k]
        votes: Counter[str] = Counter()
        best: dict[str, float] = {}
        total = float(sum(max(sims[j], 0.0) for j in order)) or 1.0
        for j in order:
            for key in self.gold[self.ids[j]]:
                votes[key] += max(float(sims[j]), 0.0) / total
                best[key] = max(best.get(key, 0.0), float(sims[j]))
        return votes, best

    def _candidates(self, text: str, sims: Any, exclude: str | None = None, esims: Any = None) -> list[Candidate]:
        import numpy as np

        votes, best = self._votes(sims)
        missing = float("nan")
        evotes, ebest = self._votes(esims) if esims is not None else (Counter(), {})
        found = self.vocab.find(text)
        title = text.split("\n", 1)[0]
        title_found = self.vocab.find(title)
        lowered = " ".join(k for pairs in self.vocab.key_tokens(text) for k, _ in pairs)
        n_tokens = max(len(lowered.split()), 1)
        text_words = Counter(lowered.split())
        first_at: dict[str, int] = {}
        for n, w in enumerate(lowered.split()):
            first_at.setdefault(w, n)
        title_words = {k for pairs in self.vocab.key_tokens(title) for k, _ in pairs}

        def word_features(key: str) -> list[float]:
            """How much of the phrase the text holds word by word, even where not verbatim."""
            words = key.split()
            return [sum(w in text_words for w in words) / len(words),
                    sum(w in title_words for w in words) / len(words),
                    float(np.log1p(min(text_words.get(w, 0) for w in words))),
                    float(sum(np.log1p(text_words.get(w, 0)) for w in words)) / len(words),
                    max(first_at.get(w, n_tokens) for w in words) / n_tokens]

        out = []
        keys = set(votes) | set(found) | set(evotes)
        for key in sorted(keys):
            concept = self.vocab.concepts[key]
            if len(concept.given) <= (exclude in concept.given if exclude else 0):
                continue  # no record but the excluded one gives it (counted, never copied: O(1))
            own_present = 1 if exclude and key in self.found.get(exclude, {}) else 0
            own_given = 1 if exclude and key in self.gold.get(exclude, set()) else 0
            present = self.present[key] - own_present
            present_given = self.present_given[key] - (own_present and own_given)
            df = self.given_df[key] - own_given
            pos = lowered.find(key)
            out.append(Candidate(key, concept.name, [
                1.0 if key in found else 0.0,
                float(np.log1p(found.get(key, 0))),
                1.0 if key in title_found else 0.0,
                (pos / len(lowered)) if pos >= 0 else 1.0,
                (present_given + 0.1) / (present + 1.0),
                float(np.log1p(df)),
                votes.get(key, 0.0),
                best.get(key, 0.0),
                float(len(key.split())),
                float(np.log1p(present)),
                0.0,
                float(np.log(n_tokens)),
                evotes.get(key, 0.0) if esims is not None else missing,
                ebest.get(key, 0.0) if esims is not None else missing,
                *word_features(key),
            ]))
        for key, name in new_phrase_candidates(self.vocab, text).items():
            pos = lowered.find(key)
            out.append(Candidate(key, name, [
                1.0, float(np.log1p(lowered.count(key))), 1.0 if key in " ".join(title.lower().split()) else 0.0,
                (pos / len(lowered)) if pos >= 0 else 1.0, 0.0, 0.0, 0.0, 0.0, float(len(key.split())),
                0.0, 1.0, float(np.log(n_tokens)), 0.0, 0.0, *word_features(key),
            ]))
        return out

    def scored(self, text: str, embedding: Any = None) -> list[tuple[str, str, float]]:
        """(key, phrase, probability) of every candidate, best first."""
        return self.scored_many([text], [embedding])[0]

    def scored_many(self, texts: list[str], embeddings: list[Any] | None = None) -> list[list[tuple[str, str, float]]]:
        """`scored` for a batch: one sparse product gives every text's similarities to the sample."""
        embeddings = embeddings or [None] * len(texts)
        sims = (self.matrix @ self.tfidf.transform(texts).T).toarray()
        emb = getattr(self, "emb", None)
        out = []
        for col, (text, embedding) in enumerate(zip(texts, embeddings, strict=True)):
            esims = None
            if embedding is not None and emb is not None and len(embedding) == emb.shape[1]:
                esims = emb @ unit_vector(embedding)
            cands = self._candidates(text, sims[:, col], esims=esims)
            if not cands:
                out.append([])
                continue
            probs = self.model.predict_proba([c.features for c in cands])[:, 1]
            ranked = sorted(zip(cands, probs, strict=True), key=lambda cp: (-cp[1], cp[0].key))
            out.append([(c.key, c.name, float(p)) for c, p in ranked])
        return out

    def chosen(
        self, text: str, low: int = 5, high: int = 8, pool: int = 30, embedding: Any = None
    ) -> list[tuple[str, str, float]]:
        """(key, phrase, probability) of `low` to `high` phrases, in the order chosen.

        The ranker estimates the share of each phrase's words that belong to the keyphrase
        line. Phrases are added greedily by the expected token F1 of the words chosen so far
        (each word as likely as the likeliest chosen phrase holding it), so a phrase that
        repeats covered words gains little and one of many unlikely words costs precision;
        past `low`, a phrase must raise that expectation.
        """
        return self.choose(self.scored(text, embedding), low, high, pool)

    def choose(
        self, scored: list[tuple[str, str, float]], low: int = 5, high: int = 8, pool: int = 30
    ) -> list[tuple[str, str, float]]:
        """`chosen` from candidates already scored (see `scored_many`)."""
        ranked = [(key, name, p, set(content_tokens(name)) or {key}) for key, name, p in scored[:pool]]
        expected_gold = getattr(self, "expected_gold", 6.0)
        out: list[tuple[str, str, float]] = []
        words: dict[str, float] = {}

        def value(w: dict[str, float]) -> float:
            return 2.0 * sum(w.values()) / (len(w) + expected_gold)

        while len(out) < high:
            best, best_value, best_words = None, -1.0, words
            for key, name, p, toks in ranked:
                if any(key == k for k, _, _ in out):
                    continue
                trial = dict(words)
                for t in toks:
                    trial[t] = max(trial.get(t, 0.0), p)
                v = value(trial)
                if v > best_value:
                    best, best_value, best_words = (key, name, p), v, trial
            if best is None or (len(out) >= low and best_value <= value(words)):
                break
            out.append(best)
            words = best_words
        return out

    def predict(self, text: str, low: int = 5, high: int = 8, embedding: Any = None) -> list[tuple[str, float]]:
        """5 to 8 phrases (see `chosen`)."""
        return [(name, p) for _, name, p in self.chosen(text, low, high, embedding=embedding)]
