#!/usr/bin/env python3
"""Plan each environment with each compute offline, and save what Terraform would create.

With schema_provider.py as the providers (see run.sh), `terraform plan` of a fresh copy of
an environment evaluates every expression, module variable validation, count and output,
without AWS. The plans go to OUT_DIR/<env>-<compute>.json (`terraform show -json`), which
test_plans.py then checks against docs/deployment.md's tables.

usage: plan_check.py OUT_DIR TERRAFORM_CMD...
"""

# ruff: noqa: T201  (a command-line check reports by printing)

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

INFRA = Path(__file__).resolve().parents[1]
SECRET = "0123456789abcdef" * 4
ENVS = ("stage", "prod")
COMPUTES = ("apprunner", "ecs_express")


def main() -> int:
    out_dir, terraform = Path(sys.argv[1]), sys.argv[2:]
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for env in ENVS:
        for compute in COMPUTES:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / "infra"
                shutil.copytree(INFRA / "modules", root / "modules")
                env_dir = root / "environments" / env
                shutil.copytree(INFRA / "environments" / env, env_dir)
                for leftover in env_dir.glob("terraform.tfvars"):
                    leftover.unlink()
                # A local backend instead of the S3 one; the example values, a real-length key.
                (env_dir / "backend_override.tf").write_text(
                    'terraform {\n  backend "local" {}\n}\n'
                )
                example = (env_dir / "terraform.tfvars.example").read_text()
                example = re.sub(r"(?m)^secret_key\s*=.*$", f'secret_key = "{SECRET}"', example)
                (env_dir / "terraform.tfvars").write_text(example + f'compute = "{compute}"\n')
                environ = {**os.environ, "TF_DATA_DIR": str(Path(tmp) / "data")}
                plan = Path(tmp) / "plan.bin"
                steps = [
                    ["init", "-input=false", "-no-color"],
                    ["plan", "-input=false", "-no-color", "-refresh=false", f"-out={plan}"],
                    ["show", "-json", "-no-color", str(plan)],
                ]
                for args in steps:
                    done = subprocess.run(
                        [*terraform, f"-chdir={env_dir}", *args],
                        capture_output=True,
                        text=True,
                        env=environ,
                    )
                    if done.returncode != 0:
                        failed += 1
                        print(
                            f"FAIL {env}/{compute}: terraform {args[0]}\n{done.stdout}{done.stderr}"
                        )
                        break
                else:
                    (out_dir / f"{env}-{compute}.json").write_text(done.stdout)
                    print(f"ok   {env}/{compute}: planned")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
