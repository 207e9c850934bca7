"""The MCP endpoints clients connect to: `/mcp` and `/governance-plane/api/v1/proxy/{path}`.

Thin Starlette routes (no FastAPI dependency resolution on the hot path): check the Origin
and the agent key, decide the client's messages, forward to the workspace's upstream, and
hand its answer to relay.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cerberus import jsonrpc
from cerberus.agents.lookup import AgentEntry, AgentLookup
from cerberus.guardrails import Direction
from cerberus.jsonrpc import AmbiguousJson, JsonRpcError, Kind, Message
from cerberus.logs import assign_request_id, log_request, new_request_id
from cerberus.proxy.exchange import Exchange, blocked_error, retry_after_header
from cerberus.proxy.headers import (
    foreign_charset,
    header_mismatch,
    is_modern,
    mirrored_field_changed,
    origin_allowed,
    upstream_headers,
)
from cerberus.proxy.pipeline import Decision
from cerberus.proxy.relay import (
    answer_refusal,
    decision_headers,
    protocol_refusal,
    relay,
    rpc_error,
)
from cerberus.proxy.request_ids import numbers_of
from cerberus.proxy.sessions import id_key
from cerberus.proxy.upstream import UpstreamFailed, UpstreamTimeout

logger = logging.getLogger("cerberus.proxy")

METHODS = ["GET", "POST", "DELETE", "OPTIONS"]
ALLOW = ", ".join(METHODS)


async def mcp_endpoint(request: Request) -> Response:
    state = request.app.state
    # Decoded once: the list goes upstream (filtered), and a plain dict of first values is
    # read a dozen times per request (Starlette's Headers scans the raw list and encodes the
    # name on every lookup, and decodes every header again for each items()).
    items = _decoded(request.scope["headers"])
    headers = _first_values(items)
    if not origin_allowed(headers.get("origin"), state.settings):
        return rpc_error(403, None, jsonrpc.GATEWAY_REFUSED, "Forbidden: Origin not allowed")
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={"allow": ALLOW})
    agent = await _authenticate(request, headers)
    if isinstance(agent, Response):
        return agent
    state.audit.used(agent.agent_id)
    session_id = headers.get("mcp-session-id")
    if session_id is not None and is_modern(headers):
        session_id = None  # 2026-07-28 has no sessions (mcp-proxy.md 2.6)
    if session_id is not None and await state.sessions.owner(session_id) != agent.agent_id:
        # Unknown here or opened by another agent: the client starts a new session.
        return rpc_error(404, None, jsonrpc.GATEWAY_REFUSED, "Session not found")
    exchange = Exchange(
        request_id=request.scope.get("state", {}).get("request_id") or new_request_id(),
        agent=agent,
        pipeline=await state.pipelines.for_agent(
            agent.organisation_id, agent.workspace_id, agent.agent_id, agent.fail_mode
        ),
        cache=state.cache,
        audit=state.audit,
        sessions=state.sessions,
        headers=headers,
        header_items=items,
        session_id=session_id,
    )
    try:
        if request.method == "POST":
            return await _post(request, exchange)
        return await _forward(request, exchange, None, error_id=None)
    except BaseException:
        # Cancelled (a shutdown past its grace period) or failed: what was decided stays in
        # the trail, sent upstream or not (each pending event is written once).
        exchange.record_requests()
        raise


def _ids_repeat(messages: list[Message]) -> bool:
    """Whether two requests of a batch share an id, as written or as an SDK reads it ("7"
    and 7): their answers could not be told apart, and each would be decided as the last
    one's (a tools/list's tools as a ping's, unfiltered)."""
    seen: set[object] = set()
    for message in messages:
        if "method" not in message or "id" not in message:
            continue
        keys = {id_key(message["id"]), *numbers_of(message["id"])}
        if not seen.isdisjoint(keys):
            return True
        seen |= keys
    return False


