from pathlib import Path

import pytest

from cerberus.errors import ConfigurationError
from cerberus.settings import DEFAULT_SECRET_KEY, Settings, load_settings

GOOD_SECRET = "x" * 40
PG_URL = "postgresql+asyncpg://cerberus@db.internal:5432/cerberus"

GUIDE_VARIABLES = [
    "APP_NAME",
    "APP_ENV",
    "DEBUG",
    "LOG_LEVEL",
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "DATABASE_MAX_OVERFLOW",
    "RUN_MIGRATIONS_ON_STARTUP",
    "REDIS_URL",
    "REDIS_POOL_SIZE",
    "SECRET_KEY",
    "ACCESS_TOKEN_EXPIRE_MINUTES",
    "REFRESH_TOKEN_EXPIRE_DAYS",
    "API_KEY_PREFIX",
    "CORS_ORIGINS",
    "MCP_REQUEST_TIMEOUT_SECONDS",
    "MCP_MAX_RETRIES",
    "MCP_MAX_KEEPALIVE_CONNECTIONS",
    "MCP_MAX_CONNECTIONS",
]


def test_every_variable_of_the_deployment_guide_is_a_setting() -> None:
    assert set(GUIDE_VARIABLES) <= set(Settings.model_fields)


def test_every_setting_is_documented_in_configuration_md(repo_root: Path) -> None:
    doc = (repo_root / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in doc]
    assert missing == []


def test_defaults_run_on_the_embedded_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(DATA_DIR=tmp_path)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'cerberus.db'}"
    assert settings.REDIS_URL is None
    assert settings.API_KEY_PREFIX == "sk-"


def test_environment_variables_are_read_with_their_guide_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "20")
    monkeypatch.setenv("MCP_REQUEST_TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    settings = load_settings()
    assert settings.DATABASE_POOL_SIZE == 20
    assert settings.MCP_REQUEST_TIMEOUT_SECONDS == 12.5
    assert settings.CORS_ORIGINS == ["https://a.example", "https://b.example"]


def test_a_value_passed_in_wins_over_the_environment_which_wins_over_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "20")
    monkeypatch.setenv("MCP_MAX_RETRIES", "4")
    settings = Settings(DATABASE_POOL_SIZE=7)
    assert settings.DATABASE_POOL_SIZE == 7
    assert settings.MCP_MAX_RETRIES == 4
    assert settings.MCP_MAX_CONNECTIONS == 100


def test_names_are_matched_exactly_and_other_variables_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("database_pool_size", "20")
    monkeypatch.setenv("CERBERUS_NOT_A_SETTING", "x")
    assert load_settings().DATABASE_POOL_SIZE == 5


def test_boolean_variables_take_the_usual_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("RUN_MIGRATIONS_ON_STARTUP", "0")
    settings = load_settings()
    assert settings.DEBUG is True
    assert settings.RUN_MIGRATIONS_ON_STARTUP is False


def test_comma_separated_lists_are_accepted_too() -> None:
    assert Settings(CORS_ORIGINS="https://a.example, https://b.example").CORS_ORIGINS == [  # type: ignore[arg-type]
        "https://a.example",
        "https://b.example",
    ]


def test_invalid_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_MAX_RETRIES", "lots")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "MCP_MAX_RETRIES" in message
    assert "\n" not in message


def test_unknown_database_driver_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings(DATABASE_URL="mysql://root@localhost/cerberus")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SECRET_KEY": DEFAULT_SECRET_KEY, "DATABASE_URL": PG_URL}, "SECRET_KEY"),
        ({"SECRET_KEY": "short", "DATABASE_URL": PG_URL}, "SECRET_KEY"),
        ({"SECRET_KEY": GOOD_SECRET, "DATABASE_URL": PG_URL, "DEBUG": True}, "DEBUG"),
        ({"SECRET_KEY": GOOD_SECRET}, "DATABASE_URL"),
        ({"SECRET_KEY": GOOD_SECRET, "DATABASE_URL": "sqlite+aiosqlite:///x.db"}, "DATABASE_URL"),
    ],
)
def test_production_refuses_unsafe_settings_with_a_reason(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(APP_ENV="production", **overrides)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_production_accepts_safe_settings() -> None:
    settings = load_settings(APP_ENV="production", SECRET_KEY=GOOD_SECRET, DATABASE_URL=PG_URL)
    assert settings.is_postgres


def test_secret_key_is_not_shown_in_the_settings_repr() -> None:
    assert GOOD_SECRET not in repr(Settings(SECRET_KEY=GOOD_SECRET))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://app:pa/ss@db:5432/cerberus",  # a password may hold / and ?
        "postgresql+asyncpg://app:pa?ss@db:5432/cerberus",
        "postgresql+asyncpg://app:p%40ss@db:5432/cerberus?ssl=require",
        "postgresql+asyncpg://app:pw@[::1]:5432/cerberus",
        "postgresql+asyncpg://app@db/cerberus",
        "postgresql+asyncpg:///cerberus?host=/run/postgresql",
    ],
)
def test_a_database_url_sqlalchemy_reads_is_accepted(url: str) -> None:
    # The first check of the URL's port cut it at the first / or ?, so a password holding
    # one was refused as a bad port.
    assert url == load_settings(DATABASE_URL=url).DATABASE_URL
