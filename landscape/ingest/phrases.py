"""Split keyphrase lines whose delimiters were lost back into phrases.

The listing joins a paper's keyphrases with single spaces. A line is a few field terms that
recur across the corpus ("monte carlo methods", "group theory") mixed with terms of the paper
itself ("tidal stripping", "non-line-of-sight imaging") found in no other line. The segmenter
learns the structure of these lines from the corpus lines (hard EM, a few rounds), not only a
vocabulary:

- how many phrases a line holds: P(k | n words) = P(k) P(n | k), P(k) from the segmented lines
  (mostly five) and P(n | k) from their phrase lengths, so a long line may hold more;
- which phrases recur: a Dirichlet-process inventory of the phrases used in at least two
  distinct lines, less the co-occurrences of two terms (see `units`);
- what a new phrase looks like: generated word by word, its first word from the words that
  begin recurring phrases, the next ones from the words inside them, and after each word it
  ends with a probability learned per word ("learning", "methods", "theory" end phrases; "of",
  "neural", "dark" do not), backed off to the learned length distribution for unseen words.

Lines are segmented by Viterbi over (position, phrases so far), so the count prior and the
length and boundary models decide together. A new phrase costs one draw however long it is,
so an unknown multi-word term stays whole unless the line's structure says it holds two. Text
is weak evidence: a gram found as running text in some title or abstract of the corpus, and
again in the record's own, gains a small pseudo-count (TEXT_EVIDENCE).

Measured on the hand-segmented lines of tests/fixtures/keyphrase_lines.tsv (exact phrase F1):
0.707 before this model, 0.97 with it (tests/test_phrases.py; tests/fixtures/README.quality.md).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..artifacts import Artifact

MAX_WORDS = 5
MAX_PHRASES = 16
UNLIKELY = 25.0  # -log P(k | n) beyond which a line is not split into k phrases
RARE = 5
TEXT_EVIDENCE = 0.01  # pseudo-count of a gram found as running text, in the corpus and in its own record
STANDS_ALONE = 2.0  # a side standing alone this many times as often as the pair splits it
ITERATIONS = 4
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-'/+")
_SPLIT_TEXT = re.compile(r"[.,;:()\[\]{}!?\"$]+")
_WORD = re.compile(r"[a-z0-9][a-z0-9\-'/+]*")


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
    """Which of these multi-word grams occur as running text (whole words). Checking a line's
    few dozen grams is much cheaper than listing every n-gram of a long abstract."""
    lowered = text.lower()
    return frozenset(g for g in grams if g in lowered and _occurs(g, lowered))


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


def units(known: dict[str, int]) -> dict[str, int]:
    """The recurring phrases less the co-occurrences: a phrase that splits into A + B where A
    or B stands alone as a phrase at least STANDS_ALONE times as often as the pair occurs is
    two terms side by side ("normalizing flows lattice gauge theory", "metric jet physics"),
    not a term. Field terms recur in many combinations, so their pairs each recur rarely."""
    return {
        phrase: count
        for phrase, count in known.items()
        if not any(
            max(known.get(left, 0), known.get(right, 0)) >= STANDS_ALONE * count for left, right in _halves(phrase)
        )
    }


def _halves(phrase: str) -> list[tuple[str, str]]:
    ws = phrase.split(" ")
    return [(" ".join(ws[:i]), " ".join(ws[i:])) for i in range(1, len(ws))]


SEGMENTER_KIND = "keyphrase-segmenter"
SEGMENTER_FORMAT = 1
_PARAMS = ("iterations", "alpha", "smoothing", "backoff", "total", "new_share", "k_prior", "token_lengths",
           "hazard", "_vocab", "_first_total", "_inner_total")


class PhraseSegmenter:
    def __init__(self, iterations: int = ITERATIONS, alpha: float = 1.0, smoothing: float = 0.5, backoff: float = 2.0):
        self.iterations = iterations
        self.alpha = alpha  # DP concentration: weight of the base (new phrase) distribution
        self.smoothing = smoothing  # add-gamma for the word distributions of new phrases
        self.backoff = backoff  # pseudo-count pulling a word's end probability to the length hazard
        self.counts: Counter[str] = Counter()
        self.attested: frozenset[str] = frozenset()
        self.total = 1.0
        self.new_share = 0.5
        self.k_prior: list[float] = [1.0] * (MAX_PHRASES + 1)
        self.token_lengths: list[float] = [0.0, 0.2, 0.5, 0.2, 0.07, 0.03]
        self._k_costs: dict[int, list[float]] = {}
        self._words_cache: dict[str, tuple[float, float, list[float], list[float]]] = {}
        self.hazard: list[float] = [0.5] * (MAX_WORDS + 1)
        self.first: Counter[str] = Counter()
        self.inner: Counter[str] = Counter()
        self.ends: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self._first_total = self._inner_total = 1.0
        self._vocab = 1
        self._memo: dict[tuple[str, frozenset[str]], list[str]] = {}
        self._plans: dict[str, tuple[list[str], frozenset[str], list[str] | None]] = {}
        self._common_grams: frozenset[str] = frozenset()
        self._common_for: Counter[str] | None = None

    # --- fitting ------------------------------------------------------------------------

    def fit(self, pairs: Iterable[tuple[str, str]]) -> PhraseSegmenter:
        """Learn from (keyphrase line, title and abstract) pairs of the corpus."""
        self._memo.clear()
        self._plans.clear()
        lines: Counter[tuple[str, ...]] = Counter()
        texts: list[str] = []
        for line, text in pairs:
            lines[tuple(_words(line))] += 1
            texts.append(text)
        lines.pop((), None)
        recurring = Counter(g for ws in lines for g in set(_ngrams(list(ws), 2, MAX_WORDS)))
        self.attested = frozenset(_attested_anywhere(recurring, texts))
        del texts
        initial = {g: c for g, c in recurring.items() if c >= 2}
        self._estimate([[g] for g in initial], initial)  # lengths and word statistics of recurring grams
        self.new_share = 0.5
        self.k_prior = [1.0] * (MAX_PHRASES + 1)  # no line split yet: a flat count prior
        self._k_costs.clear()
        for _ in range(self.iterations):
            segmented = {ws: self._viterbi(list(ws), frozenset()) for ws in lines}
            lf = Counter(p for split in segmented.values() for p in set(split))
            self._estimate(list(segmented.values()), units({p: c for p, c in lf.items() if c >= 2}))
        return self

    def _estimate(self, splits: list[list[str]], known: dict[str, int]) -> None:
        """Every parameter from a segmentation of the distinct lines: the inventory (phrases
        of at least two lines), the share of new phrases, the count prior, and the word and
        length statistics of phrase types."""
        self.counts = Counter(known)
        self.total = float(sum(known.values()) or 1)
        used = sum(len(s) for s in splits) or 1
        self.new_share = min(0.9, max(0.05, sum(1 for s in splits for p in s if p not in known) / used))
        k_counts = Counter(min(len(s), MAX_PHRASES) for s in splits)
        n = sum(k_counts.values())
        self.k_prior = [(k_counts[k] + 0.5) / (n + 0.5 * MAX_PHRASES) for k in range(MAX_PHRASES + 1)]
        tokens = Counter(min(len(p.split()), MAX_WORDS) for s in splits for p in s)
        self.token_lengths = [(tokens[length] + 0.5) / (used + 0.5 * MAX_WORDS) for length in range(MAX_WORDS + 1)]
        self._k_costs.clear()
        types = set(known) or {p for s in splits for p in s}
        lengths = Counter(min(len(p.split()), MAX_WORDS) for p in types)
        at_least = sum(lengths.values())
        self.hazard = [0.5] * (MAX_WORDS + 1)
        for length in range(1, MAX_WORDS + 1):
            self.hazard[length] = (lengths[length] + 0.5) / (at_least + 1.0) if length < MAX_WORDS else 1.0
            at_least -= lengths[length]
        self.first, self.inner, self.ends, self.seen = Counter(), Counter(), Counter(), Counter()
        for p in types:
            ws = p.split()
            self.first[ws[0]] += 1
            self.inner.update(ws[1:])
            self.ends[ws[-1]] += 1
            self.seen.update(ws)
        self._vocab = len(self.seen) + 1
        self._words_cache.clear()
        self._first_total = sum(self.first.values()) + self.smoothing * self._vocab
        self._inner_total = sum(self.inner.values()) + self.smoothing * self._vocab

    # --- storing ------------------------------------------------------------------------

    def artifact(self, meta: dict[str, Any]) -> Artifact:
        """The fitted parameters as data (landscape.artifacts), so an ingest can reuse them."""
        counters = {"counts": self.counts, "first": self.first, "inner": self.inner, "ends": self.ends,
                    "seen": self.seen}
        arrays: dict[str, np.ndarray] = {"attested": np.array(sorted(self.attested), dtype=str)}
        for name, counter in counters.items():
            keys = sorted(counter)
            arrays[f"{name}_keys"] = np.array(keys, dtype=str)
            arrays[f"{name}_values"] = np.array([counter[k] for k in keys], dtype=np.int64)
        params = {name: getattr(self, name) for name in _PARAMS}
        return Artifact(SEGMENTER_KIND, SEGMENTER_FORMAT, {**meta, "params": params}, arrays)

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> PhraseSegmenter | None:
        """The segmenter an artifact holds; None where it is not a complete one."""
        try:
            params = artifact.meta["params"]
            seg = cls(*(params[name] for name in ("iterations", "alpha", "smoothing", "backoff")))
            for name in _PARAMS:
                setattr(seg, name, params[name])
            for name in ("counts", "first", "inner", "ends", "seen"):
                keys, values = artifact.arrays[f"{name}_keys"], artifact.arrays[f"{name}_values"]
                setattr(seg, name, Counter(dict(zip(keys.tolist(), values.tolist(), strict=True))))
            seg.attested = frozenset(artifact.arrays["attested"].tolist())
        except (KeyError, TypeError, ValueError):
            return None
        return seg

    # --- scoring --------------------------------------------------------------------------

    def _word(self, w: str) -> tuple[float, float, list[float], list[float]]:
        """log P(w first), log P(w next), and by position: log P(end after w), log P(go on)."""
        cached = self._words_cache.get(w)
        if cached is None:
            ends, goes = [0.0], [0.0]
            for i in range(1, MAX_WORDS + 1):
                end = (self.ends[w] + self.backoff * self.hazard[i]) / (self.seen[w] + self.backoff)
                ends.append(math.log(end))
                goes.append(math.log(1.0 - end) if end < 1.0 else -math.inf)
            cached = (
                math.log((self.first[w] + self.smoothing) / self._first_total),
                math.log((self.inner[w] + self.smoothing) / self._inner_total), ends, goes,
            )
            if len(self._words_cache) < 200_000:
                self._words_cache[w] = cached
        return cached

    def _new_phrase(self, ws: list[str]) -> float:
        """Probability of ws as a phrase generated word by word (first word, next words, and
        after each word: end here or go on)."""
        return math.exp(self._new_phrases(ws, 0)[-1])

    def _new_phrases(self, ws: list[str], start: int) -> list[float]:
        """log P(new phrase) of ws[start:start + 1], ws[start:start + 2], ... up to MAX_WORDS
        words, each extending the one before."""
        out = []
        acc = 0.0
        for i, w in enumerate(ws[start : start + MAX_WORDS], start=1):
            first, inner, ends, goes = self._word(w)
            acc += first if i == 1 else inner
            out.append(acc + ends[i])
            acc += goes[i]
        return out

    def _cost(self, gram: str, own_text: frozenset[str]) -> float:
        return self._line_costs(gram.split(" "), own_text)[0][-1]

    def _line_costs(self, ws: list[str], own_text: frozenset[str]) -> list[list[float]]:
        """cost[start][length - 1]: -log P(ws[start:start + length] is one phrase), a mixture of
        the recurring phrase (its count, plus text evidence) and a new phrase."""
        known_share, new_share = (1.0 - self.new_share) / self.total, self.new_share
        counts, attested = self.counts, self.attested
        out = []
        for start in range(len(ws)):
            row = []
            for length, logp in enumerate(self._new_phrases(ws, start), start=1):
                gram = " ".join(ws[start : start + length])
                count = counts.get(gram, 0)
                if length > 1 and (gram in attested or gram in own_text):
                    count += TEXT_EVIDENCE * ((gram in own_text) + (gram in attested))
                row.append(-math.log(known_share * count + new_share * math.exp(logp) + 1e-300))
            out.append(row)
        return out

    def _viterbi(self, ws: list[str], own_text: frozenset[str]) -> list[str]:
        """Best split under the phrase count prior: Viterbi over (words used, phrases so far).
        After i words only ceil(i / MAX_WORDS) .. i phrases are possible, so only those are kept."""
        n = len(ws)
        if not n:
            return []
        k_cost = self._k_cost(n)
        kmax = max((k for k in range(1, min(n, MAX_PHRASES) + 1) if k_cost[k] < UNLIKELY), default=min(n, MAX_PHRASES))
        cost = self._line_costs(ws, own_text)
        best = [[math.inf] * (kmax + 1) for _ in range(n + 1)]
        back = [[0] * (kmax + 1) for _ in range(n + 1)]
        best[0][0] = 0.0
        for end in range(1, n + 1):
            out, back_end = best[end], back[end]
            for start in range(max(0, end - MAX_WORDS), end):
                c = cost[start][end - start - 1]
                row = best[start]
                for k in range(-(-start // MAX_WORDS), min(start, kmax - 1) + 1):
                    total = row[k] + c
                    if total < out[k + 1]:
                        out[k + 1] = total
                        back_end[k + 1] = start
        last = best[n]
        k = min(range(1, kmax + 1), key=lambda j: last[j] + k_cost[j])
        out_phrases, end = [], n
        while end > 0:
            start = back[end][k]
            out_phrases.append(" ".join(ws[start:end]))
            end, k = start, k - 1
        return out_phrases[::-1]

    def _k_cost(self, n: int) -> list[float]:
        """-log P(k phrases | n words) = P(k) P(n | k), normalised over k, where P(n | k) is the
        chance that k phrase lengths (drawn from the lengths of segmented phrases) sum to n:
        lines mostly hold five phrases, but a line of twenty words holds more."""
        cached = self._k_costs.get(n)
        if cached is None:
            sums = [1.0] + [0.0] * n  # P(the lengths of j phrases sum to m), for j = 0, 1, ...
            joint = [0.0] * (MAX_PHRASES + 1)
            for j in range(1, min(n, MAX_PHRASES) + 1):
                sums = [sum(sums[m - length] * self.token_lengths[length] for length in range(1, min(m, MAX_WORDS) + 1))
                        for m in range(n + 1)]
                joint[j] = self.k_prior[j] * sums[n]
            total = sum(joint) or 1.0
            cached = [-math.log(p / total) if p > 0 else math.inf for p in joint]
            if len(self._k_costs) < 1000:
                self._k_costs[n] = cached
        return cached

    # --- segmenting -----------------------------------------------------------------------

    def _common(self) -> frozenset[str]:
        """Grams counted at least RARE times; rebuilt whenever counts is replaced."""
        if self._common_for is not self.counts:
            self._common_grams = frozenset(g for g, c in self.counts.items() if c >= RARE)
            self._common_for = self.counts
        return self._common_grams

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
