"""Every shape of input in ../shared and tests/fixtures is read into the store correctly."""

from __future__ import annotations

import pytest

from landscape.ingest import sniff

from .conftest import FIXTURES, SEEDS, cli_json, run_cli

ABSTRACTS = SEEDS / "000_a36c6340249dc15d.txt"
AGGREGATOR = SEEDS / "001_36b3cb48603f891c.txt"
LOUPPE = SEEDS / "003_00411ab6291d3934.txt"
THAIS = SEEDS / "004_983411919a72a1a9.txt"


@pytest.fixture(scope="module")
def seeds_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("seeds") / "landscape.db"
    out = run_cli("ingest", SEEDS, db=db).output
    assert out.splitlines()[-1] == "10 new, 0 changed, 0 unchanged"
    return db


def records_from(db, path):
    return [r for r in cli_json("list", db=db) if any(s["path"] == str(path) for s in r["sources"])]


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        (ABSTRACTS, "abstracts"), (AGGREGATOR, "aggregator"), (LOUPPE, "talk"), (THAIS, "talk"),
        (FIXTURES / "sample.bib", "bibtex"), (FIXTURES / "arxiv.atom", "arxiv-atom"),
        (FIXTURES / "records.jsonl", "jsonl"), (FIXTURES / "arxiv-snapshot.json", "arxiv-snapshot"),
        (FIXTURES / "arxiv-snapshot-edge.json", "arxiv-snapshot"),
    ],
)
def test_format_is_sniffed_from_content(path, fmt):
    assert sniff(path) == fmt


def test_seeds_give_three_abstracts_five_aggregator_papers_and_two_talks(seeds_db):
    stats = cli_json("stats", db=seeds_db)
    assert stats["papers"] == 8 and stats["talks"] == 2


def test_abstracts_have_no_title_but_a_derived_display_title(seeds_db):
    records = records_from(seeds_db, ABSTRACTS)
    assert len(records) == 3
    for rec in records:
        assert rec["title"] is None and rec["title_derived"] is True
        assert rec["abstract"] and not rec["abstract"].startswith("Abstract")
        shown = cli_json("show", rec["id"], db=seeds_db)["display_title"]
        assert shown and rec["abstract"].startswith(shown.rstrip("…").split()[0])
    assert any(r["abstract"].startswith("Integral field unit (IFU) spectroscopy") for r in records)


def test_aggregator_keeps_source_line_and_topic_and_drops_chrome(seeds_db):
    records = records_from(seeds_db, AGGREGATOR)
    titles = {r["title"] for r in records}
    assert len(records) == 5
    assert "Robust posterior inference when statistically emulating forward simulations" in titles
    assert not titles & {"Goto", "Collaborating Authors", "fundamental science"}
    deeply = next(r for r in records if r["title"].startswith("Deeply Uncertain"))
    assert deeply["extra"] == {"source": "arXiv.org Machine Learning", "topic": "fundamental science"}
    assert deeply["sources"][0]["extra"]["source"] == "arXiv.org Machine Learning"
    assert deeply["abstract"].startswith("We present a comparison of methods for uncertainty")


def test_louppe_talk_has_speaker_date_sections_and_repaired_math(seeds_db):
    (talk,) = records_from(seeds_db, LOUPPE)
    assert talk["kind"] == "talk"
    assert talk["title"] == "When a computer scientist meets a physicist"
    assert talk["authors"] == ["Gilles Louppe"]
    assert talk["date"] == "2024-11-29"
    assert talk["extra"]["email"] == "g.louppe@uliege.be"
    headings = [s["title"] for s in talk["sections"]]
    for heading in ("Neural simulation-based inference", "Constraining dark matter with stellar streams",
                    "Enforcing conservative posteriors", "Score-based data assimilation", "Conclusions"):
        assert heading in headings
    text = "\n".join(s["text"] for s in talk["sections"])
    assert r"\frac{1}{Re}\nabla^2 u" in text
    assert r"\theta=\{m_e,m_\mu,m_\tau,\ldots\}" in text
    assert r"\arg\max_{\theta}" in text
    assert "heta" not in text.replace(r"\theta", "")


def test_thais_talk_has_speaker_affiliation_and_topic_sections(seeds_db):
    (talk,) = records_from(seeds_db, THAIS)
    assert talk["title"].startswith("From Neural Networks to Foundation Models")
    assert talk["authors"] == ["Savannah Thais"]
    assert talk["extra"]["affiliation"] == "Columbia University"
    headings = [s["title"] for s in talk["sections"]]
    for heading in ("Anomaly Detection", "Graph Neural Networks", "Normalizing Flows", "Foundation Models",
                    "Equivariance", "Unfolding"):
        assert heading in headings
    assert not any("solid orange" in s["text"] for s in talk["sections"])
    anomaly = next(s for s in talk["sections"] if s["title"] == "Anomaly Detection")
    assert "anomaly detection" in anomaly["text"].lower()


def test_bibtex_braces_accents_macros_and_concatenation(db):
    run_cli("ingest", FIXTURES / "sample.bib", db=db)
    records = {r["extra"]["bibtex_key"]: r for r in cli_json("list", db=db)}
    efp = records["Komiske2018"]
    assert efp["id"] == "arxiv:1712.07124"
    assert efp["title"] == "Energy flow polynomials: A complete linear basis for jet substructure"
    assert efp["authors"] == ["Patrick T. Komiske", "Eric M. Metodiev", "Jesse Thaler"]
    assert efp["date"] == "2018-04"
    assert efp["keyphrases"] == ["jet substructure", "energy flow polynomials", "linear basis"]
    da = records["Gregoire2023"]
    assert da["id"] == "doi:10.1103/physrevlett.130.000001"
    assert da["title"] == "Data assimilation with nested braces kept for Göttingen and Liège"
    assert da["authors"] == ["Marilaure Grégoire", "Jörg Müller", "Åsa François"]
    assert da["authors_truncated"] is True
    assert da["extra"]["venue"] == "Massachusetts Institute of Technology Workshop"
    assert "$x_{1:L}$" in da["abstract"] and "50% less & more" in da["abstract"]
    assert records["notitle"]["title"] is None and records["notitle"]["title_derived"] is True


def test_arxiv_atom_entries_get_arxiv_ids(db):
    run_cli("ingest", FIXTURES / "arxiv.atom", db=db)
    records = {r["id"]: r for r in cli_json("list", db=db)}
    assert set(records) == {"arxiv:2401.01234", "arxiv:hep-th/9901001"}
    streams = records["arxiv:2401.01234"]
    assert streams["title"] == "Constraining Dark Matter with Stellar Streams and Neural Simulation-Based Inference"
    assert streams["authors"] == ["Joeri Hermans", "Gilles Louppe"]
    assert streams["date"] == "2024-01-02"
    assert streams["extra"]["doi"] == "10.1000/xyz.2024.1"
    assert "neural ratio estimation & a stream simulator" in streams["abstract"]


def test_format_can_be_forced(db, tmp_path):
    odd = tmp_path / "notes.dat"
    odd.write_text(ABSTRACTS.read_text())
    out = run_cli("ingest", odd, "--format", "abstracts", db=db).output
    assert "(abstracts): 3 new" in out
    bad = run_cli("ingest", odd, "--format", "nonsense", db=db, expect=2).output
    assert "expected one of auto, listing" in bad
