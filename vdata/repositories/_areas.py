"""The ``<area>`` attributes shared by Database and Transaction."""

from __future__ import annotations

__all__ = ["Areas"]


class Areas:
    """Mixin: one repository per area, bound to ``self`` as its executor.

    Each area is a ``functools.cached_property``, so every access after the
    first is a plain attribute lookup, which matters on the hot path
    (``db.users.get``). Imports are local so that importing vdata does not
    load every repository.
    """

    actor: str | None
