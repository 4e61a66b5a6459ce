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
from collections.abc import Callable, Iterable
from itertools import compress
from typing import Any

import numpy as np

from ..artifacts import Artifact
from .viterbi import best_bounds

MAX_WORDS = 5
MAX_PHRASES = 16
UNLIKELY = 25.0  # -log P(k | n) beyond which a line is not split into k phrases
RARE = 5
TEXT_EVIDENCE = 0.01  # pseudo-count of a gram found as running text, in the corpus and in its own record
STANDS_ALONE = 2.0  # a side standing alone this many times as often as the pair splits it
ITERATIONS = 4
GRAM_CACHE = 200_000  # grams whose costs are kept between lines
Sheet = tuple[list[str], list[float]]  # a line's grams by length then start, and their costs without own text
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

    Only positions whose first two words start some candidate are tried, so a long abstract
    costs a dictionary lookup or two per word rather than every one of its n-grams.
    """
    singles: set[str] = set()
    by_start: dict[str, dict[str, set[int]]] = {}
    for gram in candidates:
        ws = gram.split(" ")
        if len(ws) == 1:
            singles.add(gram)
        else:
            by_start.setdefault(ws[0], {}).setdefault(ws[1], set()).add(len(ws))
    attested: set[str] = set()
    for text in texts:
        for chunk in _SPLIT_TEXT.split(text.lower()):
            ws = _WORD.findall(chunk)
            if singles:
                attested.update(singles.intersection(ws))
            m = len(ws)
            for i in range(m - 1):
                seconds = by_start.get(ws[i])
                lengths = seconds.get(ws[i + 1]) if seconds else None
                if not lengths:
                    continue
                for n in lengths:
                    if i + n <= m:
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
        self._grams: tuple[dict[str, float], dict[str, tuple[int, float, bool]], dict[str, float]] = ({}, {}, {})
        self._grams_for: tuple[Any, ...] = ()
        self._places: dict[int, np.ndarray] = {}

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
            segmented = dict(zip(lines, self._viterbi_many([(list(ws), frozenset()) for ws in lines]), strict=True))
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
        kmax = self._kmax(n)
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

    def _kmax(self, n: int) -> int:
        """The most phrases a line of n words is split into: those whose count is not UNLIKELY."""
        k_cost = self._k_cost(n)
        return max((k for k in range(1, min(n, MAX_PHRASES) + 1) if k_cost[k] < UNLIKELY), default=min(n, MAX_PHRASES))

    # --- many lines at once ---------------------------------------------------------------

    def _viterbi_many(self, lines: list[tuple[list[str], frozenset[str]]]) -> list[list[str]]:
        """_viterbi of each (words, own text) pair: the same splits, many lines at once."""
        return self._viterbi_sheets([(ws, own, None) for ws, own in lines])

    def _viterbi_sheets(self, lines: list[tuple[list[str], frozenset[str], Sheet | None]], cells: int = 1 << 15) -> list[list[str]]:
        """_viterbi of each (words, own text, the line's sheet if made already): lines sorted by
        length go through the numpy recurrence (viterbi.best_bounds) in batches of about
        `cells` words."""
        out: list[list[str]] = [[] for _ in lines]
        order = sorted((i for i, line in enumerate(lines) if line[0]), key=lambda i: len(lines[i][0]))
        batch: list[int] = []
        for i in order:
            if batch and (len(batch) + 1) * len(lines[i][0]) > cells:
                self._viterbi_batch(lines, batch, out)
                batch = []
            batch.append(i)
        self._viterbi_batch(lines, batch, out)
        return out

    def _viterbi_batch(self, lines: list[tuple[list[str], frozenset[str], Sheet | None]], batch: list[int], out: list[list[str]]) -> None:
        if len(batch) < 4:  # numpy's cost per step outweighs the loops for a line or two
            for i in batch:
                out[i] = self._viterbi(lines[i][0], lines[i][1])
            return
        unmade = [i for i in batch if lines[i][2] is None]
        made = dict(zip(unmade, self._sheets([lines[i][0] for i in unmade]), strict=True))
        flat: list[float] = []
        for i in batch:
            ws, own, sheet = lines[i]
            flat += self._owned(sheet or made[i], len(ws), own)
        lengths = np.array([len(lines[i][0]) for i in batch])
        cost = np.full((len(batch), int(lengths.max()), MAX_WORDS), math.inf)
        where = np.concatenate([self._cost_places(n) for n in lengths.tolist()])
        where += np.repeat(np.arange(len(batch)) * cost[0].size, [self._cost_places(n).size for n in lengths.tolist()])
        cost.reshape(-1)[where] = flat
        sizes, at = np.unique(lengths, return_inverse=True)
        k_cost = np.array([self._k_cost_row(n) for n in sizes.tolist()])[at]
        for i, ends in zip(batch, best_bounds(cost, lengths, k_cost), strict=True):
            ws = lines[i][0]
            out[i] = [" ".join(ws[a:b]) for a, b in zip(ends, ends[1:])]

    def _sheets(self, lines: list[list[str]]) -> list[Sheet]:
        """Each line's grams (by length, then start) and their costs in _line_costs without own
        text: the same sums, looked up per gram (field terms recur across lines) a whole column
        at a time, and made once per line for all the splits it goes through."""
        base, _, _ = self._gram_costs()
        logps: list[list[float]] | None = None
        sheets: list[Sheet] = []
        at = 0
        for ws in lines:
            grams, all_grams, all_costs = ws, [], []
            for length in range(1, min(len(ws), MAX_WORDS) + 1):
                if length > 1:
                    grams = list(map(" ".join, zip(grams, ws[length - 1 :])))
                costs = list(map(base.get, grams))
                if None in costs:
                    if logps is None:
                        logps = self._new_phrase_logps([w for line in lines for w in line])
                    self._add_grams(length, grams, costs, logps, at)
                all_grams += grams
                all_costs += costs
            sheets.append((all_grams, all_costs))
            at += len(ws)
        return sheets

    def _owned(self, sheet: Sheet, n: int, own_text: frozenset[str]) -> list[float]:
        """A sheet's costs with the grams of own_text (two words or more) boosted as in _line_costs."""
        grams, costs = sheet
        if not own_text:
            return costs
        hits = list(map(own_text.__contains__, grams))
        hits[:n] = [False] * n  # the one-word grams come first
        if True not in hits:
            return costs
        _, parts, boosted = self._gram_costs()
        known_share = (1.0 - self.new_share) / self.total
        for gram in compress(grams, hits):
            if gram not in boosted:
                count, new, seen = parts.get(gram) or self._gram_parts(gram)
                boosted[gram] = -math.log(known_share * (count + TEXT_EVIDENCE * (1 + seen)) + new + 1e-300)
        return [boosted[g] if hit else c for g, hit, c in zip(grams, hits, costs, strict=True)]

    def _gram_parts(self, gram: str) -> tuple[int, float, bool]:
        """(count, new_share * P(new phrase), whether attested) of a gram of two words or more."""
        ws = gram.split(" ")
        return self.counts.get(gram, 0), self.new_share * math.exp(self._new_phrases(ws, 0)[len(ws) - 1]), gram in self.attested

    def _new_phrase_logps(self, words: list[str]) -> list[list[float]]:
        """_new_phrases(words, start) for every start, as arrays: the same float64 sums in the same
        order. A row's entries that run past a line's end are not used."""
        known = {w: j for j, w in enumerate(dict.fromkeys(words))}
        stats = [self._word(w) for w in known]
        first, inner = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
        ends, goes = np.array([s[2] for s in stats]), np.array([s[3] for s in stats])
        index = np.array([known[w] for w in words] + [0] * MAX_WORDS)
        n = len(words)
        out = np.empty((n, MAX_WORDS))
        acc = np.zeros(n)
        for i in range(1, MAX_WORDS + 1):
            word = index[i - 1 : i - 1 + n]
            acc += first[word] if i == 1 else inner[word]
            out[:, i - 1] = acc + ends[word, i]
            acc += goes[word, i]
        return out.tolist()

    def _cost_places(self, n: int) -> np.ndarray:
        """Where a sheet's costs for a line of n words go in its (start, length - 1) block."""
        places = self._places.get(n)
        if places is None:
            places = np.concatenate([np.arange(n - length + 1) * MAX_WORDS + length - 1
                                     for length in range(1, min(n, MAX_WORDS) + 1)])
            if len(self._places) < 1000:
                self._places[n] = places
        return places

    def _k_cost_row(self, n: int) -> list[float]:
        """_k_cost(n) for 1 .. _kmax(n) phrases, +inf elsewhere, MAX_PHRASES + 1 long."""
        kmax, k_cost = self._kmax(n), self._k_cost(n)
        return [math.inf] + k_cost[1 : kmax + 1] + [math.inf] * (MAX_PHRASES - kmax)

    def _gram_costs(self) -> tuple[dict[str, float], dict[str, tuple[int, float, bool]], dict[str, float]]:
        """gram -> its cost in _line_costs without the record's own text; its (count, new_share *
        P(new phrase), whether attested); its cost with the record's own text. Kept while
        every parameter a gram's cost reads is the same object or value (and emptied past
        GRAM_CACHE grams)."""
        params = (self.counts, self.attested, self.first, self.inner, self.ends, self.seen, self.hazard,
                  self.total, self.new_share, self._first_total, self._inner_total, self.smoothing, self.backoff)
        stale = len(params) != len(self._grams_for) or any(a is not b and a != b for a, b in zip(params, self._grams_for))
        if stale or len(self._grams[0]) > GRAM_CACHE:
            self._grams, self._grams_for = ({}, {}, {}), params
        return self._grams

    def _add_grams(
        self, length: int, grams: list[str], costs: list[float | None], logps: list[list[float]], at: int
    ) -> None:
        """Fill in the costs of grams not yet looked up (the line's words start .. start + length
        for each start, whose log P(new phrase) is logps[at + start][length - 1])."""
        base, parts, _ = self._grams
        known_share, new_share, counts, attested = (1.0 - self.new_share) / self.total, self.new_share, self.counts, self.attested
        row, exp, log = length - 1, math.exp, math.log
        for start in [i for i, c in enumerate(costs) if c is None]:
            gram = grams[start]
            count = counts.get(gram, 0)
            new = new_share * exp(logps[at + start][row])
            if row and gram in attested:
                costs[start] = base[gram] = -log(known_share * (count + TEXT_EVIDENCE * True) + new + 1e-300)
                parts[gram] = (count, new, True)
            else:
                costs[start] = base[gram] = -log(known_share * count + new + 1e-300)
                if row:
                    parts[gram] = (count, new, False)

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

    def _line_plans(self, lines: list[str]) -> list[tuple[list[str], frozenset[str], list[str] | None]]:
        """(words, rare grams, the split whatever the record's text says, or None) of each line.

        The record's own text adds one to the count of the rare grams it contains. When the
        split is the same with none of them boosted and with all of them boosted, and uses
        none of them, no subset of boosts can change it (boosting only cheapens splits that
        use a boosted gram), so the text need not be read."""
        plans = [self._plans.get(line) for line in lines]
        new = list(dict.fromkeys(line for line, plan in zip(lines, plans, strict=True) if plan is None))
        if new:
            words = [_words(line) for line in new]
            common = self._common()
            rare = [frozenset(_ngrams(ws, 2, MAX_WORDS)) - common for ws in words]
            made_sheets = self._sheets(words)
            fixed = self._viterbi_sheets([(ws, frozenset(), sheet) for ws, sheet in zip(words, made_sheets, strict=True)])
            check = [j for j in range(len(new)) if rare[j] and rare[j].isdisjoint(fixed[j])]
            boosted = self._viterbi_sheets([(words[j], rare[j], made_sheets[j]) for j in check])
            same = {j for j, split in zip(check, boosted, strict=True) if split == fixed[j]}
            made = {}
            for j, line in enumerate(new):
                text_free = not rare[j] or j in same
                made[line] = (words[j], rare[j], list(dict.fromkeys(fixed[j])) if text_free else None)
                if len(self._plans) < 20_000:  # lines recur; a corpus of unique lines gains nothing
                    self._plans[line] = made[line]
            plans = [made[line] if plan is None else plan for line, plan in zip(lines, plans, strict=True)]
        return plans  # type: ignore[return-value]

    def needs_text(self, line: str) -> bool:
        """Whether segment(line, text) depends on the text at all."""
        return self._line_plans([line])[0][2] is None

    def segment(self, line: str, text: str = "") -> list[str]:
        return self.segment_many([line], lambda _: [text])[0]

    def segment_many(self, lines: list[str], texts: Callable[[list[int]], list[str]]) -> list[list[str]]:
        """segment() of many lines at once; texts(indices) gives the title and abstract of the
        lines at those indices, asked only for lines whose split may depend on them.

        The text is read before deciding whether it matters, which spares most lines the
        Viterbi with every rare gram boosted that _line_plans runs to decide it: where the text
        holds none of the line's rare grams, the split is the plain one either way, and where it
        holds all of them, the split with all of them boosted either way. Only a line between
        the two, whose plain split uses no rare gram, needs that Viterbi."""
        plans = [self._plans.get(line) for line in lines]
        fresh = list(dict.fromkeys(line for line, plan in zip(lines, plans, strict=True) if plan is None))
        words = {line: _words(line) for line in fresh}
        common = self._common()
        rare = {line: frozenset(_ngrams(ws, 2, MAX_WORDS)) - common for line, ws in words.items()}
        sheets = dict(zip(fresh, self._sheets(list(words.values())), strict=True))
        fixed = dict(zip(fresh, self._viterbi_sheets([(words[line], frozenset(), sheets[line]) for line in fresh]),
                         strict=True))
        need = [i for i, (line, plan) in enumerate(zip(lines, plans, strict=True))
                if (plan[2] is None if plan is not None else rare[line])]
        given = dict(zip(need, texts(need) if need else [], strict=True))
        out: list[list[str] | None] = [None] * len(lines)
        owns: dict[int, frozenset[str]] = {}
        undecided: dict[str, list[int]] = {}
        for i, (line, plan) in enumerate(zip(lines, plans, strict=True)):
            if plan is not None and plan[2] is not None:
                out[i] = list(plan[2])
                continue
            grams = plan[1] if plan is not None else rare[line]
            own = attested_in(set(grams), given[i]) if given.get(i) else frozenset()
            if plan is not None:
                owns[i] = own
            elif not grams:
                out[i] = self._keep_plan(line, (words[line], grams, list(dict.fromkeys(fixed[line]))))
            elif not own:
                out[i] = list(dict.fromkeys(fixed[line]))
            else:
                owns[i] = own
                if own != grams and grams.isdisjoint(fixed[line]):
                    undecided.setdefault(line, []).append(i)
                elif not grams.isdisjoint(fixed[line]):
                    self._keep_plan(line, (words[line], grams, None))
        boosted = self._viterbi_sheets([(words[line], rare[line], sheets[line]) for line in undecided])
        for (line, at), split in zip(undecided.items(), boosted, strict=True):
            text_free = split == fixed[line]
            kept = self._keep_plan(line, (words[line], rare[line], list(dict.fromkeys(split)) if text_free else None))
            for i in at if text_free else []:
                out[i] = list(kept or [])
                del owns[i]
        todo: dict[tuple[str, frozenset[str]], list[int]] = {}
        for i, own in owns.items():
            cached = self._memo.get((lines[i], own))
            if cached is None:
                todo.setdefault((lines[i], own), []).append(i)
            else:
                out[i] = list(cached)
        splits = self._viterbi_sheets([
            (words[line] if line in words else plans[at[0]][0], own, sheets.get(line))  # type: ignore[index]
            for (line, own), at in todo.items()
        ])
        for (key, at), split in zip(todo.items(), splits, strict=True):
            cached = list(dict.fromkeys(split))
            if len(self._memo) < 100_000:
                self._memo[key] = cached
            for i in at:
                out[i] = list(cached)
        return out  # type: ignore[return-value]

    def _keep_plan(self, line: str, plan: tuple[list[str], frozenset[str], list[str] | None]) -> list[str] | None:
        """Keep a line's plan (lines recur; a corpus of unique lines gains nothing past 20,000);
        returns its text-free split."""
        if len(self._plans) < 20_000:
            self._plans[line] = plan
        return None if plan[2] is None else list(plan[2])
