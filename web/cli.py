"""The `archiver` command with `serve` added: the web app under a production WSGI server."""

from __future__ import annotations

import click

from archiver.cli import main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Requests served at once.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, threads: int) -> None:
    """Serve the archive's web pages with waitress (not Flask's development server).

    Example: archiver serve --port 8000
    """
    from waitress import serve as waitress_serve

    from . import create_app

    app = create_app({"DATA_DIR": ctx.obj["data"]} if ctx.obj["data"] else None)
    click.echo(f"serving the archive at http://{host}:{port}/ (Ctrl-C stops)")
    waitress_serve(app, host=host, port=port, threads=threads, ident="bestbits-archive")
