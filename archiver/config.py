"""One declarative table of settings, with environment overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "ARCHIVE_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "indexes", "Directory holding the SQLite store and the search index."),
    Setting("database_url", "", "SQLAlchemy URL of the store; empty means <data_dir>/archive.sqlite3 "
            "(PostgreSQL: postgresql+psycopg://user@host/db)."),
    Setting("replica_url", "", "SQLAlchemy URL of a read-only replica of a PostgreSQL store; web workers "
            "read pages and search from it when set, ingest always writes to database_url."),
    Setting("search_backend", "auto", "Search engine: whoosh (files in <data_dir>/whoosh), postgresql "
            "(tsvector columns in the store's database), or auto: postgresql when the store is, else whoosh."),
    Setting("realdata_dir", "../shared/realdata", "Third-party mail used by conformance tests (read in place)."),
    Setting("organisations_file", "fixtures/organisations.toml",
            "Mail domain -> organisation names (TOML); relative paths start at the project root."),
    Setting("topics_file", "fixtures/topics.toml", "The agenda taxonomy (TOML) that topics are tagged by."),
    Setting("overrides_file", "fixtures/topic-overrides.toml",
            "Moderators' topic overrides per thread (TOML): pins and removals that survive retagging."),
    Setting("batch_size", 500, "Messages parsed and written per store transaction during ingest."),
    Setting("workers", 0, "Processes that parse and clean during ingest; 0 means one per core (at most 4)."),
    Setting("ingest_cache_mb", 64, "SQLite page cache of an ingest's connections, and the size its write-ahead "
            "log reaches before a checkpoint (MB): inserts into hash-keyed indexes outgrow the default 2 MB."),
    Setting("max_message_bytes", 50 * 1024 * 1024, "Messages larger than this are stored raw but not parsed."),
    Setting("max_mime_parts", 1000, "MIME parts walked per message; the rest are counted, not read."),
    Setting("list_post_domain", "lists.igcaucus.org",
            "Mail domain of the lists' posting addresses, for the web's reply-by-mail links."),
    Setting("search_rate", "60 per minute", "Searches (pages, feeds, API) one client may run; flask-limiter syntax."),
    Setting("export_rate", "10 per minute", "Web exports one client may download; flask-limiter syntax."),
    Setting("rate_limit_storage", "memory://",
            "Where rate-limit counts live (memory:// is per process; redis://... shares them)."),
    Setting("base_url", "", "Public address of the web front end (https://host/) for permalinks in "
            "citations; the web uses the address it is reached at when empty."),
    Setting("private_lists", "", "Comma-separated lists only signed-in readers may see (pages, search, feeds, exports, API)."),
    Setting("users_file", "", "TOML [users] name = password hash (archiver passwd makes one); who may sign in."),
    Setting("secret_key", "", "Key signing the web's sign-in cookie; required when private_lists is set."),
    Setting("trusted_hosts", "", "Comma-separated host names the site answers to (others get 400); empty means any."),
    Setting("proxy_hops", 0, "Reverse proxies in front of the web app (nginx: 1). Their X-Forwarded-For and "
            "X-Forwarded-Proto are believed that many hops deep: rate limits count per reader, not per proxy."),
    Setting("secure_cookies", 0, "1 behind HTTPS: the sign-in cookie is sent only over HTTPS."),
    Setting("export_limit", 10_000, "Most messages one web export (thread or search result) may hold."),
    Setting("max_thread_depth", 200_000, "Reference chains longer than this are cut (never recursed)."),
    Setting("lists_file", "fixtures/lists.toml",
            "The lists `archiver sync` fetches (TOML): name, URL, kind, credentials' variable names."),
    Setting("fetch_user_agent", "bestbits-archive/0.1 (Mailman list archive mirror; Python urllib)",
            "User-Agent of every request; add a contact address for the sites you fetch from."),
    Setting("fetch_delay", 1.0, "Seconds from the start of one request to the next (per archive)."),
    Setting("fetch_timeout", 30.0, "Seconds to wait for a connection, and for each block of an answer."),
    Setting("fetch_retries", 4, "Further tries after a timeout, a 5xx or 429 answer, or a broken download."),
    Setting("fetch_backoff", 2.0, "Seconds before the first retry, doubled each time (a longer Retry-After wins)."),
    Setting("fetch_max_retry_after", 600.0, "A Retry-After longer than this many seconds fails the download."),
    Setting("fetch_max_redirects", 5, "Redirects followed per request."),
    Setting("fetch_max_bytes", 200_000_000, "Largest month text downloaded (after decompression)."),
    Setting("fetch_max_page_bytes", 5_000_000, "Largest index page, month page or scrubbed attachment downloaded."),
    Setting("fetch_settle_days", 30,
            "A month fetched this many days after it ended, from a server without ETag or "
            "Last-Modified, is not asked for again."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str, overrides: dict | None = None):
    """Return a setting: an explicit override, else the environment, else the default."""
    setting = _BY_NAME[name]
    if overrides and overrides.get(name) not in (None, ""):
        return overrides[name]
    raw = os.environ.get(setting.env)
    if raw is None or raw == "":
        return setting.default
    if isinstance(setting.default, int):
        return int(raw)
    return raw


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def path(name: str) -> Path:
    """Return a file setting as a path; relative ones are taken from the project root."""
    value = Path(str(get(name)))
    return value if value.is_absolute() else PROJECT_ROOT / value


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """Return the data directory (created if missing)."""
    path = Path(override or get("data_dir"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(data: Path, override: str | None = None) -> str:
    """Return the store's URL: the configured one, else a SQLite file in the data directory."""
    url = override or get("database_url")
    return url or f"sqlite:///{(data / 'archive.sqlite3').resolve()}"
