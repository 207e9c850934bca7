"""Each environment holds the values of the deployment guide's two settings tables."""

from __future__ import annotations

from typing import Any

import hcl2
import pytest

from cerberus.settings import Settings
from tests.infra.hcl import ENVS, INFRA, env_doc, locals_of, module_calls, named

# docs/deployment.md, "Staging vs Production Settings" (the deployment guide's table).
SETTINGS_TABLE: dict[str, dict[str, Any]] = {
    "stage": {
        "aurora.min_capacity": 0,
        "aurora.max_capacity": 2,
        "aurora.seconds_until_auto_pause": 5 * 60,
        "aurora.backup_retention_period": 1,
        "aurora.deletion_protection": False,
        "compute.cpu": "256",
        "compute.memory": "512",
        "compute.min_instances": 1,
        "compute.max_instances": 2,
        "compute.max_concurrency": 50,
        "valkey.node_type": "cache.t4g.micro",
        "env.LOG_LEVEL": "DEBUG",
        "budget.limit_usd": 10,
    },
    "prod": {
        "aurora.min_capacity": 0.5,
        "aurora.max_capacity": 8,
        "aurora.seconds_until_auto_pause": 60 * 60,
        "aurora.backup_retention_period": 7,
        "aurora.deletion_protection": True,
        "compute.cpu": "512",
        "compute.memory": "1024",
        "compute.min_instances": 1,
        "compute.max_instances": 5,
        "compute.max_concurrency": 100,
        "valkey.node_type": "cache.t4g.small",
        "env.LOG_LEVEL": "WARNING",
        "budget.limit_usd": 25,
    },
}

# "Environment Variables Reference": fixed values; the rest are checked for their source below.
ENV_TABLE: dict[str, dict[str, str]] = {
    "stage": {
        "APP_NAME": "cerberus",
        "APP_ENV": "staging",
        "DEBUG": "false",
        "LOG_LEVEL": "DEBUG",
        "DATABASE_POOL_SIZE": "5",
        "DATABASE_MAX_OVERFLOW": "2",
        "RUN_MIGRATIONS_ON_STARTUP": "true",
        "REDIS_POOL_SIZE": "5",
        "ACCESS_TOKEN_EXPIRE_MINUTES": "60",
        "REFRESH_TOKEN_EXPIRE_DAYS": "7",
        "API_KEY_PREFIX": "sk-",
        "MCP_REQUEST_TIMEOUT_SECONDS": "30.0",
        "MCP_MAX_RETRIES": "2",
        "MCP_MAX_KEEPALIVE_CONNECTIONS": "20",
        "MCP_MAX_CONNECTIONS": "100",
    },
    "prod": {
        "APP_NAME": "cerberus",
        "APP_ENV": "production",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_POOL_SIZE": "20",
        "DATABASE_MAX_OVERFLOW": "10",
        "RUN_MIGRATIONS_ON_STARTUP": "true",
        "REDIS_POOL_SIZE": "10",
        "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
        "REFRESH_TOKEN_EXPIRE_DAYS": "7",
        "API_KEY_PREFIX": "sk-",
        "MCP_REQUEST_TIMEOUT_SECONDS": "30.0",
        "MCP_MAX_RETRIES": "3",
        "MCP_MAX_KEEPALIVE_CONNECTIONS": "50",
        "MCP_MAX_CONNECTIONS": "200",
    },
}


def actual_settings(env: str) -> dict[str, Any]:
    calls = {name: args for name, (args, _) in module_calls(env).items()}
    local = locals_of(env_doc(env))
    got: dict[str, Any] = {}
    for key in SETTINGS_TABLE[env]:
        group, name = key.split(".")
        if group == "compute":
            got[key] = local["compute_size"][name]
            # Both compute modules take their size from that one place.
            for module in ("apprunner", "ecs_express"):
                if name in calls[module]:
                    assert calls[module][name] == f"${{local.compute_size.{name}}}"
        elif group == "env":
            got[key] = local["app_environment"][name]
        else:
            got[key] = calls[group][name]
    return got


@pytest.mark.parametrize("env", ENVS)
def test_the_settings_table_holds(env: str) -> None:
    assert actual_settings(env) == SETTINGS_TABLE[env]


@pytest.mark.parametrize("env", ENVS)
def test_the_environment_variables_table_holds(env: str) -> None:
    environment = locals_of(env_doc(env))["app_environment"]
    assert {k: environment[k] for k in ENV_TABLE[env]} == ENV_TABLE[env]
    assert environment["CORS_ORIGINS"] == "${var.cors_origins}"
    # The container must listen on every interface, on the port the health check uses.
    assert (environment["HOST"], environment["PORT"]) == ("0.0.0.0", "8000")
    # Auto-configured and from tfvars, for whichever compute runs.
    for module in ("apprunner", "ecs_express"):
        args = module_calls(env)[module][0]
        assert args["database_url"] == "${module.aurora.database_url}"
        assert args["redis_url"] == "${module.valkey.redis_url}"
        assert args["secret_key"] == "${var.secret_key}"


def example_tfvars(env: str) -> dict[str, Any]:
    with (INFRA / "environments" / env / "terraform.tfvars.example").open() as handle:
        return hcl2.load(handle)


@pytest.mark.parametrize("env", ENVS)
def test_the_container_environment_is_valid_cerberus_settings(env: str) -> None:
    environment = dict(locals_of(env_doc(env))["app_environment"])
    tfvars = example_tfvars(env)
    variables = named(env_doc(env), "variable")
    environment["CORS_ORIGINS"] = tfvars["cors_origins"]
    environment["ALLOWED_ORIGINS"] = variables["allowed_origins"]["default"]
    environment["DATABASE_URL"] = (
        "postgresql+asyncpg://cerberus_admin:pw@aurora.example:5432/cerberus"
    )
    environment["REDIS_URL"] = "rediss://:token@valkey.example:6379/0"
    environment["SECRET_KEY"] = "0" * 64
    assert set(environment) <= set(Settings.model_fields), "not a Cerberus setting"

    settings = Settings(**environment)

    assert SETTINGS_TABLE[env]["env.LOG_LEVEL"] == settings.LOG_LEVEL
    assert settings.MCP_STREAM_MAX_SECONDS < 120  # App Runner's request limit


def test_production_cors_is_restricted() -> None:
    assert "*" not in example_tfvars("prod")["cors_origins"]
    condition = named(env_doc("prod"), "variable")["cors_origins"]["validation"][0]["condition"]
    assert "!contains(" in condition
    assert example_tfvars("stage")["cors_origins"] == '["*"]'


@pytest.mark.parametrize("env", ENVS)
def test_the_example_tfvars_sets_every_required_variable(env: str) -> None:
    variables = named(env_doc(env), "variable")
    required = {name for name, body in variables.items() if "default" not in body}
    assert required <= set(example_tfvars(env))
    guide = {"aws_region", "db_username", "db_password", "secret_key", "image_tag", "cors_origins"}
    assert guide <= set(example_tfvars(env)) & set(variables)
