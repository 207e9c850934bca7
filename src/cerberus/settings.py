"""Settings: the only code that reads the environment, validated once at start-up.

A plain pydantic model that takes its missing fields from the environment by their exact
names. pydantic-settings did that here, but importing it (with dotenv and its cloud
sources) cost every process ~1 MiB of its 80 (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from cerberus.errors import ConfigurationError

DEFAULT_SECRET_KEY = "change-me-local-development-secret-key"
MIN_PRODUCTION_SECRET_LENGTH = 32

AppEnv = Literal["development", "test", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _split_list(value: Any) -> Any:
    """Accept a JSON list (`["a","b"]`, as the deployment guide writes it) or `a,b`."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


# A list setting arrives as one string (`_split_list`), never decoded as JSON beforehand.
StrList = list[str]


class Settings(BaseModel):
    """Every setting Cerberus reads; field names are the environment variable names.

    A value passed in wins over the environment, which wins over the default.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    def __init__(self, **values: Any) -> None:
        fields = type(self).model_fields
        environment = {name: value for name, value in os.environ.items() if name in fields}
        super().__init__(**{**environment, **values})

    # Application (deployment guide, Environment Variables Reference)
    APP_NAME: str = "cerberus"
    APP_ENV: AppEnv = "development"
    DEBUG: bool = False
    LOG_LEVEL: LogLevel = "INFO"

    # Database
    DATABASE_URL: str | None = None
    DATABASE_POOL_SIZE: int = Field(default=5, ge=1, le=500)
    DATABASE_MAX_OVERFLOW: int = Field(default=2, ge=0, le=500)
    RUN_MIGRATIONS_ON_STARTUP: bool = True
    DATA_DIR: Path = Path("data")

    # Cache
    REDIS_URL: str | None = None
    REDIS_POOL_SIZE: int = Field(default=5, ge=1, le=1000)
    CACHE_TTL_SECONDS: int = Field(default=300, ge=1)

    # People auth
    SECRET_KEY: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=60, ge=1)
    REFRESH_TOKEN_EXPIRE_DAYS: int = Field(default=7, ge=1)
    LOGIN_MAX_FAILURES: int = Field(default=5, ge=1)
    LOGIN_LOCKOUT_SECONDS: int = Field(default=300, ge=1)
    CERBERUS_ADMIN_EMAIL: str | None = None
    CERBERUS_ADMIN_PASSWORD: SecretStr | None = None

    # Agents and the proxy
    API_KEY_PREFIX: str = Field(default="sk-", min_length=1, max_length=16)
    CORS_ORIGINS: StrList = ["*"]
    ALLOWED_ORIGINS: StrList = []
    UPSTREAM_ALLOWED_HOSTS: StrList = []
    FORWARD_CLIENT_AUTHORIZATION: bool = False
    # Load balancers in front of the gateway that each append to X-Forwarded-For.
    TRUSTED_PROXY_HOPS: int = Field(default=0, ge=0, le=8)
    MCP_REQUEST_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0)
    MCP_MAX_RETRIES: int = Field(default=2, ge=0, le=10)
    MCP_MAX_KEEPALIVE_CONNECTIONS: int = Field(default=20, ge=1)
    MCP_MAX_CONNECTIONS: int = Field(default=100, ge=1)
    # 0: half of MCP_MAX_CONNECTIONS, so one slow or hung upstream (a tenant's) can never
    # hold every connection of the process and stall the calls to everyone else's.
    MCP_MAX_CONNECTIONS_PER_UPSTREAM: int = Field(default=0, ge=0)
    MCP_MAX_BODY_BYTES: int = Field(default=4 * 1024 * 1024, ge=1024)
    # 0: streams last as long as the upstream keeps them (a 2026-07-28 stream's end cancels
    # its request); App Runner, which cuts requests at 120 s, needs 110 (Terraform sets it).
    MCP_STREAM_MAX_SECONDS: float = Field(default=0.0, ge=0)

    # Audit
    AUDIT_BATCH_SIZE: int = Field(default=500, ge=1)
    AUDIT_FLUSH_INTERVAL_SECONDS: float = Field(default=0.5, gt=0)

    # Serving
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8000, ge=1, le=65535)
    WORKERS: int = Field(default=1, ge=1, le=64)

    _split = field_validator(
        "CORS_ORIGINS", "ALLOWED_ORIGINS", "UPSTREAM_ALLOWED_HOSTS", mode="before"
    )(_split_list)

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must start with postgresql+asyncpg:// or sqlite+aiosqlite://")
        if value.startswith("postgresql"):
            _check_server_address(value)
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        # Here, not at the top: the cache package imports this module.
        from cerberus.cache.resp import parse_url

        parse_url(value)  # a ValueError with the reason: pydantic names the variable
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.APP_ENV != "production":
            return self
        secret = self.SECRET_KEY.get_secret_value()
        if secret == DEFAULT_SECRET_KEY or len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
            raise ValueError(
                f"SECRET_KEY: production needs a random key of at least "
                f"{MIN_PRODUCTION_SECRET_LENGTH} characters, not the default"
            )
        if self.DEBUG:
            raise ValueError("DEBUG: must be false when APP_ENV=production")
        if not (self.DATABASE_URL or "").startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL: production needs a postgresql+asyncpg:// database")
        return self

    @property
    def database_url(self) -> str:
        """The configured database, or a SQLite file in DATA_DIR so nothing needs installing."""
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite+aiosqlite:///{(self.DATA_DIR / 'cerberus.db').resolve()}"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def _check_server_address(url: str) -> None:
    """A database server URL's credentials and port, checked before anything connects: a
    port that is no number failed each command with a traceback, and a password holding a
    plain `@` was split there, its end then shown in errors as part of the host. Read as
    SQLAlchemy reads it (a password runs to the first `@`, and may hold `/` or `?`). The
    messages never quote the URL, which holds the password."""
    match = _SERVER_URL.fullmatch(url)
    if match is None:
        raise ValueError("is not a database URL (scheme://user:password@host:port/name)")
    if "@" in (match["host"] or ""):
        raise ValueError("the password (or user) holds '@': write it as %40")
    port = match["port"]
    if port and not (port.isdecimal() and 1 <= int(port) <= 65535):
        raise ValueError("the port must be a number from 1 to 65535")


# sqlalchemy.engine.url's pattern, for the parts checked here (SQLAlchemy itself is not
# imported: `cerberus serve` with several workers supervises without it).
_SERVER_URL = re.compile(
    r"[\w+]+://(?:[^:/]*(?::[^@]*)?@)?(?:\[[^/?]+\]|(?P<host>[^/:?]+))?"
    r"(?::(?P<port>[^/?]*))?(?:/[^?]*)?(?:\?.*)?",
    re.DOTALL,
)


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; a bad value becomes one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not location:
        return f"invalid settings: {message}"
    return f"invalid setting {location}: {message}"
