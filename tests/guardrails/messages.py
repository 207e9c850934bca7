"""Small JSON-RPC message builders shared by the guardrail tests."""

from __future__ import annotations

from typing import Any

from cerberus.guardrails import CheckContext, Direction


def tool_call(arguments: dict[str, Any], name: str = "send", id_: int = 1) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}


def tool_result(*texts: str, id_: int = 1, **extra: Any) -> dict[str, Any]:
    content = [{"type": "text", "text": text} for text in texts]
    return {"jsonrpc": "2.0", "id": id_, "result": {"content": content, "isError": False, **extra}}


def tools_list(*tools: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "result": {"tools": list(tools)}}


def context(direction: Direction, **fields: Any) -> CheckContext:
    return CheckContext("org-1", "ws-1", "agent-1", direction, **fields)


REQUEST = Direction.REQUEST
RESPONSE = Direction.RESPONSE
