"""The store's revisions, one file each, in order; Alembic reads them by path, never imports them."""
