"""Split keyphrase lines whose delimiters were lost back into phrases.

The listing joins a paper's keyphrases with single spaces. Phrases recur across the corpus, so
the vocabulary is mined from the corpus itself: an n-gram of a keyphrase line is a phrase
candidate when it is also attested as running text in some title or abstract (n-grams that
straddle two keyphrases almost never are). Lines are then segmented by Viterbi under a
Dirichlet-process phrase model (Goldwater-style: counts plus a base distribution that favours
two- and three-word phrases), with counts re-estimated from the segmentations (hard EM).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

MAX_WORDS = 4
_SPLIT_TEXT = re.compile(r"[.,;:()\[\]{}!?\"$]+")
_WORD = re.compile(r"[a-z0-9][a-z0-9\-'/+]*")
# prior over phrase length in words: keyphrases are mostly two or three words
LENGTH_PRIOR = {1: 0.25, 2: 0.45, 3: 0.22, 4: 0.08}


def _words(text: str) -> list[str]:
    return text.lower().split()


def _ngrams(ws: list[str], lo: int, hi: int) -> Iterable[str]:
    for n in range(lo, hi + 1):
        for i in range(len(ws) - n + 1):
            yield " ".join(ws[i : i + n])


def text_ngrams(text: str) -> set[str]:
    """Multi-word n-grams of running text, never across punctuation."""
    grams: set[str] = set()
    for chunk in _SPLIT_TEXT.split(text.lower()):
        grams.update(_ngrams(_WORD.findall(chunk), 2, MAX_WORDS))
    return grams


class PhraseSegmenter:
    def __init__(self, iterations: int = 3, alpha: float = 20.0, min_unattested: int = 4):
        self.min_unattested = min_unattested
        self.iterations = iterations
        self.alpha = alpha
        self.counts: Counter[str] = Counter()
        self.word_p: dict[str, float] = {}
        self.total = 1.0

    def fit(self, pairs: Iterable[tuple[str, str]]) -> PhraseSegmenter:
        """Learn from (keyphrase line, title and abstract) pairs of the corpus."""
        lines: list[list[str]] = []
        candidates: Counter[str] = Counter()
        texts: list[str] = []
        for line, text in pairs:
            ws = _words(line)
            lines.append(ws)
            candidates.update(set(_ngrams(ws, 2, MAX_WORDS)))
            texts.append(text)
        attested: set[str] = set()
        for text in texts:
            attested.update(g for g in text_ngrams(text) if g in candidates)
        words = Counter(w for ws in lines for w in ws)
        total_words = sum(words.values()) or 1
        self.word_p = {w: c / total_words for w, c in words.items()}
        self.counts = Counter(
            {g: c if g in attested else c - self.min_unattested + 1
             for g, c in candidates.items() if g in attested or c >= self.min_unattested}
        )
        self.counts.update(words)
        self._renormalise()
        for _ in range(self.iterations):
            new: Counter[str] = Counter()
            for ws in lines:
                new.update(self._viterbi(ws, frozenset()))
            self.counts = new
            self._renormalise()
        return self

    def _renormalise(self) -> None:
        self.total = float(sum(self.counts.values()) or 1)

    def _base(self, gram: str) -> float:
        ws = gram.split()
        p = LENGTH_PRIOR.get(len(ws), 0.01)
        for w in ws:
            p *= self.word_p.get(w, 1e-6)
        return p

    def _cost(self, gram: str, own_text: frozenset[str]) -> float:
        count = self.counts.get(gram, 0) + (1.0 if gram in own_text else 0.0)
        return -math.log((count + self.alpha * self._base(gram)) / (self.total + self.alpha))

    def _viterbi(self, ws: list[str], own_text: frozenset[str]) -> list[str]:
        n = len(ws)
        best = [0.0] + [math.inf] * n
        back = [0] * (n + 1)
        for end in range(1, n + 1):
            for start in range(max(0, end - MAX_WORDS), end):
                cost = best[start] + self._cost(" ".join(ws[start:end]), own_text)
                if cost < best[end]:
                    best[end], back[end] = cost, start
        out, end = [], n
        while end > 0:
            out.append(" ".join(ws[back[end] : end]))
            end = back[end]
        return out[::-1]

    def segment(self, line: str, text: str = "") -> list[str]:
        own = frozenset(text_ngrams(text)) if text else frozenset()
        return list(dict.fromkeys(self._viterbi(_words(line), own)))
