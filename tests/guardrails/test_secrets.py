"""The secrets guardrail: credentials in either direction are blocked or redacted."""

from __future__ import annotations

from typing import Any

import pytest

from cerberus.guardrails import Outcome
from cerberus.guardrails.secrets import Secrets
from tests.guardrails.messages import REQUEST, RESPONSE, context, tool_call, tool_result

AWS = "AKIAZ7QW3ERT5YUI6OPA"
GITHUB = "ghp_" + "Zx81QmPa0L" * 3 + "kW92nB"
DSN = "postgresql://svc:Xy7pQ2zLm@db.internal:5432/app"


def test_tokens_in_a_tool_result_are_blocked_by_kind() -> None:
    verdict = Secrets().check(tool_result(f"aws {AWS}", f"gh {GITHUB}"), context(RESPONSE))
    assert verdict.outcome is Outcome.BLOCK
    assert {finding.type for finding in verdict.findings} == {"aws_access_key", "github_token"}
    assert AWS not in repr(verdict)
    assert GITHUB not in repr(verdict)


def test_a_password_in_a_url_is_redacted_keeping_the_rest() -> None:
    verdict = Secrets(action="redact").check(tool_call({"dsn": DSN}), context(REQUEST))
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    redacted = verdict.message["params"]["arguments"]["dsn"]
    assert redacted == "postgresql://svc:[REDACTED:SECRET]@db.internal:5432/app"


def test_overlapping_secret_kinds_are_redacted_once() -> None:
    text = f"stripe.api_key = 'sk_live_{'4eC39HqLyjWDarjt' * 2}'"
    verdict = Secrets(action="redact").check(tool_result(text), context(RESPONSE))
    assert verdict.message is not None
    assert verdict.message["result"]["content"][0]["text"] == "stripe.api_key = '[REDACTED:SECRET]'"


def test_placeholders_hashes_and_ids_are_allowed() -> None:
    message = tool_result(
        "api_key = os.environ['API_KEY']",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "request_id = 550e8400-e29b-41d4-a716-446655440000",
    )
    assert Secrets().check(message, context(RESPONSE)).outcome is Outcome.ALLOW


def test_a_value_is_read_with_the_key_it_sits_under() -> None:
    arguments = {"login": {"user": "ana", "password": "hunter2hunter2"}, "note": "hunter2hunter2"}
    verdict = Secrets(action="redact").check(tool_call(arguments), context(REQUEST))
    assert verdict.message is not None
    redacted = verdict.message["params"]["arguments"]
    assert redacted["login"] == {"user": "ana", "password": "[REDACTED:SECRET]"}
    assert redacted["note"] == "hunter2hunter2"  # the same text under another name is not a secret


def test_protocol_meta_such_as_a_progress_token_is_not_read_as_a_secret() -> None:
    """Found by the conformance suite: `_meta.progressToken` looked like a token assignment."""
    message = tool_call({"message": "hello"})
    message["params"]["_meta"] = {
        "progressToken": "progress-test-1",
        "io.modelcontextprotocol/clientInfo": {"name": "client", "version": "1.0"},
    }
    assert Secrets().check(message, context(REQUEST)).outcome is Outcome.ALLOW


def test_a_secret_smuggled_in_other_meta_fields_is_still_found() -> None:
    message = tool_call({"message": "hello"})
    message["params"]["_meta"] = {"note": f"key {AWS}"}
    assert Secrets().check(message, context(REQUEST)).outcome is Outcome.BLOCK


def resource_text(uri: str, text: str) -> dict[str, Any]:
    contents = [{"uri": uri, "mimeType": "application/json", "text": text}]
    return {"jsonrpc": "2.0", "id": 1, "result": {"contents": contents}}


KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "Qx9Lk2Jv/+" * 6


@pytest.mark.parametrize("newline", ["\\n", "\\r\\n"], ids=["escaped-lf", "escaped-crlf"])
def test_a_service_account_key_read_as_json_source_is_redacted_whole(newline: str) -> None:
    """A resource's text holding a key file as JSON: its newlines are the two characters
    `\\n`, and before, only the BEGIN line was redacted and the key itself passed."""
    block = newline.join(
        ["-----BEGIN PRIVATE KEY-----", KEY_BODY, KEY_BODY, "-----END PRIVATE KEY-----"]
    )
    document = (
        f'{{"type": "service_account", "private_key": "{block}{newline}", "client_id": "1234"}}'
    )
    verdict = Secrets(action="redact").check(
        resource_text("file:///keys/sa.json", document),
        context(RESPONSE, method="resources/read"),
    )
    assert verdict.outcome is Outcome.MODIFY
    assert [finding.type for finding in verdict.findings] == ["private_key"]
    assert verdict.message is not None
    assert verdict.message["result"]["contents"][0]["text"] == (
        f'{{"type": "service_account", "private_key": "[REDACTED:SECRET]{newline}", '
        '"client_id": "1234"}'
    )


def test_a_password_after_an_empty_user_name_is_redacted() -> None:
    text = "REDIS_URL=redis://:s3cretpass@cache:6379/0"
    verdict = Secrets(action="redact").check(tool_result(text), context(RESPONSE))
    assert verdict.message is not None
    redacted = verdict.message["result"]["content"][0]["text"]
    assert redacted == "REDIS_URL=redis://:[REDACTED:SECRET]@cache:6379/0"
