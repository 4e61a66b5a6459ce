"""The server is read-only, sends its security headers on every answer, and meets any query
string (huge, malformed, FTS syntax, NUL, bad UTF-8, repeated) with a result or a 4xx, never a 500.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from landscape.web.app import create_app
from landscape.web.params import MAX_PAGE_SIZE

from .conftest import FIXTURES, run_cli
from .test_hostile import listing_head

PARAMS = ["q", "page", "limit", "sort", "area", "concept", "kind", "author", "year", "topic", "since", "until",
          "id", "text", "prefix", "focus"]
HOSTILE_VALUES = [
    "", " ", "0", "-1", "-99999999999999999999", "1e9", "99999999999", "NaN", "abc", "1.5", "%00", "%ff%fe%fd",
    "%ED%A0%80", "a%00b", quote('"unbalanced'), quote("NEAR(a b, 3)"), quote("title:x OR y*"), quote("^a AND NOT"),
    quote("'; DROP TABLE records; --"), quote("<script>alert(1)</script>"), quote("$\\href{javascript:1}{x}$"),
    quote("../../etc/passwd"), quote("\u202e\ufeff\u200b"), "x" * 20_000, quote("é" * 5_000), "%" * 300,
    quote("(" * 2_000 + "a" + ")" * 2_000), quote("* " * 3_000), quote("- + ~ | & ! : ; \\ /"),
]
PATH_VALUES = ["hostile-00", "nope", quote("<script>alert(1)</script>", safe=""), "..%2F..%2Fetc%2Fpasswd",
               "x" * 5_000, "%00", "%ff", "-1", "99999999999999999999"]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security")
    db = tmp / "landscape.db"
    run_cli("ingest", listing_head(tmp / "listing.txt", 30), FIXTURES / "hostile.jsonl", db=db)
    run_cli("build", "--embedder", "tfidf", db=db)
    with TestClient(create_app(db), raise_server_exceptions=False) as c:
        yield c


READS = {  # the parameters each route reads; every other route is tried with page and limit
    "/search": ["q", "page", "limit", "area", "kind", "author", "year", "since", "until"],
    "/posts": ["sort", "area", "concept", "kind", "author", "year", "topic", "page", "limit"],
    "/related": ["id", "text", "limit"],
    "/concepts": ["prefix", "page", "limit"],
    "/authors": ["prefix", "page", "limit"],
    "/map": ["focus"],
}
GOOD_PATH = {"record_id": "hostile-00", "topic_id": "0", "name": "Astrophysics", "key": "ada-lovelace"}


def routes(client: TestClient) -> list[str]:
    return [r.path for r in client.app.routes if getattr(r, "path", "/static") != "/static"]


def good_url(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: GOOD_PATH[m.group(1)], path)


def hostile_path_urls(client: TestClient) -> list[str]:
    """Every route with a path parameter, filled with each hostile path value."""
    urls = []
    for path in routes(client):
        for value in PATH_VALUES if "{" in path else []:
            if ":int}" not in path or value.lstrip("-").isdigit():
                urls.append(re.sub(r"\{[^}]+\}", value, path))
    return urls


def test_security_headers_on_pages_api_assets_and_errors(client):
    for url in ("/", "/posts", "/api/v1/posts", "/static/app.js", "/nothing-here", "/api/v1/nothing",
                "/api/v1/search?limit=0", "/records/nope"):
        r = client.get(url)
        h = r.headers
        csp = h["content-security-policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, url
        assert "default-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer"


def test_the_server_is_read_only_every_write_method_is_refused(client):
    for url in [good_url(p) for p in routes(client)] + ["/static/app.js"]:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = client.request(method, url, content=b"x" * 1000)
            assert r.status_code == 405, (method, url, r.status_code)
    r = client.post("/api/v1/search?q=x")
    assert r.json()["error"]["status"] == 405


def test_hostile_path_values_never_give_a_500(client):
    failures = [(url[:60], r.status_code) for url in hostile_path_urls(client) if (r := client.get(url)).status_code >= 500]
    assert not failures
    assert client.get("/topics/99999999999999999999").status_code == 404  # was a 500 (OverflowError)


def test_hostile_and_huge_query_strings_never_give_a_500_on_any_endpoint(client):
    failures = []
    for path in routes(client):
        url = good_url(path)
        names = READS.get(path.removeprefix("/api/v1"), ["page", "limit"])
        for value in HOSTILE_VALUES:
            tries = [f"{url}?{name}={value}" for name in names]
            tries += [f"{url}?" + "&".join(f"{n}={value}" for n in PARAMS)] if len(value) < 2_000 else []
            failures += [(t[:80], r.status_code) for t in tries if (r := client.get(t)).status_code >= 500]
    assert not failures


def test_many_repeated_and_combined_parameters(client):
    every = "&".join(f"{p}={v}" for p in PARAMS for v in ("1", "x", "%00"))
    for url in ("/search", "/api/v1/search", "/posts", "/api/v1/posts", "/api/v1/related", "/concepts"):
        assert client.get(f"{url}?{every}").status_code < 500
        assert client.get(f"{url}?" + "&".join(["q=a"] * 5_000)).status_code < 500
        assert client.get(f"{url}?" + "q=" + "a%20" * 15_000).status_code < 500


def test_page_sizes_are_bounded(client):
    for url in ("/api/v1/posts", "/api/v1/search?q=lattice", "/api/v1/concepts", "/api/v1/authors"):
        sep = "&" if "?" in url else "?"
        r = client.get(f"{url}{sep}limit={MAX_PAGE_SIZE + 1}")
        assert r.status_code == 400 and "limit" in r.json()["error"]["message"]
        r = client.get(f"{url}{sep}limit={MAX_PAGE_SIZE}")
        assert r.status_code == 200
    r = client.get(f"/api/v1/posts?limit={MAX_PAGE_SIZE}")
    assert len(r.json()["records"]) <= MAX_PAGE_SIZE
    assert client.get(f"/api/v1/related?id=hostile-00&limit={MAX_PAGE_SIZE + 1}").status_code == 400
