"""What `terraform plan` would create holds the deployment guide's tables, for each compute.

Run by run.sh after plan_check.py, with PLANS_DIR holding <env>-<compute>.json plans
(`terraform show -json`); not part of `make test`, which has no Terraform.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.infra.test_settings_table import ENV_TABLE, SETTINGS_TABLE

from cerberus.settings import Settings

PLANS = Path(os.environ.get("PLANS_DIR", ".tools/plans"))
SECRET = "0123456789abcdef" * 4
CASES = [(env, compute) for env in ("stage", "prod") for compute in ("apprunner", "ecs_express")]


class Plan:
    def __init__(self, env: str, compute: str) -> None:
        self.data = json.loads((PLANS / f"{env}-{compute}.json").read_text())
        self.changes = {rc["address"]: rc["change"] for rc in self.data["resource_changes"]}

    def of_type(self, rtype: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [
            (rc["change"]["after"], rc["change"]["after_unknown"])
            for rc in self.data["resource_changes"]
            if rc["type"] == rtype
        ]

    def one(self, rtype: str) -> tuple[dict[str, Any], dict[str, Any]]:
        (found,) = self.of_type(rtype)
        return found

    def output(self, name: str) -> Any:
        return self.data["planned_values"]["outputs"][name].get("value")


@pytest.fixture(params=CASES, ids=[f"{e}-{c}" for e, c in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str, Plan]:
    env, compute = request.param
    return env, compute, Plan(env, compute)


def compute_environment(plan: Plan, compute: str) -> tuple[dict[str, Any], set[str]]:
    """The container's environment as planned, and the names whose values are unknown yet."""
    if compute == "apprunner":
        after, unknown = plan.one("aws_apprunner_service")
        image = after["source_configuration"][0]["image_repository"][0]["image_configuration"][0]
        image_unknown = unknown["source_configuration"][0]["image_repository"][0]
        pending = image_unknown["image_configuration"][0]["runtime_environment_variables"]
        return image["runtime_environment_variables"], set(pending)
    after, unknown = plan.one("aws_ecs_express_gateway_service")
    entries = after["primary_container"][0]["environment"]
    flags = unknown["primary_container"][0]["environment"]
    values = {e["name"]: e.get("value") for e in entries}  # unknown values are left out
    pending = {e["name"] for e, f in zip(entries, flags, strict=True) if f.get("value")}
    return values, pending


def test_only_the_chosen_compute_is_created(case: tuple[str, str, Plan]) -> None:
    _, compute, plan = case
    assert bool(plan.of_type("aws_apprunner_service")) == (compute == "apprunner")
    assert bool(plan.of_type("aws_ecs_express_gateway_service")) == (compute == "ecs_express")
    assert plan.output("compute") == compute


def test_the_container_gets_the_environment_variables_table(case: tuple[str, str, Plan]) -> None:
    env, compute, plan = case
    values, pending = compute_environment(plan, compute)
    assert {k: values[k] for k in ENV_TABLE[env]} == ENV_TABLE[env]
    assert pending == {"DATABASE_URL", "REDIS_URL"}  # known once Aurora and Valkey exist
    assert values["SECRET_KEY"] == SECRET
    assert (values["HOST"], values["PORT"]) == ("0.0.0.0", "8000")
    assert set(values) <= set(Settings.model_fields)
    assert float(values["MCP_STREAM_MAX_SECONDS"]) < 120
    cors = json.loads(values["CORS_ORIGINS"])
    assert (cors == ["*"]) if env == "stage" else ("*" not in cors)


