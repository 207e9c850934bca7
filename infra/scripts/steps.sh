#!/usr/bin/env bash
# The steps the deploy and destroy scripts share (docs/deployment.md, Step 3): pre-flight
# checks, ECR, image build and push, terraform apply, waiting for the service, the URL.
# Sourced, never run. Every step prints what it does; any failure stops the script.

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INFRA_DIR="$(dirname "$SCRIPTS_DIR")"
REPO_ROOT="$(dirname "$INFRA_DIR")"
# Seconds between two looks at a deployment, and how many looks before giving up.
WAIT_INTERVAL="${CERBERUS_WAIT_INTERVAL:-10}"
WAIT_ATTEMPTS="${CERBERUS_WAIT_ATTEMPTS:-90}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Tools are checked before credentials, and both before anything is created.
require_tools() {
  local tool
  for tool in "$@"; do
    case "$tool" in
      aws) command -v aws >/dev/null 2>&1 ||
        die "AWS CLI not found: install AWS CLI v2 (https://aws.amazon.com/cli/) and run 'aws configure'" ;;
      terraform) command -v terraform >/dev/null 2>&1 ||
        die "Terraform not found: install Terraform 1.5 or newer (https://developer.hashicorp.com/terraform/install)" ;;
      docker)
        command -v docker >/dev/null 2>&1 ||
          die "Docker not found: install Docker (https://docs.docker.com/get-docker/)"
        docker info >/dev/null 2>&1 ||
          die "Docker is installed but not running: start Docker and try again" ;;
      *) die "unknown tool $tool" ;;
    esac
  done
}

# Sets AWS_ACCOUNT_ID.
require_credentials() {
  AWS_ACCOUNT_ID="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)" ||
    die "AWS credentials are missing or expired: run 'aws configure' (or 'aws sso login') and check 'aws sts get-caller-identity'"
  [ -n "$AWS_ACCOUNT_ID" ] || die "aws sts get-caller-identity returned no account"
  say "AWS account $AWS_ACCOUNT_ID"
}

require_tfvars() {
  local env_dir="$1"
  [ -f "$env_dir/terraform.tfvars" ] ||
    die "$env_dir/terraform.tfvars is missing: copy terraform.tfvars.example to terraform.tfvars and fill it in"
}

# Reads one line from stdin; anything but the expected word stops the script.
confirm() {
  local prompt="$1" expected="$2" answer=""
  printf '%s ' "$prompt"
  IFS= read -r answer || true
  printf '\n'
  [ "$answer" = "$expected" ] || die "not confirmed (expected '$expected'); nothing was changed"
}

tf() {
  terraform -chdir="$ENV_DIR" "$@"
}

tf_output() {
  tf output -raw "$1"
}

# region_of_registry HOST: the region in an ECR registry's host name.
region_of_registry() {
  case "$1" in
    *.dkr.ecr.*.amazonaws.com*) ;;
    *) die "not an ECR registry address: '$1' (terraform output ecr_repository_url)" ;;
  esac
  local rest="${1#*.dkr.ecr.}"
  printf '%s\n' "${rest%%.*}"
}

