"""Fitted models as data: named arrays and JSON with a kind and a format version, never code.

A store is a file people pass around, so nothing read from it may run code: an artifact is an
uncompressed .npz of plain numeric or string arrays (read with ``allow_pickle=False``) plus a
``__header__`` entry holding JSON (kind, format version, and the step's own metadata).
`unpack` answers None for anything it cannot read as that kind at that version (an older
format, another kind, a pickle, garbage), and the step then refits and says so.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HEADER = "__header__"


@dataclass
class Artifact:
    kind: str
    version: int
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def pack(artifact: Artifact) -> bytes:
    header = json.dumps({"kind": artifact.kind, "version": artifact.version, "meta": artifact.meta}, sort_keys=True)
    arrays = {name: np.asarray(a) for name, a in artifact.arrays.items()}
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise TypeError(f"artifact {artifact.kind}: array {name!r} holds Python objects")
    buf = io.BytesIO()
    np.savez(buf, **{HEADER: np.array(header)}, **arrays)
    return buf.getvalue()


def unpack(blob: bytes | None, kind: str, version: int) -> Artifact | None:
    """The artifact in `blob` if it is `kind` at `version`, read without ever unpickling."""
    if not blob:
        return None
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            header = json.loads(str(z[HEADER]))
            if header.get("kind") != kind or header.get("version") != version:
                return None
            arrays = {name: z[name] for name in z.files if name != HEADER}
    except (ValueError, OSError, KeyError, json.JSONDecodeError, zipfile.BadZipFile, EOFError):
        return None
    return Artifact(kind, version, dict(header.get("meta") or {}), arrays)


def describe(blob: bytes | None, kind: str, version: int) -> str:
    """Why a stored artifact is not used, in words for the build output."""
    if not blob:
        return f"no {kind} model stored"
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            header = json.loads(str(z[HEADER]))
    except Exception:  # noqa: BLE001 - anything unreadable is described the same way
        return f"stored {kind} model is not in a format this version reads (refitting)"
    if header.get("kind") != kind:
        return f"stored model is a {header.get('kind')!r}, not {kind!r} (refitting)"
    return f"stored {kind} model has format version {header.get('version')}, this version reads {version} (refitting)"
