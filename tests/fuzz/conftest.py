"""Hypothesis profiles of the fuzz suite: ``small`` by default (CI), ``deep`` on demand.

    VDATA_FUZZ_PROFILE=deep python -m pytest tests/fuzz -s -p no:cacheprovider

``deep`` draws at least 10,000 inputs per test; ``small`` a few hundred.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

_COMMON: dict[str, Any] = {
    "deadline": None,  # each input is a round trip to a real server
    "derandomize": False,
    "database": None,  # no .hypothesis folder left in the tree
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}
settings.register_profile("vdata-fuzz-small", max_examples=300, **_COMMON)
settings.register_profile("vdata-fuzz-deep", max_examples=10_000, **_COMMON)


def fuzz_settings() -> settings:
    """The profile chosen by VDATA_FUZZ_PROFILE (``small`` or ``deep``)."""
    name = os.environ.get("VDATA_FUZZ_PROFILE", "small")
    if name not in ("small", "deep"):
        raise ValueError(f"VDATA_FUZZ_PROFILE must be small or deep, not {name!r}")
    return settings.get_profile(f"vdata-fuzz-{name}")
