"""The scan-cost harness's varied-text shapes and its fresh-process scanner measurement."""

from __future__ import annotations

import os

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


def test_scan_cost_is_measured_in_a_fresh_process_as_a_gateway_scans() -> None:
    found = scan.scan_cost(["digit_run"])
    # Another process, whose imports are frozen as a gateway freezes its start-up.
    assert found["pid"] != os.getpid()
    assert found["frozen_objects"] > 1_000
    for level in ("engine", "pipeline"):
        assert found[level]["available"]
        assert list(found[level]["adversarial"]) == ["digit_run"]
        assert len(found[level]["realistic"]) == len(scan.REALISTIC_SIZES)
    assert found["scanner_memory"]["bytes"] > 0


def test_dense_rows_carry_each_kind_of_pii() -> None:
    from cerberus.scanning import scan_text

    text = scan.ADVERSARIAL["dense_pii_rows"](8_000)
    assert len(text) == 8_000
    kinds = {hit.detector for hit in scan_text(text)}
    assert kinds == {"email", "phone", "credit_card", "ip_address"}


def _points(*pairs: tuple[int, float]) -> list[dict[str, float]]:
    return [{"bytes": size, "seconds": seconds} for size, seconds in pairs]


def test_growth_is_judged_over_the_largest_step_of_sizes() -> None:
    # This machine's random_printable through the pipeline: the 16 KB text held no hit (nothing
    # redacted or rescanned), the two larger ones did; from 128 KB to 1 MB time grew less
    # than size.
    measured = _points((16_000, 0.000142), (128_000, 0.00534), (1_024_000, 0.03626))
    assert scan.growth_exponent(measured) == 0.92
    quadratic = _points((16_000, 0.001), (128_000, 0.064), (1_024_000, 4.096))
    assert scan.growth_exponent(quadratic) == 2.0
    # Quadratic only past the middle size still shows.
    late = _points((16_000, 0.001), (128_000, 0.008), (1_024_000, 0.512))
    assert scan.growth_exponent(late) == 2.0
    assert scan.growth_exponent(_points((16_000, 0.001))) is None
