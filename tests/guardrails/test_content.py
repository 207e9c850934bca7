"""Content limits: large documents, bulk structured data, source code."""

from __future__ import annotations

import base64
import random

import orjson

from cerberus.guardrails import Outcome
from cerberus.guardrails.content_large_documents import ContentLargeDocuments, json_chars
from cerberus.guardrails.content_source_code import ContentSourceCode
from cerberus.guardrails.content_structured_data import ContentStructuredData
from cerberus.scanning.shape import json_rows
from tests.guardrails.messages import REQUEST, RESPONSE, context, tool_call, tool_result

CODE = "function f(x) {\n  const y = x * 2;\n  return y;\n}\n"


def test_a_document_over_max_chars_is_blocked() -> None:
    guard = ContentLargeDocuments(max_chars=1_000)
    verdict = guard.check(tool_result("short", "x" * 1_001), context(RESPONSE))
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.findings[0].where == ("$.result.content[1].text",)
    assert guard.check(tool_result("x" * 1_000), context(RESPONSE)).outcome is Outcome.ALLOW


def test_decoded_resource_blobs_count_as_documents() -> None:
    blob = base64.b64encode(b"y" * 2_000).decode()
    resource = {"uri": "file:///big.txt", "mimeType": "text/plain", "blob": blob}
    message = {"jsonrpc": "2.0", "id": 1, "result": {"contents": [resource]}}
    verdict = ContentLargeDocuments(max_chars=1_500).check(message, context(RESPONSE))
    assert verdict.outcome is Outcome.BLOCK


def test_csv_text_over_max_rows_is_blocked() -> None:
    csv = "id,email\n" + "".join(f"{i},user{i}\n" for i in range(200))
    guard = ContentStructuredData(max_rows=100)
    assert guard.check(tool_result(csv), context(RESPONSE)).outcome is Outcome.BLOCK
    assert guard.check(tool_result(csv[:500]), context(RESPONSE)).outcome is Outcome.ALLOW


def test_json_arrays_in_structured_content_and_arguments_count_rows() -> None:
    rows = [{"id": i} for i in range(50)]
    guard = ContentStructuredData(max_rows=10, action="log_only")
    result = tool_result(orjson.dumps(rows).decode(), structuredContent={"rows": rows})
    verdict = guard.check(result, context(RESPONSE))
    assert verdict.outcome is Outcome.LOG_ONLY
    assert "$.result.structuredContent" in verdict.findings[0].where
    assert guard.check(tool_call({"rows": rows}), context(REQUEST)).outcome is Outcome.LOG_ONLY


def test_source_code_over_max_chars_is_blocked_and_prose_is_not() -> None:
    guard = ContentSourceCode(max_chars=200)
    verdict = guard.check(tool_result(CODE * 10), context(RESPONSE))
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.findings[0].type == "source_code"
    prose = "We met at noon; the plan is fine.\n" * 50
    assert guard.check(tool_result(prose), context(RESPONSE)).outcome is Outcome.ALLOW
    assert guard.check(tool_result(CODE), context(RESPONSE)).outcome is Outcome.ALLOW


def test_code_in_texts_that_share_a_place_counts_whole() -> None:
    # Keys that are addresses are masked in places, so these two texts have one place; the
    # count was kept per place, and half the code went uncounted.
    guard = ContentSourceCode(max_chars=200)
    one = ContentSourceCode(max_chars=200).check(
        tool_call({"ana@corp.example": CODE * 3}), context(REQUEST)
    )
    assert one.outcome is Outcome.ALLOW
    both = {"ana@corp.example": CODE * 3, "bo@corp.example": CODE * 3}
    verdict = guard.check(tool_call(both), context(REQUEST))
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.findings[0].count == 2
    assert verdict.findings[0].where == ("$.params.arguments['[REDACTED]']",)


def test_content_direction_setting() -> None:
    guard = ContentLargeDocuments(max_chars=10, direction="response")
    assert guard.check(tool_call({"a": "x" * 50}), context(REQUEST)).outcome is Outcome.ALLOW