def _bearer_key(headers: Mapping[str, str]) -> str:
    """The key of an `Authorization: Bearer` header, or "" for none."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


async def _authenticate(request: Request, headers: dict[str, str]) -> AgentEntry | Response:
    """The agent the bearer key names, or the 401 that answers the request."""
    key = _bearer_key(headers)
    if not key:
        reason, challenge = "missing bearer agent key", 'Bearer realm="cerberus"'
    else:
        agents: AgentLookup = request.app.state.agents
        agent, reason = await agents.resolve(key)
        if agent is not None:
            return agent
        challenge = f'Bearer realm="cerberus", error="invalid_token", error_description="{reason}"'
    return rpc_error(
        401,
        None,
        jsonrpc.GATEWAY_REFUSED,
        f"Unauthorized: {reason}",
        headers={"www-authenticate": challenge},
    )


async def _post(request: Request, exchange: Exchange) -> Response:
    body = await _read_body(
        request, exchange.headers, request.app.state.settings.MCP_MAX_BODY_BYTES
    )
    if body is None:
        text = "Request body too large"
        return protocol_refusal(
            exchange, Direction.REQUEST, 413, None, jsonrpc.INVALID_REQUEST, text, "body_too_large"
        )
    unreadable = _unreadable_as_sent(exchange.header_items, body)
    if unreadable is not None:
        text = f"Invalid Request: {unreadable}"
        return protocol_refusal(
            exchange, Direction.REQUEST, 415, None, jsonrpc.INVALID_REQUEST, text, "unreadable_body"
        )
    try:
        parsed = jsonrpc.parse_body(body)
    except JsonRpcError as exc:
        return protocol_refusal(
            exchange,
            Direction.REQUEST,
            400,
            _readable_id(body),
            exc.code,
            exc.message,
            _not_json_rpc(exc),
        )
    batch = isinstance(parsed, list)
    messages: list[Message] = parsed if isinstance(parsed, list) else [parsed]
    if batch and _ids_repeat(messages):
        text = "Invalid Request: two requests of the batch share an id"
        return protocol_refusal(
            exchange, Direction.REQUEST, 400, None, jsonrpc.INVALID_REQUEST, text, "invalid_request"
        )
    for message in messages:
        mismatch = header_mismatch(exchange.headers, message)
        if mismatch:
            # Before any policy: a header must never carry a different call past a guardrail.
            return protocol_refusal(
                exchange,
                Direction.REQUEST,
                400,
                message.get("id"),
                jsonrpc.HEADER_MISMATCH,
                mismatch,
                "header_mismatch",
                message,
            )
    outgoing: list[Message] = []
    refused: list[tuple[Message, Message, Decision]] = []
    changed = False
    for message in messages:
        kind = jsonrpc.kind_of(message)
        decision = await exchange.decide_client_message(message, kind, len(body))
        if decision.blocked:
            if kind is Kind.RESPONSE:
                # The server still gets an answer to its request, so it does not wait forever.
                outgoing.append(blocked_error(message.get("id"), decision))
                changed = True
            else:
                refused.append((message, blocked_error(message.get("id"), decision), decision))
        elif decision.message is not message:
            if mirrored_field_changed(exchange.headers, message, decision.message):
                error = jsonrpc.error(
                    message.get("id"),
                    jsonrpc.BLOCKED,
                    "Blocked by Cerberus: a guardrail changed a field its Mcp-* header mirrors",
                    {
                        "decision_id": decision.decision_id,
                        "action": "block",
                        "guardrails_triggered": decision.guardrails_triggered,
                    },
                )
                refused.append((message, error, decision))
            else:
                outgoing.append(decision.message)
                changed = True
        else:
            outgoing.append(message)
    if refused:
        exchange.record_requests()
        return _refusal(exchange, messages, refused, batch)
    if not batch and kind is Kind.REQUEST:  # the kind of the one message
        exchange.answered_id = id_key(messages[0].get("id"))
    if changed:
        body = jsonrpc.dumps(outgoing if batch else outgoing[0])
    error_id = None if batch else messages[0].get("id")
    return await _forward(request, exchange, body, error_id=error_id)


def _not_json_rpc(exc: JsonRpcError) -> str:
    """What a body that is no JSON-RPC message is, as its audit event names it."""
    if isinstance(exc, AmbiguousJson):
        return "ambiguous_json"
    return "parse_error" if exc.code == jsonrpc.PARSE_ERROR else "invalid_request"


def _refusal(
    exchange: Exchange,
    messages: list[Message],
    refused: list[tuple[Message, Message, Decision]],
    batch: bool,
) -> Response:
    """Answer a refused POST without contacting the upstream."""
    message, error, decision = refused[0]
    headers = {**decision_headers(exchange, None), **retry_after_header(decision)}
    if not batch:
        if jsonrpc.kind_of(message) is Kind.NOTIFICATION:
            status = 429 if headers.get("retry-after") else 403
            error["id"] = None
            return Response(jsonrpc.dumps(error), status, headers, "application/json")
        return Response(jsonrpc.dumps(error), 200, headers, "application/json")
    # A batch is forwarded whole or not at all: every request in it gets an answer.
    errors_by_id = {id_key(m.get("id")): e for m, e, _ in refused if "id" in m}
    answers = []
    for item in messages:
        if jsonrpc.kind_of(item) is not Kind.REQUEST:
            continue
        answers.append(
            errors_by_id.get(id_key(item.get("id")))
            or jsonrpc.error(
                item.get("id"),
                jsonrpc.BLOCKED,
                "Blocked by Cerberus: another message in the batch was blocked",
                {
                    "decision_id": decision.decision_id,
                    "action": "block",
                    "guardrails_triggered": [],
                },
            )
        )
    if not answers:
        return Response(jsonrpc.dumps(error), 403, headers, "application/json")
    return Response(jsonrpc.dumps(answers), 200, headers, "application/json")


async def _forward(
    request: Request, exchange: Exchange, body: bytes | None, *, error_id: Any
) -> Response:
    state = request.app.state
    settings = state.settings
    headers = upstream_headers(
        exchange.header_items,
        settings=settings,
        request_id=exchange.request_id,
        client_ip=request.client.host if request.client else None,
    )
    if exchange.session_id is None:
        headers.pop("mcp-session-id", None)
    exchange.answer_server = _answerer(request, exchange, headers)
    started = time.perf_counter()
    limit = settings.MCP_STREAM_MAX_SECONDS
    deadline = asyncio.get_running_loop().time() + limit if limit else None
    try:
        upstream = await state.upstream.send(
            request.method, exchange.agent.upstream_url, headers, body
        )
    except UpstreamTimeout as exc:
        exchange.record_requests()
        extra = decision_headers(exchange, None)
        return rpc_error(504, error_id, jsonrpc.UPSTREAM_TIMEOUT, f"Upstream timeout: {exc}", extra)
    except UpstreamFailed as exc:
        exchange.record_requests()
        extra = decision_headers(exchange, None)
        return rpc_error(502, error_id, jsonrpc.UPSTREAM_UNAVAILABLE, f"Upstream: {exc}", extra)
    exchange.upstream_status = upstream.status
    exchange.upstream_latency_ms = (time.perf_counter() - started) * 1000
    exchange.record_requests()
    issued = upstream.headers.get("mcp-session-id")
    if not await _track_session(request, exchange, upstream.status, issued):
        upstream.close()
        text = "Upstream issued a session id another agent holds"
        return answer_refusal(exchange, error_id, text, "session_conflict")
    # A DELETE's answer carries no message (clients read its status); a GET's that is not
    # an event stream is decided like a POST's, or refused, never relayed unread.
    return await relay(
        exchange,
        upstream,
        error_id=error_id,
        deadline=deadline,
        verbatim=request.method == "DELETE",
        recheck=_rechecker(request, exchange),
    )


def _rechecker(request: Request, exchange: Exchange) -> Callable[[], Awaitable[bool]]:
    """Whether a stream's agent may still be answered, its pipeline brought up to date. A
    stream outlives its request's checks (without MCP_STREAM_MAX_SECONDS, for as long as
    the upstream keeps it): a key revoked or a policy changed while it is open must reach
    its later events, which were decided as things stood when it opened."""
    state = request.app.state

    async def recheck() -> bool:
        try:
            agent, _ = await state.agents.resolve(_bearer_key(exchange.headers))
        except Exception as exc:
            # The key's entry expired and the database cannot say (down): the stream goes
            # on as last decided, as a stream did through an outage before it looked again.
            logger.warning("could not recheck a stream's key", extra={"error": repr(exc)})
            return True
        if agent is None or agent.agent_id != exchange.agent.agent_id:
            return False
        exchange.pipeline = await state.pipelines.for_agent(
            agent.organisation_id, agent.workspace_id, agent.agent_id, agent.fail_mode
        )
        return True

    return recheck


def _answerer(
    request: Request, exchange: Exchange, headers: dict[str, str]
) -> Callable[[Message], Awaitable[None]]:
    """POSTs a message to the upstream as if from the client, in the same session."""

    async def answer(message: Message) -> None:
        sent = {
            name: value
            for name, value in headers.items()
            if name not in ("last-event-id", "mcp-method", "mcp-name")
        }
        sent["content-type"] = "application/json"
        sent["accept"] = "application/json, text/event-stream"
        if exchange.session_id is not None:
            sent["mcp-session-id"] = exchange.session_id
        try:
            answer = await request.app.state.upstream.send(
                "POST", exchange.agent.upstream_url, sent, jsonrpc.dumps(message)
            )
        except (UpstreamTimeout, UpstreamFailed) as exc:
            logger.warning("could not answer a blocked server request: %s", exc)
            return
        answer.release()

    return answer


async def _track_session(
    request: Request, exchange: Exchange, status: int, issued: str | None
) -> bool:
    """Bind a session the upstream issued to the agent; False if another agent holds it (an
    upstream that issues one id to two agents made them take it from each other, and
    decide answers with each other's requests)."""
    sessions = request.app.state.sessions
    if issued and 200 <= status < 300 and not is_modern(exchange.headers):
        if issued != exchange.session_id:
            owner = await sessions.owner(issued)
            if owner is not None and owner != exchange.agent.agent_id:
                logger.warning("upstream issued a session id another agent holds")
                return False
            await sessions.bind(issued, exchange.agent.agent_id)
            exchange.session_id = issued
    elif exchange.session_id is not None and (
        status == 404 or (request.method == "DELETE" and 200 <= status < 300)
    ):
        await sessions.forget(exchange.session_id)
    return True


def _unreadable_as_sent(headers: Sequence[tuple[str, str]], body: bytes) -> str | None:
    """Why the upstream could read the body as another message than the gateway does, if it
    could: a charset other than UTF-8 (the gateway reads UTF-8; an ASCII body reads alike in
    the charsets that extend ASCII), or a Content-Encoding (the gateway reads the bytes as
    they came; an upstream behind a body parser inflates them)."""
    for name, value in headers:
        if name == "content-type":
            charset = foreign_charset(value, body)
            if charset is not None:
                return f"the body must be UTF-8, not charset={charset[:32]}"
        elif name == "content-encoding" and value.strip().lower() not in ("", "identity"):
            return f"the body must not be encoded (Content-Encoding: {value[:32]})"
    return None


async def _read_body(request: Request, headers: Mapping[str, str], limit: int) -> bytes | None:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    # The ASGI messages themselves, as Request.stream() reads them: its async generator
    # cost more than the one message a small body comes in.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            if not message.get("more_body", False):
                if not chunks:
                    return chunk
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _decoded(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The request's headers as text, in order (as Starlette's `Headers.items()` gives)."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]


def _first_values(items: list[tuple[str, str]]) -> dict[str, str]:
    """Header name (lower case in ASGI) -> its first value, as Starlette's `get` gives."""
    found: dict[str, str] = {}
    for name, value in items:
        if name not in found:
            found[name] = value
    return found


def _readable_id(body: bytes) -> Any:
    """The id of an invalid message when it can be read (JSON-RPC: null otherwise)."""
    try:
        value = jsonrpc.loads(body)
    except JsonRpcError:
        return None
    if isinstance(value, dict):
        candidate = value.get("id")
        if isinstance(candidate, str | int) and not isinstance(candidate, bool):
            return candidate
    return None


PROXY_PREFIX = "/governance-plane/api/v1/proxy"
# The access line's status for a request whose client left before it ended (nginx's 499:
# no HTTP status fits a request nobody answered).
CLIENT_GONE = 499


def is_direct(scope: Scope) -> bool:
    """Whether an HTTP request goes straight to the endpoint, past FastAPI's routing and
    middleware (conventions.md, "The hot path"): an MCP path, a method it takes, no `Origin`.

    Requests with an `Origin` (browsers) take the normal way so CORS applies; so does any
    method the endpoint does not take, to get the router's 405.
    """
    return _is_proxy_path(scope["path"]) and _direct(scope)


async def serve_direct(scope: Scope, receive: Receive, send: Send) -> None:
    """The endpoint with what the skipped middleware gave it: a request id on the answer and
    in the access log, and a 500 (logged, never a stack trace to the client) on a bug."""
    request_id, chosen = assign_request_id(scope)
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await mcp_endpoint(Request(scope, receive, send))
        except ClientDisconnect:
            # Gone before its request ended: nobody to answer, and nothing went wrong here.
            logger.info(
                "client disconnected before its request ended", extra={"request_id": request_id}
            )
            status = CLIENT_GONE
            return
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            response = rpc_error(500, None, jsonrpc.INTERNAL_ERROR, "Internal error")
        response.raw_headers.append((b"x-request-id", request_id.encode()))
        status = response.status_code
        await response(scope, receive, send)
    finally:
        log_request(scope, status, started, request_id, chosen)


def _is_proxy_path(path: str) -> bool:
    return path == "/mcp" or path == PROXY_PREFIX or path.startswith(PROXY_PREFIX + "/")


def _direct(scope: Scope) -> bool:
    if scope["method"] not in METHODS:
        return False
    # A loop, not all(): no generator per request.
    for name, _ in scope["headers"]:  # noqa: SIM110
        if name == b"origin":
            return False
    return True


routes = [
    Route("/mcp", mcp_endpoint, methods=METHODS, include_in_schema=False),
    Route("/governance-plane/api/v1/proxy", mcp_endpoint, methods=METHODS, include_in_schema=False),
    Route(
        "/governance-plane/api/v1/proxy/{path:path}",
        mcp_endpoint,
        methods=METHODS,
        include_in_schema=False,
    ),
]
for _route in routes:
    # Starlette adds HEAD to a route that takes GET; forwarded, the upstream's answer
    # declared a body it never sent, and the pooled connection waited for it.
    _route.methods.discard("HEAD")  # type: ignore[union-attr]
