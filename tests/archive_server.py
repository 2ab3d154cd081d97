"""A real HTTP server on 127.0.0.1 for the fetch tests: the sample archive as a pipermail site and
as a HyperKitty-like export, private archives behind login forms, and faults on request."""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

MONTHS = ("January February March April May June July August September October "
          "November December").split()
HOST = "lists.example"
USER, PASSWORD = "anne@civil.example", "correct horse battery staple"
# Lists served as pipermail and HyperKitty: a public name maps to its sample folder; "secret"
# is the bestbits archive again, private.
FOLDERS = {"bestbits": "bestbits", "governance": "governance", "secret": "bestbits"}

MAILMAN_LOGIN = """<html><head><title>bestbits Private Archives Authentication</title></head>
<body><FORM METHOD=POST ACTION="{action}">{message}
<TABLE><tr><td>Email address:</td><td><INPUT TYPE="TEXT" NAME="username" SIZE="30"></td></tr>
<tr><td>Password:</td><td><INPUT TYPE="password" NAME="password" SIZE="30"></td></tr>
<tr><td><INPUT TYPE="SUBMIT" NAME="submit" VALUE="Let me in..."></td></tr></TABLE></FORM></body></html>"""

DJANGO_LOGIN = """<!DOCTYPE html><html><head><title>Sign In</title></head><body>{message}
<form class="login" method="POST" action="/accounts/login/">
<input type="hidden" name="csrfmiddlewaretoken" value="{token}">
<input type="email" name="login" placeholder="E-mail address">
<input type="password" name="password" placeholder="Password">
<input type="hidden" name="next" value="{next}">
<button class="primaryAction" type="submit">Sign In</button></form></body></html>"""


class ArchiveServer:
    """Serve fixtures/sample (read in place; `files` overrides or adds paths) until closed."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, bytes] = {}          # URL path -> body, instead of the sample's file
        self.faults: dict[str, list[str]] = {}     # URL path -> faults, one used per request
        self.requests: list[tuple[float, str, str, int]] = []   # (time, method, path, status)
        self.validators = True                     # ETag and Last-Modified on files
        self.stall = 1.0                           # seconds a "timeout" fault waits
        self.sessions: set[str] = set()
        self.user_agents: set[str] = set()
        self.bodies: list[bytes] = []              # request bodies received (login forms)
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = False          # server_close() waits for every handler
        self.httpd.block_on_close = True
        self.httpd.app = self
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def fault(self, path: str, *kinds: str) -> None:
        """Misbehave on the next requests of a path: 500, 503:SECONDS (Retry-After), timeout,
        truncate (gzip cut short, honest length), short (fewer bytes than Content-Length),
        crc (a damaged gzip trailer), plain (the text un-gzipped under its .gz name), encoded
        (the .gz sent with Content-Encoding: x-gzip), 404."""
        self.faults.setdefault(path, []).extend(kinds)

    def take_fault(self, path: str) -> str | None:
        with self._lock:
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((time.monotonic(), method, path, status))

    def fetched(self, status: int = 200) -> list[str]:
        """Return the paths answered with a status, in order."""
        return [path for _, _, path, code in self.requests if code == status]

    def month_text(self, folder: str, year: int, month: int) -> bytes | None:
        """Return a sample month's mbox text (its .txt, else its .txt.gz un-gzipped)."""
        name = f"{year}-{MONTHS[month - 1]}"
        for suffix in (".txt", ".txt.gz"):
            path = f"/pipermail/{folder}/{name}{suffix}"
            data = self.files.get(path)
            if data is None and (self.root / folder / f"{name}{suffix}").is_file():
                data = (self.root / folder / f"{name}{suffix}").read_bytes()
            if data is not None:
                return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        return None

    def sample_months(self, folder: str) -> list[tuple[int, int]]:
        found = set()
        for item in (self.root / folder).iterdir():
            match = re.match(r"^(\d{4})-(\w+)\.txt(\.gz)?$", item.name)
            if match:
                found.add((int(match.group(1)), MONTHS.index(match.group(2)) + 1))
        return sorted(found)


