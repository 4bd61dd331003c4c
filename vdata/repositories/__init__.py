"""Repositories, one per area; ``Areas`` gives ``db.<area>`` and ``tx.<area>``."""

from __future__ import annotations

__all__ = ["Areas"]

from vdata.repositories._areas import Areas
