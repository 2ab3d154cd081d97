"""Alembic's environment: run the store's revisions on the connection archiver.migrations hands over."""

from alembic import context

from archiver import schema
from archiver.migrations import include_for

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    # Every run goes through archiver.migrations, which opens the connection and holds the
    # lock; SQL scripts (--sql) are not offered.
    raise RuntimeError("run migrations through archiver.migrations (archiver db upgrade)")
context.configure(connection=connection, target_metadata=schema.metadata,
                  include_object=include_for(connection.dialect.name),
                  # SQLite alters most things only by copying a table: Alembic's batch mode.
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
