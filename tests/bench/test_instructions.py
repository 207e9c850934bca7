from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from bench.instructions import SOURCE, UPSTREAMS, Variant, callgrind_total, variants


def test_the_total_is_read_from_a_callgrind_dump(tmp_path: Path) -> None:
    dump = tmp_path / "gateway.callgrind.1"
    dump.write_text("creator: callgrind-3.19.0\nevents: Ir\nfl=x\n3 100\ntotals: 1750858\n")
    assert callgrind_total(dump) == 1750858
    older = tmp_path / "older.callgrind.1"
    older.write_text("events: Ir\nsummary: 42\n")
    assert callgrind_total(older) == 42


def test_a_dump_without_totals_is_an_error(tmp_path: Path) -> None:
    dump = tmp_path / "cut.callgrind.1"
    dump.write_text("events: Ir\nfl=x\n3 100\n")
    with pytest.raises(ValueError, match="no totals"):
        callgrind_total(dump)


def test_variants_are_this_checkout_then_each_named_source_tree(tmp_path: Path) -> None:
    (tmp_path / "cerberus").mkdir()
    found = variants([f"before={tmp_path}"])
    assert [(name, v.src) for name, v in found.items()] == [
        ("this checkout", SOURCE),
        ("before", tmp_path.resolve()),
    ]
    with pytest.raises(SystemExit, match="NAME=SRC"):
        variants([str(tmp_path)])
    with pytest.raises(SystemExit, match="NAME=SRC"):
        variants([f"elsewhere={tmp_path / 'missing'}"])


def test_an_interpreter_variant_runs_this_checkout_with_that_venvs_python(tmp_path: Path) -> None:
    venv_bin = tmp_path / "bin"
    venv_bin.mkdir()
    (venv_bin / "cerberus").write_text("#!/bin/sh\n")
    found = variants([], [f"3.12={venv_bin / 'python'}"])
    assert found["3.12"] == Variant(SOURCE, venv_bin / "python")
    assert found["this checkout"].src == SOURCE
    with pytest.raises(SystemExit, match="NAME=PYTHON"):
        variants([], [f"bare={tmp_path / 'python'}"])  # no Cerberus installed beside it


def test_each_upstream_a_counted_gateway_can_call_is_a_module_of_the_harness() -> None:
    assert set(UPSTREAMS) == {"stub", "sdk"}
    for module in UPSTREAMS.values():
        assert importlib.util.find_spec(module) is not None, module
