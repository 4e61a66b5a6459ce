"""Areas, the build step: every record gets an area from the area model (enrich/area_model.py).

The model is refit only when the human labels change (their signature; an area taken from arXiv
categories is not a label), and unlabelled records are predicted only when new or changed since
the last model; predictions run on the build's engine in batches.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts import describe, pack, unpack
from ..batching import batches
from ..config import Config
from ..engine import Worker
from ..models import AreaInput
from ..store.interfaces import AreaStore
from .area_model import (
    LABELS_ARTIFACT,
    MIN_PER_AREA,
    MODEL_KIND,
    MODEL_VERSION,
    AreaData,
    AreaModel,
    AreaSettings,
    fit_sample,
    top_mass_sets,
    zero_shot_proba,
)
from .drift import LABEL_DRIFT, drift, drift_note, fingerprint, load_prints, prints_array, save_prints

if TYPE_CHECKING:
    from .pipeline import BuildContext


def area_data(store: AreaStore, config: Config, records: list[Any],
              vectors: tuple[list[str], np.ndarray] | None = None) -> AreaData:
    """The records' AreaData; `vectors` (ids, matrix) when the caller holds the store's embeddings."""
    from .embed import record_embeddings

    ids, matrix = vectors if vectors is not None else record_embeddings(store, config)
    pos = {rid: k for k, rid in enumerate(ids)}
    dim = matrix.shape[1] if matrix.size else 384
    emb = np.zeros((len(records), dim), dtype=np.float32)
    for k, rec in enumerate(records):
        if rec.id in pos:
            emb[k] = matrix[pos[rec.id]]
    return AreaData(
        [r.id for r in records], [r.text for r in records], emb,
        [list(r.authors) for r in records], [r.area for r in records],
    )


def human_labelled(inputs: list[AreaInput]) -> list[AreaInput]:
    """The records whose area a person gave (an area from arXiv categories is not a label)."""
    return [r for r in inputs if r.area and r.area_source != "category"]


def labels_signature(labelled: list[AreaInput], config: Config, embedder: str | None) -> str:
    """What the fitted model depends on: the labels, their records, the settings and the
    embedder whose vectors it reads (its model name, e.g. a refitted tfidf is another)."""
    h = hashlib.sha1(f"{embedder or config.embedder}|{config.conformal_coverage}|{config.seed}|v5".encode())
    for row in sorted(labelled, key=lambda r: r.id):
        h.update(f"{row.id}\0{row.area}\0{row.content_hash}\0{'|'.join(row.authors)}\n".encode())
    return h.hexdigest()[:16]


def record_fingerprint(row: AreaInput) -> str:
    """What an unlabelled record's prediction depends on besides the model."""
    return hashlib.sha1(f"{row.content_hash}\0{'|'.join(row.authors)}".encode()).hexdigest()[:16]


def is_sectioned_talk(rec: Any) -> bool:
    return rec.kind == "talk" and any((s.text or "").strip() for s in rec.sections)


