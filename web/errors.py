"""Error pages and API errors: a clear sentence and the right status, never a traceback."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, SecurityError

from archiver.errors import ArchiverError, QueryError

TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed",
          413: "Too large", 429: "Too many requests", 500: "Something went wrong",
          503: "Temporarily unavailable"}


def _answer(code: int, message: str):
    if request.path.startswith("/api/"):
        return jsonify(error=message), code
    return render_template("errors/error.html", code=code, title=TITLES.get(code, "Error"),
                           message=message), code


def register(app: Flask) -> None:
    @app.errorhandler(SecurityError)
    def _host(exc: SecurityError):
        # An untrusted Host header: no page can be drawn (its links need a host), so plain text.
        return Response("400 Bad Request: this site does not answer to that host name.\n",
                        400, mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return _answer(exc.code or 500, exc.description or TITLES.get(exc.code or 500, "Error"))

    @app.errorhandler(QueryError)
    def _query(exc: QueryError):
        return _answer(400, f"Bad query: {exc}")

    @app.errorhandler(ArchiverError)
    def _archive(exc: ArchiverError):
        # The archive itself cannot answer (an index to rebuild, a store of another version):
        # say so plainly; the operator's log has the detail.
        app.logger.error("archive error on %s: %s", request.path, exc)
        return _answer(503, "The archive cannot answer this right now; the server's log says "
                            "why (for example, a search index to rebuild with `archiver reindex`).")

    @app.errorhandler(Exception)
    def _other(exc: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        return _answer(500, "The archive could not answer this request. It has been logged.")
