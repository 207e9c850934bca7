#!/usr/bin/env bash
# Tear down production: ./destroy-prod.sh   (type "yes" to confirm)
# Takes a final Aurora snapshot (cerberus-final-<date>) and turns off deletion protection first.
set -euo pipefail
# shellcheck source=steps.sh
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

destroy prod
