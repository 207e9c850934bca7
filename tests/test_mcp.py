"""The walker finds text in every MCP message kind; redaction keeps messages valid."""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
from typing import Any

import mcp.types as types
import orjson
import pytest

from cerberus import mcp
from cerberus.guardrails import CheckContext, Direction, Outcome
from cerberus.guardrails.pii_email import PiiEmail

EMAIL = "leak.person@example.com"
REDACTED = "[REDACTED:EMAIL]"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def request(method: str, params: dict[str, Any], id_: int | str = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


def result(payload: dict[str, Any], id_: int | str = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": payload}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


TOOL_RESULT = {
    "content": [
        {"type": "text", "text": f"mail {EMAIL}"},
        {
            "type": "resource_link",
            "uri": "file:///reports/q3.txt",
            "name": f"report for {EMAIL}",
            "title": f"title {EMAIL}",
            "description": f"owner {EMAIL}",
        },
        {
            "type": "resource",
            "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": EMAIL},
        },
        {
            "type": "resource",
            "resource": {"uri": "file:///b.csv", "mimeType": "text/csv", "blob": b64(EMAIL)},
        },
        {"type": "image", "mimeType": "image/png", "data": b64(EMAIL)},
    ],
    "isError": False,
}

# message, the paths where the walker must find EMAIL
CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "tools/call arguments, nested": (
        request(
            "tools/call",
            {"name": "send", "arguments": {"to": EMAIL, "cc": [{"who": EMAIL}]}},
        ),
        {"$.params.arguments.to", "$.params.arguments.cc[0].who"},
    ),
    "tool result content blocks": (
        result(TOOL_RESULT),
        {
            "$.result.content[0].text",
            "$.result.content[1].name",
            "$.result.content[1].title",
            "$.result.content[1].description",
            "$.result.content[2].resource.text",
            "$.result.content[3].resource.blob (base64)",
        },
    ),
    "resources/read contents": (
        result(
            {
                "contents": [
                    {"uri": "file:///x.json", "mimeType": "application/json", "blob": b64(EMAIL)},
                    {"uri": "file:///y.txt", "text": EMAIL},
                ]
            }
        ),
        {"$.result.contents[0].blob (base64)", "$.result.contents[1].text"},
    ),
    "prompts/get messages": (
        result({"messages": [{"role": "user", "content": {"type": "text", "text": EMAIL}}]}),
        {"$.result.messages[0].content.text"},
    ),
    "sampling request from the server": (
        request(
            "sampling/createMessage",
            {
                "messages": [{"role": "user", "content": {"type": "text", "text": EMAIL}}],
                "systemPrompt": EMAIL,
                "maxTokens": 10,
            },
            "srv-1",
        ),
        {"$.params.messages[0].content.text", "$.params.systemPrompt"},
    ),
    "sampling with tool use and tool results (2025-11-25)": (
        request(
            "sampling/createMessage",
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "u1", "name": "mail", "input": {"to": EMAIL}}
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "toolUseId": "u1",
                                "content": [{"type": "text", "text": EMAIL}],
                            }
                        ],
                    },
                ],
                "maxTokens": 10,
            },
            "srv-3",
        ),
        {
            "$.params.messages[0].content[0].input.to",
            "$.params.messages[1].content[0].content[0].text",
        },
    ),
    "completion request": (
        request(
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "a", "value": EMAIL}},
        ),
        {"$.params.argument.value"},
    ),
    "the client's sampling answer": (
        result(
            {"role": "assistant", "content": {"type": "text", "text": EMAIL}, "model": "m"}, "srv-1"
        ),
        {"$.result.content.text"},
    ),
    "elicitation request and schema": (
        request(
            "elicitation/create",
            {
                "message": f"confirm {EMAIL}",
                "requestedSchema": {
                    "type": "object",
                    "properties": {"email": {"type": "string", "description": EMAIL}},
                },
            },
            "srv-2",
        ),
        {"$.params.message", "$.params.requestedSchema.properties.email.description"},
    ),
    "the client's elicitation answer": (
        result({"action": "accept", "content": {"email": EMAIL}}, "srv-2"),
        {"$.result.content.email"},
    ),
    "an elicitation answer whose form has a field named type": (
        # Its `type` made it a content block: values under role, status, data... went unread.
        result({"action": "accept", "content": {"type": "work", "role": EMAIL}}, "srv-2"),
        {"$.result.content.role"},
    ),
    "2026-07-28 inputResponses": (
        request(
            "tools/call",
            {
                "name": "book",
                "arguments": {},
                "inputResponses": {"contact": {"action": "accept", "content": {"email": EMAIL}}},
                "requestState": f"sealed-{EMAIL}",
            },
            2,
        ),
        {"$.params.inputResponses.contact.content.email"},
    ),
    "input_required result": (
        result(
            {
                "resultType": "input_required",
                "inputRequests": {
                    "contact": {
                        "method": "elicitation/create",
                        "params": {"message": EMAIL, "requestedSchema": {"type": "object"}},
                    }
                },
                "requestState": f"sealed-{EMAIL}",
            }
        ),
        {"$.result.inputRequests.contact.params.message"},
    ),
    "log notification": (
        # The logger's name is the server's to choose, and hosts show it beside the data.
        notification(
            "notifications/message",
            {"level": "info", "logger": f"mail.{EMAIL}", "data": {"user": EMAIL}},
        ),
        {"$.params.logger", "$.params.data.user"},
    ),
    "progress notification": (
        notification(
            "notifications/progress", {"progressToken": 1, "progress": 1, "message": EMAIL}
        ),
        {"$.params.message"},
    ),
    "tasks/get result": (
        result({"taskId": "t1", "status": "working", "statusMessage": EMAIL}),
        {"$.result.statusMessage"},
    ),
    "tasks/result result": (
        result({"content": [{"type": "text", "text": EMAIL}], "isError": False}),
        {"$.result.content[0].text"},
    ),
    "tools/list descriptions and schemas": (
        result(
            {
                "tools": [
                    {
                        "name": "send",
                        "description": f"mails {EMAIL}",
                        "inputSchema": {
                            "type": "object",
                            "properties": {"to": {"type": "string", "default": EMAIL}},
                        },
                    }
                ]
            }
        ),
        {"$.result.tools[0].description", "$.result.tools[0].inputSchema.properties.to.default"},
    ),
    "error message and data": (
        {"jsonrpc": "2.0", "id": 3, "error": {"code": -32000, "message": EMAIL, "data": [EMAIL]}},
        {"$.error.message", "$.error.data[0]"},
    ),
}


