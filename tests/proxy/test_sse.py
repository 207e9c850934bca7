"""The SSE parser against the framings real MCP servers send (mcp-proxy 1.7)."""

from __future__ import annotations

import pytest

from cerberus.proxy.sse import Event, EventTooLarge, SseParser


def parse(*chunks: bytes) -> list[Event]:
    parser = SseParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    events.extend(parser.close())
    return events


@pytest.mark.parametrize("newline", [b"\r\n", b"\n", b"\r"])
def test_every_line_ending_yields_the_same_events_mcp_proxy_1_7(newline: bytes) -> None:
    body = newline.join(
        [b"id: 7", b"retry: 100", b"data: ", b"", b"event: message", b'data: {"a":1}', b"", b""]
    )
    events = parse(body)
    assert [(e.id, e.retry, e.data, e.event) for e in events] == [
        ("7", "100", "", None),
        (None, None, '{"a":1}', "message"),
    ]


def test_crlf_split_between_chunks_is_one_line_ending_mcp_proxy_1_7() -> None:
    events = parse(b'data: {"x":1}\r', b"\n\r", b"\ndata: 2\r\n\r\n")
    assert [e.data for e in events] == ['{"x":1}', "2"]


def test_multi_line_data_is_joined_with_newlines_mcp_proxy_1_7() -> None:
    (event,) = parse(b'data: {"a":\ndata: 1}\n\n')
    assert event.data == '{"a":\n1}'
    assert event.encode() == b'data: {"a":\ndata: 1}\n\n'


def test_comments_and_priming_events_pass_with_empty_data_mcp_proxy_1_7() -> None:
    events = parse(b": keep-alive\n\nid: 1\ndata:\n\n")
    assert events[0].comments == [" keep-alive"]
    assert events[0].data is None
    assert events[1].id == "1"
    assert events[1].data == ""
    assert events[0].encode() == b": keep-alive\n\n"


def test_byte_by_byte_delivery_gives_the_same_events_mcp_proxy_1_7() -> None:
    body = 'id: 3\r\ndata: {"text":"héllo"}\r\n\r\n'.encode()
    parser = SseParser()
    events = [event for index in range(len(body)) for event in parser.feed(body[index : index + 1])]
    assert [(e.id, e.data) for e in events] == [("3", '{"text":"héllo"}')]


def test_field_rules_follow_whatwg_mcp_proxy_1_7() -> None:
    (event,) = parse(b"retry: soon\nid: a\0b\ndata:no-space\nfoo: bar\n\n")
    assert event.retry is None
    # Digits of other scripts are digits to Python, not to an EventSource.
    (digits,) = parse("retry: \u0661\u00b2\ndata: x\n\n".encode())
    assert digits.retry is None
    assert event.id is None
    assert event.data == "no-space"


def test_an_unterminated_final_event_is_dropped_mcp_proxy_1_7() -> None:
    assert parse(b"data: complete\n\ndata: cut off") == [Event(data="complete")]


def test_an_endless_event_is_refused_mcp_proxy_5_1() -> None:
    parser = SseParser(max_event_chars=100)
    with pytest.raises(EventTooLarge):
        list(parser.feed(b"data: " + b"x" * 200))


def test_a_long_line_in_many_chunks_is_one_line_and_still_bounded() -> None:
    # Its pieces are kept apart until the line ends (copied and searched again for every
    # chunk, a 4 MiB line took 0.1 s of parsing, growing with the square of its length).
    chunks = [b"data: ", *([b"A" * 1000] * 50), b"\ndata: b\r\n\r", b"\nid: 9\rdata: c\r\r"]
    first, second = parse(*chunks)
    assert first.data == "A" * 50_000 + "\nb"
    assert (second.id, second.data) == ("9", "c")
    bounded = SseParser(max_event_chars=10_000)
    for chunk in [b"data: ", *([b"A" * 1000] * 9)]:
        assert list(bounded.feed(chunk)) == []
    with pytest.raises(EventTooLarge):
        list(bounded.feed(b"A" * 1000))
