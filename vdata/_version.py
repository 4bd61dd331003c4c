"""The installed distribution's version, read once from its metadata."""

from __future__ import annotations

__all__ = ["DISTRIBUTION", "__version__"]

from importlib import metadata

# The import name is ``vdata``; the name on the package index is this one.
DISTRIBUTION = "vdata-pg"

try:
    __version__ = metadata.version(DISTRIBUTION)
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"
