"""Turn Mailman list archives into a cleaned, threaded, lossless, searchable record."""

__version__ = "0.1.0"
