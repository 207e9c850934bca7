"""One client HTTP request through the proxy: its messages, their decisions and audit events.

Every client->server and server->client message is decided by the agent's Pipeline with a
CheckContext that says what the message is and, for an answer, which request it answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cerberus import jsonrpc
from cerberus.agents.lookup import AgentEntry
from cerberus.audit.writer import AuditWriter
from cerberus.cache import Cache
from cerberus.guardrails import CheckContext, Direction, Finding, Outcome
from cerberus.jsonrpc import Kind, Message
from cerberus.proxy.pipeline import Decision, Pipeline, new_decision_id
from cerberus.proxy.request_ids import aliases, numbers_of
from cerberus.proxy.sessions import SessionStore, id_key

CLIENT = "client"
SERVER = "server"
# What an audit event names in place of a guardrail when the gateway itself refused a
# message before any policy could read it (docs/audit.md).
PROTOCOL_CHECK = "protocol"


async def _nowhere(message: Message) -> None:
    return None


@dataclass
class _PendingAudit:
    decision: Decision
    method: str | None
    tool_name: str | None


@dataclass
class Exchange:
    request_id: str
    agent: AgentEntry
    pipeline: Pipeline
    cache: Cache
    audit: AuditWriter
    sessions: SessionStore
    # The request's headers: the first value of each by name, and all of them in order.
    headers: Mapping[str, str]
    header_items: Sequence[tuple[str, str]]
    session_id: str | None = None
    # Requests sent in this HTTP request, by id, for answers that come back on it.
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_decision_id: str | None = None
    # Named in X-Response-Decision-ID before a stream starts; given to the decision of the
    # answer to this request's (single) request when it arrives. Made when first needed: a
    # JSON answer's decision keeps the id its pipeline gave it (one id less per call).
    _response_decision_id: str | None = None
    answered_id: str | None = None
    upstream_status: int | None = None
    upstream_latency_ms: float | None = None
    # Sends a message to the upstream in this session (an answer to a server request).
    answer_server: Callable[[Message], Awaitable[None]] = field(default=_nowhere)
    _pending: list[_PendingAudit] = field(default_factory=list)
    _response_id_used: bool = False
    # This request's client requests, kept in the session store only once their answers turn
    # out to come on a stream (`share_requests`): an answer in a JSON body is decided here,
    # with `sent`, and storing every request for 15 minutes grew the in-process cache by
    # ~165 bytes per call (and cost a Redis round trip each).
    # Each as (origin, id, method, params).
    _unshared: list[tuple[str, Any, str, dict[str, Any]]] = field(default_factory=list)
    # Requests whose string id an SDK reads as a number it does not spell ("+3", " 3", "03"
    # for 3), by that number (`request_ids.aliases`); made when first needed.
    _numbered: dict[int, dict[str, Any]] | None = None

    @property
    def response_decision_id(self) -> str:
        if self._response_decision_id is None:
            self._response_decision_id = new_decision_id()
        return self._response_decision_id

    @property
    def awaits_answer(self) -> bool:
        """True while the answer to this request's (single) request has not been decided."""
        return self.answered_id is not None and not self._response_id_used

    def _context(
        self,
        direction: Direction,
        method: str | None,
        tool_name: str | None,
        request: Mapping[str, Any] | None,
        message_bytes: int,
    ) -> CheckContext:
        return CheckContext(
            organisation_id=self.agent.organisation_id,
            workspace_id=self.agent.workspace_id,
            agent_id=self.agent.agent_id,
            direction=direction,
            method=method,
            tool_name=tool_name,
            request=request,
            cache=self.cache,
            # Redaction checks these: a body field an Mcp-Param-* header mirrors must not change.
            request_headers=self.headers if direction is Direction.REQUEST else None,
            message_bytes=message_bytes,
            extras={"request_id": self.request_id},
        )

    async def decide_client_message(self, message: Message, kind: Kind, size: int = 0) -> Decision:
        """A message the client sends, of this kind (`jsonrpc.kind_of`, which the caller has
        checked; `size`: bytes of the body it came in); its audit event waits for the
        upstream's status."""
        request = None
        if kind is Kind.RESPONSE:
            # The client answers a server->client request (sampling, elicitation, roots).
            request = await self._recall(SERVER, message.get("id"))
            method = request["method"] if request else None
            tool_name = None
        else:
            method = message["method"]
            tool_name = jsonrpc.tool_name_of(method, jsonrpc.params_of(message))
        decision = await self.pipeline.decide(
            message, self._context(Direction.REQUEST, method, tool_name, request, size)
        )
        if self.request_decision_id is None:
            self.request_decision_id = decision.decision_id
        self._pending.append(_PendingAudit(decision, method, tool_name))
        if kind is Kind.REQUEST and not decision.blocked:
            await self._remember(CLIENT, decision.message)
        return decision

    async def decide_server_message(self, message: Message, kind: Kind, size: int = 0) -> Decision:
        """A message from the upstream, of this kind (`jsonrpc.kind_of`, which the caller has
        checked): an answer, a notification or a server->client request (`size`: bytes of
        the body or stream event it came in)."""
        request = None
        listings: tuple[str, ...] = ()
        if kind is Kind.RESPONSE:
            request = await self._recall(CLIENT, message.get("id"))
            if request is not None:
                method = request["method"]
                params = request.get("params")
                tool_name = jsonrpc.tool_name_of(method, params if isinstance(params, dict) else {})
            else:
                listings = jsonrpc.listing_methods_of(message)
                method, tool_name = (listings[0] if listings else None), None
        else:
            method = message["method"]
            tool_name = jsonrpc.tool_name_of(method, jsonrpc.params_of(message))
        if len(listings) > 1:
            decision = await self._decide_listings(message, listings, size)
        else:
            decision = await self.pipeline.decide(
                message, self._context(Direction.RESPONSE, method, tool_name, request, size)
            )
        if (
            kind is Kind.RESPONSE
            and not self._response_id_used
            and self.answered_id is not None
            and request is not None
            # The request's own entry: an answer may spell its id otherwise ("+3" for 3).
            and request is self.sent.get(self.answered_id)
        ):
            if self._response_decision_id is None:
                self._response_decision_id = decision.decision_id
            else:
                decision.decision_id = self._response_decision_id
            self._response_id_used = True
        if kind is Kind.REQUEST and not decision.blocked:
            await self._remember(SERVER, decision.message)
        self._record(Direction.RESPONSE, decision, method, tool_name)
        return decision

    async def _decide_listings(
        self, message: Message, methods: tuple[str, ...], size: int
    ) -> Decision:
        """An answer matching no request whose result holds several listings (`tools` and
        `prompts`...): the client reads the one its request asked for, which the gateway
        cannot tell, so the answer is decided as each of them in turn, each pass reading
        what the one before let through (RBAC filters every list, pinning checks the tools).
        One decision: the last pass's, with every pass's guardrails and the strongest
        outcome; the first block ends it."""
        decision: Decision | None = None
        for method in methods:
            current = message if decision is None else decision.message
            context = self._context(Direction.RESPONSE, method, None, None, size)
            step = await self.pipeline.decide(current, context)
            if decision is not None:
                step = _combined(decision, step)
            decision = step
            if decision.blocked:
                break
        assert decision is not None
        return decision

    def refuse(self, direction: Direction, finding: str, message: Message | None = None) -> str:
        """Record the audit event of a message refused before any policy could read it (a
        body that is not JSON-RPC, names a member twice, is in another charset...): the
        agent's attempt is in the trail like any block. Returns its decision id."""
        method: str | None = None
        params: dict[str, Any] = {}
        if message is not None and isinstance(message.get("method"), str):
            method, params = message["method"], jsonrpc.params_of(message)
        elif direction is Direction.RESPONSE and self.answered_id is not None:
            request = self.sent.get(self.answered_id)  # the request this answer was for
            if request is not None:
                method, params = request["method"], request["params"]
        decision_id = new_decision_id()
        if direction is Direction.RESPONSE and self.awaits_answer:
            # Nothing after it reaches the client: the refusal is what answers the request,
            # and takes the id a stream's header named.
            decision_id = self._response_decision_id or decision_id
            self._response_id_used = True
        decision = Decision(
            decision_id,
            Outcome.BLOCK,
            message or {},
            [
                {
                    "guardrail": PROTOCOL_CHECK,
                    "action": Outcome.BLOCK.value,
                    "findings": [Finding(finding, 1).as_dict()],
                }
            ],
        )
        if direction is Direction.REQUEST and self.request_decision_id is None:
            self.request_decision_id = decision.decision_id
        self._record(direction, decision, method, jsonrpc.tool_name_of(method, params))
        return decision.decision_id

    def record_requests(self) -> None:
        """Write the audit events of the client's messages, now the upstream's status is known."""
        for pending in self._pending:
            self._record(Direction.REQUEST, pending.decision, pending.method, pending.tool_name)
        self._pending.clear()

    def _record(
        self, direction: Direction, decision: Decision, method: str | None, tool_name: str | None
    ) -> None:
        self.audit.record(
            request_id=self.request_id[:64],
            decision_id=decision.decision_id,
            organisation_id=self.agent.organisation_id,
            workspace_id=self.agent.workspace_id,
            agent_id=self.agent.agent_id,
            direction=direction.value,
            method=method[:128] if method else None,
            tool_name=tool_name[:256] if tool_name else None,
            action=decision.outcome.value,
            guardrails_triggered=decision.triggered,
            processing_ms=decision.processing_ms,
            upstream_status=self.upstream_status,
            upstream_latency_ms=self.upstream_latency_ms,
        )

    async def share_requests(self) -> None:
        """Put this request's client requests in the session store: their answers come on a
        stream, which the client may resume on another HTTP request (mcp-proxy.md 4.3)."""
        if self.session_id is not None:
            for origin, message_id, method, params in self._unshared:
                await self.sessions.remember(self.session_id, origin, message_id, method, params)
        self._unshared.clear()

    async def _remember(self, origin: str, message: Message) -> None:
        method = str(message.get("method"))
        params = jsonrpc.params_of(message)
        message_id = message.get("id")
        numbers = aliases(message_id) if type(message_id) is str else ()
        if origin == CLIENT:
            request = {"method": method, "params": params}
            self.sent[id_key(message_id)] = request
            self._unshared.append((CLIENT, message_id, method, params))
            if numbers:
                if self._numbered is None:
                    self._numbered = {}
                for number in numbers:
                    self._numbered[number] = request
                    self._unshared.append((CLIENT + _NUMBERED, number, method, params))
        elif self.session_id is not None:
            # The client answers a server request with a POST of its own: always shared.
            await self.sessions.remember(self.session_id, origin, message_id, method, params)
            for number in numbers:
                origin_numbered = origin + _NUMBERED
                await self.sessions.remember(
                    self.session_id, origin_numbered, number, method, params
                )

    async def _recall(self, origin: str, message_id: Any) -> dict[str, Any] | None:
        found = await self._recall_id(origin, message_id)
        if found is None:
            found = await self._recall_number(origin, message_id)
        return found

    async def _recall_number(self, origin: str, message_id: Any) -> dict[str, Any] | None:
        """The request an answer whose id matches none answers for a peer that reads ids as
        numbers: the Python SDK matches `int(id)` ("+3", " 3 ", "0_3", "٣" answer 3), the
        TypeScript SDK `Number(id)` ("3.0", "0x3", "3e0", "" for 0). Any number either reads
        the id as finds the request sent with that number, its plain string ("3") or another
        string an SDK reads as it ("+3")."""
        key = id_key(message_id)
        for number in numbers_of(message_id):
            for spelling in (number, str(number)):
                if id_key(spelling) != key:
                    found = await self._recall_id(origin, spelling)
                    if found is not None:
                        return found
            if origin == CLIENT and self._numbered is not None:
                found = self._numbered.get(number)
                if found is not None:
                    return found
            if self.session_id is not None:
                origin_numbered = origin + _NUMBERED
                found = await self.sessions.recall(self.session_id, origin_numbered, number)
                if found is not None:
                    return found
        return None

    async def _recall_id(self, origin: str, message_id: Any) -> dict[str, Any] | None:
        if origin == CLIENT:
            local = self.sent.get(id_key(message_id))
            if local is not None:
                return local
        if self.session_id is None:
            return None
        return await self.sessions.recall(self.session_id, origin, message_id)


