"""The report and `make bench` name the interpreter that ran the benchmark: its build (PGO and
LTO or not) moves every CPU figure by about a sixth (docs/benchmarks.md)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.report import render

ROOT = Path(__file__).resolve().parents[2]


def test_the_machine_line_names_the_interpreter() -> None:
    system = {"python": "3.11.2", "python_executable": "/usr/bin/python3.11"}
    assert "Python 3.11.2 (/usr/bin/python3.11); PostgreSQL" in render({"system": system})


def test_results_from_before_the_executable_was_recorded_still_render() -> None:
    assert "Python 3.11.7; PostgreSQL" in render({"system": {"python": "3.11.7"}})


def _planned(*assignments: str) -> list[str]:
    """What `make bench` would run (always-make: as on a machine without the venvs)."""
    # Run from `make test`, this is a sub-make: the parent's flags would come along, and
    # make would print the directory it enters and leaves around the plan.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    plan = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "bench", *assignments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return plan.stdout.splitlines()


def test_make_bench_runs_in_a_venv_of_the_named_interpreter() -> None:
    plan = _planned("BENCH_PYTHON=/opt/optimised/bin/python3.11")
    assert "/opt/optimised/bin/python3.11 -m venv .venv-bench" in plan
    assert ".venv-bench/bin/python -m pip install --quiet -e '.[dev,bench]'" in plan
    assert plan[-1] == ".venv-bench/bin/python -m bench"


def test_make_bench_without_one_runs_in_the_project_venv() -> None:
    plan = _planned("BENCH_PYTHON=")
    assert not any(".venv-bench" in line for line in plan)
    assert plan[-1] == ".venv/bin/python -m bench"