def test_compute_size_and_scaling(case: tuple[str, str, Plan]) -> None:
    env, compute, plan = case
    table = SETTINGS_TABLE[env]
    if compute == "apprunner":
        service, _ = plan.one("aws_apprunner_service")
        assert service["instance_configuration"] == [
            {"cpu": table["compute.cpu"], "memory": table["compute.memory"]}
        ]
        health = service["health_check_configuration"][0]
        assert (health["protocol"], health["path"]) == ("HTTP", "/health")
        scaling, _ = plan.one("aws_apprunner_auto_scaling_configuration_version")
        got = (scaling["min_size"], scaling["max_size"], scaling["max_concurrency"])
        assert got == (
            table["compute.min_instances"],
            table["compute.max_instances"],
            table["compute.max_concurrency"],
        )
    else:
        service, _ = plan.one("aws_ecs_express_gateway_service")
        assert (service["cpu"], service["memory"]) == (
            table["compute.cpu"],
            table["compute.memory"],
        )
        assert service["health_check_path"] == "/health"
        target = service["scaling_target"][0]
        got = (target["min_task_count"], target["max_task_count"])
        assert got == (table["compute.min_instances"], table["compute.max_instances"])


def test_aurora_and_valkey_as_the_table_says(case: tuple[str, str, Plan]) -> None:
    env, _, plan = case
    table = SETTINGS_TABLE[env]
    cluster, _ = plan.one("aws_rds_cluster")
    scaling = cluster["serverlessv2_scaling_configuration"][0]
    assert (scaling["min_capacity"], scaling["max_capacity"]) == (
        table["aurora.min_capacity"],
        table["aurora.max_capacity"],
    )
    # Sent only at 0 ACU; above it AWS decides (the plan shows it as unknown).
    pause = table["aurora.seconds_until_auto_pause"] if table["aurora.min_capacity"] == 0 else None
    assert scaling.get("seconds_until_auto_pause") == pause
    assert cluster["backup_retention_period"] == table["aurora.backup_retention_period"]
    assert cluster["deletion_protection"] is table["aurora.deletion_protection"]
    assert cluster["storage_encrypted"] is True
    assert cluster["cluster_identifier"] == f"cerberus-{env}-aurora-cluster"
    cache, _ = plan.one("aws_elasticache_replication_group")
    assert cache["node_type"] == table["valkey.node_type"]
    assert (cache["engine"], cache["transit_encryption_enabled"]) == ("valkey", True)
    assert cache["transit_encryption_mode"] == "required"


def test_only_the_compute_group_reaches_5432_and_6379(case: tuple[str, str, Plan]) -> None:
    _, compute, plan = case
    ingress = sorted(r["from_port"] for r, _ in plan.of_type("aws_vpc_security_group_ingress_rule"))
    assert ingress == [5432, 6379]
    for rule, unknown in plan.of_type("aws_vpc_security_group_ingress_rule"):
        assert rule.get("cidr_ipv4") is None
        assert unknown["referenced_security_group_id"]  # the compute group, created alongside
    egress = sorted(r["from_port"] for r, _ in plan.of_type("aws_vpc_security_group_egress_rule"))
    assert egress == ([443, 5432, 6379] if compute == "ecs_express" else [5432, 6379])


def test_budget_ecr_and_outputs(case: tuple[str, str, Plan]) -> None:
    env, _, plan = case
    budget, _ = plan.one("aws_budgets_budget")
    assert float(budget["limit_amount"]) == SETTINGS_TABLE[env]["budget.limit_usd"]
    alerts = sorted((n["threshold"], n["notification_type"]) for n in budget["notification"])
    assert alerts == [(50, "FORECASTED"), (80, "ACTUAL"), (100, "ACTUAL")]
    repo, _ = plan.one("aws_ecr_repository")
    assert repo["image_scanning_configuration"] == [{"scan_on_push": True}]
    lifecycle, _ = plan.one("aws_ecr_lifecycle_policy")
    assert {r["action"]["type"] for r in json.loads(lifecycle["policy"])["rules"]} == {"expire"}
    outputs = plan.data["planned_values"]["outputs"]
    for name in ("app_url", "ecr_repository_url", "apprunner_service_arn", "aurora_endpoint"):
        assert name in outputs
    assert "apprunner_security_group_id" in outputs
    assert plan.output("service_name") == f"cerberus-{env}-service"
