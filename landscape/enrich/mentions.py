"""Talks anchored to the papers they discuss: each talk section linked to its top papers.

A section's score against a paper combines closeness of meaning (the section's own embedding
against the paper's) with the concepts both name, weighted by how rare each concept is
(IDF), so a section about stellar streams and dark matter meets the stellar-stream papers
and not every dark-matter paper. The reasons list names the shared concepts, then the
similarity. Section vectors are cached by content (artifact `mentions.vectors`), so adding
papers relinks talks without re-embedding them; so are the concepts each paper's text names
(artifact `mentions.found`, by content hash and concept vocabulary), so adding papers matches
only their texts. A section is scored only against candidates: its nearest papers by meaning
(the neighbour graph's index) and the papers naming its rarer concepts, so the work per section
does not grow with the corpus.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import zipfile
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts import Artifact, pack, unpack
from ..config import Config
from ..store.interfaces import LandscapeReadStore
from ..text import content_hash, strip_accents
from .embed import record_embeddings, store_embedder
from .neighbours import nearest_records
from .predictors import array_strings, strings_array

if TYPE_CHECKING:
    from .pipeline import BuildContext

VECTORS_ARTIFACT = "mentions.vectors"
FOUND_ARTIFACT = "mentions.found"  # the concepts each paper's text names, kept between builds
FOUND_KIND = "mentions-found"
SIGNATURE_ARTIFACT = "mentions.signature"
TOP = 5
NEAREST = 200  # candidates by meaning per section
BY_CONCEPT = 500  # candidates naming the section's concepts, rarest concept first
DENSE_WEIGHT = 0.55
CONCEPT_WEIGHT = 0.45
_WORD = re.compile(r"[a-z0-9]+")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.S)


@functools.lru_cache(maxsize=200_000)
def norm_token(word: str) -> str:
    """Lowercase token with a plain plural dropped: 'streams' and 'stream' meet."""
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def norm_tokens(text: str) -> list[str]:
    text = _MATH.sub(" ", strip_accents(text).lower())
    return list(map(norm_token, _WORD.findall(text)))


class ConceptMatcher:
    """Finds the store's concepts (by any alias) in free text, plural and hyphen insensitive."""

    def __init__(self, vocabulary: dict[str, list[str]], max_words: int = 6):
        self.phrases: dict[tuple[str, ...], str] = {}
        for name, aliases in sorted(vocabulary.items()):
            for alias in aliases:
                key = tuple(norm_tokens(alias))
                if key and len(key) <= max_words and (len(key) > 1 or len(key[0]) > 3):
                    self.phrases.setdefault(key, name)
        self.max_words = max((len(k) for k in self.phrases), default=1)
        self.prefixes = {key[:n] for key in self.phrases for n in range(1, len(key) + 1)}
        self.first_words = {key[0] for key in self.phrases}

    def find(self, text: str) -> Counter[str]:
        words = norm_tokens(text)
        found: Counter[str] = Counter()
        i = 0
        while i < len(words):
            if words[i] not in self.first_words:
                i += 1
                continue
            longest, name = 1, None
            for n in range(1, min(self.max_words, len(words) - i) + 1):
                key = tuple(words[i : i + n])
                if key not in self.prefixes:
                    break
                if key in self.phrases:
                    longest, name = n, self.phrases[key]
            if name is not None:
                found[name] += 1
            i += longest
        return found


def concept_idf(concept_sets: dict[str, set[str]]) -> dict[str, float]:
    df: Counter[str] = Counter()
    for names in concept_sets.values():
        df.update(names)
    n = max(1, len(concept_sets))
    return {c: math.log((n + 1) / (k + 0.5)) for c, k in df.items()}


def section_text(section: dict[str, Any]) -> str:
    return f"{section['title']}. {section['text']}".strip()


def section_key(section: dict[str, Any], model: str) -> str:
    return content_hash(model, section_text(section))


def load_vectors(raw: bytes | None) -> dict[str, np.ndarray]:
    """The cached section vectors; anything unreadable (damage, a planted pickle) is an empty
    cache, so the sections are embedded again."""
    if raw is None:
        return {}
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            keys = json.loads(data["keys"].tobytes().decode())
            return dict(zip(keys, data["vectors"], strict=True))
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
        return {}


def save_vectors(vectors: dict[str, np.ndarray]) -> bytes:
    keys = sorted(vectors)
    buf = io.BytesIO()
    matrix = np.vstack([vectors[k] for k in keys]) if keys else np.zeros((0, 1), dtype=np.float32)
    np.savez_compressed(buf, keys=np.frombuffer(json.dumps(keys).encode(), dtype=np.uint8), vectors=matrix)
    return buf.getvalue()


def readable(shared: set[str], idf: dict[str, float], generic_idf: float = 2.0) -> list[str]:
    """Shared concepts worth naming, rarest first: not generic, not part of a longer one named."""
    keep = [c for c in shared if idf.get(c, 0.0) >= generic_idf]
    words = {c: " " + " ".join(norm_tokens(c)) + " " for c in keep}
    keep = [c for c in keep if not any(c != o and words[c] in words[o] for o in keep)]
    return sorted(keep, key=lambda c: (-idf.get(c, 0.0), c))


