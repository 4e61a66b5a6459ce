"""The one HTTP layer every service client shares: politeness and faults handled once.

Standard library only (urllib), so a base install syncs without another dependency. Each
service gets a rate limiter (a sliding window: at most N requests in any P seconds), a
descriptive User-Agent with the user's contact address, timeouts, and retries with backoff
on 429 and 5xx that honour Retry-After (a header, or arXiv's 503 page "Retry after N
seconds"). A 4xx is one line naming the service, the URL and the service's own message.
A body that is truncated, not UTF-8 or not the JSON/XML expected is a ParseError naming the
URL, like a malformed file. The clock and the sleep are injectable so tests never wait.
"""

from __future__ import annotations

import email.utils
import html
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..models import LandscapeError, ParseError

Clock = Callable[[], float]
Sleep = Callable[[float], None]

_ARXIV_RETRY = re.compile(rb"Retry after (\d+) seconds", re.IGNORECASE)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_ATOM_ERROR = re.compile(rb"/api/errors#.*?<summary[^>]*>(.*?)</summary>", re.DOTALL)


class SyncError(LandscapeError):
    """A service refused or could not answer: one line, exit status 2. `status` and `said`
    (the HTTP status and the service's own words) let a client recognise a refusal it can
    handle, such as a page past the end of a search."""

    def __init__(self, message: str, status: int | None = None, said: str = ""):
        super().__init__(message)
        self.status, self.said = status, said


class RateLimiter:
    """At most `requests` requests in any `per` seconds (a sliding window of start times)."""

    def __init__(self, requests: int, per: float, clock: Clock = time.monotonic, sleep: Sleep = time.sleep):
        self.requests, self.per = requests, per
        self.clock, self.sleep = clock, sleep
        self.starts: deque[float] = deque(maxlen=requests)

    def wait(self) -> float:
        """Sleep until one more request is allowed; returns the seconds slept."""
        slept = 0.0
        if len(self.starts) == self.requests:
            gap = self.per - (self.clock() - self.starts[0])
            if gap > 0:
                self.sleep(gap)
                slept = gap
        self.starts.append(self.clock())
        return slept


@dataclass
class Response:
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        """The body as UTF-8; invalid bytes are a ParseError at their line."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = self.body.count(b"\n", 0, exc.start) + 1
            raise ParseError(self.url, line, "UTF-8 text", f"byte 0x{self.body[exc.start]:02x}") from None

    def json(self) -> Any:
        text = self.text()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            found = "an empty body" if not text.strip() else exc.msg
            raise ParseError(self.url, exc.lineno, "a JSON answer", found) from None


@dataclass
class HttpClient:
    """GET with the service's limits; `service` names it in every error."""

    service: str
    limiter: RateLimiter
    contact: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    retries: int = 5
    backoff: float = 2.0
    max_wait: float = 600.0
    sleep: Sleep = time.sleep
    opener: Callable[..., Any] = urllib.request.urlopen
    on_response: Callable[[Response], None] | None = None

    @property
    def user_agent(self) -> str:
        contact = f"; mailto:{self.contact}" if self.contact else ""
        return f"Landscape/{__version__} (research-landscape sync{contact})"

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> Response:
        """The answer to GET url?params, after retries; raises SyncError or ParseError."""
        return self._request(url, params, None)

    def post_json(self, url: str, params: Mapping[str, Any] | None, payload: Any) -> Response:
        """The answer to POST url?params with a JSON body (S2's batch lookup), under the same
        limits, retries and errors as a GET."""
        return self._request(url, params, json.dumps(payload).encode())

    def _request(self, url: str, params: Mapping[str, Any] | None, data: bytes | None) -> Response:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise SyncError(f"{self.service}: expected an http(s) endpoint, found {url[:80]!r}")
        if params:
            query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        attempt = 0
        while True:
            self.limiter.wait()
            try:
                response = self._fetch(url, data)
            except _Transient as exc:
                attempt += 1
                if attempt > self.retries:
                    raise SyncError(f"{self.service}: {url}: no answer after {attempt} tries ({exc})") from None
                self.sleep(min(self.max_wait, exc.wait if exc.wait is not None else self.backoff * 2 ** (attempt - 1)))
                continue
            if self.on_response:
                self.on_response(response)
            return response

    def _fetch(self, url: str, data: bytes | None = None) -> Response:
        headers = {"User-Agent": self.user_agent, **self.headers}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            with self.opener(request, timeout=self.timeout) as raw:
                return Response(url, raw.status, dict(raw.headers.items()), _read_all(url, raw))
        except urllib.error.HTTPError as exc:
            body = _read_error_body(exc)
            if exc.code == 429 or exc.code >= 500:
                said = error_message(body, None) if body.strip() else ""
                raise _Transient(f"HTTP {exc.code}: {said}" if said else f"HTTP {exc.code}",
                                 retry_after(exc.headers, body)) from None
            said = error_message(body, exc.reason)
            raise SyncError(f"{self.service}: {url}: HTTP {exc.code}: {said}", exc.code, said) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.RemoteDisconnected) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise _Transient(str(reason) or type(exc).__name__, None) from None


class _Transient(Exception):
    def __init__(self, message: str, wait: float | None):
        super().__init__(message)
        self.wait = wait


MAX_BODY = 128 << 20


def _read_all(url: str, raw: Any) -> bytes:
    """The whole body; one shorter than its Content-Length is a truncated answer, one over
    MAX_BODY is refused (a page of records is never that large)."""
    expected = raw.headers.get("Content-Length")
    try:
        body = raw.read(MAX_BODY + 1)
    except http.client.IncompleteRead as exc:
        body = exc.partial
    if len(body) > MAX_BODY:
        raise ParseError(url, 1, f"an answer under {MAX_BODY >> 20} MB", "more")
    if expected and expected.isdigit() and len(body) < int(expected):
        raise ParseError(url, body.count(b"\n") + 1, f"a complete answer ({expected} bytes)",
                         f"{len(body)} bytes (truncated)")
    return body


def _read_error_body(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read(64 * 1024)
    except (OSError, http.client.HTTPException):
        return b""


def retry_after(headers: Mapping[str, str] | None, body: bytes = b"") -> float | None:
    """Seconds to wait: a Retry-After header (seconds or an HTTP date), else arXiv's
    "Retry after N seconds" page; None when the service did not say."""
    value = (headers or {}).get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        when = email.utils.parsedate_to_datetime(value) if value else None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    match = _ARXIV_RETRY.search(body or b"")
    return float(match.group(1)) if match else None


def error_message(body: bytes, reason: str | None = None) -> str:
    """The service's own words for a refusal: S2's {"error"} or {"message"}, the summary of
    arXiv's Atom error entry, an HTML page's title, else the first line of the body, else the
    HTTP reason."""
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            for key in ("error", "message", "detail", "msg"):
                value = data.get(key)
                if isinstance(value, dict):
                    value = value.get("message") or value.get("msg") or json.dumps(value)
                if value:
                    return " ".join(str(value).split())[:200]
    found = _ATOM_ERROR.search(body or b"") or _HTML_TITLE.search(body or b"")
    if found:
        words = " ".join(html.unescape(_TAGS.sub(" ", found.group(1).decode("utf-8", "replace"))).split())
        if words:
            return words[:200]
    first = next((line.strip() for line in _TAGS.sub(" ", text).splitlines() if line.strip()), "")
    return (first or reason or "no message")[:200]