def test_schema_enums_are_not_rows() -> None:
    schema = {"type": "object", "properties": {"c": {"enum": [f"v{i}" for i in range(50)]}}}
    tools = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "t", "inputSchema": schema}]}}
    guard = ContentStructuredData(max_rows=10)
    assert guard.check(tools, context(RESPONSE)).outcome is Outcome.ALLOW


def test_large_structured_content_counts_as_a_document() -> None:
    rows = [{"id": i, "note": "n" * 20} for i in range(100)]
    message = tool_result("summary", structuredContent={"rows": rows})
    verdict = ContentLargeDocuments(max_chars=1_000).check(message, context(RESPONSE))
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.findings[0].where == ("$.result.structuredContent",)
    small = tool_result("summary", structuredContent={"rows": rows[:3]})
    assert (
        ContentLargeDocuments(max_chars=1_000).check(small, context(RESPONSE)).outcome
        is Outcome.ALLOW
    )


def test_rows_separated_by_carriage_returns_count() -> None:
    csv = "".join(f"{i},user{i}\r" for i in range(30))
    assert (
        ContentStructuredData(max_rows=20).check(tool_result(csv), context(RESPONSE)).outcome
        is Outcome.BLOCK
    )


def _json_values(seed: int, count: int) -> list[object]:
    """Seeded JSON values dense in what costs json_chars the most per serialised byte: empty
    containers, one-key objects, short floats in exponent form, booleans, nulls, non-ASCII."""
    rng = random.Random(seed)
    leaves: list[object] = [
        0,
        7,
        -3,
        1e-05,
        1e16,
        2.5e-300,
        -0.0,
        1.5,
        True,
        False,
        None,
        "",
        "x",
        "é",
        "日本",
        "a\nb",
    ]

    def value(depth: int) -> object:
        roll = rng.random()
        if depth > 3 or roll < 0.4:
            return rng.choice(leaves)
        if roll < 0.7:
            return [value(depth + 1) for _ in range(rng.randrange(0, 6))]
        return {
            rng.choice(["k", "é", "", "key"]) + str(i): value(depth + 1)
            for i in range(rng.randrange(0, 5))
        }

    return [value(0) for _ in range(count)]


def test_the_serialised_size_bounds_what_the_content_walks_would_count() -> None:
    # The content guardrails skip walking user data when these bounds rule a finding out.
    for value in _json_values(seed=7, count=2_000):
        size = len(orjson.dumps(value))
        assert json_chars(value, 10**9) <= 3 * size + 2
        if json_rows(value):
            assert 2 * json_rows(value) + 1 <= size


def test_values_just_over_the_limits_are_found_whatever_their_shape() -> None:
    for value in _json_values(seed=11, count=300):
        message = tool_result("s", structuredContent={"v": value})
        counted = json_chars({"v": value}, 10**9)
        over = ContentLargeDocuments(max_chars=counted - 1).check(message, context(RESPONSE))
        assert over.outcome is Outcome.BLOCK
        fits = ContentLargeDocuments(max_chars=counted).check(message, context(RESPONSE))
        assert fits.outcome is Outcome.ALLOW
        rows = json_rows(value)
        if rows > 1:
            guard = ContentStructuredData(max_rows=rows - 1)
            assert guard.check(message, context(RESPONSE)).outcome is Outcome.BLOCK


def test_user_data_that_does_not_serialise_as_is_is_still_walked() -> None:
    # orjson refuses integers over 64 bits: then the bound is unknown and the walk decides.
    big = 2**70
    documents = tool_result("s", structuredContent={"n": big, "rows": [{}] * 400})
    verdict = ContentLargeDocuments(max_chars=1_000).check(documents, context(RESPONSE))
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.findings[0].where == ("$.result.structuredContent",)
    rows = tool_call({"n": big, "rows": list(range(50))})
    verdict = ContentStructuredData(max_rows=10).check(rows, context(REQUEST))
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.findings[0].where == ("$.params.arguments",)
