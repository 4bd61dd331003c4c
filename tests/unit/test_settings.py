"""Settings: keyword arguments, VDATA_* variables, and clear errors for bad values."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vdata import Settings, ValidationError


def test_defaults_are_usable() -> None:
    settings = Settings()
    assert settings.pool_max_size >= settings.pool_min_size
    assert settings.statement_timeout > 0
    assert settings.argon2_memory_cost_kib >= 19 * 1024  # OWASP's minimum for argon2id


def test_from_env_reads_prefixed_variables_and_converts_types() -> None:
    env = {
        "VDATA_DSN": "postgresql://app@db/app",
        "VDATA_POOL_MAX_SIZE": "20",
        "VDATA_STATEMENT_TIMEOUT": "2.5",
        "VDATA_REQUIRE_SSL": "true",
        "VDATA_SSLMODE": "verify-full",
        "OTHER": "ignored",
    }
    settings = Settings.from_env(env)
    assert settings.dsn == "postgresql://app@db/app"
    assert settings.pool_max_size == 20
    assert settings.statement_timeout == 2.5
    assert settings.require_ssl is True
    assert settings.sslmode == "verify-full"


def test_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env({"VDATA_POOL_MAX_SIZE": "20"}, pool_max_size=3)
    assert settings.pool_max_size == 3


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("VDATA_POOL_MAX_SIZE", "0", ">= 1"),
        ("VDATA_POOL_MAX_SIZE", "many", "int"),
        ("VDATA_STATEMENT_TIMEOUT", "-1", ">= 0"),
        ("VDATA_SSLMODE", "sometimes", "one of"),
        ("VDATA_BREAKER_COOLDOWN_JITTER", "2", "<= 1"),
        ("VDATA_REQUIRE_SSL", "perhaps", "bool"),
    ],
)
def test_bad_environment_values_name_the_variable_and_the_expectation(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert variable in message
    assert expected in message
    assert value not in message.replace(variable, "")  # the value itself is not echoed


def test_bad_keyword_values_name_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.build(acquire_timeout=0)
    assert "acquire_timeout" in str(caught.value)


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.build(pool_maxsize=3)
    assert "pool_maxsize" in str(caught.value)


def test_replace_validates() -> None:
    base = Settings()
    assert base.replace(pool_max_size=7).pool_max_size == 7
    with pytest.raises(ValidationError):
        base.replace(pool_max_size=-7)


def test_repr_hides_the_password_and_secret_key() -> None:
    settings = Settings.build(
        dsn="postgresql://app:hunter2@db:5432/app", secret_key="topsecretkeyvalue1234"
    )
    for text in (repr(settings), str(settings)):
        assert "hunter2" not in text
        assert "topsecretkeyvalue1234" not in text
        assert "app:***@db:5432/app" in text


def test_secret_values_in_a_bad_setting_are_not_echoed() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"VDATA_DSN": "x", "VDATA_POOL_MIN_SIZE": "postgresql://u:pw@h/db"})
    assert "pw@" not in str(caught.value)


def test_a_short_secret_key_is_refused_when_settings_are_made() -> None:
    from vdata import ConfigurationError

    with pytest.raises(ValidationError) as caught:
        Settings.from_env(env={"VDATA_SECRET_KEY": "too-short-key"})
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.field == "VDATA_SECRET_KEY"
    assert "VDATA_SECRET_KEY" in str(caught.value) and "16 bytes" in str(caught.value)
    assert "too-short-key" not in str(caught.value)
    makers: tuple[Callable[[], Settings], ...] = (
        lambda: Settings(secret_key="too-short-key"),
        lambda: Settings.build(secret_key="too-short-key"),
        lambda: Settings.from_env(env={}).replace(secret_key="too-short-key"),
    )
    for make in makers:
        with pytest.raises(ConfigurationError) as caught:
            make()
        assert caught.value.field == "secret_key"
    assert Settings(secret_key="").secret_key == ""
    assert Settings(secret_key="x" * 16).secret_key == "x" * 16