def rank_papers(
    sec_vec: np.ndarray,
    sec_concepts: set[str],
    paper_ids: list[str],
    paper_matrix: np.ndarray,
    paper_concepts: dict[str, set[str]],
    idf: dict[str, float],
    top: int = TOP,
) -> list[dict[str, Any]]:
    """The papers a section discusses, best first, with the concepts they share as reasons."""
    dense = paper_matrix @ sec_vec
    mass = sum(idf.get(c, 0.0) for c in sec_concepts) or 1.0
    concept = np.array(
        [sum(idf.get(c, 0.0) for c in sec_concepts & paper_concepts.get(pid, set())) / mass for pid in paper_ids]
    )
    scores = DENSE_WEIGHT * dense + CONCEPT_WEIGHT * np.minimum(concept, 1.0)
    order = sorted(range(len(paper_ids)), key=lambda i: (-scores[i], paper_ids[i]))[:top]
    out = []
    for i in order:
        shared = readable(sec_concepts & paper_concepts.get(paper_ids[i], set()), idf)
        reasons = [f"shared concepts: {', '.join(shared[:4])}"] if shared else []
        reasons.append(f"similar in meaning ({float(dense[i]):.2f})")
        out.append({"id": paper_ids[i], "score": round(float(scores[i]), 4), "reasons": reasons, "shared": shared})
    return out


def paper_concept_sets(store: LandscapeReadStore, matcher: ConceptMatcher, rows: dict[str, dict[str, Any]], ids: list[str],
                       known: dict[str, tuple[str, set[str]]] | None = None) -> dict[str, set[str]]:
    """Each paper's concepts: those stored for it and those its title and abstract name."""
    stored = store.ls_record_concept_names(ids)
    named = text_concepts(store, matcher, rows, ids, known or {})
    return {pid: set(stored.get(pid, [])) | named[pid] for pid in ids}


def text_concepts(store: LandscapeReadStore, matcher: ConceptMatcher, rows: dict[str, dict[str, Any]], ids: list[str],
                  known: dict[str, tuple[str, set[str]]]) -> dict[str, set[str]]:
    """The concepts each paper's title and abstract name: from `known` (id -> content hash,
    concepts found with this vocabulary) where the hash still holds, else matched now (the texts
    read a batch at a time unless `rows` holds them)."""
    out: dict[str, set[str]] = {}
    todo = []
    for pid in ids:
        have = known.get(pid)
        if have is not None and have[0] == rows[pid].get("content_hash"):
            out[pid] = have[1]
        else:
            todo.append(pid)
    for start in range(0, len(todo), 5000):
        batch = todo[start : start + 5000]
        texts = store.ls_texts(batch) if any("abstract" not in rows[p] for p in batch) else {
            p: (rows[p]["title"], rows[p]["abstract"]) for p in batch}
        for pid in batch:
            title, abstract = texts.get(pid, ("", ""))
            out[pid] = set(matcher.find(f"{title}. {abstract}"))
    return out


def vocabulary_key(vocabulary: dict[str, list[str]]) -> str:
    return content_hash(json.dumps(sorted(vocabulary.items()), ensure_ascii=False))


def save_found(found: dict[str, set[str]], rows: dict[str, dict[str, Any]], vocabulary: str) -> bytes:
    """The concepts each paper's text names, with its content hash and the vocabulary's key."""
    ids = sorted(found)
    names = sorted(set().union(*found.values())) if found else []
    col = {n: j for j, n in enumerate(names)}
    indptr = np.cumsum([0, *(len(found[p]) for p in ids)]).astype(np.int64)
    indices = np.fromiter((col[n] for p in ids for n in sorted(found[p])), dtype=np.int32, count=int(indptr[-1]))
    return pack(Artifact(FOUND_KIND, 1, {"vocabulary": vocabulary}, {
        "ids": strings_array(ids), "hashes": strings_array([str(rows[p].get("content_hash") or "") for p in ids]),
        "names": strings_array(names), "indptr": indptr, "indices": indices}))


def load_found(raw: bytes | None, vocabulary: str) -> dict[str, tuple[str, set[str]]]:
    """id -> (content hash, concepts its text names) when stored for this vocabulary, else {}
    (and so every text is matched again)."""
    artifact = unpack(raw, FOUND_KIND, 1)
    if artifact is None or artifact.meta.get("vocabulary") != vocabulary:
        return {}
    try:
        a = artifact.arrays
        ids, hashes, names = array_strings(a["ids"]), array_strings(a["hashes"]), array_strings(a["names"])
        indptr, indices = a["indptr"].astype(np.int64), a["indices"].astype(np.int64)
        if len(hashes) != len(ids) or len(indptr) != len(ids) + 1:
            return {}
        return {pid: (h, {names[j] for j in indices[indptr[i] : indptr[i + 1]]})
                for i, (pid, h) in enumerate(zip(ids, hashes, strict=True))}
    except (KeyError, ValueError, IndexError):
        return {}


