"""The `archiver` command: thin wrappers over the library."""

from __future__ import annotations

import fcntl
import html
import json
import re
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import click

from . import config
from .errors import ArchiverError, QueryError
from .dataset import FORMATS, Scope, date_bound
from .dataset import check as check_format
from .dataset import export as export_dataset
from .export import CITATIONS, citation
from .ids import message_hash, normalise_message_id
from . import migrations
from .migrate import migrate as copy_store
from .migrate import target_data
from .fetch import credentials_for, fetch_archive, lines, load_lists
from .fetch import sync as run_sync
from .pipeline import ingest as run_ingest
from .pipeline import evaluate_tagger, rebuild_index, update_index
from .pipeline import rethread as rethread_all
from .pipeline import retag as retag_all
from .topics import format_evaluation
from .pseudonym import SALT_ENV, Pseudonymiser, load_opt_out
from .query import Archive, open_store
from .sources.remote import check_month


@contextmanager
def _archive(ctx: click.Context, write: bool = False):
    """Open the archive of the data directory (store and search index) for one command; a
    command that writes holds the directory's writer lock (readers never wait for it)."""
    try:
        data = config.data_dir(ctx.obj["data"])
        lock = _writer_lock(data) if write else None
        store = open_store(data)
    except (ArchiverError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield Archive(store, index_dir=data / "whoosh")
    except ArchiverError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
        if lock is not None:
            lock.close()


def _writer_lock(data):
    """Take the data directory's writer lock, or say who holds it."""
    handle = open(data / "writer.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ArchiverError("another ingest, retag, rethread or reindex is writing to this data directory; "
                            "run this when it has finished") from None
    return handle


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "data", metavar="DIR", envvar=config.ENV_PREFIX + "DATA_DIR",
              help="Data directory (default: indexes/; env ARCHIVE_DATA_DIR).")
@click.version_option(package_name="bestbits-archive")
@click.pass_context
def main(ctx: click.Context, data: str | None) -> None:
    """Turn Mailman list archives into a searchable, threaded, lossless record."""
    ctx.obj = {"data": data}


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--list", "list_name", required=True, help="The list these messages belong to.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="Report format.")
@click.pass_context
def ingest(ctx: click.Context, sources: tuple[str, ...], list_name: str, fmt: str) -> None:
    """Ingest mbox files, maildirs, pipermail mirrors, .eml files or - (stdin).

    Example: archiver ingest fixtures/sample/bestbits --list bestbits
    """
    if not list_name.strip():
        raise click.BadParameter("must not be empty", param_hint="--list")
    with _archive(ctx, write=True) as archive:
        if fmt == "text" and sys.stderr.isatty():
            report = _ingest_with_bar(archive, list(sources), list_name)
        else:
            report = run_ingest(archive.store, list(sources), list_name, archive=archive)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    data = report.as_dict()
    click.echo(f"seen {data['seen']}: stored {data['stored']}, duplicates {data['duplicates']}, "
               f"unchanged {data['unchanged']}, rejected {data['rejected']} "
               f"(degraded {data['degraded']}, re-threaded {data['rethreaded']}, "
               f"indexed {data['indexed']})")
    for reason, count in data["rejected_reasons"].items():
        click.echo(f"  rejected {count}: {reason}")
    for reason, count in data["degraded_reasons"].items():
        click.echo(f"  degraded {count}: {reason}")
    for skipped in data["skipped_files"]:
        click.echo(f"  skipped file {skipped}")


def _ingest_with_bar(archive: Archive, sources: list[str], list_name: str):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("ingesting"), BarColumn(), TextColumn("{task.completed} messages"),
               TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("ingest", total=None)
        return run_ingest(archive.store, sources, list_name, archive=archive,
                          progress=lambda n: bar.advance(task, n))


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def stats(ctx: click.Context, fmt: str) -> None:
    """Show lists, messages, threads, participants and the date range.

    Example: archiver stats --format json
    """
    with _archive(ctx) as archive:
        data = archive.stats()
    if fmt == "json":
        click.echo(json.dumps(data))
        return
    names = ", ".join(f"{item['name']} ({item['messages']})" for item in data["lists"])
    click.echo(f"{'lists:':<14}{names or '-'}")
    for key in ("messages", "threads", "participants", "degraded", "rejected"):
        click.echo(f"{key + ':':<14}{data[key]}")
    click.echo(f"{'dates:':<14}{data['first_date'] or '-'} .. {data['last_date'] or '-'}")


