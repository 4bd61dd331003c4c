"""What the pool is created with: session settings and the TLS argument."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from vdata import Settings
from vdata.engine.connect import server_settings, ssl_argument, ssl_mode_name

CA = Path(ssl.get_default_verify_paths().cafile or "")


def test_timeouts_are_sent_in_milliseconds() -> None:
    settings = Settings.build(
        statement_timeout=2.5,
        lock_timeout=0.25,
        idle_in_transaction_session_timeout=0,
        application_name="svc",
    )
    assert server_settings(settings) == {
        "application_name": "svc",
        "statement_timeout": "2500",
        "lock_timeout": "250",
        "idle_in_transaction_session_timeout": "0",
    }


def test_no_sslmode_follows_the_dsn() -> None:
    assert ssl_argument(Settings()) is None
    assert ssl_mode_name(Settings()) == "from the DSN"


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require"])
def test_plain_modes_pass_through(mode: str) -> None:
    assert ssl_argument(Settings.build(sslmode=mode)) == mode


@pytest.mark.parametrize("mode", [None, "disable", "allow", "prefer"])
def test_require_ssl_upgrades_any_mode_that_allows_plain_text(mode: str | None) -> None:
    settings = Settings.build(sslmode=mode, require_ssl=True)
    assert ssl_argument(settings) == "require"
    assert ssl_mode_name(settings) == "require (require_ssl)"


def test_require_ssl_keeps_a_stricter_mode() -> None:
    context = ssl_argument(Settings.build(sslmode="verify-full", require_ssl=True))
    assert isinstance(context, ssl.SSLContext) and context.check_hostname


@pytest.mark.skipif(not CA.is_file(), reason="no system CA bundle to point sslrootcert at")
@pytest.mark.parametrize(
    ("mode", "checks_name"), [("verify-full", True), ("verify-ca", False), ("require", False)]
)
def test_verifying_modes_build_a_context_from_the_root_certificate(
    mode: str, checks_name: bool
) -> None:
    # libpq: require with a root certificate verifies the chain (as verify-ca).
    context = ssl_argument(Settings.build(sslmode=mode, sslrootcert=str(CA)))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is checks_name


def test_a_missing_root_certificate_file_fails_loudly() -> None:
    with pytest.raises(FileNotFoundError):
        ssl_argument(Settings.build(sslmode="verify-full", sslrootcert="/nonexistent/ca.crt"))
