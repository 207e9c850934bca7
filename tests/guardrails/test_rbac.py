"""RBAC: denied calls are refused, lists are filtered, everything else passes untouched."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cerberus.guardrails import CheckContext, Direction, Outcome
from cerberus.guardrails.rbac import Rbac


def request_context() -> CheckContext:
    return CheckContext("org", "ws", "agent", Direction.REQUEST)


def response_context(method: str) -> CheckContext:
    return CheckContext("org", "ws", "agent", Direction.RESPONSE, method=method)


def call(name: str, method: str = "tools/call", param: str = "name") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": {param: name}}


def tools_list(*names: str) -> dict[str, Any]:
    tools = [{"name": name, "inputSchema": {"type": "object"}} for name in names]
    return {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools, "nextCursor": "c2"}}


def outcome(rbac: Rbac, message: dict[str, Any]) -> Outcome:
    return rbac.check(message, request_context()).outcome


def test_denied_tool_is_blocked_with_a_reason_naming_it() -> None:
    rbac = Rbac(denied_tools=["drop_*"])
    verdict = rbac.check(call("drop_table"), request_context())
    assert verdict.outcome is Outcome.BLOCK
    assert "drop_table" in verdict.reason
    assert verdict.findings[0].type == "tool_denied"
    assert outcome(rbac, call("select_rows")) is Outcome.ALLOW


def test_deny_wins_over_allow() -> None:
    rbac = Rbac(allowed_tools=["filesystem/*"], denied_tools=["filesystem/delete*"])
    assert outcome(rbac, call("filesystem/read")) is Outcome.ALLOW
    assert outcome(rbac, call("filesystem/delete_all")) is Outcome.BLOCK


def test_an_allow_list_denies_unlisted_tools_by_default() -> None:
    rbac = Rbac(allowed_tools=["search", "filesystem/*"])
    assert outcome(rbac, call("search")) is Outcome.ALLOW
    assert outcome(rbac, call("filesystem/list")) is Outcome.ALLOW
    assert outcome(rbac, call("shell")) is Outcome.BLOCK
    # A wildcard matches the whole name, not a prefix of it.
    assert outcome(rbac, call("searchx")) is Outcome.BLOCK
    assert outcome(rbac, call("my/filesystem/list")) is Outcome.BLOCK


def test_explicit_default_action_applies_to_unmatched_names() -> None:
    permissive = Rbac(allowed_tools=["search"], default_action="allow")
    assert outcome(permissive, call("anything")) is Outcome.ALLOW
    strict = Rbac(denied_tools=["shell"], default_action="deny")
    assert outcome(strict, call("search")) is Outcome.BLOCK


def test_a_deny_list_alone_leaves_other_tools_allowed() -> None:
    rbac = Rbac(denied_tools=["shell"])
    assert outcome(rbac, call("search")) is Outcome.ALLOW


def test_wildcards_in_the_middle_and_several_stars() -> None:
    rbac = Rbac(denied_tools=["db*drop*table"])
    assert outcome(rbac, call("db.drop_table")) is Outcome.BLOCK
    assert outcome(rbac, call("dbdroptable")) is Outcome.BLOCK
    assert outcome(rbac, call("db.drop_tables")) is Outcome.ALLOW
    assert outcome(rbac, call("db_table_drop")) is Outcome.ALLOW


def test_resources_are_matched_by_uri_on_read_and_subscribe() -> None:
    rbac = Rbac(allowed_resources=["file:///public/*"])
    assert outcome(rbac, call("file:///public/a.txt", "resources/read", "uri")) is Outcome.ALLOW
    assert outcome(rbac, call("file:///etc/passwd", "resources/read", "uri")) is Outcome.BLOCK
    assert outcome(rbac, call("file:///etc/passwd", "resources/subscribe", "uri")) is (
        Outcome.BLOCK
    )
    # Tools are not restricted by resource rules.
    assert outcome(rbac, call("anything")) is Outcome.ALLOW


def test_prompts_are_matched_by_name() -> None:
    rbac = Rbac(denied_prompts=["internal_*"])
    assert outcome(rbac, call("internal_review", "prompts/get")) is Outcome.BLOCK
    assert outcome(rbac, call("summarise", "prompts/get")) is Outcome.ALLOW


def test_log_only_reports_without_blocking() -> None:
    rbac = Rbac(denied_tools=["shell"], action="log_only")
    verdict = rbac.check(call("shell"), request_context())
    assert verdict.outcome is Outcome.LOG_ONLY
    assert verdict.findings[0].type == "tool_denied"


def test_other_requests_and_notifications_pass() -> None:
    rbac = Rbac(allowed_tools=["search"])
    assert outcome(rbac, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}) is Outcome.ALLOW
    assert outcome(rbac, {"jsonrpc": "2.0", "method": "notifications/initialized"}) is (
        Outcome.ALLOW
    )


def test_tools_list_is_filtered_to_what_the_agent_may_call() -> None:
    rbac = Rbac(allowed_tools=["filesystem/*"], denied_tools=["filesystem/delete"])
    message = tools_list("filesystem/read", "shell", "filesystem/delete", "filesystem/write")
    verdict = rbac.check(message, response_context("tools/list"))
    assert verdict.outcome is Outcome.MODIFY
    assert verdict.message is not None
    result = verdict.message["result"]
    assert [tool["name"] for tool in result["tools"]] == ["filesystem/read", "filesystem/write"]
    assert result["nextCursor"] == "c2"
    assert verdict.message["id"] == 1
    assert verdict.findings[0].count == 2
    assert verdict.findings[0].where == ("result.tools[1]", "result.tools[2]")
    # The upstream message itself is left as it was.
    assert len(message["result"]["tools"]) == 4


def test_a_list_with_nothing_to_hide_is_left_alone() -> None:
    rbac = Rbac(denied_tools=["shell"])
    verdict = rbac.check(tools_list("search", "fetch"), response_context("tools/list"))
    assert verdict.outcome is Outcome.ALLOW


def test_resource_and_prompt_lists_are_filtered() -> None:
    rbac = Rbac(denied_resources=["secret://*"], denied_prompts=["internal_*"])
    resources = {
        "jsonrpc": "2.0",
        "id": 2,
        "result": {"resources": [{"uri": "secret://k", "name": "k"}, {"uri": "doc://a"}]},
    }
    verdict = rbac.check(resources, response_context("resources/list"))
    assert verdict.message is not None
    assert verdict.message["result"]["resources"] == [{"uri": "doc://a"}]
    templates = {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {"resourceTemplates": [{"uriTemplate": "secret://{name}", "name": "s"}]},
    }
    verdict = rbac.check(templates, response_context("resources/templates/list"))
    assert verdict.message is not None
    assert verdict.message["result"]["resourceTemplates"] == []
    prompts = {
        "jsonrpc": "2.0",
        "id": 4,
        "result": {"prompts": [{"name": "internal_x"}, {"name": "summarise"}]},
    }
    verdict = rbac.check(prompts, response_context("prompts/list"))
    assert verdict.message is not None
    assert verdict.message["result"]["prompts"] == [{"name": "summarise"}]


def test_the_list_method_can_come_from_the_answered_request() -> None:
    rbac = Rbac(denied_tools=["shell"])
    context = CheckContext(
        "org", "ws", "agent", Direction.RESPONSE, request={"method": "tools/list", "params": {}}
    )
    verdict = rbac.check(tools_list("shell", "search"), context)
    assert verdict.outcome is Outcome.MODIFY


def test_log_only_does_not_filter_lists() -> None:
    rbac = Rbac(denied_tools=["shell"], action="log_only")
    verdict = rbac.check(tools_list("shell"), response_context("tools/list"))
    assert verdict.outcome is Outcome.LOG_ONLY
    assert verdict.message is None


def test_error_answers_and_other_results_pass() -> None:
    rbac = Rbac(denied_tools=["shell"])
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "nope"}}
    assert rbac.check(error, response_context("tools/list")).outcome is Outcome.ALLOW
    content = {"jsonrpc": "2.0", "id": 1, "result": {"content": []}}
    assert rbac.check(content, response_context("tools/call")).outcome is Outcome.ALLOW


def test_unknown_config_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        Rbac.model_validate({"allowed_tool": ["x"], "action": "block"})
    with pytest.raises(ValidationError):
        Rbac.model_validate({"default_action": "maybe", "action": "block"})


def test_matching_stays_fast_on_hostile_names() -> None:
    rbac = Rbac(denied_tools=["*a*a*a*a*a*a*a*a*b"])
    assert outcome(rbac, call("a" * 200_000)) is Outcome.ALLOW


def complete(ref: Any) -> dict[str, Any]:
    params = {"ref": ref, "argument": {"name": "topic", "value": "sec"}}
    return {"jsonrpc": "2.0", "id": 9, "method": "completion/complete", "params": params}


def test_completing_a_denied_prompts_argument_is_refused_like_getting_it() -> None:
    rbac = Rbac(denied_prompts=["internal_*"])
    verdict = rbac.check(
        complete({"type": "ref/prompt", "name": "internal_review"}), request_context()
    )
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.findings[0].type == "prompt_denied"
    assert verdict.findings[0].where == ("params.ref.name",)
    assert "internal_review" in verdict.reason
    assert outcome(rbac, complete({"type": "ref/prompt", "name": "summarise"})) is Outcome.ALLOW


def test_completing_a_denied_resource_template_is_refused() -> None:
    rbac = Rbac(allowed_resources=["file:///public/*"], denied_resources=["file:///public/keys/*"])
    verdict = rbac.check(
        complete({"type": "ref/resource", "uri": "file:///public/keys/{name}"}), request_context()
    )
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.findings[0].type == "resource_denied"
    assert verdict.findings[0].where == ("params.ref.uri",)
    for refused in (
        "file:///{path}",  # an allow list is a whitelist: this template is not on it
        "file:///public/../etc/{name}",
        "FILE://localhost/public/keys/{name}",
        "file:///public/%2e%2e/{name}",
    ):
        ref = {"type": "ref/resource", "uri": refused}
        assert outcome(rbac, complete(ref)) is Outcome.BLOCK, refused
    allowed = {"type": "ref/resource", "uri": "file:///public/docs/{name}"}
    assert outcome(rbac, complete(allowed)) is Outcome.ALLOW


def test_a_template_can_be_completed_exactly_when_the_template_list_shows_it() -> None:
    rbac = Rbac(denied_resources=["secret://*", "file:///etc/{name}"])
    templates = ["secret://{name}", "file:///etc/{name}", "file:///tmp/{name}", "doc://{id}"]
    listing = {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {"resourceTemplates": [{"uriTemplate": uri} for uri in templates]},
    }
    verdict = rbac.check(listing, response_context("resources/templates/list"))
    assert verdict.message is not None
    shown = [t["uriTemplate"] for t in verdict.message["result"]["resourceTemplates"]]
    assert shown == ["file:///tmp/{name}", "doc://{id}"]
    for uri in templates:
        completion = outcome(rbac, complete({"type": "ref/resource", "uri": uri}))
        assert (completion is Outcome.ALLOW) == (uri in shown), uri


def test_completions_pass_when_their_kind_is_not_restricted_or_the_ref_is_malformed() -> None:
    rbac = Rbac(denied_tools=["shell"])
    assert outcome(rbac, complete({"type": "ref/prompt", "name": "anything"})) is Outcome.ALLOW
    assert outcome(rbac, complete({"type": "ref/resource", "uri": "x://{y}"})) is Outcome.ALLOW
    strict = Rbac(denied_prompts=["internal_*"], denied_resources=["secret://*"])
    for ref in ({"type": "ref/prompt"}, {"type": "ref/prompt", "name": 3}, "internal_x", None):
        assert outcome(strict, complete(ref)) is Outcome.ALLOW
    no_params = {"jsonrpc": "2.0", "id": 1, "method": "completion/complete"}
    assert outcome(strict, no_params) is Outcome.ALLOW


def test_log_only_reports_a_denied_completion_without_blocking() -> None:
    rbac = Rbac(denied_prompts=["internal_*"], action="log_only")
    verdict = rbac.check(complete({"type": "ref/prompt", "name": "internal_x"}), request_context())
    assert verdict.outcome is Outcome.LOG_ONLY
    assert verdict.findings[0].type == "prompt_denied"
