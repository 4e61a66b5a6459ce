"""Record pages show the ids a record has as links in each community's form, its venue, its
citations and a BibTeX entry (issue 16, item 6)."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from landscape.web.app import create_app
from landscape.web.identifiers import identifier_links

from .conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures"


def test_every_known_id_is_a_link_in_its_community_form():
    links = identifier_links("arxiv:1412.6529", {
        "category": "cond-mat.quant-gas", "doi": "10.1103/PhysRevA.91.033614", "inspire": "1332386",
        "bibcode": "2015PhRvA..91c3614S", "openalex": "https://openalex.org/W2012345678", "s2": "abc123"})
    assert [(i["label"], i["text"]) for i in links] == [
        ("arXiv", "arXiv:1412.6529 [cond-mat.quant-gas]"), ("DOI", "10.1103/PhysRevA.91.033614"),
        ("INSPIRE", "1332386"), ("ADS", "2015PhRvA..91c3614S"), ("OpenAlex", "W2012345678"),
        ("Semantic Scholar", "abc123")]
    hrefs = [link["href"] for i in links for link in i["links"]]
    assert hrefs == [
        "https://arxiv.org/abs/1412.6529", "https://arxiv.org/pdf/1412.6529",
        "https://doi.org/10.1103/PhysRevA.91.033614", "https://inspirehep.net/literature/1332386",
        "https://ui.adsabs.harvard.edu/abs/2015PhRvA..91c3614S/abstract", "https://openalex.org/W2012345678",
        "https://www.semanticscholar.org/paper/abc123"]
    assert identifier_links("t0123", {}) == []


def test_a_record_read_from_arxiv_shows_its_ids_venue_and_bibtex(tmp_path: Path):
    db = tmp_path / "landscape.db"
    run_cli("ingest", FIXTURES / "arxiv.atom", db=db)
    with TestClient(create_app(db)) as client:
        html = client.get("/records/arxiv:2401.01234").text
        old_style = client.get("/records/arxiv:hep-th/9901001").text
        csp = client.get("/records/arxiv:2401.01234").headers["content-security-policy"]
    assert "arXiv:2401.01234" in html
    assert 'href="https://arxiv.org/abs/2401.01234"' in html and 'href="https://arxiv.org/pdf/2401.01234"' in html
    assert 'href="https://doi.org/10.1000/xyz.2024.1"' in html
    assert "<summary>BibTeX</summary>" in html and ("@article{" in html or "@misc{" in html)
    assert 'href="https://arxiv.org/abs/hep-th/9901001"' in old_style
    assert "https://arxiv.org" not in csp  # links open the service; nothing is loaded from it
