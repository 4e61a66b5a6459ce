"""How far the labels a fitted model learnt from have moved since it was fitted.

A fitted step (areas, concepts) keeps one fingerprint per labelled record (its id, content and
label) beside its model. Adding a thousand records to a million changes the labels by 0.1%:
refitting on that costs time in proportion to the corpus and changes little, so the stored
model reads the new records instead, until the labels added, changed or removed since the fit
exceed LABEL_DRIFT of those it was fitted on. The build output says which it did and why.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..arrays import unique_values
from ..artifacts import Artifact, pack, unpack
from ..store.interfaces import EmbedStore

LABEL_DRIFT = 0.1
KIND = "label-prints"
FORMAT = 1


def fingerprint(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest(), "little")


def prints_array(prints: dict[str, int]) -> np.ndarray:
    return unique_values(np.fromiter(prints.values(), dtype=np.uint64, count=len(prints)))


def drift(old: np.ndarray, new: np.ndarray) -> float:
    """Labels added, changed or removed, as a share of the old ones."""
    moved = len(np.setdiff1d(new, old, assume_unique=True)) + len(np.setdiff1d(old, new, assume_unique=True))
    return moved / max(len(old), 1)


def save_prints(store: EmbedStore, name: str, signature: str, prints: np.ndarray, embedder: str = "") -> None:
    meta = {"signature": signature, "embedder": embedder}
    store.put_artifact(name, pack(Artifact(KIND, FORMAT, meta, {"prints": prints})))


def load_prints(store: EmbedStore, name: str, embedder: str = "") -> tuple[str, np.ndarray] | None:
    """(signature of the model they belong to, fingerprints), if stored and readable, and fitted
    on the vectors of `embedder` (a model fitted on another embedder's vectors is never reused,
    however close its labels; prints stored before the embedder was kept match any)."""
    artifact = unpack(store.get_artifact(name), KIND, FORMAT)
    if artifact is None or "prints" not in artifact.arrays or not isinstance(artifact.meta.get("signature"), str):
        return None
    if artifact.meta.get("embedder", embedder) != embedder:
        return None
    return artifact.meta["signature"], np.asarray(artifact.arrays["prints"], dtype=np.uint64)


def drift_note(step: str, share: float, reuse: bool, limit: float = LABEL_DRIFT) -> str:
    verdict = "the stored model reads the new records" if reuse else "refitting"
    return f"{step}: labels changed by {share:.1%} since the model was fitted (refit above {limit:.1%}): {verdict}"
