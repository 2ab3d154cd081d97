"""ArchiverError and its few narrow children."""


class ArchiverError(Exception):
    """Base of every error the library raises on purpose."""


class SourceError(ArchiverError):
    """A source could not be opened or recognised."""


class ParseError(ArchiverError):
    """Raw bytes could not be read as a mail message at all."""


class StoreError(ArchiverError):
    """The store could not be opened or written."""


class QueryError(ArchiverError):
    """A search query that cannot be run; the message says what is wrong."""
