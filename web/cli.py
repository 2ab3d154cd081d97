"""The `archiver` command with `serve` added: the web app under a production WSGI server."""

from __future__ import annotations

import json
import os

import click

from archiver.cli import main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(0, 64), default=0,
              help="Server processes; 0 means one per core (at most 8).")
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Requests each process serves at once.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the archive's web pages with gunicorn (not Flask's development server).

    Example: archiver serve --port 8000
    """
    workers = workers or min(8, os.cpu_count() or 1)
    click.echo(f"serving the archive at http://{host}:{port}/ with {workers} processes "
               f"(Ctrl-C stops)")
    # Processes, not only threads: Python runs one thread at a time per process, and search
    # is CPU work, so a second core needs a second process.
    _Server({"DATA_DIR": ctx.obj["data"]} if ctx.obj["data"] else None,
            {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
             "worker_class": "gthread", "accesslog": None, "errorlog": "-",
             "loglevel": "warning", "timeout": 60, "graceful_timeout": 10}).run()


@main.command()
@click.argument("name")
@click.password_option(help="The password (asked twice, never echoed).")
def passwd(name: str, password: str) -> None:
    """Print a users-file line for NAME with a hash of their password (private lists).

    Example: archiver passwd alice >> users.toml   (under a [users] table)
    """
    from werkzeug.security import generate_password_hash

    click.echo(f"{json.dumps(name)} = {json.dumps(generate_password_hash(password))}")


def _server_base():
    from gunicorn.app.base import BaseApplication
    return BaseApplication


class _Server(_server_base()):
    """gunicorn run from Python: each worker builds its own app (and store connections) after
    the fork, so no SQLite connection or Whoosh searcher crosses a process boundary."""

    def __init__(self, test_config: dict | None, options: dict):
        self.test_config = test_config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app
        return create_app(self.test_config)