def found_paths(message: dict[str, Any]) -> set[str]:
    return {slot.where for slot in mcp.texts(message) if EMAIL in slot.text}


@pytest.mark.parametrize("case", list(CASES))
def test_walker_finds_text_in_every_message_kind(case: str) -> None:
    message, expected = CASES[case]
    assert found_paths(message) == expected


@pytest.mark.parametrize("case", list(CASES))
def test_redaction_removes_every_found_text_and_keeps_id_and_request_state(case: str) -> None:
    message, _ = CASES[case]
    original = copy.deepcopy(message)
    direction = Direction.REQUEST if "method" in message else Direction.RESPONSE
    verdict = PiiEmail(action="redact").check(message, CheckContext("o", "w", "a", direction))
    assert message == original  # the input is never modified
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    redacted = verdict.message
    assert found_paths(redacted) == set()
    assert redacted.get("id") == message.get("id")
    assert type(redacted.get("id")) is type(message.get("id"))
    params_or_result = redacted.get("params") or redacted.get("result") or {}
    if "requestState" in params_or_result:
        assert params_or_result["requestState"] == f"sealed-{EMAIL}"
    assert REDACTED in orjson.dumps(redacted).decode() or any(
        REDACTED in slot.text for slot in mcp.texts(redacted)
    )


def test_redacted_tool_result_is_still_a_valid_call_tool_result() -> None:
    verdict = PiiEmail(action="redact").check(
        result(TOOL_RESULT), CheckContext("o", "w", "a", Direction.RESPONSE)
    )
    assert verdict.message is not None
    parsed = types.CallToolResult.model_validate(verdict.message["result"])
    blob = parsed.content[3].resource.blob  # type: ignore[union-attr]
    assert base64.b64decode(blob).decode() == REDACTED
    image = parsed.content[4]
    assert image.data == b64(EMAIL)  # type: ignore[union-attr]  # media is not text: untouched


def _wrapped(text: str) -> str:
    encoded = b64(text)
    return "\n".join(encoded[i : i + 8] for i in range(0, len(encoded), 8))


