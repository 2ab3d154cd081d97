"""Private lists: who may see them (signed-in readers, passwords hashed), and sign-in pages."""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, abort, current_app, g, redirect, render_template, request,
                   session, url_for)
from werkzeug.security import check_password_hash

from archiver import config
from archiver.errors import ArchiverError

bp = Blueprint("access", __name__)


def load_users(path: str) -> dict[str, str]:
    """Read the users file: TOML `[users] name = "<werkzeug password hash>"`; no plain text."""
    if not path:
        return {}
    file = Path(path) if Path(path).is_absolute() else config.PROJECT_ROOT / path
    try:
        users = tomllib.loads(file.read_text(encoding="utf-8")).get("users", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ArchiverError(f"users file {path}: {exc}") from exc
    for name, hashed in users.items():
        if not isinstance(hashed, str) or ":" not in hashed:
            raise ArchiverError(f"users file {path}: {name!r} needs a password hash "
                                "(make one with `archiver passwd`), never a password")
    return users


def register(app: Flask) -> None:
    private = frozenset(n.strip() for n in str(app.config["PRIVATE_LISTS"]).split(",") if n.strip())
    app.config["PRIVATE"] = private
    app.config["USERS"] = load_users(app.config["USERS_FILE"]) if private else {}
    if private and not app.config.get("SECRET_KEY"):
        raise ArchiverError("private_lists is set but secret_key is not: set ARCHIVE_SECRET_KEY "
                            "(the sign-in cookie must be signed with a key all server processes share)")

    @app.before_request
    def _who() -> None:
        # Everyone but a signed-in reader reads as if the private lists did not exist.
        g.user = session.get("user") if session.get("user") in app.config["USERS"] else None
        g.archive.hidden = frozenset() if g.user else app.config["PRIVATE"]

    @app.after_request
    def _private(response):
        if g.get("user"):
            # What a signed-in reader sees must never sit in a shared cache.
            response.headers["Cache-Control"] = "private, no-store"
            response.vary.add("Cookie")
        return response

    @app.context_processor
    def _access():
        return {"user": g.get("user"), "has_private": bool(app.config["PRIVATE"]),
                "csrf_token": _token}

    app.register_blueprint(bp)


def _token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_token() -> None:
    sent = request.form.get("csrf", "")
    if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="The form has expired; reload the page and try again.")


def _local(target: str | None) -> str:
    """Only a path of this site: never a redirect to another host. Browsers drop tabs and line
    breaks from URLs and read a backslash as a slash, so any of those (or any control
    character) refuses the target rather than being cleaned into '//host'."""
    target = target or ""
    parts = urlsplit(target)
    if (target.startswith("/") and not target.startswith("//") and not parts.scheme
            and not parts.netloc and not any(c in target for c in "\\\t\r\n")
            and all(c.isprintable() for c in target)):
        return target
    return url_for("browse.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not current_app.config["PRIVATE"]:
        abort(404, description="This archive has no private lists: there is nothing to sign in to.")
    error = None
    if request.method == "POST":
        _check_token()
        name = request.form.get("user", "")[:200]
        password = request.form.get("password", "")[:1000]
        hashed = current_app.config["USERS"].get(name)
        if hashed and check_password_hash(hashed, password):
            session.clear()
            session["user"] = name
            return redirect(_local(request.form.get("next")))
        error = "That name and password do not match."
    return render_template("access/login.html", error=error, csrf=_token(),
                           next=_local(request.args.get("next"))), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    _check_token()
    session.clear()
    return redirect(url_for("browse.home"))
