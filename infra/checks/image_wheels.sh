#!/usr/bin/env bash
# The Dockerfile's builder stage has no compiler: every dependency of Cerberus must exist as
# a wheel for its Python version on linux/amd64 (glibc of Debian bookworm, 2.36). pip answers
# that without a Docker engine by downloading the wheels it would install (needs PyPI).
set -euo pipefail
cd "$(dirname "$0")/../.."

python="$1"
version="$(sed -n 's/^FROM python:\([0-9]*\.[0-9]*\)\.[0-9]*-slim-bookworm AS builder$/\1/p' docker/Dockerfile)"
[ -n "$version" ] || { echo "no python:X.Y.Z-slim-bookworm builder stage in docker/Dockerfile"; exit 1; }
platforms=(--platform manylinux2014_x86_64)
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done

"$python" -c 'import tomllib, sys; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
  > .tools/image-requirements.txt
status=0
"$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
  "${platforms[@]}" --python-version "$version" --implementation cp --abi "cp${version/./}" \
  -d .tools/image-wheels -r .tools/image-requirements.txt > .tools/image-wheels.log 2>&1 || status=$?
grep -v "^WARNING: Location" .tools/image-wheels.log || true
[ "$status" -eq 0 ] || exit "$status"
echo "python $version linux/amd64: $(find .tools/image-wheels -name "*.whl" | wc -l) wheels, no source builds"
