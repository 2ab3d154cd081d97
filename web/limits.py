"""Per-client rate limits (flask-limiter) on the costly endpoints: search and exports."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# Endpoints that run a search or stream an export: a client hammering them slows everyone.
SEARCHES = ("search.search", "feeds.search_feed", "api.search")
EXPORTS = ("exports.thread_export", "exports.search_export")


def register(app: Flask) -> Limiter:
    limiter = Limiter(get_remote_address, app=app, storage_uri=app.config["RATELIMIT_STORAGE_URI"],
                      headers_enabled=True)
    for endpoints, rate, scope in ((SEARCHES, app.config["SEARCH_RATE"], "search"),
                                   (EXPORTS, app.config["EXPORT_RATE"], "export")):
        for endpoint in endpoints:
            view = app.view_functions.get(endpoint)
            if view is not None:
                # One shared budget per client for every search endpoint (and one for exports).
                app.view_functions[endpoint] = limiter.shared_limit(rate, scope=scope)(view)
    login = app.view_functions.get("access.login")
    if login is not None:
        # Password guessing: a handful of tries a minute per client.
        app.view_functions["access.login"] = limiter.limit(
            app.config["LOGIN_RATE"], methods=["POST"])(login)
    return limiter
