"""Concepts: the field's vocabulary as entities, and which records carry which concept.

A concept is a phrase with its variants merged: plural and singular, hyphenation, British and
American spelling, and acronyms resolved to their expansions. Every variant maps to one *key*
(a normalised token string); a concept's display name is its most common surface form.

Three sources fill `record_concepts`:
  given      phrases of the record's own keyphrase line (already split at ingest);
  text       vocabulary concepts found verbatim, after normalisation, in the record's own text.
             Only concepts attested by some *other* record count, so this never depends on the
             record's own given keyphrases (connections score with it);
  predicted  5 to 8 keyphrases for records without given ones (`KeyphrasePredictor`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..text import STOPWORDS, content_tokens, strip_accents
from .predictors import LiteBoostedTrees, LiteTfidf

MAX_CONCEPT_WORDS = 6
_MATH = re.compile(r"\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]")
_LATEX = re.compile(r"\\[a-zA-Z]+\*?(\{[^{}]*\})?")
_CHUNK = re.compile(r"[.,;:()\[\]{}!?\"\u201c\u201d]+|\s-\s|\s--\s")
_RAW_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)?(?:[-\u2010\u2011\u2013/][A-Za-z0-9]+)*")
_SPLIT_WORD = re.compile(r"[-\u2010\u2011\u2013/]")
_ACRONYM_PAREN = re.compile(r"\(([A-Za-z0-9][A-Za-z0-9\-]{1,11})\)")
_ACRONYM_SKIP = frozenset({"of", "and", "the", "for", "in", "to", "a", "an", "on", "with", "by"})

# fallbacks for acronyms the corpus never spells out; the corpus's own expansions win
KNOWN_ACRONYMS = {
    "sbi": "simulation-based inference",
    "gnn": "graph neural networks",
    "mcmc": "markov chain monte carlo",
    "llm": "large language models",
    "pinn": "physics-informed neural networks",
    "cnn": "convolutional neural networks",
    "nlp": "natural language processing",
    "vae": "variational autoencoders",
    "gan": "generative adversarial networks",
    "eft": "effective field theory",
    "qft": "quantum field theory",
    "cmb": "cosmic microwave background",
    "lhc": "large hadron collider",
    "qcd": "quantum chromodynamics",
    "rl": "reinforcement learning",
    "ml": "machine learning",
}


# --- normalisation ------------------------------------------------------------------------


def american(word: str) -> str:
    """One spelling for British and American variants (a key form, never shown to people)."""
    if len(word) >= 7 and word.endswith(("isation", "isations")):
        return word.replace("isation", "ization")
    for brit, amer in (("ise", "ize"), ("ised", "ized"), ("ises", "izes"), ("ising", "izing"),
                       ("iser", "izer"), ("isers", "izers")):
        if len(word) >= 7 and word.endswith(brit):
            return word[: -len(brit)] + amer
    for brit, amer in (("yse", "yze"), ("ysed", "yzed"), ("ysing", "yzing")):
        if word.endswith(brit) and word.startswith("anal"):
            return word[: -len(brit)] + amer
    if len(word) >= 6 and word.endswith(("our", "ours")) and not word.endswith(("hour", "hours")):
        return word.replace("our", "or")
    if len(word) >= 7 and word.endswith(("elling", "elled")):
        return word.replace("elling", "eling").replace("elled", "eled")
    if len(word) >= 5 and word.endswith(("tre", "tres")) and not word.endswith(("istre",)):
        return word[: word.rindex("tre")] + "ter" + ("s" if word.endswith("s") else "")
    if word.endswith(("ogue", "ogues")) and len(word) >= 7:
        return word.replace("ogue", "og")
    return word


def singular(word: str) -> str:
    """Plural to singular by rule; the result is only ever a key, so it need not be a word."""
    if len(word) <= 3 or not word.isalpha() and not word[:-1].isalnum():
        return word
    if word.endswith(("ss", "us", "is", "ics", "ous", "sis", "ness")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


@functools.lru_cache(maxsize=200_000)
def key_token(word: str) -> str:
    return singular(american(word))


def raw_words(text: str) -> list[str]:
    return _RAW_WORD.findall(text)


@functools.lru_cache(maxsize=200_000)
def split_raw(word: str) -> tuple[str, ...]:
    word = strip_accents(word).lower().replace("\u2019", "'")
    word = word.split("'")[0] if word.endswith(("'s",)) else word.replace("'", "")
    return tuple(p for p in _SPLIT_WORD.split(word) if p)


def phrase_key(phrase: str) -> str:
    """The key every variant of a phrase shares (hyphens, case, spelling, plurals ignored)."""
    return " ".join(key_token(p) for w in raw_words(phrase) for p in split_raw(w))


def clean_text(text: str) -> str:
    return _LATEX.sub(" ", _MATH.sub(" ; ", text))


def lowered_clean_text(text: str) -> str:
    return clean_text(text).lower()


def text_chunks(text: str) -> list[str]:
    """Pieces of running text between punctuation: concepts never straddle a comma or a stop."""
    return [c for c in _CHUNK.split(clean_text(text)) if c.strip()]


def looks_like_acronym(word: str) -> bool:
    core = word[:-1] if word.endswith("s") and word[:-1].isupper() else word
    return 2 <= len(core) <= 8 and sum(c.isupper() for c in core) >= 2 and core[0].isupper()


def acronym_core(word: str) -> str:
    core = word[:-1] if word.endswith("s") and len(word) > 2 and word[:-1].upper() == word[:-1] else word
    return strip_accents(core).lower().replace("-", "")


# --- acronyms -----------------------------------------------------------------------------


def _initials(words: list[str], skip_stop: bool) -> list[tuple[str, int]]:
    """(initial letter, index of its word) for the words, hyphen parts counted separately."""
    out = []
    for i, w in enumerate(words):
        if skip_stop and w.lower() in _ACRONYM_SKIP:
            continue
        for part in split_raw(w):
            out.append((part[0], i))
    return out


def expansion_before(acronym: str, before: str) -> str | None:
    """The words just before '(ACR)' whose initials spell the acronym, if any."""
    letters = acronym_core(acronym)
    if not letters.isalnum() or len(letters) < 2:
        return None
    words = raw_words(before)[-12:]
    for skip in (True, False):
        for start in range(len(words) - 1, -1, -1):
            initials = _initials(words[start:], skip)
            if len(initials) > len(letters) + 1:
                break
            if "".join(c for c, _ in initials) == letters and words[start].lower() not in _ACRONYM_SKIP:
                return " ".join(words[start:])
    return None


def mine_acronyms(texts: Iterable[str]) -> dict[str, Counter[str]]:
    """acronym -> Counter of expansion surface forms, from 'long name (ACR)' in the texts."""
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for text in texts:
        text = _MATH.sub(" ; ", text)
        for m in _ACRONYM_PAREN.finditer(text):
            acr = m.group(1)
            if not looks_like_acronym(acr):
                continue
            before = re.split(r"[.;:!?()]", text[: m.start()])[-1]
            expansion = expansion_before(acr, before)
            if expansion:
                found[acronym_core(acr)][expansion.lower()] += 1
    return found


# --- the vocabulary -----------------------------------------------------------------------


def is_concept_key(key: str) -> bool:
    """A phrase can name a concept unless it is empty, a number, or starts or ends in a stopword."""
    toks = key.split()
    return bool(toks) and toks[0] not in STOPWORDS and toks[-1] not in STOPWORDS and not all(
        t.isdigit() or len(t) < 2 for t in toks
    )


def refine_given(given: dict[str, list[str]], min_parts: int = 3) -> dict[str, list[str]]:
    """Split given phrases that are two recurring phrases run together.

    A keyphrase line lost its delimiters, so segmentation sometimes leaves two phrases joined
    ('simulation-based inference posterior estimation'). A phrase seen once whose words split
    into phrases each seen at least `min_parts` times elsewhere is taken as those phrases.
    """
    counts = Counter(phrase_key(p) for phrases in given.values() for p in phrases)
    out: dict[str, list[str]] = {}
    for rid, phrases in given.items():
        kept: list[str] = []
        for phrase in phrases:
            words = phrase.split()
            parts = None
            if counts[phrase_key(phrase)] <= 1 and len(words) >= 3:
                parts = _split_known(words, counts, min_parts)
            kept.extend(parts or [phrase])
        out[rid] = kept
    return out


def _split_known(words: list[str], counts: Counter[str], min_count: int) -> list[str] | None:
    for cut in range(1, len(words)):
        left, right = " ".join(words[:cut]), " ".join(words[cut:])
        if counts[phrase_key(left)] >= min_count and counts[phrase_key(right)] >= min_count:
            return [left, right]
    return None


@dataclass
class Concept:
    key: str
    forms: Counter[str] = field(default_factory=Counter)
    acronyms: set[str] = field(default_factory=set)
    given: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        """The most common surface form; ties go to the hyphenated, then alphabetical, one."""
        if not self.forms:
            return self.key
        return min(self.forms, key=lambda f: (-self.forms[f], "-" not in f, f))


class Vocabulary:
    """Concepts keyed by normalised form, with acronym expansions and a text matcher."""

    def __init__(self, acronyms: dict[str, str] | None = None):
        self.concepts: dict[str, Concept] = {}
        self.acronyms: dict[str, str] = dict(acronyms or {})  # acronym -> concept key
        self._tokens_cache: dict[str, list[list[tuple[str, str]]]] = {}
        self._found_cache: dict[str, Counter[str]] = {}
        self._prefixes: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_tokens_cache", "_found_cache", "_prefixes")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._tokens_cache, self._found_cache = {}, {}
        self._prefixes = {p for key in self.concepts for p in _prefixes(key)}

    @classmethod
    def build(
        cls, given: dict[str, list[str]], texts: Iterable[str], known: dict[str, str] | None = None
    ) -> Vocabulary:
        """From given keyphrases (record id -> phrases) and the corpus texts (for acronyms)."""
        mined = mine_acronyms(texts)
        acronyms: dict[str, str] = {}
        surface: dict[str, str] = {}
        for acr, expansion in (known if known is not None else KNOWN_ACRONYMS).items():
            acronyms[acr] = phrase_key(expansion)
            surface[acr] = expansion
        for acr, counts in mined.items():
            best = max(counts, key=lambda e: (counts[e], e))
            if counts[best] >= 1:
                acronyms[acr] = phrase_key(best)
                surface[acr] = best
        vocab = cls(acronyms)
        refined = refine_given(given)
        for rid in sorted(refined):
            for phrase in refined[rid]:
                vocab.add(phrase, rid)
        for acr, key in acronyms.items():
            if key in vocab.concepts:
                vocab.concepts[key].acronyms.add(acr)
                vocab.concepts[key].forms.setdefault(surface[acr].lower(), 0)
        return vocab

    def resolve(self, phrase: str) -> str:
        """The concept key of a phrase; an acronym alone ('sbi', 'GNNs') becomes its expansion."""
        inner = re.search(r"\(([^()]+)\)\s*$", phrase)
        if inner:
            phrase = phrase[: inner.start()]
        key = phrase_key(phrase)
        if " " not in key and key in self.acronyms:
            return self.acronyms[key]
        return key

    def add(self, phrase: str, record_id: str | None = None) -> str | None:
        key = self.resolve(phrase)
        if not is_concept_key(key):
            return None
        if key not in self.concepts:
            self.concepts[key] = Concept(key)
            self._prefixes.update(_prefixes(key))
            self._found_cache.clear()
        concept = self.concepts[key]
        form = " ".join(phrase.lower().split())
        if phrase_key(form) == key:
            concept.forms[form] += 1
        if phrase_key(form).replace(" ", "") in self.acronyms:
            concept.acronyms.add(phrase_key(form).replace(" ", ""))
        if record_id:
            concept.given.add(record_id)
        return key

    def key_tokens(self, text: str) -> list[list[tuple[str, str]]]:
        """Each chunk of the text as (key token, surface) pairs, acronyms written out.

        A surface ends in the character that joined it to the next word ('-' or ' '), so
        "".join(surfaces).strip() gives the phrase back as written, lowercased.
        """
        cached = self._tokens_cache.get(text)
        if cached is not None:
            return cached
        out = []
        for chunk in text_chunks(text):
            toks: list[tuple[str, str]] = []
            for word in raw_words(chunk):
                if looks_like_acronym(word) and acronym_core(word) in self.acronyms:
                    toks.extend((t, t + " ") for t in self.acronyms[acronym_core(word)].split())
                else:
                    parts = split_raw(word)
                    toks.extend((key_token(p), p + ("-" if i < len(parts) - 1 else " ")) for i, p in enumerate(parts))
            if toks:
                out.append(toks)
        if len(self._tokens_cache) > 4096:
            self._tokens_cache.clear()
        self._tokens_cache[text] = out
        return out

    def find(self, text: str) -> Counter[str]:
        """Concept keys found verbatim (after normalisation) in the text, with occurrence counts.

        From each word, the phrase grows only while it is the start of some concept key.
        """
        cached = self._found_cache.get(text)
        if cached is not None:
            return Counter(cached)
        found: Counter[str] = Counter()
        for pairs in self.key_tokens(text):
            toks = [k for k, _ in pairs]
            for i in range(len(toks)):
                gram = toks[i]
                for j in range(i + 1, min(i + MAX_CONCEPT_WORDS, len(toks)) + 1):
                    if j > i + 1:
                        gram = gram + " " + toks[j - 1]
                    if gram not in self._prefixes:
                        break
                    if gram in self.concepts:
                        found[gram] += 1
        if len(self._found_cache) > 4096:
            self._found_cache.clear()
        self._found_cache[text] = found
        return Counter(found)

    def aliases(self, key: str) -> list[str]:
        concept = self.concepts[key]
        names = set(concept.forms) | concept.acronyms
        return sorted(n for n in names if n != concept.name)


def _prefixes(key: str) -> list[str]:
    """'a b c' -> ['a', 'a b', 'a b c']: what `Vocabulary.find` may extend."""
    toks = key.split()
    return [" ".join(toks[: n + 1]) for n in range(len(toks))]


# --- keyphrase prediction -----------------------------------------------------------------

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
        sims = (self.matrix @ self.matrix.T).toarray()
        esims = self.emb @ self.emb.T if self.emb is not None else None
        gold_tokens = {i: set(content_tokens(" ".join(given[i]))) for i in self.ids}
        for row, i in enumerate(self.ids):
            sims[row, row] = -1.0
            if esims is not None:
                esims[row, row] = -1.0
            erow = esims[row] if esims is not None else None
            for cand in self._candidates(texts[i], sims[row], exclude=i, esims=erow):
                X.append(cand.features)
                y.append(token_share(cand.name, gold_tokens[i]))
        with threadpool_limits(1):
            self.model = LiteBoostedTrees(self._fit_model(X, y))
        self.tfidf = LiteTfidf(self.tfidf)
        self.expected_gold = 0.6 * sum(len(t) for t in gold_tokens.values()) / max(len(gold_tokens), 1)
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
            others = concept.given - {exclude} if exclude else concept.given
            if not others:
                continue
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
        vec = self.tfidf.transform([text])
        sims = (self.matrix @ vec.T).toarray().ravel()
        esims = None
        emb = getattr(self, "emb", None)
        if embedding is not None and emb is not None and len(embedding) == emb.shape[1]:
            esims = emb @ unit_vector(embedding)
        cands = self._candidates(text, sims, esims=esims)
        if not cands:
            return []
        probs = self.model.predict_proba([c.features for c in cands])[:, 1]
        ranked = sorted(zip(cands, probs, strict=True), key=lambda cp: (-cp[1], cp[0].key))
        return [(c.key, c.name, float(p)) for c, p in ranked]

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
        ranked = [(key, name, p, set(content_tokens(name)) or {key}) for key, name, p in self.scored(text, embedding)[:pool]]
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


# --- the build step -----------------------------------------------------------------------


def record_text(rec: Any) -> str:
    """The record's own words: title, abstract and section text (never its keyphrase line)."""
    return rec.text


