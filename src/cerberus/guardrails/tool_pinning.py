"""Rug-pull protection: a tool whose definition changed since it was pinned waits for an admin.

The first `tools/list` answer seen in a workspace pins each tool's definition hash (name,
title, description, input and output schema, annotations). Later answers are compared with
the pins: a new tool is pinned and reported; a changed one is recorded as pending and, with
action `block`, the answer is refused and calls to that tool are refused until an admin
approves the new definition. Pins are read from memory (the pin store the pipeline cache
owns and hands over in `CheckContext.extras`); writes happen off the request path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cerberus.guardrails import (
    ALLOW,
    CheckContext,
    Direction,
    Family,
    Finding,
    Guardrail,
    Outcome,
    Verdict,
)
from cerberus.policies.pins import PIN_STORE_EXTRA, PinStore


class ToolPinning(Guardrail):
    type = "tool_pinning"
    family = Family.PINNING
    directions = frozenset({Direction.REQUEST, Direction.RESPONSE})
    description = (
        "Pins each tool's definition the first time a workspace sees it; a changed description "
        "or schema is blocked (or logged) until an admin approves it; new tools are reported."
    )

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if context.direction is Direction.REQUEST:
            return self._check_call(message, context)
        method = context.method or (context.request or {}).get("method")
        result = message.get("result")
        tools = result.get("tools") if isinstance(result, Mapping) else None
        if method != "tools/list" or not isinstance(tools, list):
            return ALLOW
        observation = _store(context).observe(context.workspace_id, tools)
        findings = []
        if observation.new:
            where = tuple(f"result.tools[{i}]" for i in observation.new)
            findings.append(Finding("new_tool", len(observation.new), where))
        if observation.changed:
            where = tuple(f"result.tools[{i}]" for i in observation.changed)
            findings.append(Finding("changed_tool_definition", len(observation.changed), where))
        if not findings:
            return ALLOW
        if observation.changed and self.action == "block":
            names = ", ".join(repr(tools[i]["name"]) for i in observation.changed)
            return Verdict(
                Outcome.BLOCK,
                self.type,
                tuple(findings),
                f"tool definition changed since it was pinned: {names}; "
                "an admin must approve the new definition",
            )
        return Verdict(Outcome.LOG_ONLY, self.type, tuple(findings))

    def _check_call(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if message.get("method") != "tools/call":
            return ALLOW
        params = message.get("params")
        name = params.get("name") if isinstance(params, Mapping) else None
        if not isinstance(name, str):
            return ALLOW
        if not _store(context).awaiting_approval(context.workspace_id, name):
            return ALLOW
        return Verdict(
            Outcome.BLOCK if self.action == "block" else Outcome.LOG_ONLY,
            self.type,
            (Finding("changed_tool_definition", 1, ("params.name",)),),
            f"tool {name!r} changed since it was pinned; an admin must approve the new definition",
        )


def _store(context: CheckContext) -> PinStore:
    store = context.extras.get(PIN_STORE_EXTRA)
    if not isinstance(store, PinStore):
        raise RuntimeError("tool pinning needs the pin store in the check context")
    return store
