#!/usr/bin/env bash
# Offline checks of docker/ and infra/, run by `make infra-check` (which installs the tools
# first). No cloud account or Docker engine is needed, and no network but PyPI (one step).
# One PASS/FAIL line per check; the last line reads "infra: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

INFRA_VENV="${INFRA_VENV:-.venv-infra}"
CHECKOV_VENV="${CHECKOV_VENV:-.venv-checkov}"
AWS_SCHEMA="${AWS_SCHEMA:-.tools/aws-schema.json}"
PY="$INFRA_VENV/bin/python"

# Keep every tool offline and quiet, and out of the work tree.
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
export TF_CLI_CONFIG_FILE="$TMP/terraformrc" TF_DATA_DIR="$TMP/tfdata"
unset BC_API_KEY PRISMA_API_URL

# `terraform validate` needs the providers' schemas only: schema_provider.py serves them
# (hashicorp/aws from the cdktn wheel's schema), installed as development overrides.
ROOT="$(pwd)"
mkdir -p "$TMP/providers"
for provider in aws random; do
  printf '#!/bin/sh\nexec "%s" "%s" %s "%s" "%s"\n' "$ROOT/$PY" "$ROOT/infra/checks/schema_provider.py" \
    "$provider" "$ROOT/$AWS_SCHEMA" "$ROOT/infra" > "$TMP/providers/terraform-provider-$provider"
  chmod +x "$TMP/providers/terraform-provider-$provider"
done
cat > "$TMP/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "hashicorp/aws"    = "$TMP/providers"
    "hashicorp/random" = "$TMP/providers"
  }
  direct {}
}
RC

pass=0
fail=0
step() {  # step NAME COMMAND...
  local name="$1" started=$SECONDS
  shift
  if "$@" > "$TMP/out" 2>&1; then
    pass=$((pass + 1))
    echo "PASS $name ($((SECONDS - started))s)"
  else
    fail=$((fail + 1))
    echo "FAIL $name ($((SECONDS - started))s)"
    sed 's/^/    /' "$TMP/out" | tail -60
  fi
}

tf() { "$PY" infra/checks/tf.py "$@"; }

# Exit 3 = not formatted, 2 = HCL syntax error.
step "terraform fmt -check" tf fmt -check -recursive -diff -no-color infra

# Terraform itself checks each root with its modules: module arguments and outputs, types,
# references, functions, and every resource against the provider schema.
validate() { tf -chdir="$1" get -no-color && tf -chdir="$1" validate -no-color; }
for dir in infra/bootstrap infra/environments/*/; do
  step "terraform validate ${dir%/}" validate "$dir"
done

# The schema half of `terraform validate`: argument and block names, required arguments, and
# the attributes expressions read from aws_* resources and data sources.
step "aws provider schema ($(basename "$AWS_SCHEMA"))" "$PY" infra/checks/schema_lint.py "$AWS_SCHEMA" infra

# Terraform evaluates each environment's variable validations on good and bad values.
step "variable validations" "$PY" infra/checks/variables_check.py "$PY" infra/checks/tf.py

# A fresh plan of each environment with each compute, through the same schema-only provider:
# every expression and module validation evaluated; then the planned resources are checked
# against the guide's tables.
step "terraform plan (stage, prod) x (apprunner, ecs_express)" \
  "$PY" infra/checks/plan_check.py "$TMP/plans" "$PY" infra/checks/tf.py
step "planned resources hold the tables" env PLANS_DIR="$TMP/plans" \
  .venv/bin/python -m pytest -q -p no:cacheprovider infra/checks/test_plans.py

# Wiring, the settings tables, security groups, the scripts against stand-in tools.
step "pytest tests/infra" .venv/bin/python -m pytest -q -p no:cacheprovider tests/infra

# checkov exits 0 on an HCL parse error, so its JSON summary is read as well.
checkov_terraform() {
  "$CHECKOV_VENV/bin/checkov" -d infra --framework terraform --skip-download --compact \
    -o json > "$TMP/checkov.json"
  local rc=$?
  "$PY" infra/checks/checkov_summary.py "$TMP/checkov.json" || return 1
  return $rc
}
step "checkov terraform" checkov_terraform
step "checkov dockerfile" "$CHECKOV_VENV/bin/checkov" -f docker/Dockerfile --framework dockerfile \
  --skip-download --compact --quiet
# The one network step: PyPI must have a linux/amd64 wheel of every dependency, since the
# builder stage has no compiler (a Docker engine cannot run here to try the build).
step "image dependencies are wheels" bash infra/checks/image_wheels.sh "$PY"
step "hadolint docker/Dockerfile" "$INFRA_VENV/bin/hadolint" --no-color docker/Dockerfile
step "compose file" "$PY" infra/checks/compose_check.py docker/docker-compose.yml

scripts=(infra/scripts/*.sh)
# shellcheck disable=SC2016  # the single quotes are bash -c's own script
step "bash -n infra/scripts" bash -c 'for f; do bash -n "$f" || exit 1; done' _ "${scripts[@]}"
step "shellcheck infra/scripts" "$INFRA_VENV/bin/shellcheck" -x -S style "${scripts[@]}" \
  infra/checks/*.sh

echo "infra: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