@pytest.mark.parametrize(
    "blob",
    [
        _wrapped(EMAIL),  # MIME-style lines
        b64(EMAIL).rstrip("="),  # no padding
        base64.urlsafe_b64encode(b"\xfb\xff " + EMAIL.encode()).decode(),  # URL-safe, not UTF-8
    ],
)
def test_a_text_blob_is_read_as_leniently_as_clients_decode_it(blob: str) -> None:
    # Strict base64 and strict UTF-8 only: each of these was left unread, and passed.
    message = result(
        {"contents": [{"uri": "file:///a.txt", "mimeType": "text/plain", "blob": blob}]}
    )
    assert found_paths(message) == {"$.result.contents[0].blob (base64)"}
    verdict = PiiEmail(action="redact").check(
        message, CheckContext("o", "w", "a", Direction.RESPONSE)
    )
    assert verdict.message is not None
    redacted = base64.b64decode(verdict.message["result"]["contents"][0]["blob"]).decode()
    assert EMAIL not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    ("mime_type", "raw"),
    [
        ("text/plain; charset=utf-16", f"note: {EMAIL}".encode("utf-16")),
        ("text/csv; charset=UTF-16LE", f"note,{EMAIL}".encode("utf-16-le")),
        ("text/plain", f"note: {EMAIL}".encode("utf-16")),  # no charset: the BOM says
        ('text/plain; charset="utf-7"', b"note: leak.person+AEA-example.com"),
        ("text/plain; charset=latin-1", f"caf\xe9 {EMAIL}".encode("latin-1")),
    ],
)
def test_a_text_blob_is_read_in_the_encoding_its_reader_decodes(mime_type: str, raw: bytes) -> None:
    # Read as UTF-8 whatever it said, a UTF-16 file had a NUL after each letter: no match.
    blob = base64.b64encode(raw).decode()
    message = result({"contents": [{"uri": "file:///a", "mimeType": mime_type, "blob": blob}]})
    assert found_paths(message) == {"$.result.contents[0].blob (base64)"}
    verdict = PiiEmail(action="redact").check(
        message, CheckContext("o", "w", "a", Direction.RESPONSE)
    )
    assert verdict.message is not None
    redacted = base64.b64decode(verdict.message["result"]["contents"][0]["blob"])
    text = redacted.decode(mcp.blob_encoding({"mimeType": mime_type}, redacted))
    assert EMAIL not in text
    assert REDACTED in text


def test_images_and_opaque_binary_blobs_are_not_scanned() -> None:
    message = result(
        {
            "contents": [
                {"uri": "file:///x.bin", "mimeType": "application/octet-stream", "blob": b64(EMAIL)}
            ]
        }
    )
    assert found_paths(message) == set()


def test_structured_content_and_its_text_serialisation_are_redacted_alike() -> None:
    structured = {"owner": EMAIL, "count": 3}
    message = result(
        {
            "content": [
                {
                    "type": "text",
                    "text": orjson.dumps(structured, option=orjson.OPT_INDENT_2).decode(),
                }
            ],
            "structuredContent": structured,
        }
    )
    original = copy.deepcopy(message)
    verdict = PiiEmail(action="redact").check(
        message, CheckContext("o", "w", "a", Direction.RESPONSE)
    )
    assert message == original
    assert verdict.message is not None
    redacted = verdict.message["result"]
    assert redacted["structuredContent"] == {"owner": REDACTED, "count": 3}
    assert orjson.loads(redacted["content"][0]["text"]) == redacted["structuredContent"]
    assert redacted["content"][0]["text"].startswith("{\n  ")  # the server's formatting is kept
    types.CallToolResult.model_validate(redacted)


def test_tool_name_reads_tools_call_only() -> None:
    assert mcp.tool_name(request("tools/call", {"name": "x"})) == "x"
    assert mcp.tool_name(request("prompts/get", {"name": "x"})) is None


def test_deeply_nested_json_is_walked_without_recursion() -> None:
    node: Any = EMAIL
    for _ in range(5_000):
        node = [node]
    message = result({"content": [], "structuredContent": {"deep": node}})
    assert len(found_paths(message)) == 1


def test_deeply_nested_json_is_redacted_without_recursion() -> None:
    node: Any = EMAIL
    for _ in range(5_000):
        node = [node]
    message = result({"content": [], "structuredContent": {"deep": node, "other": [1, 2]}})
    verdict = PiiEmail(action="redact").check(
        message, CheckContext("o", "w", "a", Direction.RESPONSE)
    )
    assert verdict.message is not None
    assert found_paths(verdict.message) == set()
    # Containers off the changed path are shared with the original, not copied.
    assert (
        verdict.message["result"]["structuredContent"]["other"]
        is message["result"]["structuredContent"]["other"]
    )


