"""Summaries: a one-sentence TL;DR for every record, per talk section, per area and concept.

Extractive by default, so a summary never states what its source does not: the abstract's
sentence that says what was done ("We present/propose/show ...") and, when it fits, the one
that says what came of it, trimmed to at most 30 words at clause boundaries (a cut is marked
with an ellipsis). An optional local LLM (a GGUF file through llama-cpp-python) writes
abstractive ones when `config.summariser = "llm"`; whatever it writes is cut to 30 words and
any failure falls back to the extractive summary.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Config
from ..engine import Worker
from ..models import LandscapeError
from ..store.interfaces import SummaryStore
from ..text import content_tokens

if TYPE_CHECKING:
    from .pipeline import BuildContext

MAX_WORDS = 30
# no stop after an abbreviation: each look-behind ends at the stop itself (they once ended a
# character short, so "e.g. Monte Carlo" and "Fig. 3" were split there)
_ABBREV = r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bet al\.)(?<!\bvs\.)(?<!\bFig\.)(?<!\bEq\.)(?<!\bcf\.)(?<!\bRef\.)"
# the stop first: every assertion is tested at the same position, and most positions are no stop
# (with the abbreviations first, splitting took 14x as long: half of a full summaries step)
_SENTENCE_END = re.compile(r"(?<=[.!?])" + _ABBREV + r"\s+(?=[A-Z$\\(\[0-9])")
_MATH = re.compile(r"\$[^$]*\$")
_DID = re.compile(
    r"\b(we|this (paper|work|letter|article|study)|here)\b.{0,40}?\b(present|propose|introduce|develop|"
    r"show|demonstrate|derive|construct|build|design|study|investigate|explore|apply|use|train|report|"
    r"measure|perform|provide|describe|compute|calculate|find|analy[sz]e|search|release|obtain|establish|"
    r"prove|argue|identify|leverage|combine|extend|test|estimate|constrain|implement)",
    re.IGNORECASE,
)
_RESULT = re.compile(
    r"\b(achiev|outperform|improv|reduc|enabl|accura|find that|show that|demonstrate that|results? (in|show)|"
    r"yield|reach|recover|factor of|order of magnitude|speed-?up|faster|better|exceed|consistent with|"
    r"competitive|state-of-the-art|significant|sensitiv|precision|constrain)",
    re.IGNORECASE,
)
_LEAD = re.compile(
    r"^(in this (paper|work|letter|article|study|talk)|here|in particular|specifically|finally|moreover|"
    r"furthermore|additionally|in addition|to this end|to address this|as a result|overall|thus|hence),\s+",
    re.IGNORECASE,
)
_TAIL = re.compile(r",\s+(which|where|while|whereby|thereby|allowing|enabling|making|as well as|such that)\b.*$", re.IGNORECASE)
_PAREN = re.compile(r"\s*\([^()]*\)")


def sentences(text: str) -> list[str]:
    """Sentences of prose, math kept whole (a '.' inside $...$ never ends a sentence)."""
    text = " ".join((text or "").split())
    if not text:
        return []
    masked = _MATH.sub(lambda m: "\0" * len(m.group(0)), text)
    out, start = [], 0
    for m in _SENTENCE_END.finditer(masked):
        out.append(text[start : m.start()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if len(s.split()) >= 3 or (s and len(out) == 1)]


def word_count(text: str) -> int:
    return len(_MATH.sub("MATH", text).split())


def trim(sentence: str, max_words: int = MAX_WORDS) -> str:
    """The sentence cut to `max_words`: drop lead-ins, asides in parentheses, trailing clauses,
    then cut at the last clause boundary that fits (marked '…')."""
    s = sentence.strip()
    lead = _LEAD.sub("", s)
    if lead != s and lead:
        s = lead[0].upper() + lead[1:]
    if word_count(s) > max_words:
        s = _PAREN.sub("", s)
    if word_count(s) > max_words:
        s = _TAIL.sub(".", s)
    if word_count(s) <= max_words:
        return s
    words = _MATH.sub(lambda m: m.group(0).replace(" ", "\0"), s).split()[: max_words - 1]
    cut = " ".join(words).replace("\0", " ")
    boundary = max(cut.rfind(", "), cut.rfind("; "), cut.rfind(" and "), cut.rfind(" with "))
    if boundary > len(cut) // 2:
        cut = cut[:boundary]
    return cut.rstrip(" ,;:-") + " …"


def sentence_score(sentence: str, position: int, total: int, salient: set[str]) -> float:
    """How much a sentence says about what was done and what came of it."""
    toks = content_tokens(sentence)
    score = 0.0
    if _DID.search(sentence):
        score += 2.0
    if _RESULT.search(sentence):
        score += 1.0
    score += 1.5 * len(salient & set(toks)) / (1 + len(salient))
    if position == 0 and total > 2 and not _DID.search(sentence):
        score -= 0.5
    words = word_count(sentence)
    if words > 2 * MAX_WORDS:
        score -= 0.5
    if words < 6:
        score -= 1.0
    return score - 0.05 * position


def extractive_summary(text: str, title: str = "", max_words: int = MAX_WORDS) -> str | None:
    """The most informative sentence(s) of the text, at most `max_words` words; None if no prose."""
    sents = sentences(text)
    if not sents:
        return None
    salient = set(content_tokens(title)) | {t for t, _ in _top_terms(text, 6)}
    scored = sorted(
        ((sentence_score(s, i, len(sents), salient), i, s) for i, s in enumerate(sents)), key=lambda x: (-x[0], x[1])
    )
    best_i, best = scored[0][1], scored[0][2]
    summary = trim(best, max_words)
    result = next((s for sc, i, s in scored[1:] if i > best_i and _RESULT.search(s) and sc > 0), None)
    if result and not summary.endswith("…"):
        joined = summary.rstrip(".") + "; " + _lower_first(trim(result, max_words))
        if word_count(joined) <= max_words and not joined.endswith("…"):
            summary = joined
    return summary


def _lower_first(s: str) -> str:
    return s[0].lower() + s[1:] if s and not s[:2].isupper() else s


def _top_terms(text: str, n: int) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for t in content_tokens(text):
        if len(t) > 3:
            counts[t] = counts.get(t, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def section_summary(title: str, text: str, max_words: int = MAX_WORDS) -> str | None:
    """A slide section's summary: its most central line or sentence (slides are rarely prose)."""
    pieces = [p for line in text.splitlines() for p in sentences(line) if word_count(p) >= 4]
    if not pieces:
        return None
    vocab = {t for t, _ in _top_terms(text, 10)} | set(content_tokens(title))
    best = max(pieces, key=lambda p: (len(vocab & set(content_tokens(p))) + (1.0 if _DID.search(p) else 0.0)
                                      - 0.02 * abs(word_count(p) - 20), -pieces.index(p)))
    return trim(best.lstrip("-•*·– ").strip(), max_words)


