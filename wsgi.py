"""WSGI entry point for any server: `app = create_app()` over the configured data directory."""

from web import create_app

app = create_app()
