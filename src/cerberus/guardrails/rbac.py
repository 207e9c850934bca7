"""Which tools, resources and prompts an agent may use: enforced on calls, applied to lists.

Deny wins over allow. A name that matches neither list gets `default_action`; left unset, it
is "deny" when an allow list is given (an allow list is a whitelist) and "allow" otherwise.
A kind (tools, resources, prompts) with no rules at all is not restricted. Resource URIs and
patterns are matched as a server would read them (guardrails/resource_uris.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic import PrivateAttr

from cerberus.guardrails import (
    ALLOW,
    CheckContext,
    Direction,
    Family,
    Finding,
    Guardrail,
    Outcome,
    Verdict,
    resource_uris,
)
from cerberus.guardrails.wildcards import WildcardSet
from cerberus.jsonrpc import LISTING_FIELDS


@dataclass(frozen=True)
class _Rules:
    allowed: WildcardSet
    denied: WildcardSet
    default_allows: bool

    @cached_property
    def restricts(self) -> bool:
        # Cached: a property would call WildcardSet.__bool__ twice per message.
        return bool(self.allowed or self.denied)

    def permits(self, name: str) -> bool:
        if not self.restricts:
            return True
        return self._decides(name)

    def _decides(self, name: str) -> bool:
        if self.denied.matches(name):
            return False
        if self.allowed.matches(name):
            return True
        return self.default_allows


class _UriRules(_Rules):
    """Rules for resources: every reading a server could give the URI must be permitted, and
    an ambiguous URI (no reading) is not."""

    def permits(self, name: str) -> bool:
        if not self.restricts:
            return True
        uris = resource_uris.readings(name)  # most: the URI itself, after one quick check
        return bool(uris) and all(self._decides(uri) for uri in uris)


# kind -> (request methods naming one item, the param naming it)
_CALLS: dict[str, tuple[str, str]] = {
    "tools/call": ("tools", "name"),
    "resources/read": ("resources", "uri"),
    "resources/subscribe": ("resources", "uri"),
    "resources/unsubscribe": ("resources", "uri"),
    "prompts/get": ("prompts", "name"),
}
# completion/complete: params.ref.type -> (kind, the ref field naming the item). A resource
# ref names a URI template, matched as its text, the way resources/templates/list is filtered.
_COMPLETION_REFS: dict[str, tuple[str, str]] = {
    "ref/prompt": ("prompts", "name"),
    "ref/resource": ("resources", "uri"),
}
# list method -> (kind, the item field naming each); the result field holding the items is
# jsonrpc.LISTING_FIELDS[method]
_LISTS: dict[str, tuple[str, str]] = {
    "tools/list": ("tools", "name"),
    "resources/list": ("resources", "uri"),
    "resources/templates/list": ("resources", "uriTemplate"),
    "prompts/list": ("prompts", "name"),
}
_SINGULAR = {"tools": "tool", "resources": "resource", "prompts": "prompt"}


class Rbac(Guardrail):
    type = "rbac"
    family = Family.RBAC
    directions = frozenset({Direction.REQUEST, Direction.RESPONSE})
    description = (
        "Allow and deny tools, resources and prompts by name or URI pattern (`*` wildcards); "
        "deny wins; lists answered by the server are filtered to what the agent may use."
    )

    allowed_tools: tuple[str, ...] = ()
    denied_tools: tuple[str, ...] = ()
    allowed_resources: tuple[str, ...] = ()
    denied_resources: tuple[str, ...] = ()
    allowed_prompts: tuple[str, ...] = ()
    denied_prompts: tuple[str, ...] = ()
    default_action: Literal["allow", "deny"] | None = None

    _rules: dict[str, _Rules] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        for kind in ("tools", "resources", "prompts"):
            allowed: tuple[str, ...] = getattr(self, f"allowed_{kind}")
            denied: tuple[str, ...] = getattr(self, f"denied_{kind}")
            default = self.default_action or ("deny" if allowed else "allow")
            if kind == "resources":
                allowed = tuple(form for uri in allowed for form in resource_uris.patterns(uri))
                denied = tuple(form for uri in denied for form in resource_uris.patterns(uri))
                rules: type[_Rules] = _UriRules
            else:
                rules = _Rules
            self._rules[kind] = rules(WildcardSet(allowed), WildcardSet(denied), default == "allow")

    def _kind_rules(self, kind: str) -> _Rules:
        # Read from the private-attribute dict itself: `self._rules` goes through pydantic's
        # BaseModel.__getattr__ (1.7 µs) on every call.
        private = self.__pydantic_private__
        assert private is not None
        rules: dict[str, _Rules] = private["_rules"]
        return rules[kind]

    def check(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        if context.direction is Direction.REQUEST:
            return self._check_call(message)
        return self._filter_list(message, context)

    def _check_call(self, message: dict[str, Any]) -> Verdict:
        method = message.get("method")
        target = _CALLS.get(str(method))
        params: Any
        if target is not None:
            params, where = message.get("params"), "params"
        elif method == "completion/complete":
            params, where = _completion_ref(message), "params.ref"
            target = _COMPLETION_REFS.get(str(params.get("type")))
            if target is None:
                return ALLOW
        else:
            return ALLOW
        kind, param = target
        name = params.get(param) if isinstance(params, Mapping) else None
        if not isinstance(name, str):
            return ALLOW  # malformed: the upstream answers with its own error
        if self._kind_rules(kind).permits(name):
            return ALLOW
        singular = _SINGULAR[kind]
        return Verdict(
            Outcome.BLOCK if self.action == "block" else Outcome.LOG_ONLY,
            self.type,
            (Finding(f"{singular}_denied", 1, (f"{where}.{param}",)),),
            f"{singular} {name!r} is not allowed for this agent",
        )

    def _filter_list(self, message: dict[str, Any], context: CheckContext) -> Verdict:
        method = context.method or (context.request or {}).get("method")
        listing = _LISTS.get(str(method))
        result = message.get("result")
        if listing is None or not isinstance(result, Mapping):
            return ALLOW
        kind, key = listing
        field = LISTING_FIELDS[str(method)]
        items = result.get(field)
        rules = self._kind_rules(kind)
        if not isinstance(items, list) or not rules.restricts:
            return ALLOW
        kept: list[Any] = []
        hidden: list[str] = []
        for index, item in enumerate(items):
            name = item.get(key) if isinstance(item, Mapping) else None
            if isinstance(name, str) and not rules.permits(name):
                hidden.append(f"result.{field}[{index}]")
            else:
                kept.append(item)
        if not hidden:
            return ALLOW
        finding = Finding(f"{_SINGULAR[kind]}_hidden", len(hidden), tuple(hidden))
        if self.action != "block":
            return Verdict(Outcome.LOG_ONLY, self.type, (finding,))
        rewritten = {**message, "result": {**result, field: kept}}
        return Verdict(Outcome.MODIFY, self.type, (finding,), message=rewritten)


def _completion_ref(message: dict[str, Any]) -> Mapping[str, Any]:
    """What a completion is for: {"type": "ref/prompt", "name": ...} or {"type":
    "ref/resource", "uri": ...}; empty when the request has no such object."""
    params = message.get("params")
    ref = params.get("ref") if isinstance(params, Mapping) else None
    return ref if isinstance(ref, Mapping) else {}