def _date_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            date_bound(value, end=False)
        except ArchiverError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@main.command()
@click.option("--list", "list_name", metavar="NAME", help="Export this list (default: everything).")
@click.option("--thread", "thread_id", metavar="ID", help="Export this thread (the id in /thread/ID/).")
@click.option("--topic", metavar="SLUG", help="Export the messages tagged with this agenda topic.")
@click.option("--person", metavar="ADDRESS", help="Export this participant's messages.")
@click.option("--query", metavar="Q", help="Export every message this search matches.")
@click.option("--since", metavar="DATE", callback=_date_option,
              help="Only messages sent from this day, month or year (YYYY-MM-DD, YYYY-MM, YYYY).")
@click.option("--until", metavar="DATE", callback=_date_option,
              help="Only messages sent up to the end of this day, month or year.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl",
              help="jsonl, csv or parquet records; mbox (mboxrd of the original bytes); edges "
                   "(reply graph: edges.csv and nodes.csv in the -o folder).")
@click.option("-o", "--output", type=click.Path(writable=True),
              help="Write here instead of standard output (a folder for edges); the manifest "
                   "goes beside it as FILE.manifest.json (FOLDER/manifest.json).")
@click.option("--manifest", "manifest_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the manifest here (the only way to get one for standard output).")
@click.option("--pseudonymise", is_flag=True,
              help="Participants and message ids as salted pseudonyms, bodies masked.")
@click.option("--salt-env", default=SALT_ENV, show_default=True, metavar="VAR",
              help="Environment variable holding the pseudonyms' secret salt.")
@click.option("--opt-out", "opt_out", type=click.Path(exists=True, dir_okay=False),
              help="File of addresses (one a line) whose messages are left out entirely.")
@click.pass_context
def export(ctx: click.Context, list_name: str | None, thread_id: str | None, topic: str | None,
           person: str | None, query: str | None, since: str | None, until: str | None, fmt: str,
           output: str | None, manifest_path: str | None, pseudonymise: bool, salt_env: str,
           opt_out: str | None) -> None:
    """Export messages (a list, thread, topic, person, search, or everything; within dates),
    streamed, with a manifest of counts, sources, version, hashes and codebook.

    Example: archiver export --topic itu-itrs --since 2012-11 --format parquet -o itrs.parquet
    """
    given = [(kind, value) for kind, value in (("list", list_name), ("thread", thread_id),
             ("topic", topic), ("person", person), ("query", query)) if value is not None]
    if len(given) > 1:
        raise click.UsageError("give one scope: " + " or ".join(f"--{kind}" for kind, _ in given))
    kind, value = given[0] if given else ("all", None)
    output = None if output == "-" else output
    scope = Scope(kind, value, since, until)
    try:
        check_format(fmt, output, pseudonymise)
        pseudonymiser = Pseudonymiser.from_env(salt_env) if pseudonymise else None
        excluded = load_opt_out(opt_out) if opt_out else frozenset()
    except ArchiverError as exc:
        raise click.ClickException(str(exc)) from exc
    with _archive(ctx) as archive:
        try:
            with click.open_file("-", "wb") if output is None else nullcontext() as stream:
                result = export_dataset(archive, scope, fmt, output, stream=stream,
                                        pseudonymiser=pseudonymiser, opt_out=excluded,
                                        manifest=manifest_path)
        except QueryError as exc:
            click.echo(f"archiver: bad query: {exc}", err=True)
            ctx.exit(2)
    if output is not None:
        counts = result["counts"]
        where = manifest_path or (str(Path(output) / "manifest.json") if fmt == "edges"
                                  else output + ".manifest.json")
        click.echo(f"exported {counts['messages']} messages ({counts['left_out_by_opt_out']} left "
                   f"out by the opt-out list) to {output}; manifest {where}", err=True)


