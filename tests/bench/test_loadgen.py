"""The load generator's answer checks: a wrong or unredacted answer must count as an error."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from bench.loadgen import AnswerError, Target, check, percentile, read_message, sse_data
from bench.payloads import CARD, EMAIL, PHONE, SENSITIVE, TOOLS, lookup_record
from bench.stub_upstream import answer
from bench.upstream import server


def _call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    request = {"jsonrpc": "2.0", "id": 4, "method": "tools/call"}
    request["params"] = {"name": tool, "arguments": arguments}
    raw = answer(request)
    assert raw is not None
    message: dict[str, Any] = orjson.loads(raw)
    return message


def test_sse_events_are_read_with_any_line_ending_and_multiline_data() -> None:
    for newline in ("\r\n", "\n", "\r"):
        text = newline.join(["id: 1", "retry: 100", "data: ", "", 'data: {"a":', "data: 1}", ""])
        assert sse_data(text + newline) == ["", '{"a":\n1}']


def test_the_answer_for_the_request_id_is_found_in_a_stream() -> None:
    raw = (
        b'data: {"jsonrpc":"2.0","method":"notifications/progress"}\r\n\r\n'
        b'data: {"jsonrpc":"2.0","id":7,"result":{}}\r\n\r\n'
    )
    assert read_message(raw, "text/event-stream", 7) == {"jsonrpc": "2.0", "id": 7, "result": {}}
    with pytest.raises(AnswerError):
        read_message(raw, "text/event-stream", 8)


def test_an_answer_for_another_id_is_an_error() -> None:
    with pytest.raises(AnswerError):
        read_message(b'{"jsonrpc":"2.0","id":3,"result":{}}', "application/json", 4)


def test_echo_must_return_its_text() -> None:
    check(_call("echo", {"text": "hello"}), "echo", {"text": "hello"}, Target("t", "u"))
    with pytest.raises(AnswerError):
        check(_call("echo", {"text": "hello"}), "echo", {"text": "other"}, Target("t", "u"))


def test_an_unredacted_lookup_fails_where_redaction_is_expected() -> None:
    message = _call("lookup", {"customer_id": "c9"})
    check(message, "lookup", {"customer_id": "c9"}, Target("direct", "u"))
    with pytest.raises(AnswerError):
        check(message, "lookup", {"customer_id": "c9"}, Target("full", "u", redacted=SENSITIVE))


def test_a_redacted_lookup_passes_only_with_markers_and_no_values() -> None:
    message = _call("lookup", {"customer_id": "c9"})
    text = orjson.dumps(message).decode()
    for value, label in ((EMAIL, "EMAIL"), (PHONE, "PHONE"), (CARD, "CREDIT_CARD")):
        text = text.replace(value, f"[REDACTED:{label}]")
    check(
        orjson.loads(text), "lookup", {"customer_id": "c9"}, Target("full", "u", redacted=SENSITIVE)
    )
    no_markers = orjson.loads(text.replace("[REDACTED", "[HIDDEN"))
    with pytest.raises(AnswerError):
        check(no_markers, "lookup", {"customer_id": "c9"}, Target("full", "u", redacted=SENSITIVE))
    one_leaked = orjson.loads(text.replace("[REDACTED:EMAIL]", EMAIL, 1))
    with pytest.raises(AnswerError):
        check(one_leaked, "lookup", {"customer_id": "c9"}, Target("full", "u", redacted=SENSITIVE))


def test_a_lookup_for_another_customer_is_an_error() -> None:
    assert lookup_record("c1")["customer_id"] == "c1"
    with pytest.raises(AnswerError):
        check(
            _call("lookup", {"customer_id": "c1"}),
            "lookup",
            {"customer_id": "c2"},
            Target("t", "u"),
        )


def test_percentiles_are_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert percentile(ordered, 50) == 50.0
    assert percentile(ordered, 99) == 99.0
    assert percentile([3.0], 99) == 3.0


def test_the_stub_lists_the_tools_as_the_sdk_upstream_does() -> None:
    listed = asyncio.run(server.list_tools())
    sdk = [tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in listed]
    assert sdk == TOOLS
    raw = answer({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert raw is not None
    assert orjson.loads(raw)["result"]["tools"] == TOOLS
