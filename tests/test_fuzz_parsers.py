"""Fuzz every parser: whatever the input, the only exception that escapes is ParseError,
and a file that fails writes nothing."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landscape.ingest import FORMATS, ingest_paths, sniff
from landscape.models import BadRecord, ParseError, Record
from landscape.store import open_store

from .conftest import FIXTURES, LISTING, SEEDS

SAMPLES = {
    "listing": LISTING.read_text()[:6000],
    "abstracts": (SEEDS / "000_a36c6340249dc15d.txt").read_text()[:3000],
    "aggregator": (SEEDS / "001_36b3cb48603f891c.txt").read_text()[:3000],
    "talk": (SEEDS / "003_00411ab6291d3934.txt").read_text()[:3000],
    "jsonl": (FIXTURES / "records.jsonl").read_text(),
    "csv": 'id,kind,title,title_derived,authors,authors_truncated,date,area,abstract,keyphrases,'
           'keyphrase_line,sources,sections,extra\n'
           'x1,paper,A Title,0,A B; C D,1,2024-01-02,Astrophysics,"An, abstract",a b; c,a b c,[],[],{}\n',
    "bibtex": (FIXTURES / "sample.bib").read_text(),
    "arxiv-atom": (FIXTURES / "arxiv.atom").read_text(),
    "arxiv-snapshot": (FIXTURES / "arxiv-snapshot.json").read_text()
    + (FIXTURES / "arxiv-snapshot-edge.json").read_text(),
}
SPECIAL = "@{}()\"'#=,;:\\$%&_^~<>![]/\n\t\r \x00\ufeff\u00a0\u2028é{}\"<>&;"


@st.composite
def mutated(draw, sample: str) -> str:
    """A real sample with slices deleted, duplicated or replaced by hostile characters."""
    text = sample
    for _ in range(draw(st.integers(1, 6))):
        if not text:
            break
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 200)))
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "truncate"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "truncate":
            text = text[:i]
        else:
            text = text[:i] + draw(st.text(alphabet=SPECIAL, max_size=30)) + text[i:]
    return text


def inputs(fmt: str):
    return st.one_of(mutated(SAMPLES[fmt]), st.text(max_size=300), st.text(alphabet=SPECIAL, max_size=300))


def run_parser(fmt: str, text: str) -> list[Record | BadRecord]:
    module = importlib.import_module(f"landscape.ingest.{FORMATS[fmt]}")
    module.looks_like(text)
    lines = enumerate(text.replace("\r\n", "\n").split("\n"), start=1)
    try:
        return list(module.parse("fuzz.txt", lines))
    except ParseError as exc:
        assert str(exc).startswith("fuzz.txt:")
        return []


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_parser_raises_nothing_but_parse_error(fmt):
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(inputs(fmt))
    def check(text):
        for item in run_parser(fmt, text):
            assert isinstance(item, Record | BadRecord)

    check()


def test_deeply_nested_bibtex_braces_are_no_recursion_error():
    text = "@article{deep, title = {" + "{" * 10_000 + "x" + "}" * 10_000 + "}, abstract={a}}\n"
    (rec,) = run_parser("bibtex", text)
    assert rec.title == "x"
    assert isinstance(run_parser("bibtex", "@article{deep, title = {" + "{" * 10_000)[0], BadRecord)


def test_atom_entity_expansion_and_external_entities_are_refused():
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        "<entry><title>&c;</title></entry></feed>\n"
    )
    external = (
        '<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&x;</title></entry></feed>\n'
    )
    module = importlib.import_module("landscape.ingest.arxiv_atom")
    for text in (laughs, external):
        with pytest.raises(ParseError, match="expected XML without DTDs or entity declarations"):
            list(module.parse("feed.xml", enumerate(text.split("\n"), start=1)))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400) | st.sampled_from(sorted(FORMATS)).flatmap(lambda f: mutated(SAMPLES[f])))
def test_ingesting_any_file_fails_cleanly_and_writes_nothing_on_failure(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
        with open_store(Path(tmp) / "x.db") as store:
            try:
                sniff(path)
                report = ingest_paths(store, [path])
            except ParseError:
                assert store.count_records() == 0
                assert store.connection_for_tests.execute("SELECT count(*) FROM sources").fetchone()[0] == 0
                return
            assert store.count_records() == report.total("new")
            assert store.integrity_ok()