@main.command()
@click.argument("query")
@click.option("--sort", type=click.Choice(["relevance", "newest", "oldest"]), default="relevance")
@click.option("--limit", type=click.IntRange(1, 100), default=10, help="Hits per page (at most 100).")
@click.option("--page", type=click.IntRange(1, 10_000), default=1)
@click.option("--by-thread", is_flag=True, help="Show one hit per thread.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def search(ctx: click.Context, query: str, sort: str, limit: int, page: int, by_thread: bool,
           fmt: str) -> None:
    """Search the archive (see the README for the query language).

    Example: archiver search 'topic:itu-itrs from:joao "national delegations" date:2012-11'
    """
    with _archive(ctx) as archive:
        try:
            found = archive.search(query, page=page, per_page=limit, sort=sort, by_thread=by_thread)
        except QueryError as exc:
            click.echo(f"archiver: bad query: {exc}", err=True)
            ctx.exit(2)
    if fmt == "json":
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    click.echo(f"{found['total']} messages match; page {found['page']} of {found['pages']}")
    for hit in found["hits"]:
        snippet = html.unescape(hit["snippet"].replace("<mark>", "[").replace("</mark>", "]"))
        click.echo(f"\n{hit['date'] or '-'}  {hit['from_name'] or hit['from_address']}  "
                   f"{', '.join(hit['lists'])}\n  {hit['subject']}\n  {' '.join(snippet.split())}"
                   f"\n  message {hit['message_id']}  thread {hit['thread_id']}")
    for name, values in found["facets"].items():
        if values:
            shown = ", ".join(f"{v['value']} ({v['count']})" for v in values[:6])
            click.echo(f"\n{name}: {shown}")


@main.command()
@click.pass_context
def reindex(ctx: click.Context) -> None:
    """Rebuild the search index from the store (the index is derived; the store is the truth).

    Example: archiver reindex
    """
    with _archive(ctx, write=True) as archive:
        count = rebuild_index(archive)
    click.echo(f"indexed {count} messages")


@main.group()
def db() -> None:
    """The store's schema: its revision, and upgrades to this archiver's.

    Example: archiver db current
    """


def _store_url(ctx: click.Context) -> tuple[Path, str]:
    """Return the data directory and its store's URL, found as every command finds them."""
    data = config.data_dir(ctx.obj["data"])
    return data, config.database_url(data)


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the store's schema revision and whether it is this archiver's.

    Example: archiver db current
    """
    try:
        found = migrations.status(_store_url(ctx)[1])
    except ArchiverError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{found.revision or '-'}  {found.describe()}")


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Upgrade the store's schema to this archiver's revision (back the store up first).

    Example: archiver db upgrade
    """
    try:
        data, url = _store_url(ctx)
        lock = _writer_lock(data)
        try:
            before, after = migrations.upgrade(url)
        finally:
            lock.close()
    except (ArchiverError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    if before.revision == after.revision:
        click.echo(f"already at revision {after.revision}: nothing to do")
    else:
        click.echo(f"upgraded from revision {before.revision or 'none'} to {after.revision}")


@main.command()
@click.option("--to", "target", required=True, metavar="URL",
              help="The empty database to copy into (SQLAlchemy URL).")
@click.option("--to-data", type=click.Path(file_okay=False),
              help="The target's data directory, for its search index (default: a SQLite "
                   "target's folder, else this data directory).")
@click.pass_context
def migrate(ctx: click.Context, target: str, to_data: str | None) -> None:
    """Copy the whole store into an empty database, keeping its keys and bytes, and build the
    search index there: from SQLite to PostgreSQL, back, or to another file.

    Example: archiver migrate --to postgresql+psycopg://archiver@dbhost/archive
    """
    with _archive(ctx, write=True) as archive:
        data = config.data_dir(to_data or target_data(target, config.data_dir(ctx.obj["data"])))
        done = copy_store(archive.store, target, data)
    for name, count in done.rows.items():
        click.echo(f"{name:<16}{count:>10} rows")
    click.echo(f"indexed {done.indexed} messages")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--evaluate", is_flag=True,
              help="Score the tagger against the sample archive's ground truth.")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False),
              default=str(config.PROJECT_ROOT / "fixtures" / "sample" / "truth.jsonl"),
              show_default="fixtures/sample/truth.jsonl", help="Ground truth for --evaluate.")
