"""The concepts build step: which records carry which concept.

Three sources fill `record_concepts`:
  given      phrases of the record's own keyphrase line (already split at ingest);
  text       vocabulary concepts found verbatim, after normalisation, in the record's own text.
             Only concepts attested by some *other* record count, so this never depends on the
             record's own given keyphrases (connections score with it);
  predicted  5 to 8 keyphrases for records without given ones (`KeyphrasePredictor`).

Cost grows linearly with the corpus: the vocabulary is read from every given line and every
text (one streamed pass, counting phrases and acronyms), but the generic-word list and the
keyphrase ranker are fit on bounded samples, and records are then read, matched and predicted
in batches whose rows are staged in the store, never held for the whole corpus.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ...artifacts import describe
from ...batching import batches
from ...config import Config
from ...store.interfaces import ConceptStore
from ...text import content_hash
from ..drift import LABEL_DRIFT, drift, drift_note, fingerprint, load_prints, prints_array, save_prints
from .acronyms import AcronymCounts
from .model import FORMAT, KIND, ConceptModel, pack_model, unpack_model
from .ranker import KeyphrasePredictor
from .vocabulary import Vocabulary, refine_given

if TYPE_CHECKING:
    from ..pipeline import BuildContext

FIT_SAMPLE = 3000  # labelled records the keyphrase ranker is fit on
GENERIC_SAMPLE = 5000  # records whose texts decide which single words are too generic
BATCH = 500
LABELS_ARTIFACT = "concepts.labels"


def record_text(rec: Any) -> str:
    """The record's own words: title, abstract and section text (never its keyphrase line)."""
    return rec.text


def text_concepts(
    found: Counter[str], vocab: Vocabulary, rec_id: str, generic: set[str], title: Iterable[str] = ()
) -> Counter[str]:
    """Concepts in a record's text that some other record carries (independent of its own line).

    A mention inside a longer concept found in the text is that concept's, not its own
    ('clustering' in 'density-split clustering'), and a single word needs two mentions of its
    own or one in the title (`title`: concept keys found there), so a word named in passing
    ('struggle with scalability or interpretability') is not a concept of the paper."""
    title = set(title)
    return Counter({
        k: c for k, c in own_mentions(found).items()
        if k not in generic and vocab.standalone(k) and len(vocab.concepts[k].given) > (rec_id in vocab.concepts[k].given)
        and (" " in k or c >= 2 or k in title)
    })


def own_mentions(found: Counter[str]) -> Counter[str]:
    """Each found key's count less the counts of the longer found keys that contain it (the
    longest phrase wins); keys left with no mention of their own are dropped."""
    longer = [(f" {k} ", n) for k, n in found.items() if " " in k]  # only a phrase holds another key
    out: Counter[str] = Counter()
    for k, c in found.items():
        padded = f" {k} "
        inner = sum(n for other, n in longer if len(other) > len(padded) and padded in other)
        if c > inner:
            out[k] = c - inner
    return out


def generic_keys(
    found: dict[str, Counter[str]], vocab: Vocabulary, share: float = 0.1, keyness: float = 0.15, scale: float = 1.0
) -> set[str]:
    """Single words no use for connecting: in more than `share` of the texts ('model', 'data'),
    or rarely a keyphrase where they appear ('variety', 'tool': fragments of a keyphrase line).
    `found` may be a sample of the corpus: `scale` (corpus size / sample size) turns its text
    counts into the corpus's, to compare with how many records give the concept."""
    df = Counter(k for counts in found.values() for k in counts if " " not in k)
    limit = max(share * len(found), 3)
    return {
        k for k, n in df.items()
        if n > limit or len(vocab.concepts[k].given) < 2 or len(vocab.concepts[k].given) / (n * scale) < keyness
    }


@dataclass
class Inputs:
    """What the concepts step depends on, read in one pass: `corpus` signs every record's content
    and given keyphrases (the step's whole input), `labels` what the fitted model depends on
    (the given keyphrases and their records' content), `prints` fingerprints each labelled record
    (for the drift between label sets), `hashes` is every record's content hash."""

    corpus: str
    labels: str
    prints: dict[str, int]
    hashes: dict[str, str]


def step_inputs(store: ConceptStore, version: str) -> Inputs:
    """The step's Inputs; given keyphrases stream in record order, one record's at a time, so
    memory holds the records' hashes, never every keyphrase."""
    hashes = store.record_content_hashes()
    corpus, labels = hashlib.sha1(), hashlib.sha1(version.encode())
    for rid in sorted(hashes):
        corpus.update(f"{rid}\0{hashes[rid]}\n".encode())
    prints: dict[str, int] = {}
    for rid, rows in groupby(store.given_phrase_rows(), key=itemgetter(0)):
        phrases = [phrase for _, phrase in rows]
        line = "\0".join([rid, hashes.get(rid, ""), *phrases]).encode() + b"\n"
        corpus.update(line)
        labels.update(line)
        prints[rid] = fingerprint(rid, hashes.get(rid, ""), *phrases)
    return Inputs(corpus.hexdigest()[:16], labels.hexdigest()[:16], prints, hashes)


