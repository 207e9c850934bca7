"""The Terraform tree is wired together and keeps the guide's security properties."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra.hcl import (
    ENVS,
    INFRA,
    META_ARGS,
    MODULES,
    REF_MODULE_OUT,
    REF_VAR,
    env_doc,
    load_dir,
    module_calls,
    module_dirs,
    named,
    of_type,
    resources,
    strings,
)

GUIDE_MODULES = ("aurora", "valkey", "apprunner", "ecr", "budget")
COMPUTE_MODULES = ("apprunner", "ecs_express")
REQUIRED_OUTPUTS = (
    "app_url",
    "ecr_repository_url",
    "apprunner_service_arn",
    "aurora_endpoint",
    "apprunner_security_group_id",
)


def test_the_guides_layout_exists() -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf"):
        assert (INFRA / "bootstrap" / name).is_file()
        for module in (*GUIDE_MODULES, "ecs_express", "network"):
            assert (MODULES / module / name).is_file(), f"modules/{module}/{name}"
    for env in ENVS:
        for name in ("main.tf", "variables.tf", "outputs.tf", "terraform.tfvars.example"):
            assert (INFRA / "environments" / env / name).is_file(), f"{env}/{name}"
    for script in ("bootstrap", "deploy-stage", "deploy-prod", "destroy-stage", "destroy-prod"):
        path = INFRA / "scripts" / f"{script}.sh"
        assert path.stat().st_mode & 0o111, f"{path} must be executable"
        assert "set -euo pipefail" in path.read_text()


@pytest.mark.parametrize("env", ENVS)
def test_every_module_variable_is_passed_and_nothing_else(env: str) -> None:
    problems = []
    for name, (args, directory) in module_calls(env).items():
        assert directory.is_dir(), f"{env}: module {name} source {directory} missing"
        declared = set(named(load_dir(directory), "variable"))
        passed = set(args) - META_ARGS
        problems += [f"{env}: module.{name} does not pass {v!r}" for v in declared - passed]
        problems += [f"{env}: module.{name} passes undeclared {v!r}" for v in passed - declared]
    assert not problems, "\n".join(sorted(problems))


@pytest.mark.parametrize("env", ENVS)
def test_referenced_module_outputs_exist(env: str) -> None:
    calls = module_calls(env)
    problems = []
    for text in strings(env_doc(env)):
        for module, output in REF_MODULE_OUT.findall(text):
            if module not in calls:
                problems.append(f"{env}: unknown module {module!r} in {text!r}")
            elif output not in named(load_dir(calls[module][1]), "output"):
                problems.append(f"{env}: module.{module}.{output} is not an output")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "directory",
    [INFRA / "bootstrap", *[INFRA / "environments" / e for e in ENVS], *module_dirs()],
    ids=lambda p: str(p.relative_to(INFRA)),
)
def test_var_references_are_declared(directory: Path) -> None:
    doc = load_dir(directory)
    used = {v for text in strings(doc) for v in REF_VAR.findall(text)}
    assert used <= set(named(doc, "variable")), (
        f"undeclared: {sorted(used - set(named(doc, 'variable')))}"
    )


@pytest.mark.parametrize("env", ENVS)
def test_environment_outputs_and_s3_backend(env: str) -> None:
    doc = env_doc(env)
    assert set(REQUIRED_OUTPUTS) <= set(named(doc, "output"))
    backend = doc["terraform"][0]["backend"][0]["s3"]
    assert backend["bucket"] == "cerberus-mcp-terraform-state"
    assert backend["key"] == f"{env}/terraform.tfstate"
    assert backend["dynamodb_table"] == "cerberus-terraform-locks"
    assert backend["encrypt"] is True


@pytest.mark.parametrize("env", ENVS)
def test_compute_is_selectable_with_app_runner_the_default(env: str) -> None:
    compute = named(env_doc(env), "variable")["compute"]
    assert compute["default"] == "apprunner"
    condition = compute["validation"][0]["condition"]
    assert condition == "${contains([apprunner, ecs_express], var.compute)}"  # hcl2 drops quotes
    calls = module_calls(env)
    for module in COMPUTE_MODULES:
        assert calls[module][0]["count"] == f'${{var.compute == "{module}" ? 1 : 0}}'
    # The two compute modules get the same database, cache and security group.
    shared = ("security_group_id", "subnet_ids", "database_url", "redis_url", "environment")
    for arg in shared:
        assert calls["apprunner"][0][arg] == calls["ecs_express"][0][arg], arg


def test_compute_modules_have_the_same_outputs() -> None:
    outputs = [set(named(load_dir(MODULES / m), "output")) for m in COMPUTE_MODULES]
    assert outputs[0] == outputs[1] == {"service_url", "service_arn", "service_name"}


def all_module_resources() -> dict[tuple[str, str, str], dict[str, object]]:
    return {
        (d.name, t, n): body
        for d in module_dirs()
        for (t, n), body in resources(load_dir(d)).items()
    }


def test_security_groups_admit_only_the_compute_group_on_5432_and_6379() -> None:
    everything = all_module_resources()
    for (module, rtype, name), body in everything.items():
        if rtype == "aws_security_group":
            assert not {"ingress", "egress"} & set(body), f"{module}.{name}: inline rules"
    ingress = {
        (m, body["from_port"], body["to_port"], body["referenced_security_group_id"])
        for (m, t, _), body in everything.items()
        if t == "aws_vpc_security_group_ingress_rule"
    }
    assert ingress == {
        ("aurora", 5432, 5432, "${var.app_security_group_id}"),
        ("valkey", 6379, 6379, "${var.app_security_group_id}"),
    }
    assert not [t for (_, t, _) in everything if t == "aws_security_group_rule"]
    egress = {
        (m, body["from_port"], body.get("referenced_security_group_id", body.get("cidr_ipv4")))
        for (m, t, _), body in everything.items()
        if t == "aws_vpc_security_group_egress_rule"
    }
    assert egress == {
        ("aurora", 5432, "${aws_security_group.aurora.id}"),
        ("valkey", 6379, "${aws_security_group.valkey.id}"),
        # Fargate pulls images itself; App Runner does not need this rule.
        ("ecs_express", 443, "0.0.0.0/0"),
    }


def test_aurora_is_encrypted_serverless_v2() -> None:
    doc = load_dir(MODULES / "aurora")
    (cluster,) = of_type(doc, "aws_rds_cluster")
    assert cluster["storage_encrypted"] is True
    assert cluster["engine"] == "aurora-postgresql"
    assert cluster["engine_mode"] == "provisioned"
    assert cluster["cluster_identifier"] == "${var.name}-aurora-cluster"
    scaling = cluster["serverlessv2_scaling_configuration"][0]
    # AWS keeps seconds_until_auto_pause only at 0 ACU; sending it above would drift forever.
    assert scaling["seconds_until_auto_pause"] == (
        "${var.min_capacity == 0 ? var.seconds_until_auto_pause : null}"
    )
    (instance,) = of_type(doc, "aws_rds_cluster_instance")
    assert instance["instance_class"] == "db.serverless"
    assert instance["publicly_accessible"] is False


def test_valkey_encrypts_in_transit_so_redis_url_is_rediss() -> None:
    doc = load_dir(MODULES / "valkey")
    (group,) = of_type(doc, "aws_elasticache_replication_group")
    assert group["engine"] == "valkey"
    assert group["transit_encryption_enabled"] is True
    assert group["transit_encryption_mode"] == "required"
    assert group["at_rest_encryption_enabled"] is True
    assert named(doc, "output")["redis_url"]["value"].startswith("rediss://")


def test_ecr_scans_on_push_and_expires_old_images() -> None:
    doc = load_dir(MODULES / "ecr")
    (repo,) = of_type(doc, "aws_ecr_repository")
    assert repo["image_scanning_configuration"][0]["scan_on_push"] is True
    (policy,) = of_type(doc, "aws_ecr_lifecycle_policy")
    assert "expire" in policy["policy"]


def test_budget_alerts_at_50_forecast_and_80_100_actual() -> None:
    (budget,) = of_type(load_dir(MODULES / "budget"), "aws_budgets_budget")
    got = sorted((n["threshold"], n["notification_type"]) for n in budget["notification"])
    assert got == [(50, "FORECASTED"), (80, "ACTUAL"), (100, "ACTUAL")]
    assert {n["threshold_type"] for n in budget["notification"]} == {"PERCENTAGE"}


def test_app_runner_checks_health_on_port_8000_through_the_vpc() -> None:
    (service,) = of_type(load_dir(MODULES / "apprunner"), "aws_apprunner_service")
    health = service["health_check_configuration"][0]
    assert (health["protocol"], health["path"]) == ("HTTP", "/health")
    image = service["source_configuration"][0]["image_repository"][0]
    assert image["image_repository_type"] == "ECR"
    assert image["image_configuration"][0]["port"] == "${tostring(var.container_port)}"
    egress = service["network_configuration"][0]["egress_configuration"][0]
    assert egress["egress_type"] == "VPC"
    (express,) = of_type(load_dir(MODULES / "ecs_express"), "aws_ecs_express_gateway_service")
    assert express["health_check_path"] == "/health"
    for env in ENVS:
        assert "container_port = 8000" in (INFRA / "environments" / env / "main.tf").read_text()


def test_state_bucket_is_versioned_encrypted_and_private() -> None:
    doc = load_dir(INFRA / "bootstrap")
    (bucket,) = of_type(doc, "aws_s3_bucket")
    assert bucket["bucket"] == "${var.state_bucket_name}"
    assert named(doc, "variable")["state_bucket_name"]["default"] == "cerberus-mcp-terraform-state"
    (versioning,) = of_type(doc, "aws_s3_bucket_versioning")
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    assert of_type(doc, "aws_s3_bucket_server_side_encryption_configuration")
    (block,) = of_type(doc, "aws_s3_bucket_public_access_block")
    flags = (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    )
    assert all(block[flag] is True for flag in flags)
    (lock,) = of_type(doc, "aws_dynamodb_table")
    assert lock["name"] == "${var.lock_table_name}"
    assert lock["hash_key"] == "LockID"
    assert named(doc, "variable")["lock_table_name"]["default"] == "cerberus-terraform-locks"


SKIP = re.compile(r"checkov:skip=([A-Z0-9_]*)(?::(.*))?")


def test_every_checkov_suppression_names_a_check_and_a_reason() -> None:
    found = 0
    for path in INFRA.rglob("*.tf"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for check, reason in SKIP.findall(line):
                found += 1
                where = f"{path.relative_to(INFRA)}:{number}"
                assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", check), f"{where}: bad check id"
                assert len(reason.strip()) >= 20, f"{where}: {check} needs a reason"
    assert found > 0
    assert not list(INFRA.rglob(".checkov*")), "suppress inline, with a reason, not in a config"


REF_LOCAL = re.compile(r"\blocal\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?")


@pytest.mark.parametrize("env", ENVS)
def test_local_references_exist(env: str) -> None:
    doc = env_doc(env)
    declared = {k: v for item in doc.get("locals", []) for k, v in item.items()}
    problems = []
    for text in strings(doc):
        for name, key in REF_LOCAL.findall(text):
            if name not in declared:
                problems.append(f"{env}: local.{name} is not declared")
            elif key and isinstance(declared[name], dict) and key not in declared[name]:
                problems.append(f"{env}: local.{name} has no key {key!r}")
    assert not problems, "\n".join(problems)
