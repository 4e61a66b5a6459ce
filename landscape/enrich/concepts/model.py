"""The fitted concept model as data: named arrays and JSON (`landscape.artifacts`), never pickle.

What a full concepts run fits and an incremental run reuses: the vocabulary, the generic-word
list and the keyphrase ranker (TF-IDF of the labelled sample, their embeddings, the gold keys
and the boosted trees). Strings travel as unicode arrays, the sparse matrix as its CSR arrays,
the trees as their node arrays; reading one back runs no code from the store.

The ranker's TF-IDF and trees travel as their own `state()` arrays (landscape.enrich.predictors),
under a "tfidf_" and a "tree_" prefix.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...artifacts import Artifact, pack, unpack
from ...config import Config
from ..predictors import LiteBoostedTrees, LiteTfidf
from .normalise import lowered_clean_text
from .ranker import KeyphrasePredictor
from .vocabulary import Concept, Vocabulary

KIND = "concepts"
FORMAT = 2
_PREPROCESSORS = {"lowered_clean_text": lowered_clean_text}


@dataclass
class ConceptModel:
    """What a full concepts run fits and an incremental run reuses (stored as an artifact)."""

    vocab: Vocabulary
    predictor: KeyphrasePredictor | None
    generic: set[str]


def _strings(values: Any) -> np.ndarray:
    values = list(values)
    return np.array(values, dtype=str) if values else np.zeros(0, dtype="<U1")


def pack_model(model: ConceptModel) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    keys = sorted(model.vocab.concepts)
    index = {k: i for i, k in enumerate(keys)}
    arrays.update(_vocab_arrays(model.vocab, keys))
    arrays["generic"] = _strings(sorted(model.generic))
    if model.predictor is not None:
        arrays.update(_predictor_arrays(model.predictor, index))
        meta["predictor"] = _predictor_meta(model.predictor)
    return pack(Artifact(KIND, FORMAT, meta, arrays))


def unpack_model(blob: bytes | None, config: Config) -> ConceptModel | None:
    """The model in `blob`, or None for anything not this kind at this format version."""
    artifact = unpack(blob, KIND, FORMAT)
    if artifact is None:
        return None
    try:
        a = artifact.arrays
        vocab = _vocab_from(a)
        keys = [str(k) for k in a["keys"]]
        meta = artifact.meta.get("predictor")
        predictor = _predictor_from(a, meta, keys, vocab, config) if meta else None
        return ConceptModel(vocab, predictor, {str(k) for k in a["generic"]})
    except (KeyError, ValueError, IndexError, TypeError):
        return None


# --- the vocabulary -----------------------------------------------------------------------


def _vocab_arrays(vocab: Vocabulary, keys: list[str]) -> dict[str, np.ndarray]:
    form_of, form_text, form_count, acr_of, acr_text, given_of, given_rec = [], [], [], [], [], [], []
    records: dict[str, int] = {}
    for i, key in enumerate(keys):
        c = vocab.concepts[key]
        for form, n in sorted(c.forms.items()):
            form_of.append(i)
            form_text.append(form)
            form_count.append(n)
        for acr in sorted(c.acronyms):
            acr_of.append(i)
            acr_text.append(acr)
        for rid in sorted(c.given):
            given_of.append(i)
            given_rec.append(records.setdefault(rid, len(records)))
    acronyms = sorted(vocab.acronyms.items())
    return {
        "keys": _strings(keys),
        "form_of": np.array(form_of, dtype=np.int64), "form_text": _strings(form_text),
        "form_count": np.array(form_count, dtype=np.int64),
        "acronym_of": np.array(acr_of, dtype=np.int64), "acronym_text": _strings(acr_text),
        "given_of": np.array(given_of, dtype=np.int64), "given_record": np.array(given_rec, dtype=np.int64),
        "record_ids": _strings(records),
        "acronym_names": _strings(a for a, _ in acronyms), "acronym_keys": _strings(k for _, k in acronyms),
    }


def _vocab_from(a: dict[str, np.ndarray]) -> Vocabulary:
    """The vocabulary from its arrays, walked as Python lists (`tolist`): iterating the arrays
    themselves made a numpy scalar of every element, 4.6 s of each build at a million records."""
    vocab = Vocabulary(dict(zip(a["acronym_names"].tolist(), a["acronym_keys"].tolist(), strict=True)))
    keys = a["keys"].tolist()
    concepts = [Concept(k) for k in keys]
    for i, form, n in zip(a["form_of"].tolist(), a["form_text"].tolist(), a["form_count"].tolist(), strict=True):
        concepts[i].forms[form] = n
    for i, acr in zip(a["acronym_of"].tolist(), a["acronym_text"].tolist(), strict=True):
        concepts[i].acronyms.add(acr)
    record_ids = a["record_ids"].tolist()
    for i, r in zip(a["given_of"].tolist(), a["given_record"].tolist(), strict=True):
        concepts[i].given.add(record_ids[r])
    vocab.concepts = {c.key: c for c in concepts}
    vocab.rebuild_prefixes()
    return vocab


# --- the ranker ---------------------------------------------------------------------------


def _predictor_meta(p: KeyphrasePredictor) -> dict[str, Any]:
    t = p.tfidf
    name = next((n for n, f in _PREPROCESSORS.items() if f is t.preprocessor), None)
    if t.preprocessor is not None and name is None:
        raise TypeError("the keyphrase ranker's TF-IDF has a preprocessor this format cannot name")
    return {
        "neighbours": p.k, "top": p.top, "expected_gold": float(p.expected_gold),
        "has_embeddings": p.emb is not None,
        "tfidf_preprocessor": name,
        "matrix_shape": list(p.matrix.shape),
    }


def _predictor_arrays(p: KeyphrasePredictor, index: dict[str, int]) -> dict[str, np.ndarray]:
    ids = {rid: i for i, rid in enumerate(p.ids)}
    gold = [(ids[rid], index[k]) for rid in p.ids for k in sorted(p.gold[rid])]
    matrix = p.matrix.tocsr()
    out = {
        "fit_ids": _strings(p.ids),
        "gold_record": np.array([g[0] for g in gold], dtype=np.int64),
        "gold_key": np.array([g[1] for g in gold], dtype=np.int64),
        "matrix_data": matrix.data, "matrix_indices": matrix.indices, "matrix_indptr": matrix.indptr,
        "present": _counts(p.present, index), "present_given": _counts(p.present_given, index),
        "given_df": _counts(p.given_df, index),
    }
    if p.emb is not None:
        out["embeddings"] = np.asarray(p.emb, dtype=np.float32)
    out.update({f"tfidf_{name}": a for name, a in p.tfidf.state().items()})
    out.update({f"tree_{name}": a for name, a in p.model.state().items()})
    return out


def _counts(counts: Counter[str], index: dict[str, int]) -> np.ndarray:
    out = np.zeros(len(index), dtype=np.int64)
    for key, n in counts.items():
        out[index[key]] = n
    return out


def _predictor_from(
    a: dict[str, np.ndarray], meta: dict[str, Any], keys: list[str], vocab: Vocabulary, config: Config
) -> KeyphrasePredictor:
    from scipy.sparse import csr_matrix

    p = KeyphrasePredictor(config, neighbours=int(meta["neighbours"]), top=int(meta["top"]))
    p.ids = a["fit_ids"].tolist()
    p.vocab = vocab
    p.gold = {rid: set() for rid in p.ids}
    for r, k in zip(a["gold_record"].tolist(), a["gold_key"].tolist(), strict=True):
        p.gold[p.ids[r]].add(keys[k])
    preprocessor = meta["tfidf_preprocessor"]
    p.tfidf = LiteTfidf.from_state(_prefixed(a, "tfidf_"), None if preprocessor is None else _PREPROCESSORS[preprocessor])
    p.matrix = csr_matrix((a["matrix_data"], a["matrix_indices"], a["matrix_indptr"]), shape=tuple(meta["matrix_shape"]))
    p.found = {}
    for name in ("present", "present_given", "given_df"):
        setattr(p, name, Counter({keys[i]: int(a[name][i]) for i in np.flatnonzero(a[name])}))
    p.emb = a["embeddings"] if meta["has_embeddings"] else None
    p.model = LiteBoostedTrees.from_state(_prefixed(a, "tree_"))
    p.expected_gold = float(meta["expected_gold"])
    return p


def _prefixed(a: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix):]: v for name, v in a.items() if name.startswith(prefix)}
