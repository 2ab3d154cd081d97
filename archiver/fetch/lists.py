"""The lists file (TOML): the archives `archiver sync` keeps up to date, and where their credentials are."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from ..errors import ArchiverError
from ..sources.http import Credentials

KINDS = ("auto", "pipermail", "hyperkitty")
KEYS = {"name", "url", "kind", "username_env", "password_env"}
# `archiver fetch URL` takes credentials from these when the lists file names none for the URL.
USERNAME_ENV = "ARCHIVE_FETCH_USERNAME"
PASSWORD_ENV = "ARCHIVE_FETCH_PASSWORD"


@dataclass(frozen=True)
class ListSpec:
    name: str
    url: str
    kind: str = "auto"
    username_env: str | None = None   # names of environment variables, never the values
    password_env: str | None = None

    def credentials(self, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """Return the list's credentials from the environment (None for a public list)."""
        if not self.password_env:
            return None
        return _from_environment(self.username_env, self.password_env, environ,
                                 f"list {self.name}")


def check_url(url: str) -> str:
    """Return an archive URL as given, or raise: http(s) only, and no user or password in it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ArchiverError(f"{url!r} is not an http(s) URL")
    if parts.username or parts.password:
        # argv is visible to every user of the machine (ps) and lands in shell history.
        raise ArchiverError("credentials never go in the URL: set them in environment variables "
                            f"({USERNAME_ENV}, {PASSWORD_ENV}) or name those in the lists file")
    return url


def load_lists(path: Path) -> list[ListSpec]:
    """Read and check a lists file: [[list]] tables with name, url and optional kind and
    username_env / password_env (the names of environment variables holding the credentials)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArchiverError(f"cannot read the lists file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ArchiverError(f"{path}: {exc}") from None
    tables = data.get("list", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ArchiverError(f"{path}: lists are [[list]] tables")
    specs, names = [], set()
    for number, table in enumerate(tables, 1):
        where = f"{path}, list {number}"
        unknown = set(table) - KEYS
        if unknown & {"password", "username", "user", "token", "secret"}:
            raise ArchiverError(f"{where}: credentials never go in the lists file; name the "
                                "environment variables that hold them (username_env, password_env)")
        if unknown:
            raise ArchiverError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        if not all(isinstance(table.get(k), str) and table[k].strip() for k in ("name", "url")):
            raise ArchiverError(f"{where}: name and url are required")
        kind = table.get("kind", "auto")
        if kind not in KINDS:
            raise ArchiverError(f"{where}: kind is one of {', '.join(KINDS)}")
        if table["name"] in names:
            raise ArchiverError(f"{where}: list {table['name']} is named twice")
        names.add(table["name"])
        specs.append(ListSpec(table["name"], check_url(table["url"]), kind,
                              table.get("username_env"), table.get("password_env")))
    return specs


def credentials_for(url: str, list_name: str | None, specs: list[ListSpec],
                    environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Return the credentials for `archiver fetch`: the lists file's entry for the URL or list
    name, else ARCHIVE_FETCH_USERNAME and ARCHIVE_FETCH_PASSWORD, else None."""
    for spec in specs:
        if spec.url.rstrip("/") == url.rstrip("/") or (list_name and spec.name == list_name):
            if spec.password_env:
                return spec.credentials(environ)
    environ = os.environ if environ is None else environ
    if environ.get(PASSWORD_ENV):
        return _from_environment(USERNAME_ENV, PASSWORD_ENV, environ, "fetch")
    return None


def _from_environment(user_var: str | None, password_var: str, environ: Mapping[str, str] | None,
                      what: str) -> Credentials:
    environ = os.environ if environ is None else environ
    missing = [v for v in (user_var, password_var) if v and not environ.get(v)]
    if missing:
        raise ArchiverError(f"{what}: set the environment variable {' and '.join(missing)}")
    origin = " and ".join(v for v in (user_var, password_var) if v)
    return Credentials(environ.get(user_var, "") if user_var else "", environ[password_var], origin)