def test_a_message_nested_20000_deep_is_walked_and_redacted_at_the_right_path() -> None:
    # Built directly: orjson refuses to parse JSON nested deeper than 255.
    depth = 20_000
    node: Any = {"note": f"write to {EMAIL}", "n": 7}
    for level in range(depth):
        node = {"child": node} if level % 2 else {"items": [node]}
    message = request("tools/call", {"name": "store", "arguments": {"doc": node}})
    steps: list[str | int] = ["params", "arguments", "doc"]
    for level in reversed(range(depth)):
        steps += ["child"] if level % 2 else ["items", 0]
    expected = (*steps, "note")

    bottom = [slot for slot in mcp.texts(message) if slot.text.endswith(EMAIL)]
    assert [slot.path for slot in bottom] == [expected]
    assert bottom[0].where.endswith(".child.items[0].note")
    assert bottom[0].key == "note"
    numbers = [slot for slot in mcp.texts(message) if slot.kind is mcp.SlotKind.NUMBER]
    assert [(slot.path, slot.locked) for slot in numbers] == [((*steps, "n"), "a number")]
    assert [path for path, _ in mcp.data_roots(message)] == [("params", "arguments")]

    verdict = PiiEmail(action="redact").check(
        message, CheckContext("o", "w", "a", Direction.REQUEST)
    )
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    redacted: Any = verdict.message
    original: Any = message
    for step in steps:
        redacted, original = redacted[step], original[step]
    assert redacted["note"] == f"write to {REDACTED}"
    assert original["note"] == f"write to {EMAIL}"  # the original is not modified
    assert redacted["n"] == 7

    # redact() itself writes at the slot's path, however deep.
    rewrite = mcp.redact(message, [(bottom[0], "gone")])
    assert rewrite.refusal is None
    assert rewrite.message is not None
    node = rewrite.message
    for step in steps:
        node = node[step]
    assert node["note"] == "gone"


def test_jsonschema_loads_only_with_the_first_output_schema_check() -> None:
    # jsonschema is 2.1 MiB resident; a gateway whose tools declare no outputSchema never
    # needs it. A redaction checked against one still loads it and validates.
    code = (
        "import sys, cerberus.app, cerberus.guardrails.builtin, cerberus.proxy.pipeline\n"
        "print('jsonschema' in sys.modules)\n"
        "from cerberus import mcp\n"
        "message = {'jsonrpc': '2.0', 'id': 1, 'result': {'content': [],"
        " 'structuredContent': {'to': 'a@b.co'}}}\n"
        "schema = {'type': 'object', 'properties': {'to': {'type': 'string', 'format': 'email'}}}\n"
        "changes = [(mcp.texts(message)[1], 'x')]\n"
        "print(mcp.rewrite(message, changes, output_schema=schema).refusal)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.splitlines() == [
        "False",
        "redacted structuredContent would not match the tool's outputSchema",
    ]


def test_a_rewrite_copies_each_changed_container_once_and_shares_the_rest() -> None:
    rows = [{"a": "x", "b": "y", "keep": {"n": 1}}, {"a": "z"}, {"untouched": "w"}]
    message = {"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": {"rows": rows}}}
    original = copy.deepcopy(message)
    slots = {slot.path: slot for slot in mcp.texts(message) if slot.kind is mcp.SlotKind.TEXT}
    base = ("result", "structuredContent", "rows")
    wanted = [(*base, 0, "a"), (*base, 0, "b"), (*base, 1, "a")]
    rewrite = mcp.rewrite(message, [(slots[path], f"<{path[-2]}{path[-1]}>") for path in wanted])
    assert rewrite.message is not None
    new_rows = rewrite.message["result"]["structuredContent"]["rows"]
    assert new_rows[:2] == [{"a": "<0a>", "b": "<0b>", "keep": {"n": 1}}, {"a": "<1a>"}]
    assert message == original
    assert new_rows[0]["keep"] is rows[0]["keep"]
    assert new_rows[2] is rows[2]
    assert new_rows[0] is not rows[0]
    assert new_rows[1] is not rows[1]


def test_a_key_too_long_to_be_a_name_is_not_written_in_a_place() -> None:
    key = "k" * 300
    assert mcp.where(("params", "arguments", key, "x")) == (
        "$.params.arguments['[KEY OF 300 CHARACTERS]'].x"
    )
    assert mcp.where(("result", "name", "a b")) == "$.result.name['a b']"
    assert mcp.where(("result", "bob@example.com")) == "$.result['[REDACTED]']"