# The session store's origin for the numbers requests' string ids are read as ("client#").
_NUMBERED = "#"
_STRONGER = {Outcome.ALLOW: 0, Outcome.LOG_ONLY: 1, Outcome.MODIFY: 2}


def _combined(before: Decision, after: Decision) -> Decision:
    """`after`, a pass over `before`'s message, as the decision of both passes."""
    after.triggered = before.triggered + [e for e in after.triggered if e not in before.triggered]
    if not after.blocked and _STRONGER[before.outcome] > _STRONGER[after.outcome]:
        after.outcome = before.outcome
    after.processing_ms += before.processing_ms
    return after


def blocked_error(message_id: Any, decision: Decision) -> Message:
    """The JSON-RPC error that answers a blocked message, echoing its id."""
    data: dict[str, Any] = {
        "decision_id": decision.decision_id,
        "action": decision.outcome.value,
        "guardrails_triggered": decision.guardrails_triggered,
    }
    if decision.outcome is Outcome.THROTTLE and decision.retry_after_seconds is not None:
        data["retry_after_seconds"] = decision.retry_after_seconds
    reason = decision.reason or "blocked by policy"
    return jsonrpc.error(message_id, jsonrpc.BLOCKED, f"Blocked by Cerberus: {reason}", data)


def retry_after_header(decision: Decision) -> dict[str, str]:
    if decision.outcome is Outcome.THROTTLE and decision.retry_after_seconds is not None:
        return {"retry-after": str(max(1, int(-(-decision.retry_after_seconds // 1))))}
    return {}
