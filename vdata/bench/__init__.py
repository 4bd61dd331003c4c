"""``vdata bench``: vdata against raw asyncpg and SQLAlchemy, in one interleaved run.

Modules: ``runner`` (timing, repeats, progress), ``operations`` (the workload
and its seed SQL), ``contenders`` (vdata and raw asyncpg), ``orm``
(SQLAlchemy, optional), ``extras`` (authenticate, loop lag, streaming RSS,
audit writes), ``suite`` (one run), ``report`` (tables, JSON, Markdown, PNG).
"""

from __future__ import annotations

__all__: list[str] = []