def text_concepts(found: Counter[str], vocab: Vocabulary, rec_id: str, generic: set[str]) -> Counter[str]:
    """Concepts in a record's text that some other record carries (independent of its own line)."""
    return Counter({
        k: c for k, c in found.items() if k not in generic and vocab.concepts[k].given - {rec_id}
    })


def generic_keys(
    found: dict[str, Counter[str]], vocab: Vocabulary, share: float = 0.1, keyness: float = 0.15
) -> set[str]:
    """Single words no use for connecting: in more than `share` of the texts ('model', 'data'),
    or rarely a keyphrase where they appear ('variety', 'tool': fragments of a keyphrase line)."""
    df = Counter(k for counts in found.values() for k in counts if " " not in k)
    limit = max(share * len(found), 3)
    return {
        k for k, n in df.items()
        if n > limit or len(vocab.concepts[k].given) < 2 or len(vocab.concepts[k].given) / n < keyness
    }


def corpus_signature(store: Any) -> str:
    h = hashlib.sha1()
    for row in store.concept_inputs_signature_rows():
        h.update(repr(tuple(row)).encode())
    return h.hexdigest()[:16]


def labels_signature(store: Any, version: str) -> str:
    """What the fitted vocabulary and keyphrase ranker depend on: given lines and their records."""
    h = hashlib.sha1(version.encode())
    for row in store.concept_label_rows():
        h.update(repr(tuple(row)).encode())
    return h.hexdigest()[:16]


