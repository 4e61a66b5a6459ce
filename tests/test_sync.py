"""`landscape sync` from recorded answers replayed by a local server: each service, identity
across services, citations, cursors, and the errors a user sees."""

from __future__ import annotations

import datetime
import json

import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.store import open_store
from landscape.sync import Settings, make_client, service_record
from landscape.sync.ads import bibcode_arxiv
from landscape.sync.openalex import abstract_text
from landscape.sync.run import sync_source
from tests.conftest import FIXTURES as ROOT_FIXTURES
from tests.test_sync_replay import FakeClock, Replay, answer, fixture

ARXIV_SUSY = "arxiv:1506.03091"
S2_SEARCH, S2_BATCH = "/graph/v1/paper/search", "/graph/v1/paper/batch"


def s2_batch(*recorded: str) -> dict:
    """Semantic Scholar's POST /paper/batch: a recorded answer when it is for the ids asked,
    else each id with no references (a paper S2 lists none for)."""
    answers = {}
    for name in recorded:
        body = fixture(name).read_bytes()
        answers[tuple(p["paperId"] for p in json.loads(body))] = body
    return answer(lambda params: answers.get(tuple(params["_json"]["ids"])) or json.dumps(
        [{"paperId": pid, "references": []} for pid in params["_json"]["ids"]]).encode())


def s2_searches(replay) -> list[dict]:
    return [params for path, params, _ in replay.requests if path == S2_SEARCH]


@pytest.fixture(autouse=True)
def fresh_limiters():
    """Each test is its own process as far as politeness goes (the limiters are per process)."""
    import landscape.sync

    landscape.sync._LIMITERS.clear()


@pytest.fixture
def replay():
    server = Replay()
    yield server
    server.close()