class _Handler(BaseHTTPRequestHandler):
    server_version = "TestArchive/1.0"

    def log_message(self, *args) -> None:   # keep the test output quiet
        pass

    @property
    def app(self) -> ArchiveServer:
        return self.server.app

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        self.app.user_agents.add(self.headers.get("User-Agent", ""))
        body = b""
        if method == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.app.bodies.append(body)
        fault = self.app.take_fault(path)
        self._request = (method, path)
        try:
            self._route(method, path, parse_qs(parts.query), parse_qs(body.decode()), fault)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client gave up (a timeout fault); the request was recorded

    # --- routing --------------------------------------------------------------------------------
    def _route(self, method, path, query, form, fault) -> int:
        if fault == "timeout":
            time.sleep(self.app.stall)
        elif fault in ("500", "404"):
            return self._send(int(fault), b"<html>trouble</html>", "text/html")
        elif fault and fault.startswith(("503:", "429:")):
            code, wait = fault.split(":")
            return self._send(int(code), b"busy", "text/plain", {"Retry-After": wait})
        if path.startswith("/old/"):
            return self._redirect("/pipermail/" + path[len("/old/"):])
        if path.startswith("/loop/"):
            return self._redirect(path)
        match = re.match(r"^/hop/(\d+)/(.*)$", path)   # /hop/N/...: N redirects to /pipermail/...
        if match:
            hops = int(match.group(1))
            return self._redirect(f"/hop/{hops - 1}/{match.group(2)}" if hops > 1
                                  else f"/pipermail/{match.group(2)}")
        match = re.match(r"^/pipermail/(\w+)/(.*)$", path)
        if match and match.group(1) in ("bestbits", "governance"):
            return self._file(path, FOLDERS[match.group(1)], match.group(2), fault)
        match = re.match(r"^/mailman/private/(\w+)/(.*)$", path)
        if match and match.group(1) == "secret":
            return self._mailman_private(method, path, match.group(2), form, fault)
        if path == "/accounts/login/":
            return self._django_login(method, query, form)
        match = re.match(r"^/archives/list/(\w+)@" + re.escape(HOST) + r"/(.*)$", path)
        if match and match.group(1) in FOLDERS:
            return self._hyperkitty(match.group(1), match.group(2), query, fault)
        return self._send(404, b"<html>not found</html>", "text/html")

    def _redirect(self, target: str) -> int:
        return self._send(301, b"moved", "text/plain", {"Location": target})

    def _file(self, path: str, folder: str, rest: str, fault) -> int:
        data = self.app.files.get(path)
        local = self.app.root / folder / (rest or "index.html")
        if data is None:
            if not local.is_file():
                return self._send(404, b"<html>not found</html>", "text/html")
            data = local.read_bytes()
        kind = ("text/html" if local.suffix in (".html", ".htm") else
                "application/x-gzip" if local.suffix == ".gz" else "text/plain")
        if fault == "plain" and data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        headers = {}
        if self.app.validators:
            etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
            headers = {"ETag": etag, "Last-Modified": formatdate(local.stat().st_mtime if local.is_file()
                                                                 else 1356998400, usegmt=True)}
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, b"", None, headers)
        if fault == "truncate":
            data = data[: len(data) // 2]
        elif fault == "crc":
            data = data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:]
        elif fault == "short":
            return self._send(200, data[: len(data) // 2], kind, headers, length=len(data))
        elif fault == "encoded":
            # Apache's "AddEncoding x-gzip .gz": the .gz file served as gzip-encoded text.
            headers = {**headers, "Content-Encoding": "x-gzip"}
        return self._send(200, data, kind, headers)

    def _mailman_private(self, method, path, rest, form, fault) -> int:
        """Mailman 2's private archive: a login form until the right password is posted."""
        cookie = self.headers.get("Cookie", "")
        if not any(f"secret+user={token}" in cookie for token in self.app.sessions):
            if method != "POST":
                return self._login_page(path, "")
            if form.get("username") != [USER] or form.get("password") != [PASSWORD]:
                return self._login_page(path, "<p>Authorization failed.</p>")
            token = secrets.token_hex(8)
            self.app.sessions.add(token)
            self._extra = {"Set-Cookie": f"secret+user={token}; Path=/mailman/private/secret/"}
        return self._file(path, "bestbits", rest, fault)

    def _login_page(self, path: str, message: str) -> int:
        page = MAILMAN_LOGIN.format(action=quote(path), message=message).encode()
        return self._send(200, page, "text/html")

    def _django_login(self, method, query, form) -> int:
        cookie = self.headers.get("Cookie", "")
        if method == "POST":
            token = (form.get("csrfmiddlewaretoken") or [""])[0]
            if token and f"csrftoken={token}" in cookie and form.get("login") == [USER] \
                    and form.get("password") == [PASSWORD]:
                session = secrets.token_hex(8)
                self.app.sessions.add(session)
                self._extra = {"Set-Cookie": f"sessionid={session}; Path=/; HttpOnly"}
                return self._send(302, b"", None, {"Location": (form.get("next") or ["/"])[0]})
            message = "<p>The e-mail address and/or password you specified are not correct.</p>"
        else:
            message = ""
        token = secrets.token_hex(8)
        page = DJANGO_LOGIN.format(message=message, token=token, next=(query.get("next") or ["/"])[0])
        return self._send(200, page.encode(), "text/html",
                          {"Set-Cookie": f"csrftoken={token}; Path=/"})

    def _hyperkitty(self, name, rest, query, fault) -> int:
        """A HyperKitty list page with month links, and mbox.gz exports (no validators, as
        HyperKitty's streamed exports have none); "secret" needs a session."""
        address = f"{name}@{HOST}"
        root = f"/archives/list/{address}/"
        if name == "secret" and not any(f"sessionid={s}" in self.headers.get("Cookie", "")
                                        for s in self.app.sessions):
            page = (f'<html><body class="hyperkitty"><h1>Private list</h1><p>This list is private. '
                    f'<a href="/accounts/login/?next={quote(root)}">Sign in</a></p></body></html>')
            return self._send(403, page.encode(), "text/html")
        folder = FOLDERS[name]
        if rest == "":
            links = "".join(f'<li><a href="{root}{y}/{m}/">{MONTHS[m - 1]} {y}</a></li>'
                            for y, m in reversed(self.app.sample_months(folder)))
            page = (f'<html><head><link rel="stylesheet" href="/static/hyperkitty/css/hyperkitty.css">'
                    f'</head><body><h1>{address}</h1><ul class="archives">{links}</ul></body></html>')
            return self._send(200, page.encode(), "text/html")
        if rest.startswith("export/") and rest.endswith(".mbox.gz"):
            start = (query.get("start") or [""])[0]
            match = re.match(r"^(\d{4})-(\d\d)-01$", start)
            text = self.app.month_text(folder, int(match.group(1)), int(match.group(2))) if match else None
            if text is None:
                text = b""
            data = gzip.compress(text, mtime=0)
            if fault == "truncate":
                data = data[: len(data) // 2]
            return self._send(200, data, "application/gzip")
        return self._send(404, b"<html>not found</html>", "text/html")

    def _send(self, status: int, body: bytes, kind: str | None, headers: dict | None = None,
              length: int | None = None) -> int:
        # Recorded before the answer leaves, so a client's next request is always recorded later.
        self.app.record(*self._request, status)
        self.send_response(status)
        for name, value in {**(headers or {}), **getattr(self, "_extra", {})}.items():
            self.send_header(name, value)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD" and status != 304:
            self.wfile.write(body)
        return status
