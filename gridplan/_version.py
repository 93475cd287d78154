"""The package version (its own module, so that any module may read it without importing gridplan)."""

__version__ = "0.1.0"
