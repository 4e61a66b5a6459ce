"""A local HTTP server that replays recorded answers (no test touches the network), and the
shared HTTP layer's politeness and faults tested against it."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from landscape.models import ParseError
from landscape.sync.http import HttpClient, RateLimiter, SyncError, error_message, retry_after

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sync"


class FakeClock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


class Replay:
    """Routes: a path, query parameters that must match, and answers given in order (the last
    one repeats). A gate holds an answer until the test releases it. A POST's JSON body is kept
    in `posted` and handed to an answer that is a function as the parameter "_json"."""

    def __init__(self):
        self.routes: list[dict] = []
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.posted: list[tuple[str, dict[str, str], object]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.do_GET(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null"))

            def do_GET(self, posted=None):
                parsed = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(parsed.query))
                replay.requests.append((parsed.path, params, dict(self.headers.items())))
                if self.command == "POST":
                    replay.posted.append((parsed.path, params, posted))
                    params = {**params, "_json": posted}
                route = replay.match(parsed.path, params)
                if route is None:
                    self.send_response(599)
                    self.end_headers()
                    return
                answer = route["answers"][0] if len(route["answers"]) == 1 else route["answers"].popleft()
                if answer.get("gate") is not None:
                    answer["gate"].wait(30)
                body = answer["body"](params) if callable(answer["body"]) else answer["body"]
                status, body = body if isinstance(body, tuple) else (answer["status"], body)
                try:
                    self.send_response(status)
                    for name, value in answer["headers"].items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(answer.get("content_length") or len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, path: str, *answers: dict, match: dict[str, str] | None = None) -> None:
        self.routes.append({"path": path, "match": match or {}, "answers": deque(answers)})

    def match(self, path: str, params: dict[str, str]) -> dict | None:
        for route in self.routes:
            if route["path"] == path and all(params.get(k) == v for k, v in route["match"].items()):
                return route
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(body, status: int = 200, headers: dict | None = None, **extra) -> dict:
    """One recorded answer: bytes, text, a fixture path, or a function of the query parameters
    (which may give a (status, bytes) pair)."""
    if callable(body):
        return {"body": body, "status": status, "headers": {"Content-Type": "application/json", **(headers or {})}, **extra}
    if isinstance(body, Path):
        body = body.read_bytes()
    if isinstance(body, str):
        body = body.encode()
    content_type = "application/json" if body[:1] in (b"{", b"[") else "text/xml"
    return {"body": body, "status": status, "headers": {"Content-Type": content_type, **(headers or {})}, **extra}


def fixture(name: str) -> Path:
    return FIXTURES / name


@pytest.fixture
def replay():
    server = Replay()
    yield server
    server.close()


def client(clock: FakeClock, requests: int = 1, per: float = 3.0, **kwargs) -> HttpClient:
    return HttpClient("arxiv", RateLimiter(requests, per, clock=clock, sleep=clock.sleep),
                      contact="curator@example.org", sleep=clock.sleep, **kwargs)


def test_rate_limit_keeps_arxivs_three_seconds_without_sleeping_for_real():
    clock = FakeClock()
    limiter = RateLimiter(1, 3.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.wait()
    assert clock.slept == [3.0, 3.0]


def test_rate_limit_window_allows_inspires_fifteen_in_five_seconds():
    clock = FakeClock()
    limiter = RateLimiter(15, 5.0, clock=clock, sleep=clock.sleep)
    for _ in range(15):
        limiter.wait()
    assert clock.slept == []
    limiter.wait()
    assert clock.slept == [5.0]


def test_user_agent_names_landscape_and_the_contact(replay):
    replay.add("/oai2", answer(fixture("arxiv_oai_listrecords.xml")))
    client(FakeClock()).get(replay.url + "/oai2", {"verb": "ListRecords"})
    agent = replay.requests[0][2]["User-Agent"]
    assert agent.startswith("Landscape/") and "mailto:curator@example.org" in agent


def test_503_with_retry_after_is_retried_after_the_seconds_asked(replay):
    clock = FakeClock()
    replay.add("/oai2",
               answer(fixture("arxiv_503.html"), 503, {"Retry-After": "7"}),
               answer(fixture("arxiv_503.html"), 503),
               answer(fixture("arxiv_oai_listrecords.xml")))
    response = client(clock).get(replay.url + "/oai2")
    assert response.status == 200 and b"0801.3931" in response.body
    assert 7.0 in clock.slept  # the header
    assert 5.0 in clock.slept  # arXiv's page: "Retry after 5 seconds"
    assert len(replay.requests) == 3


def test_429_without_a_hint_backs_off_exponentially_then_gives_up_in_one_line(replay):
    clock = FakeClock()
    replay.add("/works", answer(fixture("s2_error_429.json"), 429))
    with pytest.raises(SyncError, match=r"openalex: .*/works: no answer after 3 tries \(HTTP 429: Too Many Requests\. "):
        HttpClient("openalex", RateLimiter(10, 1.0, clock=clock, sleep=clock.sleep), retries=2,
                   sleep=clock.sleep).get(replay.url + "/works")
    assert [s for s in clock.slept if s >= 1] == [2.0, 4.0]


def test_4xx_is_one_line_with_the_services_own_message(replay):
    replay.add("/graph/v1/paper/search", answer(fixture("s2_error_400.json"), 400))
    replay.add("/works/W0", answer(fixture("openalex_404.html"), 404, {"Content-Type": "text/html"}))
    clock = FakeClock()
    with pytest.raises(SyncError) as s2:
        client(clock).get(replay.url + "/graph/v1/paper/search", {"query": "x", "fields": "unknown"})
    assert "HTTP 400: Unrecognized or unsupported fields: [unknown]" in str(s2.value)
    with pytest.raises(SyncError) as openalex:
        client(clock).get(replay.url + "/works/W0")
    assert str(openalex.value).endswith("HTTP 404: 404 Not Found")
    assert "\n" not in str(openalex.value)


def test_truncated_body_is_reported_like_a_malformed_file(replay):
    body = fixture("inspire_literature.json").read_bytes()
    replay.add("/api/literature", answer(body[:300], content_length=len(body)))
    with pytest.raises(ParseError) as exc:
        client(FakeClock(), retries=0).get(replay.url + "/api/literature")
    assert "/api/literature" in str(exc.value) and "truncated" in str(exc.value)


def test_invalid_utf8_and_malformed_json_name_the_url_and_line(replay):
    replay.add("/bad-utf8", answer(b'{"results": [\n{"title": "caf\xe9"}]}'))
    replay.add("/bad-json", answer(b'{"results": [\n{"title": }]}'))
    http = client(FakeClock())
    with pytest.raises(ParseError, match=r"/bad-utf8:2: expected UTF-8 text, found byte 0xe9"):
        http.get(replay.url + "/bad-utf8").json()
    with pytest.raises(ParseError, match=r"/bad-json:2: expected a JSON answer"):
        http.get(replay.url + "/bad-json").json()


def test_retry_after_reads_headers_and_arxivs_page():
    assert retry_after({"Retry-After": "120"}) == 120.0
    assert retry_after({}, fixture("arxiv_503.html").read_bytes()) == 5.0
    assert retry_after({}, b"busy") is None
    assert error_message(json.dumps({"message": "Forbidden"}).encode()) == "Forbidden"
    assert error_message(fixture("arxiv_atom_error.xml").read_bytes()) == "incorrect id format for 1234.12345"
    assert error_message(b"<html><title>Tom &amp; Jerry</title></html>") == "Tom & Jerry"


def test_only_http_endpoints_are_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for a sync")
    with pytest.raises(SyncError, match="expected an http\\(s\\) endpoint, found 'file://"):
        client(FakeClock()).get(secret.as_uri())