# --- optional local LLM -------------------------------------------------------------------


class LlmSummariser:
    """Abstractive one-sentence summaries from a local GGUF model (llama-cpp-python)."""

    PROMPT = (
        "Summarise the research abstract below in ONE sentence of at most 25 words: what was done "
        "and what came of it. Use only facts stated in the abstract.\n\nTitle: {title}\nAbstract: {text}\n\nSummary:"
    )

    def __init__(self, model_path: str, seed: int = 42):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LandscapeError("summariser 'llm' needs llama-cpp-python: pip install llama-cpp-python") from None
        self.llm = Llama(model_path=model_path, n_ctx=2048, seed=seed, verbose=False)
        self.failures: list[tuple[str, str]] = []

    def failed(self, record_id: str, why: str) -> None:
        """Kept so the build says how many records fell back to the extractive summary, and why."""
        self.failures.append((record_id, why))

    def summarise(self, title: str, text: str) -> str | None:
        out = self.llm(self.PROMPT.format(title=title, text=text[:4000]), max_tokens=80, temperature=0.0, stop=["\n\n"])
        answer = " ".join(out["choices"][0]["text"].split())
        return trim(answer) if answer else None


def get_summariser(config: Config) -> LlmSummariser | None:
    if config.summariser == "extractive":
        return None
    if config.summariser != "llm":
        raise LandscapeError(f"summariser: expected extractive or llm, found {config.summariser!r}")
    if not config.llm_model_path:
        raise LandscapeError("summariser 'llm' needs llm_model_path = the path of a GGUF model file")
    return LlmSummariser(config.llm_model_path, config.seed)