def labels_signature(store: ConceptStore, version: str, config: Config | None = None) -> str:
    """What the fitted vocabulary and keyphrase ranker depend on: given lines and their records,
    and the embedder (the ranker reads the labelled records' vectors)."""
    return model_labels(step_inputs(store, version).labels, embedder_of(store, config or Config()))


def model_labels(labels: str, embedder: str) -> str:
    return content_hash(labels, embedder)


def embedder_of(store: ConceptStore, config: Config) -> str:
    return store.get_meta("embedder") or config.embedder


def record_marks(hashes: dict[str, str], prints: dict[str, int]) -> dict[str, str]:
    """What a record's concept rows depend on: its content, and its given phrases if any."""
    return {rid: f"{h}:{prints[rid]:x}" if rid in prints else h for rid, h in hashes.items()}


def sample(ids: list[str], size: int, seed: int) -> list[str]:
    """At most `size` of the ids, the same ones for the same ids and seed."""
    return sorted(random.Random(seed).sample(ids, size)) if len(ids) > size else sorted(ids)


class ConceptsStep:
    """Concepts for every record. The vocabulary, generic-word list and keyphrase ranker are
    fit from the given keyphrases and stored; while those labels are unchanged, a build only
    reads new or changed records with the stored model (like the map places new points
    without moving the others). `--full` or a change of labels refits everything."""

    name = "concepts"
    version = "9"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: BuildContext) -> dict[str, int]:
        store = ctx.store
        embedder = embedder_of(store, self.config)
        inputs = step_inputs(store, self.version)
        inputs = replace(inputs, labels=model_labels(inputs.labels, embedder))
        signature = self.version + inputs.corpus + embedder
        if not ctx.full and store.step_signature(self.name) == signature:
            return {"concepts": store.count_concepts(), "unchanged": len(inputs.hashes)}
        model = None if ctx.full else self.stored_model(ctx, inputs.labels)
        used = inputs.labels
        if model is None and not ctx.full:
            model, used = self.close_model(ctx, inputs)
        if model is None:
            counts = self._full(store, inputs)
        else:
            counts = self._incremental(store, used, model, inputs)
        with store.transaction():
            store.set_step_signature(self.name, signature, {"concepts": counts["concepts"]})
        return counts

    def close_model(self, ctx: BuildContext, inputs: Inputs) -> tuple[ConceptModel | None, str]:
        """The stored model fitted on other labels, while they differ from these by at most
        LABEL_DRIFT (enrich/drift.py), and the signature it is stored under."""
        stored = load_prints(ctx.store, LABELS_ARTIFACT, embedder_of(ctx.store, self.config))
        if stored is None or stored[0] == inputs.labels:
            return None, ""
        share = drift(stored[1], prints_array(inputs.prints))
        model = self.stored_model(ctx, stored[0]) if share <= LABEL_DRIFT else None
        ctx.log(drift_note(self.name, share, model is not None, LABEL_DRIFT))
        return model, stored[0]

    def stored_model(self, ctx: BuildContext, labels: str) -> ConceptModel | None:
        """The model stored for these labels; one that cannot be read (an older format, a
        pickle, garbage) is never run: the step refits and says so once."""
        blob = ctx.store.concept_model_blob(labels)
        model = unpack_model(blob, self.config) if blob is not None else None
        if blob is not None and model is None:
            ctx.fallback(f"concepts: {describe(blob, KIND, FORMAT)}")
        return model

    def _full(self, store: ConceptStore, inputs: Inputs) -> dict[str, int]:
        labels, prints, hashes = inputs.labels, inputs.prints, inputs.hashes
        given_lines: dict[str, list[str]] = {}
        acronyms = AcronymCounts()
        for rec in store.iter_records():
            acronyms.add(record_text(rec))
            if rec.keyphrases:
                given_lines[rec.id] = rec.keyphrases
        given = refine_given(given_lines)
        vocab = Vocabulary.build(given, acronyms)
        fit_ids = sample(sorted(given), FIT_SAMPLE, self.config.seed)
        generic_ids = sample(sorted(hashes), GENERIC_SAMPLE, self.config.seed)
        texts = {r.id: record_text(r) for r in store.get_records(sorted(set(fit_ids) | set(generic_ids)))}
        generic = generic_keys({rid: vocab.find(texts[rid]) for rid in generic_ids}, vocab,
                               scale=len(hashes) / max(len(generic_ids), 1))
        embeddings = stored_embeddings(store, self.config)
        predictor = KeyphrasePredictor(self.config).fit(
            {rid: texts[rid] for rid in fit_ids}, {rid: given[rid] for rid in fit_ids}, vocab=vocab, embeddings=embeddings
        ) if given else None
        blob = pack_model(ConceptModel(vocab, predictor, generic))
        del texts
        predicted = 0
        with store.transaction():
            store.clear_staged_concept_rows()
            for batch in batches(store.iter_records(batch=BATCH), BATCH):
                rows = concept_rows(batch, vocab, generic, given)
                names = predict_keyphrases(
                    predictor, vocab, {r.id: record_text(r) for r in batch if not r.keyphrases}, rows, embeddings
                )
                store.stage_concept_rows(rows)
                store.set_keyphrases_many(names.items(), "predicted")
                predicted += len(names)
            kept = [k for k in vocab.concepts if vocab.standalone(k)]
            store.replace_concepts(vocabulary_rows(vocab, kept))
            store.put_concept_model(labels, blob, record_marks(hashes, prints))
            save_prints(store, LABELS_ARTIFACT, labels, prints_array(prints), embedder_of(store, self.config))
        return {"concepts": len(kept), "predicted": predicted, "records": len(hashes)}

    def _incremental(self, store: ConceptStore, labels: str, model: ConceptModel, inputs: Inputs) -> dict[str, int]:
        """Only records whose content or given phrases are new or changed since the stored model
        last read them (the model stays as fitted: its labels moved by at most LABEL_DRIFT)."""
        hashes = record_marks(inputs.hashes, inputs.prints)
        seen = store.concept_model_records(labels)
        changed = sorted(rid for rid, h in hashes.items() if seen.get(rid) != h)
        records = store.get_records(changed) if changed else []
        vocab = model.vocab
        given = {r.id: refine_given({r.id: r.keyphrases})[r.id] for r in records if r.keyphrases}
        rows = concept_rows(records, vocab, model.generic, given)
        unlabelled = {r.id: record_text(r) for r in records if not r.keyphrases}
        embeddings = stored_embeddings(store, self.config) if unlabelled else None
        predicted = predict_keyphrases(model.predictor, vocab, unlabelled, rows, embeddings)
        keys = {key for _, key, _, _ in rows}
        with store.transaction():
            store.update_record_concepts(changed, vocabulary_rows(vocab, keys), rows)
            store.set_keyphrases_many(predicted.items(), "predicted")
            store.put_concept_model_records(labels, hashes, known=seen)
        return {"concepts": store.count_concepts(), "predicted": len(predicted), "records": len(changed),
                "unchanged": len(hashes) - len(changed)}