class AreasStep:
    """Predict what is missing: the model is refit only when the labels change (signature),
    and unlabelled records are predicted only when new or changed since the last model."""

    name = "areas"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: BuildContext) -> dict[str, int]:
        inputs = ctx.store.area_inputs()
        labelled = human_labelled(inputs)
        counts = Counter(r.area for r in labelled)
        if len(counts) >= 2 and min(counts.values()) >= MIN_PER_AREA:
            return self._supervised(ctx, inputs, labelled)
        if self.config.area_descriptions:
            return self._zero_shot(ctx, list(ctx.store.iter_records()))
        return {"predicted": 0, "no_labels": len(inputs)}

    def _model(self, ctx: BuildContext, signature: str, labelled: list[AreaInput],
               sample_ids: list[str]) -> tuple[AreaModel, list[Any] | None, str]:
        """(model, the records fitted on when fitted now, the label signature it is stored under):
        the stored model of these labels, or of labels that differ from these by at most
        LABEL_DRIFT, else a new fit on the records `sample_ids` (the labelled records, or a
        bounded sample of them: AreaSettings)."""
        store = ctx.store
        blob = store.area_model_blob(signature)
        if blob is not None and not ctx.full:
            model = stored_model(blob, self.config)
            if model is not None:
                return model, None, signature
            ctx.log(f"areas: {why_not_read(blob)}")
        prints = prints_array({r.id: fingerprint(r.id, r.area or "", r.content_hash, "|".join(r.authors))
                               for r in labelled})
        embedder = store.get_meta("embedder") or self.config.embedder
        stored = None if ctx.full else load_prints(store, LABELS_ARTIFACT, embedder)
        if stored is not None and stored[0] != signature:
            share = drift(stored[1], prints)
            close = store.area_model_blob(stored[0]) if share <= LABEL_DRIFT else None
            model = stored_model(close, self.config) if close is not None else None
            ctx.log(drift_note(self.name, share, model is not None, LABEL_DRIFT))
            if model is not None:
                return model, None, stored[0]
        sample = store.get_records(sample_ids)
        model = AreaModel(self.config).fit(area_data(store, self.config, sample))
        with store.transaction():
            store.set_area_model_blob(signature, pack(model.artifact()))
            save_prints(store, LABELS_ARTIFACT, signature, prints, embedder)
        return model, sample, signature

    def _supervised(self, ctx: BuildContext, inputs: list[AreaInput], labelled: list[AreaInput]) -> dict[str, int]:
        """Fit or reuse the model, then read and predict only what needs it, `batch` records at a
        time: after a refit the labelled records outside the fit sample (their probabilities),
        otherwise only unlabelled records new or changed since the model last predicted them."""
        from .embed import record_embeddings

        store = ctx.store
        settings = self.config.settings("areas", AreaSettings)
        picked = fit_sample([r.area or "" for r in labelled], settings.fit_sample, self.config.seed)
        signature = labels_signature(labelled, self.config, store.get_meta("embedder"))
        model, sample, signature = self._model(ctx, signature, labelled,
                                               [labelled[k].id for k in picked])
        retrained = sample is not None
        done = {} if retrained or ctx.full else _predicted_before(store, signature)
        unlabelled = [r for r in inputs if not r.area]
        targets = [r.id for r in unlabelled if done.get(r.id) != record_fingerprint(r)]
        in_sample = set(picked)
        rest = [r.id for k, r in enumerate(labelled) if k not in in_sample] if retrained else []
        given = set(rest)
        vectors = record_embeddings(store, self.config) if rest or targets else None
        kinds = {r.id: r.kind for r in unlabelled}
        section_vectors = talk_section_vectors(ctx, self.config) if any(kinds[i] == "talk" for i in targets) else {}
        talks: list[Any] = []
        with store.transaction():
            if sample is not None:
                store.set_areas(
                    (rec.id, rec.area, "given", _probs(model.labels, p), s) for rec, p, s in
                    zip(sample, model.heldout, model.sets(model.heldout, [r.text for r in sample]), strict=True)
                )

            def paper_batches() -> Iterator[tuple[AreaData, dict[str, str]]]:
                size = ctx.engine.batch_size(len(rest) + len(targets), max(1, settings.batch))
                for ids in batches(rest + targets, size):
                    records = store.get_records(ids)
                    talks.extend(r for r in records if r.id not in given and is_sectioned_talk(r))
                    papers = [r for r in records if r.id in given or not is_sectioned_talk(r)]
                    if papers:
                        yield (area_data(store, self.config, papers, vectors),
                               {r.id: str(r.area) for r in papers if r.id in given})

            for rows in ctx.engine.map_batches(Worker(PredictAreas(model), label="areas"), paper_batches()):
                store.set_areas(rows)
            if talks:
                store.set_areas(predicted_row(model, rec.id, rec.text, talk_proba(rec, model, section_vectors))
                                for rec in talks)
            store.set_area_names({label: {"labelled": counts} for label, counts in
                                  Counter(r.area or "" for r in labelled).items()})
            store.put_area_predictions(signature, {r.id: record_fingerprint(r) for r in unlabelled})
        return {"predicted": len(targets), "unchanged": len(unlabelled) - len(targets),
                "labelled": len(labelled), "retrained": int(retrained)}

    def _zero_shot(self, ctx: BuildContext, records: list[Any]) -> dict[str, int]:
        from .embed import store_embedder

        store = ctx.store
        labels = sorted(self.config.area_descriptions)
        described = store_embedder(store, self.config).encode(
            [f"{a}. {self.config.area_descriptions[a]}" for a in labels]
        )
        data = area_data(store, self.config, records)
        proba = zero_shot_proba(data.embeddings, np.asarray(described))
        sets = top_mass_sets(proba, labels, self.config.conformal_coverage)
        rows = [
            (rec.id, labels[int(np.argmax(p))], "predicted", _probs(labels, p), s)
            for rec, p, s in zip(records, proba, sets, strict=True)
        ]
        with store.transaction():
            store.set_areas(rows)
            store.set_area_names({a: {"zero_shot": True} for a in labels})
        return {"predicted": len(rows), "zero_shot": 1}


