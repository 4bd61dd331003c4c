"""``vdata bench``: vdata against raw asyncpg and SQLAlchemy, in one interleaved run.

Modules: ``runner`` (timing, repeats, progress), ``operations`` (the workload
and its seed SQL), ``calls`` (one call of each operation, vdata and raw
asyncpg), ``contenders`` (who runs the calls, and how), ``orm`` and
``orm_models`` (SQLAlchemy, optional), ``extras`` (authenticate, loop lag,
streaming RSS in ``stream``, audit writes), ``suite`` (one run), ``report``
and ``chart`` (tables, JSON, Markdown, PNG).
"""

from __future__ import annotations

__all__: list[str] = []
