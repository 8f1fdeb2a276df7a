"""The package's version: the one place it is written (the wheel's metadata reads it here)."""

__version__ = "0.1.0"
