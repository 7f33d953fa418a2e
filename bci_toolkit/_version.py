"""The toolkit's version (read by the build backend and written into every artifact)."""

__version__ = "0.1.0"
