"""The 2026-07-28 multi-round-trip fixtures (`input-required-result-*` scenarios): tools and a
prompt that answer `InputRequiredResult` until the client retries with the `inputResponses`
they asked for.

The SDK seals every `requestState` it sends and verifies every echo, so a tampered state never
reaches these handlers (the tampered-state scenario relies on that).
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    SamplingMessage,
    TextContent,
)


def ask(message: str, field: str, kind: str = "string") -> ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def sample(prompt: str, max_tokens: int = 100) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
    return CreateMessageRequest(
        params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens)
    )


def need(requests: dict[str, InputRequest], state: str | None = None) -> InputRequiredResult:
    return InputRequiredResult(input_requests=requests, request_state=state)


def answer(ctx: Context, key: str) -> Any:
    return (ctx.input_responses or {}).get(key)


def elicited(ctx: Context, key: str, field: str) -> Any:
    """The accepted value of `field` in the elicitation answered under `key`, or None."""
    response = answer(ctx, key)
    if isinstance(response, ElicitResult) and response.action == "accept" and response.content:
        return response.content.get(field)
    return None


def register_mrtr_fixtures(mcp: MCPServer) -> None:
    @mcp.tool(description="MRTR: asks for the caller's name through an elicitation")
    def test_input_required_result_elicitation(ctx: Context) -> str | InputRequiredResult:
        name = elicited(ctx, "user_name", "name")
        if name is None:
            return need({"user_name": ask("What is your name?", "name")})
        return f"Hello, {name}!"

    @mcp.tool(description="MRTR: asks the client's model a question through sampling")
    def test_input_required_result_sampling(ctx: Context) -> str | InputRequiredResult:
        response = answer(ctx, "capital_question")
        if not isinstance(response, CreateMessageResult):
            return need({"capital_question": sample("What is the capital of France?")})
        content = response.content
        reply = content.text if isinstance(content, TextContent) else "(non-text answer)"
        return f"Sampling result: {reply}"

    @mcp.tool(description="MRTR: asks for the client's roots")
    def test_input_required_result_list_roots(ctx: Context) -> str | InputRequiredResult:
        response = answer(ctx, "client_roots")
        if not isinstance(response, ListRootsResult):
            return need({"client_roots": ListRootsRequest()})
        return "Roots: " + ", ".join(str(root.uri) for root in response.roots)

    @mcp.tool(description="MRTR: round-trips an opaque requestState")
    def test_input_required_result_request_state(ctx: Context) -> str | InputRequiredResult:
        confirmed = elicited(ctx, "confirm", "ok")
        if confirmed is None or ctx.request_state != "confirm-pending":
            return need({"confirm": ask("Please confirm", "ok", "boolean")}, "confirm-pending")
        return f"state-ok: confirmed={confirmed}"

    @mcp.tool(description="MRTR: asks for an elicitation, a sampling and the roots at once")
    def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequiredResult:
        name = elicited(ctx, "user_name", "name")
        greeting = answer(ctx, "greeting")
        roots = answer(ctx, "client_roots")
        if (
            name is None
            or not isinstance(greeting, CreateMessageResult)
            or not isinstance(roots, ListRootsResult)
            or ctx.request_state != "multiple-pending"
        ):
            requests: dict[str, InputRequest] = {
                "user_name": ask("What is your name?", "name"),
                "greeting": sample("Generate a greeting", 50),
                "client_roots": ListRootsRequest(),
            }
            return need(requests, "multiple-pending")
        return f"All inputs received for {name} ({len(roots.roots)} root(s))"

    @mcp.tool(description="MRTR: two rounds of elicitation, the state changing between them")
    def test_input_required_result_multi_round(ctx: Context) -> str | InputRequiredResult:
        state = ctx.request_state or ""
        if state.startswith("step2:"):
            color = elicited(ctx, "step2", "color")
            if color is not None:
                return f"{state.removeprefix('step2:')} likes {color}"
        name = elicited(ctx, "step1", "name") if state == "step1" else None
        if state.startswith("step2:") or name is not None:
            who = state.removeprefix("step2:") if state.startswith("step2:") else name
            question = ask("Step 2: What is your favorite color?", "color")
            return need({"step2": question}, f"step2:{who}")
        return need({"step1": ask("Step 1: What is your name?", "name")}, "step1")

    @mcp.tool(description="MRTR: integrity-protected requestState; a tampered one is refused")
    def test_input_required_result_tampered_state(ctx: Context) -> str | InputRequiredResult:
        if ctx.request_state == "tamper-check" and elicited(ctx, "confirm", "ok") is not None:
            return "state-ok"
        return need({"confirm": ask("Please confirm", "ok", "boolean")}, "tamper-check")

    @mcp.tool(description="MRTR: asks only for what the client declared it can answer")
    def test_input_required_result_capabilities(ctx: Context) -> str | InputRequiredResult:
        if ctx.input_responses:
            return "Inputs received"
        declared = ctx.client_capabilities
        requests: dict[str, InputRequest] = {}
        if declared is not None and declared.sampling is not None:
            requests["sample"] = sample("Say hello")
        if declared is not None and declared.elicitation is not None:
            requests["user_name"] = ask("What is your name?", "name")
        if declared is not None and declared.roots is not None:
            requests["client_roots"] = ListRootsRequest()
        if not requests:
            return "The client declared no capability to ask through"
        return need(requests)

    @mcp.prompt(description="MRTR on prompts/get: asks what context to use")
    def test_input_required_result_prompt(ctx: Context) -> list[UserMessage] | InputRequiredResult:
        context = elicited(ctx, "user_context", "context")
        if context is None:
            return need({"user_context": ask("What context should the prompt use?", "context")})
        message = TextContent(type="text", text=f"Use this context: {context}")
        return [UserMessage(content=message)]
