"""The one rule under which variants of a phrase share a key, for the whole package.

A key is a normalised token string, never shown to people: case, accents, hyphens, British and
American spelling and plurals are ignored. Concepts, connections and every other module that
matches phrases against text use `phrase_key` and `text_keys` from here, so a phrase found by
one step is the same phrase to every other ("matches" and "match" are one key everywhere).
"""

from __future__ import annotations

import functools
import re

from ...text import strip_accents

_MATH = re.compile(r"\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]")
_LATEX = re.compile(r"\\[a-zA-Z]+\*?(\{[^{}]*\})?")
_CHUNK = re.compile(r"[.,;:()\[\]{}!?\"\u201c\u201d]+|\s-\s|\s--\s")
_RAW_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)?(?:[-\u2010\u2011\u2013/][A-Za-z0-9]+)*")
_SPLIT_WORD = re.compile(r"[-\u2010\u2011\u2013/]")


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
    """Plural to singular by rule; the result is only ever a key, so it need not be a word.

    '-ches', '-shes', '-sses' and '-xes' lose 'es' (matches -> match); '-zes' loses only the
    's' (sizes -> size, as size gives size).
    """
    if len(word) <= 3 or not word.isalpha() and not word[:-1].isalnum():
        return word
    if word.endswith(("ss", "us", "is", "ics", "ous", "sis", "ness")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


@functools.lru_cache(maxsize=200_000)
def key_token(word: str) -> str:
    """Singular first, then one spelling: 'analyses' and 'analyse' both become 'analyze'."""
    return american(singular(word))


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


def text_keys(text: str) -> list[str]:
    """The key tokens of running text in order, maths and LaTeX commands left out: a phrase
    occurs in a text when its `phrase_key` is a run of these. A raw word's keys are kept
    (words recur across texts: a third of the time went to the two cached lookups per word)."""
    out: list[str] = []
    kept = _WORD_KEYS
    for w in raw_words(clean_text(text)):
        keys = kept.get(w)
        if keys is None:
            if len(kept) >= WORD_KEYS_KEPT:
                kept.clear()
            keys = kept[w] = tuple(key_token(p) for p in split_raw(w))
        out.extend(keys)
    return out


WORD_KEYS_KEPT = 500_000
_WORD_KEYS: dict[str, tuple[str, ...]] = {}


def clean_text(text: str) -> str:
    return _LATEX.sub(" ", _MATH.sub(" ; ", text))


def lowered_clean_text(text: str) -> str:
    return clean_text(text).lower()


def text_chunks(text: str) -> list[str]:
    """Pieces of running text between punctuation: concepts never straddle a comma or a stop."""
    return [c for c in _CHUNK.split(clean_text(text)) if c.strip()]


def without_math(text: str) -> str:
    return _MATH.sub(" ; ", text)


def looks_like_acronym(word: str) -> bool:
    core = word[:-1] if word.endswith("s") and word[:-1].isupper() else word
    return 2 <= len(core) <= 8 and sum(c.isupper() for c in core) >= 2 and core[0].isupper()


def acronym_core(word: str) -> str:
    core = word[:-1] if word.endswith("s") and len(word) > 2 and word[:-1].upper() == word[:-1] else word
    return strip_accents(core).lower().replace("-", "")