@dataclass
class ConceptModel:
    """What a full concepts run fits and an incremental run reuses (stored as an artifact)."""

    vocab: Vocabulary
    predictor: KeyphrasePredictor | None
    generic: set[str]


class ConceptsStep:
    """Concepts for every record. The vocabulary, generic-word list and keyphrase ranker are
    fit from the given keyphrases and stored; while those labels are unchanged, a build only
    reads new or changed records with the stored model (like the map places new points
    without moving the others). `--full` or a change of labels refits everything."""

    name = "concepts"
    version = "6"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: Any) -> dict[str, int]:
        store = ctx.store
        signature = self.version + corpus_signature(store)
        if not ctx.full and store.step_signature(self.name) == signature:
            return {"concepts": store.count_concepts(), "unchanged": store.count_records()}
        labels = labels_signature(store, self.version)
        model = None if ctx.full else load_concept_model(store, labels)
        if model is None:
            counts = self._full(store, labels)
        else:
            counts = self._incremental(store, labels, model)
        with store.transaction():
            store.set_step_signature(self.name, signature, {"concepts": counts["concepts"]})
        return counts

    def _full(self, store: Any, labels: str) -> dict[str, int]:
        records = list(store.iter_records())
        given = refine_given({r.id: r.keyphrases for r in records if r.keyphrases})
        texts = {r.id: record_text(r) for r in records}
        vocab = Vocabulary.build(given, texts.values())
        embeddings = stored_embeddings(store, self.config)
        rows: list[tuple[str, str, float, str]] = []
        for rid, phrases in given.items():
            rows.extend((rid, k, 1.0, "given") for k in map(vocab.resolve, phrases) if k in vocab.concepts)
        found = {rid: vocab.find(text) for rid, text in texts.items()}
        generic = generic_keys(found, vocab)
        for rid, counts in found.items():
            rows.extend((rid, k, float(c), "text") for k, c in text_concepts(counts, vocab, rid, generic).items())
        predictor = KeyphrasePredictor(self.config).fit(
            {rid: texts[rid] for rid in given}, given, vocab=vocab, embeddings=embeddings
        ) if given else None
        blob = pickle.dumps(ConceptModel(vocab, predictor, generic), protocol=pickle.HIGHEST_PROTOCOL)
        unlabelled = [r.id for r in records if not r.keyphrases]
        predicted = predict_keyphrases(predictor, vocab, {rid: texts[rid] for rid in unlabelled}, rows, embeddings)
        with store.transaction():
            store.replace_concepts(vocabulary_rows(vocab, vocab.concepts), rows)
            store.set_keyphrases_many(predicted.items(), "predicted")
            store.put_concept_model(labels, blob, store.record_content_hashes())
        return {"concepts": len(vocab.concepts), "predicted": len(predicted), "records": len(records)}

    def _incremental(self, store: Any, labels: str, model: ConceptModel) -> dict[str, int]:
        """Only records new or changed since the model was stored (their labels cannot have
        changed, or the label signature would differ and a full run would refit)."""
        hashes = store.record_content_hashes()
        seen = store.concept_model_records(labels)
        changed = sorted(rid for rid, h in hashes.items() if seen.get(rid) != h)
        records = store.get_records(changed) if changed else []
        vocab = model.vocab
        rows: list[tuple[str, str, float, str]] = []
        texts = {r.id: record_text(r) for r in records}
        for rec in records:
            if rec.keyphrases:
                phrases = refine_given({rec.id: rec.keyphrases})[rec.id]
                rows.extend((rec.id, k, 1.0, "given") for k in map(vocab.resolve, phrases) if k in vocab.concepts)
            found = text_concepts(vocab.find(texts[rec.id]), vocab, rec.id, model.generic)
            rows.extend((rec.id, k, float(c), "text") for k, c in found.items())
        unlabelled = {r.id: texts[r.id] for r in records if not r.keyphrases}
        embeddings = stored_embeddings(store, self.config) if unlabelled else None
        predicted = predict_keyphrases(model.predictor, vocab, unlabelled, rows, embeddings)
        keys = {key for _, key, _, _ in rows}
        with store.transaction():
            store.update_record_concepts(changed, vocabulary_rows(vocab, keys), rows)
            store.set_keyphrases_many(predicted.items(), "predicted")
            store.put_concept_model_records(labels, hashes)
        return {"concepts": store.count_concepts(), "predicted": len(predicted), "records": len(changed),
                "unchanged": len(hashes) - len(changed)}