def papers_naming(paper_concepts: dict[str, set[str]]) -> dict[str, list[str]]:
    """Concept -> the papers that name it, in id order."""
    out: dict[str, list[str]] = {}
    for pid in sorted(paper_concepts):
        for c in paper_concepts[pid]:
            out.setdefault(c, []).append(pid)
    return out


def concept_candidates(found: set[str], naming: dict[str, list[str]], idf: dict[str, float],
                       limit: int = BY_CONCEPT) -> set[str]:
    """Papers naming the section's concepts, rarest concept first, at most `limit` of them."""
    out: set[str] = set()
    for c in sorted(found, key=lambda c: (-idf.get(c, 0.0), c)):
        if len(out) >= limit:
            break
        out.update(naming.get(c, [])[: limit - len(out)])
    return out


class MentionsStep:
    name = "mentions"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: BuildContext) -> dict[str, int]:
        store = ctx.store
        sections = store.ls_talk_sections()
        if not sections:
            return {"talks": 0, "sections": 0}
        ids, X = record_embeddings(store, self.config)
        rows = {r["id"]: r for r in store.ls_brief_rows()}
        paper_idx = [i for i, rid in enumerate(ids) if rows[rid]["kind"] == "paper"]
        paper_ids = [ids[i] for i in paper_idx]
        pos = {rid: i for i, rid in enumerate(ids)}
        model = store.get_meta("embedder") or self.config.embedder
        signature = content_hash(model, *(rows[p]["content_hash"] for p in paper_ids),
                                 *(section_key(s, model) for s in sections), store.ls_concepts_signature())
        if store.ls_get_artifact(SIGNATURE_ARTIFACT) == signature.encode() and not getattr(ctx, "full", False):
            return {"talks": len({s["record_id"] for s in sections}), "sections": 0, "unchanged": len(sections)}
        vectors = self._section_vectors(ctx, sections, model)
        vocabulary = store.ls_concept_vocabulary()
        matcher, vocab_key = ConceptMatcher(vocabulary), vocabulary_key(vocabulary)
        full = bool(getattr(ctx, "full", False))
        known = {} if full else load_found(store.ls_get_artifact(FOUND_ARTIFACT), vocab_key)
        named = text_concepts(store, matcher, rows, paper_ids, known)
        stored = store.ls_record_concept_names(paper_ids)
        paper_concepts = {pid: set(stored.get(pid, [])) | named[pid] for pid in paper_ids}
        idf = concept_idf(paper_concepts)
        naming = papers_naming(paper_concepts)
        is_paper = np.zeros(len(ids), dtype=bool)
        is_paper[paper_idx] = True
        keys = [section_key(s, model) for s in sections]
        near, _ = nearest_records(store, self.config, X, np.vstack([vectors[k] for k in keys]), NEAREST + 16)
        links: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for s, key, close in zip(sections, keys, near):
            found = set(matcher.find(section_text(s)))
            pool = sorted({ids[j] for j in close if j >= 0 and is_paper[j]} | concept_candidates(found, naming, idf))
            rows_of = [pos[p] for p in pool]
            ranked = rank_papers(vectors[key], found, pool, X[rows_of], paper_concepts, idf)
            links.setdefault(s["record_id"], {})[s["position"]] = ranked
        with store.transaction():
            for talk_id, by_section in links.items():
                store.ls_replace_section_links(talk_id, by_section)
            store.ls_put_artifact(SIGNATURE_ARTIFACT, signature.encode())
            if len(known) != len(named) or any(known.get(p, ("",))[0] != rows[p]["content_hash"] for p in named):
                store.ls_put_artifact(FOUND_ARTIFACT, save_found(named, rows, vocab_key))
        matched = sum(known.get(p, ("",))[0] != rows[p]["content_hash"] for p in paper_ids)
        return {"talks": len(links), "sections": len(sections), "papers_matched": matched}

    def _section_vectors(self, ctx: BuildContext, sections: list[dict[str, Any]], model: str) -> dict[str, np.ndarray]:
        """Section embeddings by content key, embedding only the ones not cached."""
        store = ctx.store
        cached = load_vectors(store.ls_get_artifact(VECTORS_ARTIFACT))
        wanted = {section_key(s, model): section_text(s) for s in sections}
        missing = [k for k in wanted if k not in cached]
        if missing:
            embedder = store_embedder(store, self.config)
            for key, vec in zip(missing, embedder.encode([wanted[k] for k in missing])):
                cached[key] = np.asarray(vec, dtype=np.float32)
        kept = {k: cached[k] for k in wanted}
        if missing or len(kept) != len(cached):
            with store.transaction():
                store.ls_put_artifact(VECTORS_ARTIFACT, save_vectors(kept))
        return kept


def step(config: Config) -> MentionsStep:
    return MentionsStep(config)


def section_concepts(store: LandscapeReadStore) -> dict[tuple[str, int], set[str]]:
    """The concepts each talk section names (for measuring how well links are explained)."""
    matcher = ConceptMatcher(store.ls_concept_vocabulary())
    return {(s["record_id"], s["position"]): set(matcher.find(section_text(s))) for s in store.ls_talk_sections()}
