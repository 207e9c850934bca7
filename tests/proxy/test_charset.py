"""Bodies are UTF-8 both ways: one whose Content-Type names another charset is refused.

The gateway reads every body as UTF-8. The TypeScript SDK's server decodes a request by the
charset its Content-Type names, and an SSE client may decode an answer the same way; in
UTF-7 the same bytes carry another text (`+AEA-` is an `@`), so an email or a quote that
changes the message's structure passed the policies unseen.
"""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from cerberus.guardrails.pii_email import PiiEmail
from tests.proxy.conftest import Gateway, create_tenant
from tests.proxy.guardrails import installed
from tests.proxy.scripted import scripted_upstream

HIDDEN = "ana+AEA-corp.example"  # ana@corp.example, to a reader of UTF-7
CALL = (
    b'{"jsonrpc":"2.0","id":3,"method":"tools/call",'
    b'"params":{"name":"send","arguments":{"to":"' + HIDDEN.encode() + b'"}}}'
)
ANSWER = b'{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"ok"}]}}'


def test_the_hidden_address_is_an_address_in_utf_7() -> None:
    assert HIDDEN.encode().decode("utf-7") == "ana@corp.example"


def _answer(body: bytes, content_type: str, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-7",
        "application/json;charset=UTF-7",
        'application/json; charset="utf-16le"',
        "application/json; charset=utf-8; charset=utf-7",
        "application/json; charset=",
    ],
)
async def test_a_request_in_another_charset_is_refused_before_the_upstream(
    gateway: Gateway, http: httpx.AsyncClient, content_type: str
) -> None:
    async with scripted_upstream() as upstream, installed(gateway.app, PiiEmail(action="redact")):
        tenant = await create_tenant(gateway.app, upstream.url)
        headers = tenant.headers(**{"content-type": content_type})
        answer = await http.post(gateway.mcp, content=CALL, headers=headers)
    assert upstream.received == []
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == -32600
    assert answer.json()["error"]["message"].startswith("Invalid Request: the body must be UTF-8")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("content-type", "application/json; charset=utf-8"),
        ("content-type", 'application/json; Charset="UTF8"'),
        ("content-encoding", "identity"),
        # An ASCII body is one text in every charset that extends ASCII (Java's and older
        # HTTP clients label bodies ISO-8859-1 by default): refused before, for the label.
        ("content-type", "application/json; charset=ISO-8859-1"),
        ("content-type", "application/json; charset=us-ascii"),
        ("content-type", "application/json; charset=windows-1252"),
    ],
)
async def test_a_request_read_as_sent_is_forwarded(
    gateway: Gateway, http: httpx.AsyncClient, name: str, value: str
) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        return _answer(ANSWER, "application/json")

    async with scripted_upstream() as upstream:
        upstream.handler = answer
        tenant = await create_tenant(gateway.app, upstream.url)
        forwarded = await http.post(
            gateway.mcp, content=CALL, headers=tenant.headers(**{name: value})
        )
    assert forwarded.status_code == 200
    assert upstream.received[0].headers[name] == value


async def test_a_request_past_ascii_under_an_ascii_charset_is_refused(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    # "Müller" in Latin-1: the gateway would read U+FFFD where the upstream reads "ü".
    body = CALL.replace(HIDDEN.encode(), "Müller".encode("latin-1"))
    async with scripted_upstream() as upstream:
        tenant = await create_tenant(gateway.app, upstream.url)
        headers = tenant.headers(**{"content-type": "application/json; charset=ISO-8859-1"})
        answer = await http.post(gateway.mcp, content=body, headers=headers)
    assert upstream.received == []
    assert answer.status_code == 415


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=utf-7", 200),
        ("application/json; charset=utf-7", 400),
        ("application/json; charset=utf-7", 307),  # a 3xx body is decided too now
        ("text/event-stream; charset=utf-7", 200),
    ],
)
async def test_an_answer_in_another_charset_is_refused_not_relayed(
    gateway: Gateway, http: httpx.AsyncClient, content_type: str, status: int
) -> None:
    text = b'{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"%s"}]}}' % (
        HIDDEN.encode()
    )
    body = b"data: " + text + b"\n\n" if content_type.startswith("text/") else text

    async def answer(request: web.Request) -> web.StreamResponse:
        return _answer(body, content_type, status)

    async with scripted_upstream() as upstream, installed(gateway.app, PiiEmail(action="redact")):
        upstream.handler = answer
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "read"}}
        refused = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert refused.status_code == 502
    assert refused.json()["error"]["message"] == "Upstream answered in a charset other than UTF-8"
    assert HIDDEN not in refused.text


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("write to ana@corp.example", 200),  # ASCII: one text in Latin-1 too, so decided
        ("write to Müller@corp.example", 502),  # past ASCII: `ü` is another text in UTF-8
    ],
)
async def test_an_answer_under_an_ascii_charset_is_decided_when_it_is_ascii(
    gateway: Gateway, http: httpx.AsyncClient, text: str, status: int
) -> None:
    body = b'{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"%s"}]}}' % (
        text.encode("latin-1")
    )

    async def answer(request: web.Request) -> web.StreamResponse:
        return _answer(body, "application/json; charset=ISO-8859-1")

    async with scripted_upstream() as upstream, installed(gateway.app, PiiEmail(action="redact")):
        upstream.handler = answer
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "read"}}
        relayed = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert relayed.status_code == status
    assert "corp.example" not in relayed.text
    if status == 200:
        assert relayed.json()["result"]["content"][0]["text"] == "write to [REDACTED:EMAIL]"


async def test_a_4xx_page_in_another_charset_is_relayed_as_it_is(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    page = "<p>Not found</p>".encode("latin-1")

    async def answer(request: web.Request) -> web.StreamResponse:
        return _answer(page, "text/html; charset=iso-8859-1", status=404)

    async with scripted_upstream() as upstream:
        upstream.handler = answer
        tenant = await create_tenant(gateway.app, upstream.url)
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "read"}}
        relayed = await http.post(gateway.mcp, json=call, headers=tenant.headers())
    assert relayed.status_code == 404
    assert relayed.content == page


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "identity, gzip"])
async def test_a_request_that_says_its_body_is_encoded_is_refused_before_the_upstream(
    gateway: Gateway, http: httpx.AsyncClient, encoding: str
) -> None:
    # The gateway reads the bytes as they came; an upstream behind a body parser (Express's
    # json() inflates by Content-Encoding) would read what they inflate to.
    async with scripted_upstream() as upstream:
        tenant = await create_tenant(gateway.app, upstream.url)
        headers = tenant.headers(**{"content-encoding": encoding})
        answer = await http.post(gateway.mcp, content=CALL, headers=headers)
    assert upstream.received == []
    assert answer.status_code == 415
    assert answer.json()["error"]["message"] == (
        f"Invalid Request: the body must not be encoded (Content-Encoding: {encoding})"
    )