@click.pass_context
def topics(ctx: click.Context, fmt: str, evaluate: bool, truth: str) -> None:
    """List the agenda's topics with message and thread counts, or evaluate the tagger.

    Example: archiver topics --evaluate
    """
    with _archive(ctx) as archive:
        if evaluate:
            result = evaluate_tagger(archive, truth)
            click.echo(json.dumps(result) if fmt == "json" else format_evaluation(result))
            return
        rows = archive.topics()
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"{row['slug']:<22} day {row['day']} session {row['session']}  "
                   f"{row['messages']:>6} messages {row['threads']:>5} threads  {row['label']}")


@main.command()
@click.pass_context
def retag(ctx: click.Context) -> None:
    """Re-tag every message after an edit of the taxonomy or the overrides (no re-parsing).

    Example: archiver retag
    """
    with _archive(ctx, write=True) as archive:
        result = retag_all(archive)
    click.echo(f"re-tagged {result['messages']} messages: {result['changed']} changed, "
               f"{result['indexed']} re-indexed")


@main.command()
@click.pass_context
def rethread(ctx: click.Context) -> None:
    """Thread every stored message again, as an ingest threads a batch (after an upgrade that
    changes threading); only what moved is written and re-indexed. Then count every thread's
    messages in each list anew.

    Example: archiver rethread
    """
    with _archive(ctx, write=True) as archive:
        result = rethread_all(archive)
    click.echo(f"re-threaded {result['messages']} messages: {result['moved']} placements changed, "
               f"{result['recounted']} thread counts per list changed, {result['indexed']} re-indexed")


@main.command()
def settings() -> None:
    """List every setting with its environment variable, default and meaning."""
    for setting in config.SETTINGS:
        click.echo(f"{setting.env:<28} {setting.default!s:<20} {setting.help}")



