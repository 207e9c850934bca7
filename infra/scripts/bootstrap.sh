#!/usr/bin/env bash
# One-time: create the S3 bucket and DynamoDB table that hold Terraform state (infra/bootstrap).
# ./bootstrap.sh   (safe to run again: an existing bucket and table are left as they are)
set -euo pipefail
# shellcheck source=steps.sh
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

ENV_DIR="$INFRA_DIR/bootstrap"

say "pre-flight checks"
require_tools aws terraform
require_credentials

say "terraform apply (bootstrap)"
tf init -input=false
tf apply -input=false -auto-approve
printf 'State bucket: %s\nLock table:   %s\n' "$(tf_output state_bucket_name)" "$(tf_output lock_table_name)"
