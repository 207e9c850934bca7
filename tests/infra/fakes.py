"""Stand-in `aws`, `terraform` and `docker` executables that record each call, for script tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
# What the real tools would answer; FAKE_* variables switch individual behaviours off.
FAKE_AWS = r"""#!/bin/bash
printf 'aws %s\n' "$*" >> "$FAKE_LOG"
case "$1 $2" in
  "sts get-caller-identity")
    if [ -n "${FAKE_NO_CREDENTIALS:-}" ]; then
      echo "Unable to locate credentials. Configure them with \"aws configure\"." >&2
      exit 255
    fi
    echo 123456789012 ;;
  "ecr get-login-password") echo ecr-password ;;
  "apprunner describe-service") echo RUNNING ;;
  "apprunner list-operations") echo "${FAKE_OPERATION_STATUS:-SUCCEEDED}" ;;
  "apprunner start-deployment") echo '{"OperationId": "op-1"}' ;;
esac
"""
FAKE_TERRAFORM = r"""#!/bin/bash
printf 'terraform %s\n' "$*" >> "$FAKE_LOG"
if [ "$2" = apply ] && [ -n "${FAKE_APPLY_FAILS:-}" ] && [[ "$*" != *-target=* ]]; then
  echo "Error: creating App Runner Service: AccessDeniedException" >&2
  exit 1
fi
dir="${1#-chdir=}"
env="$(basename "$dir")"
# As Terraform does: a targeted apply writes only the outputs derived from targeted
# resources, so the others exist once an apply without -target has run (here, or before).
if [ "$2" = apply ] && [[ "$*" != *-target=* ]]; then
  : > "$dir/.fake-applied"
fi
if [ "$2" = output ]; then
  if [ "$4" != ecr_repository_url ] && [ ! -e "$dir/.fake-applied" ]; then
    echo "Error: Output \"$4\" not found" >&2
    exit 1
  fi
  case "$4" in
    ecr_repository_url)
      echo "${FAKE_ECR_URL:-123456789012.dkr.ecr.us-east-1.amazonaws.com/cerberus-$env}" ;;
    aws_region) echo us-east-1 ;;
    compute) echo "${FAKE_COMPUTE:-apprunner}" ;;
    apprunner_service_arn)
      echo "arn:aws:apprunner:us-east-1:123456789012:service/cerberus-$env-service/abc" ;;
    service_name) echo "cerberus-$env-service" ;;
    app_url) echo "https://$env.example.awsapprunner.com" ;;
    aurora_cluster_identifier) echo "cerberus-$env-aurora-cluster" ;;
    state_bucket_name) echo cerberus-mcp-terraform-state ;;
    lock_table_name) echo cerberus-terraform-locks ;;
    *) echo "no output $4" >&2; exit 1 ;;
  esac
fi
"""
FAKE_DOCKER = r"""#!/bin/bash
if [ "$1" = login ]; then
  printf 'docker %s <<< %s\n' "$*" "$(cat)" >> "$FAKE_LOG"
  exit 0
fi
printf 'docker %s\n' "$*" >> "$FAKE_LOG"
if [ "$1" = info ] && [ -n "${FAKE_DOCKER_DOWN:-}" ]; then
  echo "Cannot connect to the Docker daemon" >&2
  exit 1
fi
"""
# The only real programs the scripts may use; anything else on PATH would hide a missing fake.
SYSTEM_TOOLS = ("bash", "dirname", "basename", "date", "sleep", "cat")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]

    def index(self, prefix: str) -> int:
        """Position of the first call starting with prefix (fails the test when absent)."""
        for position, call in enumerate(self.calls):
            if call.startswith(prefix):
                return position
        raise AssertionError(f"no call starting with {prefix!r} in:\n" + "\n".join(self.calls))

    def called(self, prefix: str) -> bool:
        return any(call.startswith(prefix) for call in self.calls)


class Sandbox:
    """A copy of infra/scripts beside environment folders with a terraform.tfvars each."""

    def __init__(self, root: Path, tools: tuple[str, ...] = ("aws", "terraform", "docker")) -> None:
        self.root = root
        self.infra = root / "infra"
        shutil.copytree(REPO / "infra" / "scripts", self.infra / "scripts")
        for env in ("stage", "prod"):
            env_dir = self.infra / "environments" / env
            env_dir.mkdir(parents=True)
            (env_dir / "terraform.tfvars").write_text('aws_region = "us-east-1"\n')
        (self.infra / "bootstrap").mkdir()
        self.bin = root / "bin"
        self.bin.mkdir()
        for name in SYSTEM_TOOLS:
            found = shutil.which(name)
            assert found, f"{name} is needed to run the deploy scripts"
            (self.bin / name).symlink_to(found)
        fakes = {"aws": FAKE_AWS, "terraform": FAKE_TERRAFORM, "docker": FAKE_DOCKER}
        for name in tools:
            path = self.bin / name
            path.write_text(fakes[name])
            path.chmod(0o755)
        self.log = root / "calls.log"

    def env_dir(self, env: str) -> str:
        return str(self.infra / "environments" / env)

    def deployed(self, env: str) -> None:
        """Give `env` the state of a finished deployment: every output exists."""
        (self.infra / "environments" / env / ".fake-applied").touch()

    def run(self, script: str, *args: str, stdin: str = "", **fake_env: str) -> Run:
        self.log.write_text("")
        env = {
            "PATH": str(self.bin),
            "HOME": str(self.root),
            "FAKE_LOG": str(self.log),
            "CERBERUS_WAIT_INTERVAL": "0",
            "CERBERUS_WAIT_ATTEMPTS": "3",
            **fake_env,
        }
        # stdin is always given, never inherited: CI has no terminal.
        done = subprocess.run(
            [str(self.bin / "bash"), str(self.infra / "scripts" / script), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            timeout=60,
            check=False,
        )
        calls = [line for line in self.log.read_text().splitlines() if line]
        return Run(done.returncode, done.stdout, done.stderr, calls)
