"""Response rules for every page: security headers, conditional requests, gzip."""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

# No script at all, inline or not: every page works without JavaScript.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
COMPRESSIBLE = ("text/", "application/json", "application/atom+xml", "image/svg+xml")


def register(app: Flask) -> None:
    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.is_streamed or response.direct_passthrough or response.status_code != 200:
            return response
        # An ETag from the body: a reader on a slow link who already has the page gets a 304.
        response.add_etag()
        response.make_conditional(request)
        if response.status_code == 200 and _wants_gzip(response):
            body = response.get_data()
            if len(body) > 500:
                response.set_data(gzip.compress(body, compresslevel=6))
                response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        return response


def _wants_gzip(response: Response) -> bool:
    return ("gzip" in request.headers.get("Accept-Encoding", "")
            and "Content-Encoding" not in response.headers
            and (response.mimetype or "").startswith(COMPRESSIBLE))
