#!/usr/bin/env python3
"""Run each environment's variable validations with Terraform itself, on good and bad inputs.

A root holding only an environment's variables.tf needs no provider, so `terraform plan`
evaluates every `validation` block offline. The example tfvars (with a real-length
secret_key) must pass; each known-bad value must be refused.

usage: variables_check.py TERRAFORM_CMD...      (e.g. python infra/checks/tf.py)
"""

# ruff: noqa: T201  (a command-line check reports by printing)

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ENVIRONMENTS = Path(__file__).resolve().parents[1] / "environments"
SECRET = "0123456789abcdef" * 4
BAD_IN_BOTH = [
    "cors_origins=not json",
    "allowed_origins=https://a.example",
    "db_password=has@sign123",
    "db_password=short",
    f"secret_key={SECRET[:31]}",
    "compute=lambda",
]
BAD: dict[str, list[str]] = {
    "stage": BAD_IN_BOTH,
    "prod": [*BAD_IN_BOTH, 'cors_origins=["*"]', 'cors_origins=["https://a.example","*"]'],
}
ALSO_GOOD = ["compute=ecs_express", "compute=apprunner", 'allowed_origins=["https://a.example"]']


def main() -> int:
    terraform = sys.argv[1:]
    failures = 0
    for env in ("stage", "prod"):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            shutil.copy(ENVIRONMENTS / env / "variables.tf", root / "variables.tf")
            example = (ENVIRONMENTS / env / "terraform.tfvars.example").read_text()
            # The example's secret_key is a placeholder to replace; give it a real-length one.
            example = re.sub(r"(?m)^secret_key\s*=.*$", f'secret_key = "{SECRET}"', example)
            (root / "example.tfvars").write_text(example)

            def plan(*assignments: str, root: Path = root) -> subprocess.CompletedProcess[str]:
                args = [f"-chdir={root}", "plan", "-input=false", "-no-color"]
                args += ["-var-file=example.tfvars"]
                args += [f"-var={a}" for a in assignments]
                return subprocess.run([*terraform, *args], capture_output=True, text=True)

            init = subprocess.run(
                [*terraform, f"-chdir={root}", "init", "-input=false", "-no-color"],
                capture_output=True,
                text=True,
            )
            if init.returncode != 0:
                print(f"{env}: terraform init failed:\n{init.stderr}")
                return 1
            for assignments in ([], *[[a] for a in ALSO_GOOD]):
                done = plan(*assignments)
                ok = done.returncode == 0
                failures += not ok
                label = " ".join(assignments) or "terraform.tfvars.example"
                print(f"{'ok  ' if ok else 'FAIL'} {env}: accepts {label}")
                if not ok:
                    print(done.stderr.strip()[:2000])
            for assignment in BAD[env]:
                done = plan(assignment)
                refused = done.returncode != 0 and "Invalid value for variable" in done.stderr
                failures += not refused
                print(f"{'ok  ' if refused else 'FAIL'} {env}: refuses {assignment}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
