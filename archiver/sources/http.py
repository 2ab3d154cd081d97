"""A polite HTTP client: User-Agent, delay, retries with backoff and Retry-After, conditional GETs, bounds."""

from __future__ import annotations

import email.utils
import http.client
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.cookiejar import CookieJar
from typing import Callable
from urllib.parse import urlsplit

from ..errors import SourceError
from . import login
from .gzipped import CorruptGzip, TooLarge, gunzip

log = logging.getLogger("archiver.fetch")
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_CHUNK = 1 << 16


class FetchError(SourceError):
    """A download that failed for good: after its retries, or for a reason retrying cannot mend."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class AuthError(FetchError):
    """A private archive that needs credentials, or refused the ones given."""


class _Again(Exception):
    """A failure worth another try; wait is the server's Retry-After in seconds, if it sent one."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


@dataclass(frozen=True)
class Politeness:
    """How the client treats a server (the fetcher fills it from the settings table)."""

    user_agent: str
    delay: float = 1.0               # seconds from the start of one request to the next
    timeout: float = 30.0            # seconds to connect, and to wait for each block of the answer
    retries: int = 4                 # further tries after a timeout, a 5xx, a 429 or a broken download
    backoff: float = 2.0             # the first wait before a retry, doubled each time
    max_retry_after: float = 600.0   # a longer Retry-After fails the download instead of waiting
    max_redirects: int = 5
    max_bytes: int = 200_000_000     # a month's text, decompressed
    max_page_bytes: int = 5_000_000  # an HTML page or a scrubbed attachment


@dataclass(frozen=True)
class Credentials:
    """A private archive's user and password; the password is left out of repr and messages."""

    username: str
    password: str = field(repr=False)
    origin: str = "the environment"  # where they came from, for messages


