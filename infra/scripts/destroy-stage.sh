#!/usr/bin/env bash
# Tear down staging: ./destroy-stage.sh   (type "yes" to confirm)
set -euo pipefail
# shellcheck source=steps.sh
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

destroy stage