def summarise_record(rec: Any, llm: LlmSummariser | None = None, generic: frozenset[str] = frozenset()) -> str | None:
    if rec.kind == "talk" and rec.sections:
        return talk_summary(rec, generic=generic)
    if llm is not None and rec.abstract.strip():
        try:
            answer = llm.summarise(rec.title or "", rec.abstract)
            if answer:
                return answer
            llm.failed(rec.id, "an empty answer")
        except Exception as exc:  # noqa: BLE001 - a local model failing must never stop the build
            llm.failed(rec.id, f"{type(exc).__name__}: {exc}")
    return extractive_summary(rec.abstract, rec.title or "")


@dataclass
class SummarySettings:
    """[extra.summaries]: section titles never used to outline a talk, beside those learned
    from the corpus (`generic_sections`), and how many documents must share a title for it to
    count as generic (`shared_by`)."""

    generic_sections: list[str] = field(default_factory=list)
    shared_by: int = 2


def section_key(title: str) -> str:
    return " ".join(title.split()).rstrip(" -:").lower()


def generic_sections(titles: Iterable[tuple[str, str]], settings: SummarySettings) -> frozenset[str]:
    """Section titles that say nothing about one document, learned from the corpus: a title
    that `shared_by` documents or more use (Introduction, Conclusions, Thank you), or that one
    document repeats (a recurring divider such as Common Themes); plus the configured ones."""
    records: Counter[str] = Counter()
    generic = {section_key(t) for t in settings.generic_sections}
    for _rid, group in itertools.groupby(titles, key=lambda rt: rt[0]):
        keys = [section_key(t) for _, t in group]
        generic.update(k for k, n in Counter(keys).items() if n > 1)
        records.update(set(keys))
    generic.update(k for k, n in records.items() if n >= max(2, settings.shared_by))
    return frozenset(generic)


def talk_summary(rec: Any, max_words: int = MAX_WORDS, generic: frozenset[str] = frozenset()) -> str | None:
    """A talk's TL;DR: what it covers, in its own section titles (the most substantial
    sections, in talk order); slides rarely hold one sentence that speaks for the whole talk."""
    picked: list[int] = []
    for k in _substantial_sections(rec, generic):
        trial = sorted(picked + [k])
        if word_count(_outline(rec, trial)) > max_words:
            continue
        picked = trial
    if picked:
        return _outline(rec, picked)
    text = "\n".join(s.text for s in rec.sections)
    return section_summary(rec.title or "", text) or extractive_summary(rec.abstract, rec.title or "")


def _substantial_sections(rec: Any, generic: frozenset[str], min_chars: int = 120) -> list[int]:
    """Indices of sections with a telling title and some text, the longest first."""
    seen: set[str] = {" ".join((rec.title or "").lower().split())}
    out = []
    for k, sec in enumerate(rec.sections):
        title = " ".join(sec.title.split()).rstrip(" -:")
        key = title.lower()
        if key in seen or key in generic or len(title.split()) < 2 or len(sec.text) < min_chars:
            continue
        seen.add(key)
        out.append(k)
    return sorted(out, key=lambda k: (-len(rec.sections[k].text), k))


def _outline(rec: Any, index: list[int]) -> str:
    titles = [" ".join(rec.sections[k].title.split()).rstrip(" -:") for k in index]
    return "Covers: " + "; ".join(titles) + "."


# --- area and concept descriptions ----------------------------------------------------------


@dataclass
class Vectors:
    """The store's embeddings: row of each record id, and the matrix."""

    pos: dict[str, int]
    matrix: np.ndarray


def central_record(ids: Sequence[str], vectors: Vectors) -> str | None:
    """The most typical of the ids: the one closest to their centroid (the first id when none
    has a vector, ties to the first)."""
    have = [i for i in ids if i in vectors.pos]
    if not have:
        return ids[0] if ids else None
    matrix = vectors.matrix[[vectors.pos[i] for i in have]]
    return have[int(np.argmax(matrix @ matrix.mean(axis=0)))]


def describe(count: int, head: str | None, titles: Mapping[str, str], summaries: Mapping[str, str | None],
             concepts: Sequence[str] = ()) -> str:
    """A short description of `count` records whose most central one is `head`: count, themes,
    the most typical paper."""
    parts = [f"{count} record{'s' if count != 1 else ''}"]
    if concepts:
        parts[0] += "; central concepts: " + ", ".join(concepts[:4])
    text = "; ".join(parts) + "."
    if head:
        tldr = summaries.get(head)
        text += f" Most typical: \u201c{titles.get(head, head)}\u201d" + (f" \u2014 {tldr}" if tldr else ".")
    return text


