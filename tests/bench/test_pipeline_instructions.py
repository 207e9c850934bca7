"""The in-process pipeline count's counted process: it warms up, then decides on request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bench.pipeline_instructions import MESSAGES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("policies", ["none", "full"])
def test_the_counted_process_decides_each_message_it_is_sent(policies: str) -> None:
    lines = "".join(f"{message} 3\n" for message in MESSAGES)
    done = subprocess.run(
        [sys.executable, "-m", "bench.pipeline_instructions", "--serve", policies],
        input=lines,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["ready"] + ["done"] * len(MESSAGES)


def test_an_unknown_message_stops_the_counted_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.pipeline_instructions", "--serve", "full"],
        input="nothing 3\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stdout.split() == ["ready"]
