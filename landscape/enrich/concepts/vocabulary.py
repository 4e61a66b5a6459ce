"""The vocabulary: concepts keyed by normalised form, with acronym expansions and a matcher.

A concept is a phrase with its variants merged: plural and singular, hyphenation, British and
American spelling, and acronyms resolved to their expansions. Every variant maps to one *key*
(`normalise.phrase_key`); a concept's display name is its most common surface form.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ...text import STOPWORDS
from .acronyms import AcronymCounts
from .normalise import (
    acronym_core,
    key_token,
    looks_like_acronym,
    phrase_key,
    raw_words,
    split_raw,
    text_chunks,
)

MAX_CONCEPT_WORDS = 6
FRAGMENT_RATIO = 4  # a word inside longer given phrases this many times as often as alone is a fragment
MIN_ALONE = 2  # records that must give a single word alone for it to be a concept
WORD_CACHE = 500_000  # raw words whose key tokens `key_tokens` keeps (cleared when full)


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
        self._word_pairs: dict[str, tuple[tuple[str, str], ...]] = {}
        self._prefixes: set[str] = set()
        self._inside: dict[str, set[str]] | None = None

    def rebuild_prefixes(self) -> None:
        self._prefixes = {p for key in self.concepts for p in _prefixes(key)}

    @classmethod
    def build(cls, given: dict[str, list[str]], texts: Iterable[str] | AcronymCounts) -> Vocabulary:
        """From given keyphrases (record id -> phrases) and the corpus texts (for acronyms), or
        what `AcronymCounts` gathered from them."""
        counts = texts if isinstance(texts, AcronymCounts) else AcronymCounts.of(texts)
        acronyms, surface = acronym_expansions(counts)
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
            self._inside = None
        return key

    def standalone(self, key: str) -> bool:
        """Whether a concept can stand on its own as a tag: any phrase of two words or more, but a
        single word (hyphenated ones too: 'multi-band') only as the authors use it. Keyphrase lines show which words their authors
        give as whole phrases ('interpretability', 'clustering', 't-duality') and which mostly
        live inside longer ones ('photometric' of 'photometric redshift estimation', 'theory',
        'model'). A word is a concept where at least MIN_ALONE records give it alone (one line
        alone may hold a piece split off a longer phrase: 'pre-supernova', 'multi-band',
        'triple') and longer given phrases hold it at most FRAGMENT_RATIO times as often."""
        if " " in (self.concepts[key].name if key in self.concepts else key):
            return True
        if self._inside is None:
            self._inside = _records_inside(self.concepts)
        alone = len(self.concepts[key].given) if key in self.concepts else 0
        inside = len(self._inside.get(key, ()))
        return alone >= MIN_ALONE and inside <= FRAGMENT_RATIO * alone

    def key_tokens(self, text: str) -> list[list[tuple[str, str]]]:
        """Each chunk of the text as (key token, surface) pairs, acronyms written out.

        A surface ends in the character that joined it to the next word ('-' or ' '), so
        "".join(surfaces).strip() gives the phrase back as written, lowercased.
        """
        cached = self._tokens_cache.get(text)
        if cached is not None:
            return cached
        out = []
        pairs_of = self._word_pairs
        if len(pairs_of) > WORD_CACHE:
            pairs_of.clear()
        for chunk in text_chunks(text):
            toks: list[tuple[str, str]] = []
            for word in raw_words(chunk):
                pairs = pairs_of.get(word)
                if pairs is None:
                    if not looks_like_acronym(word):  # kept: depends on the word alone, not on the acronyms
                        pairs = pairs_of[word] = word_pairs(word)
                    elif acronym_core(word) in self.acronyms:
                        pairs = tuple((t, t + " ") for t in self.acronyms[acronym_core(word)].split())
                    else:
                        pairs = word_pairs(word)
                toks.extend(pairs)
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


def word_pairs(word: str) -> tuple[tuple[str, str], ...]:
    """A raw word's (key token, surface) pairs. `Vocabulary.key_tokens` keeps them per word:
    words recur across texts, and working them out anew was a third of a full concepts step
    (60 of 161 CPU s at 101,000 records)."""
    parts = split_raw(word)
    return tuple((key_token(p), p + ("-" if i < len(parts) - 1 else " ")) for i, p in enumerate(parts))


def _records_inside(concepts: dict[str, Concept]) -> dict[str, set[str]]:
    """key -> records whose given phrases hold it inside a longer phrase ('multi band' of
    'multi band photometry' too)."""
    out: dict[str, set[str]] = {}
    for key, concept in concepts.items():
        words = key.split()
        if len(words) > 1 and concept.given:
            for n in range(1, len(words)):
                for start in range(len(words) - n + 1):
                    out.setdefault(" ".join(words[start : start + n]), set()).update(concept.given)
    return out


def _prefixes(key: str) -> list[str]:
    """'a b c' -> ['a', 'a b', 'a b c']: what `Vocabulary.find` may extend."""
    toks = key.split()
    return [" ".join(toks[: n + 1]) for n in range(len(toks))]




def acronym_expansions(counts: AcronymCounts) -> tuple[dict[str, str], dict[str, str]]:
    """(acronym -> concept key, acronym -> expansion as written) of the acronyms the texts
    spell out, each with its most frequent expansion."""
    surface = {acr: max(c, key=lambda e: (c[e], e)) for acr, c in counts.spelled.items() if c}
    return {acr: phrase_key(e) for acr, e in surface.items()}, surface