@dataclass(frozen=True)
class Validators:
    """What HTTP lets a client send to be told "304 Not Modified" (RFC 9110, section 13)."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        found = {}
        if self.etag:
            found["If-None-Match"] = self.etag
        if self.last_modified:
            found["If-Modified-Since"] = self.last_modified
        return found


@dataclass
class Response:
    url: str                   # after redirects
    status: int
    headers: dict[str, str]    # lower-case names
    body: bytes = b""
    payload: object = None     # what a check made of the body (an un-gzipped month, say)

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("etag"), self.headers.get("last-modified"))


@dataclass
class Stats:
    """What a client did: requests (answered 304 or not), retries, bytes received, seconds waited."""

    requests: int = 0
    not_modified: int = 0
    retries: int = 0
    bytes: int = 0
    waited: float = 0.0

    def as_dict(self) -> dict:
        return {"requests": self.requests, "not_modified": self.not_modified,
                "retries": self.retries, "bytes": self.bytes, "waited": round(self.waited, 3)}


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follow at most a given number of redirects, and only to http(s) URLs."""

    def __init__(self, limit: int):
        super().__init__()
        self.max_redirections = limit

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            return None   # urllib then reports the redirect as an error
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Client:
    """One polite session: cookies, a delay between requests, retries, counted requests."""

    def __init__(self, policy: Politeness, credentials: Credentials | None = None):
        self.policy = policy
        self.credentials = credentials
        self.stats = Stats()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), _Redirects(policy.max_redirects))
        self._next = 0.0   # monotonic time before which no request starts
        self._logged_in: set[str] = set()

    def get(self, url: str, validators: Validators | None = None, limit: int | None = None,
            check: Callable[[bytes], object] | None = None, allow_login: bool = True) -> Response:
        """GET a URL: return the response (a 304 included) or raise FetchError. check(body) turns
        a 200's body into its payload; a ValueError from it means a broken download, tried again."""
        limit = limit or self.policy.max_page_bytes
        headers = validators.headers() if validators else {}
        response = self._retrying("GET", url, None, headers, limit, check)
        if allow_login and self._is_login(response):
            self._login(response, url, limit)
            response = self._retrying("GET", url, None, headers, limit, check)
            if self._is_login(response):
                raise AuthError(f"{url}: still asked to log in after logging in", response.status)
        if response.status >= 400:
            raise FetchError(f"{url}: HTTP {response.status}", response.status)
        return response

    def _is_login(self, response: Response) -> bool:
        kind = response.headers.get("content-type", "")
        if "html" not in kind.lower():
            return False
        if response.status in (401, 403):
            return True   # a private list's page (HyperKitty answers 403 with a login link)
        return (response.status == 200 and login.looks_like_login(response.body, kind)
                and login.find_form(response.body, response.url) is not None)

    def _login(self, page: Response, wanted: str, limit: int) -> None:
        """Log in through the page's form (or the form its login link leads to), once per host."""
        host = urlsplit(wanted).hostname
        if self.credentials is None:
            raise AuthError(f"{wanted} is a private archive (HTTP {page.status}): give credentials "
                            "through environment variables (README: Fetching live archives)", page.status)
        if host in self._logged_in:
            raise AuthError(f"{wanted}: asked to log in again after logging in", page.status)
        form = login.find_form(page.body, page.url)
        if form is None:
            link = login.find_login_link(page.body, page.url)
            if link is None:
                raise AuthError(f"{wanted}: private (HTTP {page.status}) and no login form found",
                                page.status)
            page = self._retrying("GET", link, None, {}, self.policy.max_page_bytes, None)
            form = login.find_form(page.body, page.url)
            if form is None:
                raise AuthError(f"{wanted}: no login form at {link}")
        target = urlsplit(form.action).hostname
        if target != host:
            # A password goes only to the host the operator named, never where a page points.
            raise AuthError(f"{wanted}: the login form posts to another host ({target}); "
                            "credentials not sent")
        log.info("logging in at %s with the credentials from %s", form.action, self.credentials.origin)
        if urlsplit(form.action).scheme != "https":
            log.warning("the login form at %s is not on https: the password crosses the network "
                        "readable by anyone on the way", form.action)
        data = login.form_data(form, self.credentials.username, self.credentials.password)
        # Django checks the Referer of a form posted over HTTPS (CSRF protection).
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": page.url}
        result = self._retrying("POST", form.action, data, headers, limit, None)
        if result.status >= 400 or self._is_login(result):
            raise AuthError(f"{wanted}: the login at {form.action} was refused "
                            f"(check the credentials from {self.credentials.origin})", result.status)
        self._logged_in.add(host)

    def _retrying(self, method: str, url: str, data: bytes | None, headers: dict[str, str],
                  limit: int, check: Callable[[bytes], object] | None) -> Response:
        attempts = self.policy.retries + 1
        for attempt in range(attempts):
            try:
                response = self._once(method, url, data, headers, limit)
                if response.status in _RETRY_STATUS:
                    raise _Again(f"HTTP {response.status}",
                                 retry_after(response.headers.get("retry-after")))
                if check is not None and response.status == 200:
                    response.payload = _checked(check, response.body, url)
                return response
            except _Again as again:
                if attempt + 1 == attempts:
                    raise FetchError(f"{url}: {again.reason} ({attempts} attempts)") from None
                wait = self.policy.backoff * 2 ** attempt
                if again.wait is not None:
                    if again.wait > self.policy.max_retry_after:
                        raise FetchError(f"{url}: {again.reason}, and the server asks to wait "
                                         f"{again.wait:.0f} s (more than fetch_max_retry_after)") from None
                    wait = max(wait, again.wait)
                self.stats.retries += 1
                log.warning("%s %s: %s; trying again in %.2f s", method, url, again.reason, wait)
                self._next = max(self._next, time.monotonic() + wait)
        raise AssertionError("unreachable")

    def _once(self, method: str, url: str, data: bytes | None, headers: dict[str, str],
              limit: int) -> Response:
        self._pace()
        request = urllib.request.Request(url, data=data, method=method, headers={
            "User-Agent": self.policy.user_agent, "Accept-Encoding": "gzip", **headers})
        self.stats.requests += 1
        try:
            handle = self._opener.open(request, timeout=self.policy.timeout)
        except urllib.error.HTTPError as err:
            handle = err
            if 300 <= err.code < 400 and err.code != 304:
                err.close()
                raise FetchError(f"{url}: redirect not followed (more than "
                                 f"{self.policy.max_redirects}, a loop, or not to http(s))", err.code) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, str):   # "unknown url type" and the like: trying again won't help
                raise FetchError(f"{url}: {reason}") from None
            raise _Again(f"{type(reason).__name__}: {reason}") from None
        with handle:
            status = handle.code
            found = {k.lower(): v for k, v in handle.headers.items()}
            final = handle.geturl() or url
            try:
                body = b"" if status == 304 else self._read(handle, found, limit, url)
            except (OSError, http.client.HTTPException) as exc:
                raise _Again(f"download broken off ({type(exc).__name__}: {exc})") from None
        if status == 304:
            self.stats.not_modified += 1
        log.debug("%s %s -> %s (%d bytes)", method, url, status, len(body))
        return Response(final, status, found, body)

    def _read(self, handle, headers: dict[str, str], limit: int, url: str) -> bytes:
        """Read a body of at most limit bytes; a short one (against Content-Length) is broken."""
        length = headers.get("content-length", "")
        expected = int(length) if length.strip().isdigit() else None
        if expected is not None and expected > limit:
            raise FetchError(f"{url}: {expected} bytes, more than the limit of {limit}")
        chunks, total = [], 0
        while chunk := handle.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise FetchError(f"{url}: more than the limit of {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        self.stats.bytes += len(body)
        if expected is not None and len(body) != expected:
            raise _Again(f"short download ({len(body)} of {expected} bytes)")
        if headers.get("content-encoding", "").lower() in ("gzip", "x-gzip"):
            return _checked(lambda b: gunzip(b, limit), body, url)
        return body

    def _pace(self) -> None:
        wait = self._next - time.monotonic()
        if wait > 0:
            self.stats.waited += wait
            time.sleep(wait)
        self._next = time.monotonic() + self.policy.delay


def _checked(check: Callable[[bytes], object], body: bytes, url: str):
    try:
        return check(body)
    except TooLarge as exc:
        raise FetchError(f"{url}: {exc}") from None
    except (CorruptGzip, ValueError, EOFError) as exc:
        raise _Again(str(exc)) from None


def retry_after(value: str | None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
