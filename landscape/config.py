"""Configuration: every swappable step is chosen here, each with a good default.

Read from a TOML file (`--config`, LANDSCAPE_CONFIG, or `landscape.toml` beside the store);
unknown keys are an error so a typo never silently falls back to a default.
"""

from __future__ import annotations

import importlib
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
    area_categories: dict[str, str] = field(default_factory=dict)  # arXiv category glob -> area
    area_order: list[str] = field(default_factory=list)  # how counts lines list areas (default: by count)
    summariser: str = "extractive"  # extractive | llm
    llm_model_path: str | None = None
    seed: int = 42
    engine: str = "local"  # local | ray: where the build's per-record batches run (landscape.engine)
    workers: int = 0  # the local engine's processes (0: one per CPU, one on macOS; 1: all in the build's process)
    sources: list[dict[str, Any]] = field(default_factory=list)  # [[sources]]: name, query, since
    sync: dict[str, Any] = field(default_factory=dict)  # [sync]: contact, endpoints, s2_key
    extra: dict[str, Any] = field(default_factory=dict)
    given: frozenset[str] = field(default_factory=frozenset, repr=False, compare=False)  # keys the file set

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, db_path: str | None = None) -> Config:
        candidates = [path, os.environ.get("LANDSCAPE_CONFIG")]
        if db_path and "://" not in str(db_path):
            candidates.append(Path(db_path).resolve().parent / "landscape.toml")
        for candidate in candidates:
            if candidate and Path(candidate).is_file():
                return cls.from_file(Path(candidate))
            if candidate and candidate in (path,):
                raise LandscapeError(f"{candidate}: no such config file")
        return cls()

    def settings(self, section: str, settings_cls: type[S]) -> S:
        """A step's settings dataclass filled from `[extra.SECTION]`; a key it does not have is an error."""
        values = self.extra.get(section, {}) if isinstance(self.extra, dict) else {}
        if not isinstance(values, dict):
            raise LandscapeError(f"config [extra.{section}]: expected a table of settings, found {values!r}")
        known = settings_cls.__dataclass_fields__  # type: ignore[attr-defined]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise LandscapeError(
                f"config [extra.{section}]: unknown key {unknown[0]!r}, expected one of {', '.join(sorted(known))}"
            )
        return settings_cls(**values)

    @classmethod
    def from_file(cls, path: Path) -> Config:
        text = path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise LandscapeError(f"{path}: expected TOML, {exc}") from None
        known = {f.name for f in fields(cls)} - {"given"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LandscapeError(f"{path}:{_line_of(text, unknown[0])}: expected one of {', '.join(sorted(known))},"
                                 f" found {unknown[0]!r}")
        config = cls(**data)
        config.given = frozenset(data)
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise LandscapeError(f"{path}:{_line_of(text, 'extra')}: expected [extra.STEP] tables, found {extra!r}")
        for section in sorted(extra):
            if section not in SETTINGS:
                raise LandscapeError(f"{path}:{_line_of(text, 'extra.' + section)}: unknown section [extra.{section}],"
                                     f" expected one of {', '.join('[extra.' + s + ']' for s in sorted(SETTINGS))}")
            try:
                config.settings(section, _settings_class(section))
            except LandscapeError as exc:
                key = next(iter(sorted(set(extra[section]) - set(_settings_class(section).__dataclass_fields__))), section)
                raise LandscapeError(f"{path}:{_line_of(text, key, after='extra.' + section)}: {exc}") from None
        return config


# [extra.SECTION] -> the settings dataclass that reads it ("module:Class" in landscape.enrich).
# A step that reads a new section registers it here, so a typo in any section is an error.
SETTINGS = {
    "topics": "topics:TopicSettings",
    "map": "map:MapSettings",
    "summaries": "summaries:SummarySettings",
    "areas": "areas:AreaSettings",
    "fast_embedder": "static_embed:FastSettings",
}


def _settings_class(section: str) -> type[Any]:
    module, name = SETTINGS[section].split(":")
    return getattr(importlib.import_module(f"landscape.enrich.{module}"), name)


def _line_of(text: str, key: str, after: str | None = None) -> int:
    """The line a key (or a [table] header) is on, for the one-line error; 1 if not found."""
    lines = text.splitlines()
    start = 0
    if after:
        start = next((i for i, line in enumerate(lines) if line.strip().strip("[]").strip() == after), 0)
    name = key.rsplit(".", 1)[-1]
    for i in range(start, len(lines)):
        stripped = lines[i].strip()
        if stripped.strip("[]").strip() == key or stripped.split("=", 1)[0].strip().strip('"') == name:
            return i + 1
    return 1