class SummariseBatch:
    """The engine's summaries worker: records in; their summaries, section summaries and the LLM's
    failures out. The LLM (when configured) loads once per process, on the first batch."""

    def __init__(self, config: Config, generic: frozenset[str]):
        self.config = config
        self.generic = generic
        self._llm: LlmSummariser | None = None
        self._loaded = False

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_llm": None, "_loaded": False}

    def __call__(self, records: Sequence[Any]) -> tuple[dict[str, str | None], list[tuple[str, int, str | None]],
                                                         list[tuple[str, str]]]:
        if not self._loaded:
            self._llm, self._loaded = get_summariser(self.config), True
        llm = self._llm
        before = len(llm.failures) if llm else 0
        summaries = {rec.id: summarise_record(rec, llm, self.generic) for rec in records}
        sections = [(rec.id, k, section_summary(sec.title, sec.text)) for rec in records
                    for k, sec in enumerate(rec.sections)]
        return summaries, sections, llm.failures[before:] if llm else []


def top_concepts_by_group(members: Mapping[str, Sequence[str]], groups: Mapping[str, Sequence[str]],
                          limit: int) -> dict[str, list[str]]:
    """Each group's most distinctive concepts (frequent in it, rarer elsewhere: the order of the
    store's `top_concepts_for`), from one pass over every concept's records: asking the store once
    per area read every concept row once per area."""
    group_of = {rid: g for g, ids in groups.items() for rid in ids}
    inside: dict[str, Counter[str]] = {g: Counter() for g in groups}
    for name, ids in members.items():
        for rid in ids:
            g = group_of.get(rid)
            if g is not None:
                inside[g][name] += 1
    totals = {name: len(ids) for name, ids in members.items()}
    return {g: most_distinctive(c, totals, limit) for g, c in inside.items()}


def most_distinctive(inside: Mapping[str, int], totals: Mapping[str, int], limit: int) -> list[str]:
    """The concepts most frequent among a group's records and rarer elsewhere (inside^2 / total)."""
    return sorted(inside, key=lambda n: (-(inside[n] ** 2) / totals[n], n))[:limit]


