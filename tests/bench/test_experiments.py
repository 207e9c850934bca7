from __future__ import annotations

from pathlib import Path

import pytest
from bench.experiments import VARIANTS, chosen_variants


def test_experiments_run_as_shipped_under_each_named_interpreter(tmp_path: Path) -> None:
    (tmp_path / "cerberus").write_text("#!/bin/sh\n")
    python = tmp_path / "python"
    every = chosen_variants([f"3.13={python}"])
    assert list(every)[: len(VARIANTS)] == list(VARIANTS)
    assert every["as shipped, Python 3.13"] == python
    only = chosen_variants([f"3.13={python}"], only_python=True)
    assert only == {"as shipped": None, "as shipped, Python 3.13": python}
    with pytest.raises(SystemExit, match="NAME=PYTHON"):
        chosen_variants([f"bare={tmp_path / 'elsewhere' / 'python'}"])