def concept_rows(
    records: list[Any], vocab: Vocabulary, generic: set[str], given: dict[str, list[str]]
) -> list[tuple[str, str, float, str]]:
    """(record id, concept key, weight, source) of the records' given and text concepts."""
    rows: list[tuple[str, str, float, str]] = []
    for rec in records:
        phrases = given.get(rec.id, [])
        rows.extend((rec.id, k, 1.0, "given") for k in dict.fromkeys(map(vocab.resolve, phrases))
                    if k in vocab.concepts and vocab.standalone(k))
        found = text_concepts(vocab.find(record_text(rec)), vocab, rec.id, generic, vocab.find(rec.title or ""))
        rows.extend((rec.id, k, float(c), "text") for k, c in found.items())
    return rows


def predict_keyphrases(
    predictor: KeyphrasePredictor | None, vocab: Vocabulary, texts: dict[str, str],
    rows: list[tuple[str, str, float, str]], embeddings: dict[str, Any] | None = None,
) -> dict[str, list[str]]:
    """5 to 8 phrases per text (record id -> names); appends their `predicted` concept rows."""
    if predictor is None:
        return {rid: [] for rid in texts}
    ids = list(texts)
    scored = predictor.scored_many([texts[i] for i in ids], [(embeddings or {}).get(i) for i in ids])
    out: dict[str, list[str]] = {}
    for rid, candidates in zip(ids, scored, strict=True):
        names = []
        for _, phrase, score in predictor.choose(candidates):
            key = vocab.add(phrase)
            if key:
                names.append(vocab.concepts[key].name)
                if vocab.standalone(key):
                    rows.append((rid, key, float(score), "predicted"))
        out[rid] = list(dict.fromkeys(names))
    return out


def stored_embeddings(store: ConceptStore, config: Config) -> dict[str, Any]:
    """Record id -> stored text embedding (the embed step runs before this one)."""
    from ..embed import record_embeddings

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


def step(config: Config) -> ConceptsStep:
    return ConceptsStep(config)
