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
RARE = 5
LENGTH_PRIOR = {1: 0.25, 2: 0.45, 3: 0.22, 4: 0.08}


def _words(text: str) -> list[str]:
    return text.lower().split()


def _ngrams(ws: list[str], lo: int, hi: int) -> list[str]:
    """Every n-gram of the words, lo <= n <= hi, shortest first. Each length extends the
    previous one's grams by one word, joined in C (this runs for every keyphrase line)."""
    out: list[str] = list(ws) if lo <= 1 else []
    grams = ws
    for n in range(2, hi + 1):
        grams = list(map(" ".join, zip(grams, ws[n - 1 :])))
        if not grams:
            break
        if n >= lo:
            out += grams
    return out


def text_ngrams(text: str) -> set[str]:
    """Multi-word n-grams of running text, never across punctuation."""
    grams: set[str] = set()
    for chunk in _SPLIT_TEXT.split(text.lower()):
        grams.update(_ngrams(_WORD.findall(chunk), 2, MAX_WORDS))
    return grams


def _attested_anywhere(candidates: Counter[str], texts: Iterable[str]) -> set[str]:
    """Candidate grams found as running text in any of the texts.

    Only positions whose word starts some candidate are tried, so a long abstract costs a
    dictionary lookup per word rather than every one of its n-grams.
    """
    by_first: dict[str, set[int]] = {}
    for gram in candidates:
        ws = gram.split(" ")
        by_first.setdefault(ws[0], set()).add(len(ws))
    attested: set[str] = set()
    for text in texts:
        for chunk in _SPLIT_TEXT.split(text.lower()):
            ws = _WORD.findall(chunk)
            for i, w in enumerate(ws):
                lengths = by_first.get(w)
                if not lengths:
                    continue
                for n in lengths:
                    if i + n <= len(ws):
                        gram = " ".join(ws[i : i + n])
                        if gram in candidates:
                            attested.add(gram)
    return attested


def attested_in(grams: set[str], text: str) -> frozenset[str]:
    """Which of these multi-word grams occur as running text (whole words, no punctuation
    between them). Checking a line's few dozen grams is much cheaper than listing every
    n-gram of a long abstract."""
    lowered = text.lower()
    return frozenset(g for g in grams if g in lowered and _occurs(g, lowered))


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-'/+")


def _occurs(gram: str, text: str) -> bool:
    start = text.find(gram)
    while start >= 0:
        end = start + len(gram)
        if (start == 0 or text[start - 1] not in _WORD_CHARS) and (
            end == len(text) or text[end] not in _WORD_CHARS
        ):
            return True
        start = text.find(gram, start + 1)
    return False


class PhraseSegmenter:
    def __init__(self, iterations: int = 3, alpha: float = 20.0, min_unattested: int = 4):
        self.min_unattested = min_unattested
        self.iterations = iterations
        self.alpha = alpha
        self.counts: Counter[str] = Counter()
        self.word_p: dict[str, float] = {}
        self.total = 1.0
        self._memo: dict[tuple[str, frozenset[str]], list[str]] = {}
        self._plans: dict[str, tuple[list[str], frozenset[str], list[str] | None]] = {}
        self._common_grams: frozenset[str] = frozenset()
        self._common_for: Counter[str] | None = None

    def fit(self, pairs: Iterable[tuple[str, str]]) -> PhraseSegmenter:
        """Learn from (keyphrase line, title and abstract) pairs of the corpus."""
        self._memo.clear()
        self._plans.clear()
        lines: list[list[str]] = []
        candidates: Counter[str] = Counter()
        texts: list[str] = []
        for line, text in pairs:
            ws = _words(line)
            lines.append(ws)
            candidates.update(set(_ngrams(ws, 2, MAX_WORDS)))
            texts.append(text)
        attested = _attested_anywhere(candidates, texts)
        words = Counter(w for ws in lines for w in ws)
        total_words = sum(words.values()) or 1
        self.word_p = {w: c / total_words for w, c in words.items()}
        self.counts = Counter(
            {g: c if g in attested else c - self.min_unattested + 1
             for g, c in candidates.items() if g in attested or c >= self.min_unattested}
        )
        self.counts.update(words)
        self._renormalise()
        distinct = Counter(tuple(ws) for ws in lines)
        for _ in range(self.iterations):
            new: Counter[str] = Counter()
            for ws, times in distinct.items():
                for gram in self._viterbi(list(ws), frozenset()):
                    new[gram] += times
            self.counts = new
            self._renormalise()
        return self

    def _renormalise(self) -> None:
        self.total = float(sum(self.counts.values()) or 1)

    def _common(self) -> frozenset[str]:
        """Grams counted at least RARE times; rebuilt whenever counts is replaced."""
        if self._common_for is not self.counts:
            self._common_grams = frozenset(g for g, c in self.counts.items() if c >= RARE)
            self._common_for = self.counts
        return self._common_grams

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

    def _line_plan(self, line: str) -> tuple[list[str], frozenset[str], list[str] | None]:
        """(words, rare grams, the split whatever the record's text says, or None).

        The record's own text adds one to the count of the rare grams it contains. When the
        split is the same with none of them boosted and with all of them boosted, and uses
        none of them, no subset of boosts can change it (boosting only cheapens splits that
        use a boosted gram), so the text need not be read."""
        plan = self._plans.get(line)
        if plan is None:
            ws = _words(line)
            rare = frozenset(_ngrams(ws, 2, MAX_WORDS)) - self._common()
            fixed = self._viterbi(ws, frozenset())
            if rare and (not rare.isdisjoint(fixed) or self._viterbi(ws, rare) != fixed):
                plan = (ws, rare, None)
            else:
                plan = (ws, rare, list(dict.fromkeys(fixed)))
            if len(self._plans) < 20_000:  # lines recur; a corpus of unique lines gains nothing
                self._plans[line] = plan
        return plan

    def needs_text(self, line: str) -> bool:
        """Whether segment(line, text) depends on the text at all."""
        return self._line_plan(line)[2] is None

    def segment(self, line: str, text: str = "") -> list[str]:
        ws, rare, fixed = self._line_plan(line)
        if fixed is not None:
            return list(fixed)
        own = attested_in(set(rare), text) if text else frozenset()
        key = (line, own)
        cached = self._memo.get(key)
        if cached is None:
            cached = list(dict.fromkeys(self._viterbi(ws, own)))
            if len(self._memo) < 100_000:
                self._memo[key] = cached
        return list(cached)