def predict_keyphrases(
    predictor: KeyphrasePredictor | None, vocab: Vocabulary, texts: dict[str, str],
    rows: list[tuple[str, str, float, str]], embeddings: dict[str, Any] | None = None,
) -> dict[str, list[str]]:
    """5 to 8 phrases per text (record id -> names); appends their `predicted` concept rows."""
    if predictor is None:
        return {rid: [] for rid in texts}
    out: dict[str, list[str]] = {}
    for rid, text in texts.items():
        names = []
        for phrase, score in predictor.predict(text, embedding=(embeddings or {}).get(rid)):
            key = vocab.add(phrase)
            if key:
                rows.append((rid, key, float(score), "predicted"))
                names.append(vocab.concepts[key].name)
        out[rid] = list(dict.fromkeys(names))
    return out


def stored_embeddings(store: Any, config: Config) -> dict[str, Any]:
    """Record id -> stored text embedding (the embed step runs before this one)."""
    from .embed import record_embeddings

    ids, matrix = record_embeddings(store, config)
    return dict(zip(ids, matrix, strict=True))


def vocabulary_rows(vocab: Vocabulary, keys: Iterable[str]) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "name": vocab.concepts[key].name,
            "aliases": vocab.aliases(key),
            "extra": {"key": key, "acronyms": sorted(vocab.concepts[key].acronyms),
                      "given_records": len(vocab.concepts[key].given)},
        }
        for key in sorted(keys)
    ]


def load_concept_model(store: Any, labels: str) -> ConceptModel | None:
    blob = store.concept_model_blob(labels)
    if blob is None:
        return None
    try:
        model = pickle.loads(blob)
    except Exception:  # noqa: BLE001 - a model pickled by another version is simply refit
        return None
    return model if isinstance(model, ConceptModel) else None


def step(config: Config) -> ConceptsStep:
    return ConceptsStep(config)


def concept_json(concept: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in concept.items() if k != "extra"} | {"extra": json.loads(concept.get("extra") or "{}")}