class SummariesStep:
    """Summarise what is new or changed (by content hash and summariser setting). Areas are
    described again each run; a concept only when it has no description yet, a changed
    record carries it, or records were removed since the last run."""

    name = "summaries"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: BuildContext) -> dict[str, int]:
        store = ctx.store
        setting = f"{self.config.summariser}|{self.config.llm_model_path or ''}|v1"
        hashes = store.record_content_hashes()
        seen = {} if ctx.full else store.summary_fingerprints(setting)
        changed = sorted(rid for rid, h in hashes.items() if seen.get(rid) != h)
        summaries: dict[str, str | None] = {}
        sections: list[tuple[str, int, str | None]] = []
        failures: list[tuple[str, str]] = []
        generic = generic_sections(store.section_titles(), self.config.settings("summaries", SummarySettings))
        size = ctx.engine.batch_size(len(changed), 500)
        batches = (store.get_records(changed[start : start + size]) for start in range(0, len(changed), size))
        worker = Worker(SummariseBatch(self.config, generic), label="summaries",
                        fork=self.config.summariser == "extractive")  # one LLM per process is too big
        for got, got_sections, failed in ctx.engine.map_batches(worker, batches):
            summaries.update(got)
            sections.extend(got_sections)
            failures.extend(failed)
        if failures:
            rid, why = failures[0]
            ctx.fallback(f"summaries: the LLM summariser failed on {len(failures)} of {len(summaries)} records"
                         f" (first {rid}: {why}); they have an extractive summary instead")
        with store.transaction():
            store.set_summaries(summaries, sections)
            store.put_summary_fingerprints(setting, hashes, known=seen)
        removed = bool(set(seen) - set(hashes))
        described = self._describe(store, None if ctx.full or removed or not seen else set(changed))
        return {"summarised": len(summaries), "unchanged": len(hashes) - len(changed),
                "sections": len(sections), **described}

    def _describe(self, store: SummaryStore, changed: set[str] | None) -> dict[str, int]:
        """Describe areas, and the concepts that `changed` records carry (all when None). Counts
        come from the database; titles and summaries are read for the central records only.

        An area's or concept's central record and central concepts are kept (artifact
        `summaries.heads`) while its size stays within HEAD_DRIFT of the size they were found
        at: a build that adds a few records rewrites the counts without reading every member."""
        model = store.get_meta("embedder") or ""
        kept = {} if changed is None else _stored_heads(store.get_artifact(HEADS_ARTIFACT), model)
        areas_kept, concepts_kept = kept.get("areas", {}), kept.get("concepts", {})
        area_sizes = store.area_counts()
        stale_areas = {a for a, n in area_sizes.items() if not _close(areas_kept.get(a), n)}
        if changed is None:
            members = store.concept_members()
            sizes = {name: len(ids) for name, ids in members.items()}
        else:
            sizes = store.concept_member_counts(store.undescribed_concepts() | store.concepts_of_records(changed))
            members = store.concept_members(names=[c for c, n in sizes.items() if not _close(concepts_kept.get(c), n)])
        vectors = self._vectors(store) if stale_areas or members else Vectors({}, np.zeros((0, 1), dtype=np.float32))
        area_heads = {a: (v[1], v[2]) for a, v in areas_kept.items() if a in area_sizes and a not in stale_areas}
        if stale_areas:
            inside, totals = store.area_concept_counts()
            for area, ids in store.area_members().items():
                if area in stale_areas:
                    area_heads[area] = (central_record(ids, vectors),
                                        most_distinctive(inside.get(area, {}), totals, 4))
        concept_heads = {c: concepts_kept[c][1] for c in sizes if c not in members}
        concept_heads.update({name: central_record(ids, vectors) for name, ids in members.items()})
        heads = {h for h in (*(h for h, _ in area_heads.values()), *concept_heads.values()) if h}
        titles, summaries = store.record_titles(heads), store.record_summaries(heads)
        area_desc = {area: describe(n, area_heads[area][0], titles, summaries, area_heads[area][1])
                     for area, n in area_sizes.items()}
        concept_desc = {name: describe(n, concept_heads[name], titles, summaries) for name, n in sizes.items()}
        areas_kept = {a: [area_sizes[a] if a in stale_areas else areas_kept[a][0], *area_heads[a]] for a in area_sizes}
        concepts_kept.update({c: [sizes[c], concept_heads[c]] for c in members})
        with store.transaction():
            store.set_area_descriptions(area_desc)
            store.set_concept_descriptions(concept_desc)
            store.put_artifact(HEADS_ARTIFACT, json.dumps(
                {"model": model, "areas": areas_kept, "concepts": concepts_kept}, sort_keys=True).encode())
        return {"areas": len(area_desc), "concepts": len(concept_desc),
                "heads_found": len(stale_areas) + len(members)}

    def _vectors(self, store: SummaryStore) -> Vectors:
        model = store.get_meta("embedder")
        if not model:
            return Vectors({}, np.zeros((0, 1), dtype=np.float32))
        from .embed import stored_embeddings

        ids, matrix = stored_embeddings(store, model)
        return Vectors({rid: k for k, rid in enumerate(ids)}, matrix)


HEADS_ARTIFACT = "summaries.heads"
HEAD_DRIFT = 0.1  # an area or concept's central record is found again once its size moved by more


def _close(kept: list[Any] | None, size: int) -> bool:
    """Whether a kept head was found at a size within HEAD_DRIFT of `size`."""
    return kept is not None and abs(size - int(kept[0])) <= HEAD_DRIFT * int(kept[0])


def _stored_heads(raw: bytes | None, model: str) -> dict[str, dict[str, list[Any]]]:
    """The kept heads, if stored for this embedder (central records are found by its vectors)
    in the shape written here; anything else is none (and every head is found again)."""
    try:
        data = json.loads(raw.decode()) if raw else None
    except (UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("model") != model:
        return {}
    out: dict[str, dict[str, list[Any]]] = {}
    for kind, width in (("areas", 3), ("concepts", 2)):
        rows = data.get(kind)
        if not isinstance(rows, dict):
            return {}
        out[kind] = {k: v for k, v in rows.items()
                     if isinstance(v, list) and len(v) == width and isinstance(v[0], int) and v[0] > 0}
    return out


def step(config: Config) -> SummariesStep:
    return SummariesStep(config)