def stored_model(blob: bytes | None, config: Config) -> AreaModel | None:
    """The area model in `blob`, or None where it is not one this version reads."""
    artifact = unpack(blob, MODEL_KIND, MODEL_VERSION)
    if artifact is None:
        return None
    try:
        return AreaModel.from_artifact(artifact, config)
    except (ValueError, KeyError, TypeError):
        return None


def why_not_read(blob: bytes | None) -> str:
    if unpack(blob, MODEL_KIND, MODEL_VERSION) is not None:
        return f"stored {MODEL_KIND} model is damaged (refitting)"
    return describe(blob, MODEL_KIND, MODEL_VERSION)


def _predicted_before(store: AreaStore, signature: str) -> dict[str, str]:
    saved = store.area_predictions()
    return saved.get("records", {}) if saved.get("signature") == signature else {}


def talk_section_vectors(ctx: BuildContext, config: Config) -> dict[tuple[str, int], np.ndarray]:
    """(talk id, position) -> section embedding, from the content-keyed cache the talk-link
    step keeps (embedding only sections not cached yet, with the store's embedder)."""
    from .mentions import MentionsStep, section_key

    store = ctx.store
    sections = store.ls_talk_sections()
    model = store.get_meta("embedder") or config.embedder
    by_key = MentionsStep(config)._section_vectors(ctx, sections, model)
    return {(s["record_id"], s["position"]): by_key[section_key(s, model)] for s in sections}


def talk_proba(rec: Any, model: AreaModel, vectors: dict[tuple[str, int], np.ndarray]) -> np.ndarray:
    """A talk's area from its sections: their probabilities averaged, weighted by length."""
    index = [k for k, s in enumerate(rec.sections) if (s.text or "").strip() and (rec.id, k) in vectors]
    if not index:
        return model.prior
    texts = [f"{rec.sections[k].title}. {rec.sections[k].text}" for k in index]
    matrix = np.vstack([vectors[(rec.id, k)] for k in index])
    data = AreaData([f"{rec.id}#{k}" for k in index], texts, matrix, [list(rec.authors)] * len(index))
    proba = model.proba(data)
    weights = np.array([math.sqrt(len(t)) for t in texts])
    mean = (proba * weights[:, None]).sum(axis=0) / weights.sum()
    return mean / mean.sum()


AreaRow = tuple[str, str, str, dict[str, float], list[str]]


def predicted_row(model: AreaModel, rid: str, text: str, p: np.ndarray) -> AreaRow:
    area_set = model.sets(p[None, :], [text])[0]
    return (rid, model.labels[int(np.argmax(p))], "predicted", _probs(model.labels, p), area_set)


class PredictAreas:
    """The engine's areas worker: a batch of papers (and the given area of those that have one)
    in, their area rows out. A labelled paper keeps its given area, with the model's
    probabilities and prediction set beside it."""

    def __init__(self, model: AreaModel):
        self.model = model

    def __call__(self, batch: tuple[AreaData, dict[str, str]]) -> list[AreaRow]:
        data, given = batch
        model = self.model
        proba = model.proba(data)
        return [
            (rid, given[rid], "given", _probs(model.labels, p), model.sets(p[None, :], [text])[0]) if rid in given
            else predicted_row(model, rid, text, p)
            for rid, text, p in zip(data.ids, data.texts, proba, strict=True)
        ]


def _probs(labels: Sequence[str], p: np.ndarray) -> dict[str, float]:
    return {label: round(float(v), 4) for label, v in zip(labels, p, strict=True)}


def step(config: Config) -> AreasStep:
    return AreasStep(config)
