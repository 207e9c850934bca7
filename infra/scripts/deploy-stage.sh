#!/usr/bin/env bash
# Deploy Cerberus to staging: ./deploy-stage.sh [TAG]   (TAG defaults to "latest")
set -euo pipefail
# shellcheck source=steps.sh
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

deploy stage "${1:-latest}"
