"""The deploy and destroy scripts run against recording stand-ins for aws, terraform and docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.fakes import ACCOUNT, REGION, Run, Sandbox

REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
STAGE_ARN = f"arn:aws:apprunner:{REGION}:{ACCOUNT}:service/cerberus-stage-service/abc"


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def tf(sandbox: Sandbox, env: str, args: str) -> str:
    return f"terraform -chdir={sandbox.env_dir(env)} {args}"


def assert_in_order(run: Run, *prefixes: str) -> None:
    positions = [run.index(prefix) for prefix in prefixes]
    assert positions == sorted(positions), "calls out of order:\n" + "\n".join(run.calls)


def assert_nothing_created(run: Run) -> None:
    assert not [c for c in run.calls if c.startswith(("terraform", "docker build", "docker push"))]
    assert not [c for c in run.calls if c.startswith(("aws ecr", "aws apprunner", "aws rds"))]


def test_deploy_stage_runs_step_3_in_order_with_the_given_tag(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-stage.sh", "v1.2.3")

    assert run.returncode == 0, run.stderr
    repo = f"{REGISTRY}/cerberus-stage"
    root = sandbox.root
    assert run.calls == [
        "docker info",
        "aws sts get-caller-identity --query Account --output text",
        tf(sandbox, "stage", "init -input=false"),
        tf(
            sandbox,
            "stage",
            "apply -input=false -auto-approve -target=module.ecr -var image_tag=v1.2.3",
        ),
        # The region comes from the repository's address: on a first deployment the
        # targeted apply has not written the aws_region output (the fake does the same).
        tf(sandbox, "stage", "output -raw ecr_repository_url"),
        "docker build --platform linux/amd64 --target prod -t cerberus:v1.2.3 "
        f"-f {root}/docker/Dockerfile {root}",
        f"aws ecr get-login-password --region {REGION}",
        f"docker login --username AWS --password-stdin {REGISTRY} <<< ecr-password",
        f"docker tag cerberus:v1.2.3 {repo}:v1.2.3",
        f"docker push {repo}:v1.2.3",
        tf(sandbox, "stage", "apply -input=false -auto-approve -var image_tag=v1.2.3"),
        tf(sandbox, "stage", "output -raw compute"),
        tf(sandbox, "stage", "output -raw apprunner_service_arn"),
        tf(sandbox, "stage", "output -raw service_name"),
        f"aws apprunner start-deployment --service-arn {STAGE_ARN} --region {REGION}",
        f"aws apprunner describe-service --service-arn {STAGE_ARN} --region {REGION} "
        "--query Service.Status --output text",
        f"aws apprunner list-operations --service-arn {STAGE_ARN} --region {REGION} "
        "--max-results 1 --query OperationSummaryList[0].Status --output text",
        tf(sandbox, "stage", "output -raw app_url"),
        tf(sandbox, "stage", "output -raw app_url"),
    ]
    assert "Cerberus (stage) is at: https://stage.example.awsapprunner.com" in run.stdout


def test_deploy_stage_defaults_to_the_latest_tag(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-stage.sh")

    assert run.returncode == 0, run.stderr
    assert run.called(f"docker push {REGISTRY}/cerberus-stage:latest")
    assert run.called(
        tf(sandbox, "stage", "apply -input=false -auto-approve -var image_tag=latest")
    )


def test_deploy_prod_needs_an_explicit_yes(sandbox: Sandbox) -> None:
    for answer in ("", "no\n", "y\n"):
        run = sandbox.run("deploy-prod.sh", "v2.0.0", stdin=answer)

        assert run.returncode == 1
        assert "not confirmed" in run.stderr
        assert_nothing_created(run)


def test_deploy_prod_after_yes_deploys_to_the_prod_environment(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-prod.sh", "v2.0.0", stdin="yes\n")

    assert run.returncode == 0, run.stderr
    assert "PRODUCTION" in run.stdout
    assert_in_order(
        run,
        "aws sts get-caller-identity",
        tf(
            sandbox,
            "prod",
            "apply -input=false -auto-approve -target=module.ecr -var image_tag=v2.0.0",
        ),
        "docker build --platform linux/amd64 --target prod -t cerberus:v2.0.0",
        f"docker push {REGISTRY}/cerberus-prod:v2.0.0",
        tf(sandbox, "prod", "apply -input=false -auto-approve -var image_tag=v2.0.0"),
        "aws apprunner start-deployment",
        "aws apprunner describe-service",
    )
    assert not run.called(tf(sandbox, "stage", ""))
    assert "Cerberus (prod) is at: https://prod.example.awsapprunner.com" in run.stdout


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("aws", "AWS CLI not found"),
        ("terraform", "Terraform not found"),
        ("docker", "Docker not found"),
    ],
)
def test_a_missing_tool_stops_deploy_before_anything_is_created(
    tmp_path: Path, missing: str, message: str
) -> None:
    tools = tuple(t for t in ("aws", "terraform", "docker") if t != missing)
    run = Sandbox(tmp_path, tools=tools).run("deploy-stage.sh", "v1")

    assert run.returncode == 1
    assert message in run.stderr
    assert_nothing_created(run)


def test_docker_not_running_stops_deploy_before_anything_is_created(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-stage.sh", FAKE_DOCKER_DOWN="1")

    assert run.returncode == 1
    assert "Docker is installed but not running" in run.stderr
    assert_nothing_created(run)


def test_missing_credentials_stop_deploy_before_anything_is_created(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-prod.sh", stdin="yes\n", FAKE_NO_CREDENTIALS="1")

    assert run.returncode == 1
    assert "AWS credentials are missing or expired" in run.stderr
    assert run.calls[-1] == "aws sts get-caller-identity --query Account --output text"
    assert_nothing_created(run)


def test_missing_tfvars_stops_deploy_before_anything_is_created(sandbox: Sandbox) -> None:
    (sandbox.infra / "environments" / "stage" / "terraform.tfvars").unlink()

    run = sandbox.run("deploy-stage.sh")

    assert run.returncode == 1
    assert "terraform.tfvars is missing" in run.stderr
    assert_nothing_created(run)


def test_a_failed_deployment_fails_the_script(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-stage.sh", FAKE_OPERATION_STATUS="ROLLBACK_SUCCEEDED")

    assert run.returncode == 1
    assert "the deployment ended ROLLBACK_SUCCEEDED" in run.stderr
    assert not run.called(tf(sandbox, "stage", "output -raw app_url"))


def test_a_failed_apply_stops_before_any_deployment(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-stage.sh", "v4", FAKE_APPLY_FAILS="1")

    assert run.returncode == 1
    assert "AccessDeniedException" in run.stderr
    assert run.calls[-1] == tf(
        sandbox, "stage", "apply -input=false -auto-approve -var image_tag=v4"
    )
    assert not run.called("aws apprunner")


def test_deploy_on_ecs_express_redeploys_and_waits_for_a_stable_service(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-stage.sh", "v3", FAKE_COMPUTE="ecs_express")

    assert run.returncode == 0, run.stderr
    assert_in_order(
        run,
        tf(sandbox, "stage", "apply -input=false -auto-approve -var image_tag=v3"),
        "aws ecs update-service --cluster default --service cerberus-stage-service "
        f"--force-new-deployment --region {REGION}",
        "aws ecs wait services-stable --cluster default --services cerberus-stage-service "
        f"--region {REGION}",
        tf(sandbox, "stage", "output -raw app_url"),
    )
    assert not run.called("aws apprunner")


def test_destroy_prod_takes_a_final_snapshot_before_terraform_destroy(sandbox: Sandbox) -> None:
    sandbox.deployed("prod")
    run = sandbox.run("destroy-prod.sh", stdin="yes\n")

    assert run.returncode == 0, run.stderr
    cluster = "cerberus-prod-aurora-cluster"
    assert_in_order(
        run,
        "aws sts get-caller-identity",
        tf(sandbox, "prod", "init -input=false"),
        f"aws rds create-db-cluster-snapshot --db-cluster-identifier {cluster} "
        "--db-cluster-snapshot-identifier cerberus-final-",
        "aws rds wait db-cluster-snapshot-available "
        "--db-cluster-snapshot-identifier cerberus-final-",
        f"aws rds modify-db-cluster --db-cluster-identifier {cluster} --no-deletion-protection "
        f"--apply-immediately --region {REGION}",
        tf(sandbox, "prod", "destroy -input=false -auto-approve"),
    )
    assert not run.called("docker")


@pytest.mark.parametrize("script", ["destroy-prod.sh", "destroy-stage.sh"])
def test_destroy_without_yes_changes_nothing(sandbox: Sandbox, script: str) -> None:
    run = sandbox.run(script, stdin="nope\n")

    assert run.returncode == 1
    assert "not confirmed" in run.stderr
    assert not run.called("terraform")
    assert not run.called("aws rds")


@pytest.mark.parametrize("deployed", [True, False])
def test_destroy_stage_destroys_without_a_snapshot(sandbox: Sandbox, deployed: bool) -> None:
    # Not deployed: a first deployment stopped after its repository was created (only the
    # targeted apply ran, so the environment has no aws_region or cluster output yet).
    if deployed:
        sandbox.deployed("stage")
    run = sandbox.run("destroy-stage.sh", stdin="yes\n")

    assert run.returncode == 0, run.stderr
    assert run.called(tf(sandbox, "stage", "destroy -input=false -auto-approve"))
    assert not run.called("aws rds")


def test_a_repository_address_that_is_not_ecrs_stops_before_the_build(sandbox: Sandbox) -> None:
    run = sandbox.run("deploy-stage.sh", "v1", FAKE_ECR_URL="registry.example/cerberus")

    assert run.returncode != 0
    assert "not an ECR registry address: 'registry.example'" in run.stderr
    assert not run.called("docker build")


def test_destroy_prod_without_its_cluster_output_destroys_nothing(sandbox: Sandbox) -> None:
    run = sandbox.run("destroy-prod.sh", stdin="yes\n")

    assert run.returncode != 0
    assert not run.called("aws rds")
    assert not run.called(tf(sandbox, "prod", "destroy"))


def test_a_first_deployment_stopped_after_its_repository_can_be_deployed_again(
    sandbox: Sandbox,
) -> None:
    failed = sandbox.run("deploy-stage.sh", "v1", FAKE_APPLY_FAILS="1")
    assert failed.returncode != 0
    run = sandbox.run("deploy-stage.sh", "v1")

    assert run.returncode == 0, run.stderr
    assert run.called(f"aws ecr get-login-password --region {REGION}")


def test_bootstrap_applies_the_state_backend(sandbox: Sandbox) -> None:
    run = sandbox.run("bootstrap.sh")

    assert run.returncode == 0, run.stderr
    bootstrap = sandbox.infra / "bootstrap"
    assert run.calls == [
        "aws sts get-caller-identity --query Account --output text",
        f"terraform -chdir={bootstrap} init -input=false",
        f"terraform -chdir={bootstrap} apply -input=false -auto-approve",
        f"terraform -chdir={bootstrap} output -raw state_bucket_name",
        f"terraform -chdir={bootstrap} output -raw lock_table_name",
    ]
    assert "State bucket: cerberus-mcp-terraform-state" in run.stdout


def test_bootstrap_without_credentials_creates_nothing(sandbox: Sandbox) -> None:
    run = sandbox.run("bootstrap.sh", FAKE_NO_CREDENTIALS="1")

    assert run.returncode == 1
    assert "aws configure" in run.stderr
    assert not run.called("terraform")
