"""The configuration file: every key is known, or the error names it (file, line, key)."""

from __future__ import annotations

import pytest

from landscape.config import Config
from landscape.enrich.topics import TopicSettings
from landscape.models import LandscapeError
from landscape.store import open_store

from .conftest import FIXTURES, run_cli


@pytest.mark.parametrize(("text", "line", "says"), [
    ('embedder = "tfidf"\nembeder = "minilm"\n', 2, "found 'embeder'"),
    ('seed = 1\n\n[extra.topics]\nk = 12\nresolutoin = 2.0\n', 5, "[extra.topics]: unknown key 'resolutoin'"),
    ('[extra.map]\nbackend = "numpy"\nmin_dst = 0.2\n', 3, "[extra.map]: unknown key 'min_dst'"),
    ('[extra.summaries]\ngeneric_section = ["Outline"]\n', 2, "[extra.summaries]: unknown key 'generic_section'"),
    ('seed = 1\n[extra.topcs]\nk = 3\n', 2, "unknown section [extra.topcs]"),
])
def test_an_unknown_key_anywhere_is_an_error_naming_it(tmp_path, text, line, says):
    path = tmp_path / "landscape.toml"
    path.write_text(text)
    with pytest.raises(LandscapeError) as err:
        Config.load(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and says in str(err.value), str(err.value)


def test_the_build_stops_with_one_line_before_writing_anything(tmp_path):
    db = tmp_path / "landscape.db"
    run_cli("ingest", FIXTURES / "records.jsonl", db=db)
    (tmp_path / "landscape.toml").write_text("[extra.topics]\nmin_topic_sise = 3\n")
    out = run_cli("build", "--embedder", "tfidf", db=db, expect=2).output
    assert out.strip().splitlines() == [
        f"error: {tmp_path / 'landscape.toml'}:2: config [extra.topics]: unknown key 'min_topic_sise', expected one of"
        " k, max_iterations, method, min_topic_size, recluster_fraction, resolution"
    ]
    with open_store(db, readonly=True) as store:
        assert not store.page_has("embeddings") and store.page_last_build() is None


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(LandscapeError, match="unknown key 'resolutoin'"):
        Config(extra={"topics": {"resolutoin": 2}}).settings("topics", TopicSettings)
    assert Config(extra={"topics": {"k": 7}}).settings("topics", TopicSettings).k == 7
