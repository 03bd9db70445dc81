"""The package version, in a leaf module so every layer can read it without importing
the package root (which lazily re-exports the whole API)."""

__version__ = "0.1.0"