def _month_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_month(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _lists_file(path: str | None):
    """Return the lists file's lists (none when the default file does not exist)."""
    chosen = Path(path) if path else config.path("lists_file")
    if not path and not chosen.is_file():
        return []
    return load_lists(chosen)


def _month_progress(result) -> None:
    click.echo(f"{result.month} {result.status} {result.reason}".rstrip(), err=True)


def _fetch_output(reports: list, fmt: str, single: bool) -> None:
    if fmt == "json":
        data = reports[0].as_dict() if single else {"lists": [r.as_dict() for r in reports]}
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    for number, report in enumerate(reports):
        if number:
            click.echo()
        click.echo("\n".join(lines(report)))


@main.command()
@click.argument("url")
@click.option("--list", "list_name", help="Store the messages in this list (default: the list the URL names).")
@click.option("--since", metavar="YYYY-MM", callback=_month_option, help="First month to fetch.")
@click.option("--until", metavar="YYYY-MM", callback=_month_option, help="Last month to fetch.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="Report format.")
@click.pass_context
def fetch(ctx: click.Context, url: str, list_name: str | None, since: str | None,
          until: str | None, fmt: str) -> None:
    """Fetch a live pipermail or HyperKitty archive: download what is new or changed, ingest it.

    A private archive's credentials come from environment variables (those the lists file
    names for this URL or list, else ARCHIVE_FETCH_USERNAME and ARCHIVE_FETCH_PASSWORD), never
    from the command line. Exits with 1 when a month failed.

    Example: archiver fetch http://lists.igcaucus.org/pipermail/bestbits/ --since 2012-10
    """
    if list_name is not None and not list_name.strip():
        raise click.BadParameter("must not be empty", param_hint="--list")
    if since and until and since > until:
        raise click.BadParameter(f"{since} is after --until {until}", param_hint="--since")
    with _archive(ctx, write=True) as archive:
        credentials = credentials_for(url, list_name, _lists_file(None))
        report = fetch_archive(archive, url, config.data_dir(ctx.obj["data"]), list_name=list_name,
                               since=since, until=until, credentials=credentials,
                               on_month=_month_progress if sys.stderr.isatty() else None)
    _fetch_output([report], fmt, single=True)
    if report.failed:
        ctx.exit(1)


@main.command()
@click.option("--lists", "lists_path", type=click.Path(dir_okay=False),
              help="The lists file (default: the lists_file setting, fixtures/lists.toml).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="Report format.")
@click.pass_context
def sync(ctx: click.Context, lists_path: str | None, fmt: str) -> None:
    """Fetch every list of the lists file (see fetch); exits with 1 when a list or month failed.

    Example: archiver sync --lists fixtures/lists.toml
    """
    with _archive(ctx, write=True) as archive:
        specs = _lists_file(lists_path or str(config.path("lists_file")))
        if not specs:
            raise click.ClickException("the lists file names no lists")
        reports = run_sync(archive, config.data_dir(ctx.obj["data"]), specs)
    _fetch_output(reports, fmt, single=False)
    if any(report.failed for report in reports):
        ctx.exit(1)



@main.command()
@click.argument("message_id", metavar="MESSAGE-ID", required=False)
@click.option("--thread", "thread_id", metavar="ID", help="Cite this thread (the id in /thread/ID/).")
@click.option("--format", "fmt", type=click.Choice(sorted(CITATIONS)), default="bibtex")
@click.option("--base-url", metavar="URL", help="The web front end's public address, for the "
              "permalink (default: the base_url setting, ARCHIVE_BASE_URL).")
@click.pass_context
def cite(ctx: click.Context, message_id: str | None, thread_id: str | None, fmt: str,
         base_url: str | None) -> None:
    """Cite a message (its Message-ID or permalink hash) or a thread as BibTeX or CSL-JSON, with
    its permalink and its original archive URL.

    Example: archiver cite --thread 5zq3... --format csl-json --base-url https://archive.example.org
    """
    if (message_id is None) == (thread_id is None):
        raise click.UsageError("give a MESSAGE-ID or --thread ID (one of them)")
    base = base_url or str(config.get("base_url"))
    if not re.match(r"^https?://[^\s/]+", base):
        raise click.UsageError("give --base-url https://host/ (or set ARCHIVE_BASE_URL): the "
                               "permalink needs the archive's public address")
    with _archive(ctx) as archive:
        if message_id is not None:
            ident = message_id.strip()
            msg_hash = ident if _HASH.match(ident) else message_hash(normalise_message_id(ident) or ident)
            text = citation(archive, fmt, base, msg_hash=msg_hash)
        else:
            text = citation(archive, fmt, base, thread_id=thread_id)
    if text is None:
        what = f"message {message_id!r}" if message_id is not None else f"thread {thread_id!r}"
        raise click.ClickException(f"no {what} in this archive")
    click.echo(text, nl=False)


_HASH = re.compile(r"^[a-z2-7]{32}$")

# --- for moderators: participant dossiers and briefing packs ---------------------------------
from datetime import datetime as _datetime, timezone as _timezone  # noqa: E402

from . import briefing as _briefing  # noqa: E402
from .ids import person_key as _person_key  # noqa: E402

_KEY = re.compile(r"^[a-z2-7]{16}$")


@main.command()
@click.argument("address")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--limit", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Messages of theirs read, oldest first.")
@click.pass_context
def person(ctx: click.Context, address: str, fmt: str, limit: int) -> None:
    """Show a participant's dossier: own words by topic over time, threads started, replies
    received, organisation, statements signed. ADDRESS is a mail address or a person key.

    Example: archiver person leyla@caspiancivic.example
    """
    key = address if _KEY.match(address) else _person_key(address)
    with _archive(ctx) as archive:
        found = archive.person(key, limit=limit)
    if found is None:
        raise click.ClickException(f"nobody wrote from {address!r} in this archive")
    data = _briefing.dossier(found)
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo(_briefing.dossier_text(data), nl=False)


def _day_option(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    try:
        return _datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=_timezone.utc)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: write it as YYYY-MM-DD") from None


@main.command("briefing")
@click.option("--topic", "slug", required=True, help="The agenda topic (its slug; see archiver topics).")
@click.option("--since", metavar="YYYY-MM-DD", callback=_day_option,
              help="Only activity after this day (default: the whole archive).")
@click.option("--format", "fmt", type=click.Choice(sorted(_briefing.RENDERERS)), default="md",
              show_default=True, help="Markdown, or a printable HTML page.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of standard output.")
@click.option("--base-url", metavar="URL",
              help="The web front end's address, for absolute links (default: the base_url setting; "
                   "empty, links relative to it).")
@click.pass_context
def briefing_command(ctx: click.Context, slug: str, since, fmt: str, output: str | None,
                     base_url: str | None) -> None:
    """Write the briefing pack of an agenda session: its points, most active threads with
    extracts, who took part from which organisations, latest positions, sign-on lists.

    Example: archiver briefing --topic wcit-statement --since 2012-11-01 --format html -o wcit.html
    """
    with _archive(ctx) as archive:
        brief = archive.briefing(slug, since)
        if brief is None:
            known = ", ".join(t["slug"] for t in archive.topics())
            raise click.ClickException(f"the agenda has no topic {slug!r} (topics: {known})")
    with click.open_file(output or "-", "w", encoding="utf-8") as out:
        out.write(_briefing.render(brief, fmt, base_url if base_url is not None else _base_url()))


def _base_url() -> str:
    known = {setting.name for setting in config.SETTINGS}
    return str(config.get("base_url") or "") if "base_url" in known else ""


@main.command()
@click.argument("message_id", required=False)
@click.option("--reason", help="Why (shown on the message's tombstone and kept in the log).")
@click.option("--expunge", is_flag=True, help="Also delete its raw bytes and texts for good.")
@click.option("--list", "show", is_flag=True, help="Print the log of every redaction instead.")
@click.pass_context
def redact(ctx: click.Context, message_id: str | None, reason: str | None, expunge: bool,
           show: bool) -> None:
    """Hide a message from pages, search, feeds and exports, leaving a tombstone in its thread.

    Example: archiver redact '<abc@example.org>' --reason "posted by mistake"
    """
    if show:
        with _archive(ctx) as archive:
            for row in archive.store.redactions():
                click.echo(f"{row['redacted_at']:%Y-%m-%d %H:%M} UTC  {row['message_id']}  "
                           f"{'expunged' if row['expunged'] else 'hidden'}  {row['reason']}")
        return
    if not message_id or not (reason or "").strip():
        raise click.UsageError("give a MESSAGE-ID and --reason (or --list)")
    with _archive(ctx, write=True) as archive:
        wanted = message_id.strip().strip("<>")
        if not archive.store.redact(wanted, reason.strip(), expunge):
            raise click.ClickException(f"no stored message has the Message-ID {message_id!r}")
        indexed = update_index(archive) if archive.index is not None else 0
    click.echo(f"redacted {wanted}{' (raw bytes and texts deleted)' if expunge else ''}; "
               f"search index updated ({indexed} changed)")


@main.command("check")
@click.option("--repair", is_flag=True, help="Mend the index where it differs from the store.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def check_command(ctx: click.Context, repair: bool, fmt: str) -> None:
    """Check the search index against the store: message counts, ids and content hashes.
    Exits with 0 when they agree, 1 when they differ (and were not repaired).

    Example: archiver check --repair
    """
    from . import check as checking

    with _archive(ctx, write=repair) as archive:
        found = checking.check(archive)
        mended = None
        if repair and (not found.agree or found.pending):
            # Rows waiting to be indexed are indexed again too (their texts cannot be compared).
            mended = checking.repair(archive, found)
            after = checking.check(archive)
        else:
            after = found
        if archive.index is not None:
            archive.index.close()
    if fmt == "json":
        data = found.as_dict()
        if mended is not None:
            data.update(repaired=mended, agree_after_repair=after.agree)
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        click.echo("\n".join(found.lines()))
        if mended is not None:
            click.echo(f"repaired: {mended['indexed']} documents indexed again, "
                       f"{mended['deleted']} deleted; "
                       + ("store and index agree now" if after.agree else "still differing:"))
            if not after.agree:
                click.echo("\n".join(after.lines()))
    if not after.agree:
        ctx.exit(1)


if __name__ == "__main__":
    main()
