"""Acronyms mined from the corpus itself, so any field gets its own.

An acronym counts where some text spells it out, 'long name (ACR)', matched by initials or,
failing that, by the Schwartz-Hearst rule (the acronym's letters in order inside the long
form, the first one starting a word): 'quantum chromodynamics (QCD)'. Once mined, it is
resolved wherever any text uses it. No list of a field's acronyms is built in.

Also measured and left out: expanding acronyms that are used but never spelled out by the
keyphrases whose initials they spell. On our corpus that gave 'IR' -> 'implicit
regularization' and 'EM' -> 'ensemble methods', and even limited to three letters it lowered
keyphrase token F1 (0.499 without it, 0.496 with it, `landscape eval --only keyphrases`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .normalise import acronym_core, looks_like_acronym, raw_words, split_raw, without_math

_ACRONYM_PAREN = re.compile(r"\(([A-Za-z0-9][A-Za-z0-9\-]{1,11})\)")
_ACRONYM_SKIP = frozenset({"of", "and", "the", "for", "in", "to", "a", "an", "on", "with", "by"})
_CLAUSE = re.compile(r"[.;:!?()]")


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
    """The words just before '(ACR)' that the acronym abbreviates, if any: by initials
    first, then by the acronym's letters in order (Schwartz-Hearst)."""
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
    return _letters_in_order(letters, words)


def _letters_in_order(letters: str, words: list[str]) -> str | None:
    """Schwartz & Hearst (2003): match the acronym's letters right to left, each as far right
    as it goes, the first one at the start of a word; the long form starts at that word. Kept
    only if it has at least two words, at most min(n + 5, 2n), and every word other than a
    stopword holds a matched letter ('signal-to-noise ratio (SNR)', but not 'compared to
    equivalent dense (CSR)')."""
    if not letters.isalpha():
        return None
    words = words[-min(len(letters) + 5, 2 * len(letters)):]
    long = " ".join(words).lower()
    owner = [i for i, w in enumerate(words) for _ in range(len(w) + 1)]
    matched = []
    pos = len(long) - 1
    for n in range(len(letters) - 1, -1, -1):
        c = letters[n]
        while pos >= 0 and (long[pos] != c or (n == 0 and pos > 0 and long[pos - 1].isalnum())):
            pos -= 1
        if pos < 0:
            return None
        matched.append(owner[pos])
        pos -= 1
    first = matched[-1]
    if len(words) - first < 2 or words[first].lower() in _ACRONYM_SKIP:
        return None
    if any(i not in matched and words[i].lower() not in _ACRONYM_SKIP for i in range(first, len(words))):
        return None
    return " ".join(words[first:])


def mine_acronyms(texts: Iterable[str]) -> dict[str, Counter[str]]:
    """acronym -> Counter of expansion surface forms, from 'long name (ACR)' in the texts."""
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for text in texts:
        text = without_math(text)
        for m in _ACRONYM_PAREN.finditer(text):
            acr = m.group(1)
            if not looks_like_acronym(acr):
                continue
            before = _CLAUSE.split(text[: m.start()])[-1]
            expansion = expansion_before(acr, before)
            if expansion:
                found[acronym_core(acr)][expansion.lower()] += 1
    return found


@dataclass
class AcronymCounts:
    """What the corpus says about acronyms, gathered one text at a time (bounded by the number
    of distinct acronyms, not of texts)."""

    spelled: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, text: str) -> None:
        for acr, counts in mine_acronyms([text]).items():
            self.spelled[acr].update(counts)

    @classmethod
    def of(cls, texts: Iterable[str]) -> AcronymCounts:
        counts = cls()
        for text in texts:
            counts.add(text)
        return counts
