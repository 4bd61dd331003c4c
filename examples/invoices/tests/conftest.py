"""Settings for the plugin's vdata_db and vdata_tx fixtures."""

from __future__ import annotations

import secrets

import pytest
import vdata

# Keyset cursors are signed. Without vdata's bundled migrations the database
# holds no signing key, so the service gives one (in production:
# VDATA_SECRET_KEY, the same on every instance).
_CURSOR_KEY = secrets.token_hex(16)


@pytest.fixture
def vdata_settings() -> vdata.Settings:
    return vdata.Settings.build(secret_key=_CURSOR_KEY)
