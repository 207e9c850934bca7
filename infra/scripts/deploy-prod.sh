#!/usr/bin/env bash
# Deploy Cerberus to production: ./deploy-prod.sh [TAG]   (TAG defaults to "latest")
# Asks for explicit confirmation: type "yes" (read from stdin, so `echo yes |` works in CI).
set -euo pipefail
# shellcheck source=steps.sh
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

deploy prod "${1:-latest}"
