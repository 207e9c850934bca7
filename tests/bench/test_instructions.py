from __future__ import annotations

from pathlib import Path

import pytest
from bench.instructions import SOURCE, callgrind_total, variants


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
    assert found == {"this checkout": SOURCE, "before": tmp_path.resolve()}
    with pytest.raises(SystemExit, match="NAME=SRC"):
        variants([str(tmp_path)])
    with pytest.raises(SystemExit, match="NAME=SRC"):
        variants([f"elsewhere={tmp_path / 'missing'}"])
