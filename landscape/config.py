"""Configuration: every swappable step is chosen here, each with a good default.

Read from a TOML file (`--config`, LANDSCAPE_CONFIG, or `landscape.toml` beside the store);
unknown keys are an error so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from .models import LandscapeError

S = TypeVar("S")


@dataclass
class Config:
    embedder: str = "minilm"  # minilm | fast | tfidf | sentence-transformers:PATH
    batch_size: int = 64
    connections_k: int = 10
    conformal_coverage: float = 0.9
    area_descriptions: dict[str, str] = field(default_factory=dict)
    summariser: str = "extractive"  # extractive | llm
    llm_model_path: str | None = None
    seed: int = 42
    sources: list[dict[str, Any]] = field(default_factory=list)  # [[sources]]: name, query, since
    sync: dict[str, Any] = field(default_factory=dict)  # [sync]: contact, endpoints, s2_key
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, db_path: str | None = None) -> Config:
        candidates = [path, os.environ.get("LANDSCAPE_CONFIG")]
        if db_path:
            candidates.append(Path(db_path).resolve().parent / "landscape.toml")
        for candidate in candidates:
            if candidate and Path(candidate).is_file():
                return cls.from_file(Path(candidate))
            if candidate and candidate in (path,):
                raise LandscapeError(f"{candidate}: no such config file")
        return cls()

    def settings(self, section: str, settings_cls: type[S]) -> S:
        """A step's settings dataclass filled from `extra[section]` (fields it does not have are ignored)."""
        extra = self.extra.get(section, {}) if isinstance(self.extra, dict) else {}
        known = settings_cls.__dataclass_fields__  # type: ignore[attr-defined]
        return settings_cls(**{k: v for k, v in extra.items() if k in known})

    @classmethod
    def from_file(cls, path: Path) -> Config:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise LandscapeError(f"{path}: expected TOML, {exc}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LandscapeError(f"{path}:1: expected one of {', '.join(sorted(known))}, found {unknown[0]!r}")
        return cls(**data)
