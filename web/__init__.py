"""The Flask front end: `create_app()` wires the archive, the blueprints and the response rules."""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask, g
from werkzeug.middleware.proxy_fix import ProxyFix

from archiver import config
from archiver.query import Archive, open_replica, open_store

from . import access, filters, http, limits


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app over the archive in the data directory (or `test_config["DATA_DIR"]`)."""
    app = Flask(__name__)
    app.config.update(DATA_DIR=None, DATABASE_URL=None, REPLICA_URL=str(config.get("replica_url")) or None,
                      EXPORT_LIMIT=int(config.get("export_limit")),
                      JSON_SORT_KEYS=False,
                      SEARCH_RATE=str(config.get("search_rate")), EXPORT_RATE=str(config.get("export_rate")),
                      RATELIMIT_STORAGE_URI=str(config.get("rate_limit_storage")),
                      PRIVATE_LISTS=str(config.get("private_lists")), USERS_FILE=str(config.get("users_file")),
                      SECRET_KEY=str(config.get("secret_key")) or None,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      LOGIN_RATE="10 per minute",
                      # Feeds and citations build absolute URLs from the request's Host header:
                      # a deployment names its hosts so no one can make them point elsewhere.
                      TRUSTED_HOSTS=[h.strip() for h in str(config.get("trusted_hosts")).split(",")
                                     if h.strip()] or None,
                      SESSION_COOKIE_SECURE=bool(int(config.get("secure_cookies"))),
                      PROXY_HOPS=int(config.get("proxy_hops")))
    if test_config:
        app.config.update(test_config)
    hops = int(app.config["PROXY_HOPS"])
    if hops:
        # Behind a proxy every request comes from the proxy's address: the reader's own is the
        # one it put in X-Forwarded-For. Only as many hops as the deployment says are believed,
        # or a reader could name any address and escape the rate limits. The host is not taken
        # from X-Forwarded-Host: a proxy passes Host itself, and a reader could send that header.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)
    data = config.data_dir(app.config["DATA_DIR"])
    # The web never writes to the store: sign-in checks the users file and keeps who signed in
    # in the session cookie, rate limits count in their own storage, redactions are the CLI's.
    # So with a replica it opens only the replica, read-only (no schema made or checked by
    # writing, no write possible), and never the primary.
    replica = app.config["REPLICA_URL"]
    store = open_replica(replica) if replica else open_store(data, app.config["DATABASE_URL"])
    local = threading.local()

    def archive() -> Archive:
        # One Archive per server thread: they share the store's connection pool, but each has
        # its own Whoosh searcher (a searcher is not meant to be shared between threads).
        if getattr(local, "archive", None) is None:
            local.archive = Archive(store, index_dir=Path(data) / "whoosh")
        return local.archive

    app.extensions["archive"] = archive
    app.extensions["store"] = store

    @app.before_request
    def _bind() -> None:
        g.archive = archive()

    # Templates are indented for people; the pages need not carry that indentation.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    filters.register(app)
    http.register(app)
    from . import api, browse, errors, exports, feeds, search
    for module in (browse, search, feeds, exports, api):
        app.register_blueprint(module.bp)
    from .cite import bp as cite_bp   # citations (BibTeX, CSL-JSON) of messages and threads
    app.register_blueprint(cite_bp)
    from .briefing import bp as briefing_bp   # briefing packs and sign-on lists, for moderators
    app.register_blueprint(briefing_bp)
    errors.register(app)
    access.register(app)
    limits.register(app)
    return app
