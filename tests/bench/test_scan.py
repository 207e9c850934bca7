"""The scan-cost harness's varied-text shapes and its fresh-process scanner measurement."""

from __future__ import annotations

from bench import scan


def test_random_shapes_are_the_size_asked_and_the_same_every_run() -> None:
    for name in ("random_printable", "random_identifiers"):
        build = scan.ADVERSARIAL[name]
        assert len(build(4_000)) == 4_000
        assert build(4_000) == build(4_000)
        assert build(4_000) != build(4_001)[:4_000]  # each size is a text of its own


def test_scanner_memory_scans_every_text_in_a_fresh_process() -> None:
    found = scan.scanner_memory()
    assert found["bytes"] == 2 * scan.MEMORY_TEXTS * scan.MEMORY_TEXT_BYTES
    assert found["mb_per_s"] > 0
    assert isinstance(found["rss_growth_mib"], float)


def test_dense_rows_carry_each_kind_of_pii() -> None:
    from cerberus.scanning import scan_text

    text = scan.ADVERSARIAL["dense_pii_rows"](8_000)
    assert len(text) == 8_000
    kinds = {hit.detector for hit in scan_text(text)}
    assert kinds == {"email", "phone", "credit_card", "ip_address"}