def sync_cli(db, *args, expect=0, env=None):
    result = CliRunner().invoke(main, ["sync", *map(str, args), "--db", str(db)], env=env, catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def show(db, record_id):
    result = CliRunner().invoke(main, ["show", record_id, "--json", "--db", str(db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def serve_inspire(replay):
    replay.add("/api/literature", answer(fixture("inspire_literature.json")))
    return replay.url + "/api/literature"


def test_arxiv_oai_pages_follow_the_resumption_token_politely(replay, db):
    replay.add("/oai2", answer(fixture("arxiv_oai_page2.xml")), match={"resumptionToken": "6960524|1001"})
    replay.add("/oai2", answer(fixture("arxiv_oai_page1.xml")), match={"metadataPrefix": "arXiv"})
    clock = FakeClock()
    client = make_client("arxiv", Settings(endpoint=replay.url + "/oai2", clock=clock, sleep=clock.sleep))
    with open_store(db) as store:
        report = sync_source(store, client, query="set:physics:astro-ph", since="2013-03-25")
        assert (report.pages, report.new, report.skipped, report.complete) == (2, 2, 1, True)
        first, second = replay.requests[0][1], replay.requests[1][1]
        assert first == {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "physics:astro-ph", "from": "2013-03-25"}
        assert second == {"verb": "ListRecords", "resumptionToken": "6960524|1001"}
        assert clock.slept == [3.0]  # one request every three seconds
        rec = store.get_record("arxiv:0801.3931")
        assert rec.title == "Dynamical study of 2D and 3D barred galaxy models"
        assert rec.authors == ["T. Manos", "E. Athanassoula"]
        assert rec.extra["doi"] == "10.1007/978-3-540-75826-6_11" and rec.extra["venue"].startswith("Chaos in Astronomy")
        assert [s.path for s in rec.sources] == ["https://arxiv.org/abs/0801.3931"]
        assert store.get_record("arxiv:0801.4000") is None  # deleted upstream: skipped, counted
        assert store.sync_state("arxiv:set:physics:astro-ph")["next"] is None
        assert store.search_index_ok()


def test_a_bare_rerun_asks_only_for_what_is_newer(replay, db):
    replay.add("/oai2", answer(fixture("arxiv_oai_no_records.xml")), match={"from": "2026-01-02"})
    replay.add("/oai2", answer(fixture("arxiv_oai_listrecords.xml")))
    clock = FakeClock()
    client = make_client("arxiv", Settings(endpoint=replay.url + "/oai2", clock=clock, sleep=clock.sleep))
    with open_store(db) as store:
        sync_source(store, client, today=lambda: "2026-01-02")
        again = sync_source(store, client, today=lambda: "2026-01-03")
    assert replay.requests[1][1]["from"] == "2026-01-02"
    assert (again.new, again.unchanged, again.complete) == (0, 0, True)


def test_the_same_paper_from_arxiv_inspire_and_openalex_is_one_record(replay, db):
    replay.add("/oai2", answer(fixture("arxiv_oai_1506.03091.xml")))
    replay.add("/works", answer(fixture("openalex_works_empty.json")), match={"cursor": "IlsxMDAuMCwgMTAwMF0i"})
    replay.add("/works", answer(fixture("openalex_works_page1.json")))
    sync_cli(db, "openalex", "--query", "supersymmetry", "--endpoint", replay.url + "/works")
    sync_cli(db, "inspire", "--query", "t supersymmetry", "--endpoint", serve_inspire(replay))
    sync_cli(db, "arxiv", "--endpoint", replay.url + "/oai2")
    with open_store(db) as store:
        assert store.count_records() == 1
        rec = store.get_records([ARXIV_SUSY])[0] if store.get_record(ARXIV_SUSY) else store.iter_records().__next__()
    assert rec.extra["arxiv"] == "1506.03091" and rec.extra["inspire"] == "1375491"
    assert rec.extra["openalex"] == "W1000000001" and rec.extra["doi"] == "10.1007/978-3-319-15001-7_10"
    assert sorted(s.format for s in rec.sources) == ["arxiv-oai", "inspire", "openalex"]
    assert rec.abstract.startswith("In this chapter, supersymmetry (SUSY)")  # rebuilt from the inverted index


def test_a_journal_version_known_only_by_its_doi_joins_its_preprint(replay, db):
    """OpenAlex's work for the proceedings version has no arXiv location and another title;
    the DOI the arXiv record gave makes it the same record."""
    work = json.loads(fixture("openalex_works_page1.json").read_text())
    work["meta"]["next_cursor"] = None
    paper = work["results"][0]
    paper.update(doi="https://doi.org/10.1007/978-3-540-75826-6_11", title="Chaos in barred galaxy models",
                 locations=[], abstract_inverted_index=None, referenced_works=[])
    replay.add("/oai2", answer(fixture("arxiv_oai_listrecords.xml")))
    replay.add("/works", answer(json.dumps(work)))
    sync_cli(db, "arxiv", "--endpoint", replay.url + "/oai2")
    sync_cli(db, "openalex", "--query", "barred", "--endpoint", replay.url + "/works")
    view = show(db, "arxiv:0801.3931")
    assert view["extra"]["openalex"] == "W1000000001"
    assert sorted(s["format"] for s in view["sources"]) == ["arxiv-oai", "openalex"]
    with open_store(db) as store:
        assert store.count_records() == 1


def test_citations_match_whichever_side_arrives_first(replay, tmp_path):
    replay.add("/oai2", answer(fixture("arxiv_oai_page2.xml")))
    inspire = serve_inspire(replay)
    cited_first, citing_first = tmp_path / "a.db", tmp_path / "b.db"
    sync_cli(cited_first, "arxiv", "--endpoint", replay.url + "/oai2")
    sync_cli(cited_first, "inspire", "--query", "t supersymmetry", "--endpoint", inspire)
    sync_cli(citing_first, "inspire", "--query", "t supersymmetry", "--endpoint", inspire)
    before = show(citing_first, ARXIV_SUSY)
    assert [r["record_id"] for r in before["references"]] == [None, None, None, None]
    sync_cli(citing_first, "arxiv", "--endpoint", replay.url + "/oai2")
    for db in (cited_first, citing_first):
        view = show(db, ARXIV_SUSY)
        refs = view["references"]
        assert [r["ids"].get("arxiv") for r in refs] == ["1206.6888", "1406.0848", "1301.4698", None]
        assert refs[1]["record_id"] == "arxiv:1406.0848" and refs[1]["ids"]["doi"] == "10.1103/physrevd.90.115012"
        assert refs[3]["title"].startswith("Search for Supersymmetry at the high luminosity LHC")
        assert [r["record_id"] for r in refs if r["record_id"]] == ["arxiv:1406.0848"]
        assert show(db, "arxiv:1406.0848")["cited_by"] == [ARXIV_SUSY]
        assert view["cited_by"] == []
        with open_store(db) as store:
            assert store.citation_counts() == {"links": 4, "targets": 4, "in_corpus": 1}
            assert store.count_records() == 2  # cited works outside the corpus are never papers


def test_api_gives_references_and_cited_by(replay, db):
    from starlette.testclient import TestClient

    from landscape.web.app import create_app

    replay.add("/oai2", answer(fixture("arxiv_oai_page2.xml")))
    sync_cli(db, "inspire", "--query", "t supersymmetry", "--endpoint", serve_inspire(replay))
    sync_cli(db, "arxiv", "--endpoint", replay.url + "/oai2")
    with TestClient(create_app(str(db))) as http:
        cited = http.get("/api/v1/records/arxiv:1406.0848").json()
        citing = http.get(f"/api/v1/records/{ARXIV_SUSY}").json()
        citing_page = http.get(f"/records/{ARXIV_SUSY}").text
        cited_page = http.get("/records/arxiv:1406.0848").text
    assert "References (4)" in citing_page and 'href="/records/arxiv%3A1406.0848"' in citing_page
    assert "(not in this landscape)" in citing_page
    assert "Cited by (1 in this landscape)" in cited_page
    assert f'href="/records/{ARXIV_SUSY.replace(":", "%3A")}"' in cited_page
    assert "https://inspirehep.net/literature/" in citing_page
    assert json.dumps(cited).count(ARXIV_SUSY) >= 1
    record = citing.get("record", citing)
    assert len(record["references"]) == 4 and record["references"][1]["record_id"] == "arxiv:1406.0848"
    assert cited.get("record", cited)["cited_by"] == [ARXIV_SUSY]


def test_ads_search_with_token_and_references_by_arxiv_bibcode(replay, db):
    replay.add("/oai2", answer(fixture("arxiv_oai_listrecords.xml")))
    replay.add("/v1/search/query", answer(fixture("ads_search.json"), headers={"X-RateLimit-Remaining": "4999"}))
    sync_cli(db, "arxiv", "--endpoint", replay.url + "/oai2")
    sync_cli(db, "ads", "--query", "bibcode:2012A&A...542A..16R", "--endpoint", replay.url + "/v1/search/query",
             env={"ADS_API_TOKEN": "secret-token"})
    assert replay.requests[-1][2]["Authorization"] == "Bearer secret-token"
    view = show(db, "arxiv:1204.4485")
    assert view["extra"]["bibcode"] == "2012A&A...542A..16R" and view["date"] == "2012-06-01"
    assert view["references"][0]["record_id"] == "arxiv:0801.3931"
    assert show(db, "arxiv:0801.3931")["cited_by"] == ["arxiv:1204.4485"]


def test_ads_without_a_token_or_with_its_quota_spent_is_one_line(replay, db):
    result = sync_cli(db, "ads", "--query", "x", "--endpoint", replay.url, expect=2, env={"ADS_API_TOKEN": ""})
    assert result.output.strip().splitlines()[-1].startswith("error: ads: expected an API token in ADS_API_TOKEN")
    replay.add("/q", answer(fixture("ads_search.json").read_text().replace('"numFound": 1', '"numFound": 500'),
                            headers={"X-RateLimit-Remaining": "0"}))
    spent = sync_cli(db, "ads", "--query", "x", "--endpoint", replay.url + "/q", expect=2, env={"ADS_API_TOKEN": "t"})
    assert "daily request quota of this token is spent" in spent.output
    with open_store(db) as store:
        assert store.count_records() == 1  # the page before the quota ran out is kept


def test_s2_offset_pages_and_references_by_paper_id(replay, db):
    replay.add(S2_SEARCH, answer(fixture("s2_paper_search_next.json")), match={"offset": "100"})
    replay.add(S2_SEARCH, answer(fixture("s2_paper_search.json")))
    replay.add(S2_BATCH, s2_batch("s2_paper_batch_next.json"))
    sync_cli(db, "s2", "--query", "turing", "--endpoint", replay.url + "/graph/v1", env={"S2_API_KEY": "k"})
    assert [p["offset"] for p in s2_searches(replay)] == ["0", "100"]
    assert "references" not in s2_searches(replay)[0]["fields"]  # the search is not asked for nested data
    page_ids = [p["paperId"] for p in json.loads(fixture("s2_paper_search.json").read_text())["data"]]
    assert [body for _path, _params, body in replay.posted] == [{"ids": page_ids}, {"ids": [
        "c4cb90a67f45e7cbacb5286e934b309e89843922"]}]
    assert replay.posted[0][1]["fields"] == "references.paperId,references.externalIds,references.title"
    assert all(headers["X-Api-Key"] == "k" for _path, _params, headers in replay.requests)
    with open_store(db) as store:
        assert store.count_records() == 6
        ntm = store.resolve_record_id(service_record("s2", "u", "Neural Turing Machines", [], None, "", {}))
    assert ntm is not None
    view = show(db, "arxiv:1901.03429")
    assert [r["record_id"] for r in view["references"]] == [ntm, None]
    assert show(db, ntm)["cited_by"] == ["arxiv:1901.03429"]


def test_arxiv_atom_query_reads_with_the_ingest_parser(replay, db):
    replay.add("/api/query", answer(ROOT_FIXTURES / "arxiv.atom"))
    sync_cli(db, "arxiv", "--query", "all:stellar streams", "--endpoint", replay.url + "/api/query")
    params = replay.requests[0][1]
    assert params["search_query"] == "all:stellar streams" and params["start"] == "0"
    view = show(db, "arxiv:2401.01234")  # version v2 dropped: every version is one record
    sync_cli(db, "arxiv", "--query", "all:stellar streams", "--since", "2024-01-01", "--endpoint",
             replay.url + "/api/query")
    assert replay.requests[-1][1]["search_query"] == (
        "(all:stellar streams) AND submittedDate:[202401010000 TO 999912312359]")
    assert view["sources"][0]["path"] == "https://arxiv.org/abs/2401.01234"


def test_empty_result_and_html_error_page(replay, db):
    replay.add("/works", answer(fixture("openalex_works_empty.json")))
    replay.add("/missing/works", answer(fixture("openalex_404.html"), 404, {"Content-Type": "text/html"}))
    out = sync_cli(db, "openalex", "--query", "nothing at all", "--endpoint", replay.url + "/works").output
    assert "0 new" in out and "up to date" in out
    err = sync_cli(db, "openalex", "--query", "x", "--endpoint", replay.url + "/missing/works", expect=2).output
    assert err.strip().splitlines()[-1].endswith("/missing/works?search=x&per-page=100&cursor=%2A: HTTP 404: 404 Not Found")


def test_openalex_asks_with_the_contact_from_the_config(replay, db, tmp_path):
    config = tmp_path / "landscape.toml"
    config.write_text(
        '[sync]\ncontact = "curator@example.org"\n[sync.endpoints]\n'
        f'openalex = "{replay.url}/works"\ninspire = "{replay.url}/api/literature"\n'
        '[[sources]]\nname = "openalex"\nquery = "supersymmetry"\n'
        '[[sources]]\nname = "inspire"\nquery = "t supersymmetry"\nsince = "2015-01-01"\n'
    )
    replay.add("/works", answer(fixture("openalex_works_empty.json")), match={"cursor": "IlsxMDAuMCwgMTAwMF0i"})
    replay.add("/works", answer(fixture("openalex_works_page1.json")))
    serve_inspire(replay)
    out = sync_cli(db, "--config", config).output
    assert "openalex:supersymmetry: 2 pages, 1 new" in out and "inspire:t supersymmetry: 1 pages, 0 new, 1 changed" in out
    openalex, inspire = replay.requests[0], replay.requests[-1]
    assert openalex[1]["mailto"] == "curator@example.org" and "curator@example.org" in openalex[2]["User-Agent"]
    assert inspire[1]["q"] == "(t supersymmetry) and du >= 2015-01-01"
    sync_cli(db, "--config", config)  # a refresh asks for what changed since the last run finished
    assert replay.requests[-1][1]["q"] == f"(t supersymmetry) and du >= {datetime.date.today().isoformat()}"
    config.write_text('[[sources]]\nname = "arxiv"\nqeury = "x"\n')
    bad = sync_cli(db, "--config", config, expect=2).output
    assert "[[sources]] entry 1: expected keys among name, query, since, endpoint, limit, found 'qeury'" in bad


def test_limit_stops_early_and_the_next_run_goes_on(replay, db):
    replay.add(S2_SEARCH, answer(fixture("s2_paper_search_next.json")), match={"offset": "100"})
    replay.add(S2_SEARCH, answer(fixture("s2_paper_search.json")))
    replay.add(S2_BATCH, s2_batch("s2_paper_batch_next.json"))
    url = replay.url + S2_SEARCH
    first = sync_cli(db, "s2", "--query", "turing", "--endpoint", url, "--limit", "3").output
    assert "3 new" in first and "stopped at --limit" in first
    second = sync_cli(db, "s2", "--query", "turing", "--endpoint", url).output
    assert "2 pages, 3 new, 0 changed, 3 unchanged" in second
    with open_store(db) as store:
        assert store.count_records() == 6


def test_small_pieces():
    assert abstract_text({"world": [1], "Hello": [0]}) == "Hello world"
    assert bibcode_arxiv("2012arXiv1204.4485R") == "1204.4485"
    assert bibcode_arxiv("2012A&A...542A..16R") is None
    rec = service_record("s2", "u", "T", [], "2015", "", {"arxiv": "arXiv:1506.03091v3", "doi": "https://doi.org/10.1234/AB"})
    assert rec.id == ARXIV_SUSY and rec.extra == {"arxiv": "1506.03091", "doi": "10.1234/ab"}
    # two configured arXiv sources in one run still keep to one request every three seconds
    assert Settings().http("arxiv", 1, 3.0).limiter is Settings(contact="x").http("arxiv", 1, 3.0).limiter


def test_bad_source_and_date_are_one_line(db):
    assert "expected a source among arxiv, inspire, ads, openalex, s2, found 'arxive'" in sync_cli(
        db, "arxive", expect=2).output
    assert "--since: expected a date YYYY-MM-DD, found '2024-13-01'" in sync_cli(
        db, "arxiv", "--since", "2024-13-01", expect=2).output
    assert "expected a SOURCE or [[sources]] entries" in sync_cli(db, expect=2).output


@pytest.mark.parametrize("name", ["inspire_literature.json", "openalex_works_page1.json", "s2_paper_search.json"])
def test_fixtures_are_json(name):
    json.loads(fixture(name).read_text())


def s2_numbered_page(params) -> bytes:
    """A relevance search page of `limit` papers from `offset`, total far above 1,000."""
    offset, limit = int(params["offset"]), int(params["limit"])
    papers = [{"paperId": f"{n:040x}", "title": f"Paper number {n}"} for n in range(offset, offset + limit)]
    return json.dumps({"total": 70498, "offset": offset, "next": offset + limit, "data": papers}).encode()


def test_s2_relevance_search_stops_at_its_1000_results_in_one_line(replay, db):
    replay.add(S2_SEARCH, answer(s2_numbered_page))
    replay.add(S2_BATCH, s2_batch())
    clock = FakeClock()
    client = make_client("s2", Settings(endpoint=replay.url + S2_SEARCH, clock=clock, sleep=clock.sleep))
    [page] = list(client.pages("turing", None, {"offset": 950}))
    assert s2_searches(replay)[0]["limit"] == "50"  # never past the 1,000th result
    assert len(page.items) == 50 and page.next is None
    assert page.note.startswith("Semantic Scholar's relevance search gives at most 1,000 results; stopped at 1,000")
    with open_store(db) as store:  # a run that stopped there earlier: the next one says so and ends well
        store.set_sync_state("s2:turing", {"query": "turing", "since": None, "next": {"offset": 1000}})
    out = sync_cli(db, "s2", "--query", "turing", "--endpoint", replay.url + S2_SEARCH).output
    assert len(s2_searches(replay)) == 1 and "up to date" in out
    assert [line for line in out.splitlines() if "at most 1,000" in line] == [
        "s2:turing: Semantic Scholar's relevance search gives at most 1,000 results; stopped at 1,000"
        " (narrow the query, or use --since, to reach the others)"]


def test_s2_page_past_the_end_is_the_end_and_a_batch_too_large_is_asked_in_halves(replay, db):
    replay.add(S2_SEARCH, answer(fixture("s2_error_400_offset.json"), 400), match={"offset": "100"})
    replay.add(S2_SEARCH, answer(s2_numbered_page))
    halves = []

    def batch(params):
        ids = params["_json"]["ids"]
        halves.append(len(ids))
        if len(ids) > 30:
            return 400, b'{"error": "Response would exceed maximum size. Please use a smaller limit."}'
        return json.dumps([{"paperId": i, "references": [{"paperId": None, "title": f"cited by {i}"}]}
                           for i in ids]).encode()

    replay.add(S2_BATCH, answer(batch))
    out = sync_cli(db, "s2", "--query", "turing", "--endpoint", replay.url + S2_SEARCH).output
    assert "2 pages, 100 new" in out and "100 citation links" in out and "up to date" in out
    assert "s2:turing: Semantic Scholar has no results past 100 for this query" in out
    assert halves == [100, 50, 25, 25, 50, 25, 25]