# deploy ENV TAG: the whole of Step 3 for one environment (stage or prod).
deploy() {
  local env="$1" tag="$2"
  ENV_DIR="$INFRA_DIR/environments/$env"

  say "1/6 pre-flight checks"
  require_tools aws terraform docker
  require_credentials
  require_tfvars "$ENV_DIR"
  if [ "$env" = prod ]; then
    confirm "Deploy image tag '$tag' to PRODUCTION? Type 'yes' to continue:" yes
  fi

  say "2/6 ECR repository"
  tf init -input=false
  tf apply -input=false -auto-approve -target=module.ecr -var "image_tag=$tag"
  local repo region registry
  repo="$(tf_output ecr_repository_url)"
  registry="${repo%%/*}"
  # From the repository's address (ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME), not the
  # aws_region output: a targeted apply writes only outputs derived from targeted resources,
  # so on a first deployment that output does not exist yet.
  region="$(region_of_registry "$registry")"

  say "3/6 build and push $repo:$tag (linux/amd64)"
  docker build --platform linux/amd64 --target prod -t "cerberus:$tag" -f "$REPO_ROOT/docker/Dockerfile" "$REPO_ROOT"
  aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
  docker tag "cerberus:$tag" "$repo:$tag"
  docker push "$repo:$tag"

  say "4/6 infrastructure (Aurora, Valkey, compute, budget)"
  tf apply -input=false -auto-approve -var "image_tag=$tag"

  say "5/6 deploy the pushed image and wait for the service"
  local compute service_arn service_name
  compute="$(tf_output compute)"
  service_arn="$(tf_output apprunner_service_arn)"
  service_name="$(tf_output service_name)"
  if [ "$compute" = apprunner ]; then
    # The image behind a tag such as "latest" may have changed without the tag changing.
    aws apprunner start-deployment --service-arn "$service_arn" --region "$region" >/dev/null
    wait_for_apprunner "$service_arn" "$region"
  else
    aws ecs update-service --cluster default --service "$service_name" --force-new-deployment \
      --region "$region" >/dev/null
    aws ecs wait services-stable --cluster default --services "$service_name" --region "$region"
  fi

  say "6/6 done"
  printf 'Cerberus (%s) is at: %s\n' "$env" "$(tf_output app_url)"
  printf 'Check it: curl %s/health\n' "$(tf_output app_url)"
}

wait_for_apprunner() {
  local arn="$1" region="$2" status="" attempt
  for ((attempt = 1; attempt <= WAIT_ATTEMPTS; attempt++)); do
    status="$(aws apprunner describe-service --service-arn "$arn" --region "$region" \
      --query 'Service.Status' --output text)"
    case "$status" in
      RUNNING)
        # A deployment in progress leaves the service RUNNING; wait for its operation too.
        local op
        op="$(aws apprunner list-operations --service-arn "$arn" --region "$region" \
          --max-results 1 --query 'OperationSummaryList[0].Status' --output text)"
        case "$op" in
          SUCCEEDED) say "service is running"; return 0 ;;
          FAILED | ROLLBACK_SUCCEEDED | ROLLBACK_FAILED)
            die "the deployment ended $op: see docs/deployment.md, Troubleshooting" ;;
        esac ;;
      CREATE_FAILED | DELETE_FAILED | DELETED)
        die "the service is $status: see docs/deployment.md, Troubleshooting" ;;
    esac
    sleep "$WAIT_INTERVAL"
  done
  die "the service was not ready after $((WAIT_INTERVAL * WAIT_ATTEMPTS)) seconds (last status $status)"
}

# destroy ENV: the environment's resources, after a confirmation (and, in prod, a final snapshot).
destroy() {
  local env="$1"
  ENV_DIR="$INFRA_DIR/environments/$env"

  say "pre-flight checks"
  require_tools aws terraform
  require_credentials
  require_tfvars "$ENV_DIR"
  confirm "This destroys every Cerberus resource of '$env'. Type 'yes' to continue:" yes

  tf init -input=false
  if [ "$env" = prod ]; then
    # Read only here: staging can be destroyed after a deployment that stopped part way,
    # before these outputs existed; production is not destroyed without its final snapshot.
    local region cluster snapshot
    region="$(tf_output aws_region)"
    cluster="$(tf_output aurora_cluster_identifier)"
    snapshot="cerberus-final-$(date -u +%Y%m%d-%H%M%S)"
    say "final Aurora snapshot $snapshot"
    aws rds create-db-cluster-snapshot --db-cluster-identifier "$cluster" \
      --db-cluster-snapshot-identifier "$snapshot" --region "$region" >/dev/null
    aws rds wait db-cluster-snapshot-available --db-cluster-snapshot-identifier "$snapshot" \
      --region "$region"
    say "turn off deletion protection of $cluster"
    aws rds modify-db-cluster --db-cluster-identifier "$cluster" --no-deletion-protection \
      --apply-immediately --region "$region" >/dev/null
  fi

  say "terraform destroy ($env)"
  tf destroy -input=false -auto-approve
  say "$env destroyed"
}
