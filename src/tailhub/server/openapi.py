"""The OpenAPI 3.1 document of the hub's HTTP surface, served at ``GET /openapi.json``.

Written by hand next to the handlers in :mod:`tailhub.server.api` rather than generated, so it
says what a client may rely on, not what the code happens to do; ``tests/server/
test_openapi.py`` keeps the two honest by validating real responses of a running hub against
the schemas here, and by checking that every route is documented.

Streamed bodies (NDJSON and server-sent events) carry one message per line or event: their
media types give ``schema: string`` for the body and, in ``x-itemSchema`` (the name OpenAPI
3.2 gives it), the schema of each item.
"""

from __future__ import annotations

from typing import Any, Final

from tailhub.protocol import LEVELS, STATUSES

__all__ = ["build_document"]

Schema = dict[str, Any]

_JSON: Final = "application/json"
_NDJSON: Final = "application/x-ndjson"
_SSE: Final = "text/event-stream"
_ROUTED: Final = ["log", "status", "complete", "error"]
_PUBLISHED: Final = ["log", "status", "heartbeat", "complete", "error"]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **more: Any) -> Schema:
    return {"type": [kind, "null"], **more}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _error(description: str) -> Schema:
    return _json(_ref("Error"), description)


def _body(name: str) -> Schema:
    """A required JSON request body of the schema ``name``."""
    return {"required": True, "content": {_JSON: {"schema": _ref(name)}}}


def _schemas() -> dict[str, Schema]:
    count = {"type": "integer", "minimum": 0}
    time = {"type": "string", "format": "date-time"}
    return {
        "Session": {
            "type": "object",
            "description": "One containerID's session, as the WebSocket `sessions` reply shows it.",
            "required": [
                "containerID",
                "status",
                "active",
                "startedAt",
                "lastActivity",
                "endedAt",
                "endReason",
                "exitCode",
                "lastSeq",
                "firstSeq",
                "epoch",
                "messages",
                "bytes",
                "publishers",
                "subscribers",
                "agent",
                "attention",
            ],
            "additionalProperties": False,
            "properties": {
                "containerID": {"type": "string"},
                "status": {"enum": list(STATUSES)},
                "active": {"type": "boolean"},
                "startedAt": time,
                "lastActivity": time,
                "endedAt": _nullable("string", format="date-time"),
                "endReason": {"enum": ["complete", "timeout", None]},
                "exitCode": _nullable("integer"),
                "lastSeq": {**count, "description": "Last seq stamped (0: none)."},
                "firstSeq": {**count, "description": "Oldest seq still kept (0: none)."},
                "epoch": {
                    "type": "string",
                    "description": "Names the container's history; changes when it was lost.",
                },
                "messages": {**count, "description": "Messages kept."},
                "bytes": {**count, "description": "Bytes kept."},
                "publishers": {**count, "description": "Connections publishing for it."},
                "subscribers": {**count, "description": "Connections subscribed to it."},
                "agent": {
                    "oneOf": [_ref("AgentSummary"), {"type": "null"}],
                    "description": "What its agent did, if it published Claude Code or Codex "
                    "events (see docs/agents.md); null otherwise.",
                },
                "attention": {
                    "oneOf": [_ref("Attention"), {"type": "null"}],
                    "description": "Whether it needs a person (see docs/protocol.md); null "
                    "when it does not.",
                },
            },
        },
        "Attention": {
            "type": "object",
            "required": ["state", "reason", "since", "request"],
            "additionalProperties": False,
            "properties": {
                "state": {"enum": ["waiting", "stalled", "failed", "done"]},
                "reason": {
                    "type": "string",
                    "description": "waiting: permission, question or approval; stalled: "
                    "`no output for N s`; failed: `status error`, `exit code N` or "
                    "`result error`; done: `completed`.",
                },
                "since": time,
                "request": {"oneOf": [_ref("PendingRequest"), {"type": "null"}]},
            },
        },
        "PendingRequest": {
            "type": "object",
            "description": "What a waiting agent asked; `approve`, `deny` or `reply` answer it.",
            "required": ["id", "kind", "tool", "input", "question", "options"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "kind": {"enum": ["permission", "question", "approval"]},
                "tool": _nullable("string"),
                "input": {"description": "The tool's input (any JSON), or null."},
                "question": _nullable("string"),
                "options": {
                    "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
                },
            },
        },
        "AgentSummary": {
            "type": "object",
            "description": "An agent session summed up from its events as they were published.",
            "required": [
                "kind",
                "model",
                "sessionId",
                "turns",
                "toolCalls",
                "tokens",
                "costUsd",
                "contextPct",
                "contextWindow",
                "activity",
                "lastText",
                "result",
            ],
            "additionalProperties": False,
            "properties": {
                "kind": {"enum": ["claude", "codex"]},
                "model": _nullable("string"),
                "sessionId": _nullable("string", description="The agent's own session id."),
                "turns": count,
                "toolCalls": {
                    "type": "object",
                    "additionalProperties": count,
                    "description": "Tool calls by tool name.",
                },
                "tokens": _ref("Tokens"),
                "costUsd": _nullable("number", minimum=0),
                "contextPct": _nullable(
                    "number", description="Context window used, in percent, once known."
                ),
                "contextWindow": _nullable(
                    "integer", minimum=1, description="The model's context window, in tokens."
                ),
                "activity": _nullable("string", description="What it is doing now."),
                "lastText": _nullable("string", description="Its last text, cut short."),
                "result": _nullable("string", description="How the run ended; null while on."),
            },
        },
        "Tokens": {
            "type": "object",
            "required": ["input", "output", "cacheRead", "cacheWrite"],
            "additionalProperties": False,
            "properties": {
                "input": count,
                "output": count,
                "cacheRead": count,
                "cacheWrite": count,
            },
        },
        "Fleet": {
            "type": "object",
            "description": "Totals over the listed sessions.",
            "required": [
                "sessions",
                "byStatus",
                "running",
                "failed",
                "agents",
                "costUsd",
                "tokens",
            ],
            "additionalProperties": False,
            "properties": {
                "sessions": {**count, "description": "Sessions listed."},
                "byStatus": {
                    "type": "object",
                    "propertyNames": {"enum": list(STATUSES)},
                    "additionalProperties": count,
                },
                "running": {**count, "description": "Active sessions."},
                "failed": {**count, "description": "Sessions whose status is error."},
                "agents": {**count, "description": "Sessions with an agent summary."},
                "costUsd": {"type": "number", "minimum": 0},
                "tokens": _ref("Tokens"),
            },
        },
        "SessionList": {
            "type": "object",
            "required": ["sessions"],
            "additionalProperties": False,
            "properties": {
                "sessions": {"type": "array", "items": _ref("Session")},
                "cursor": {
                    "type": "string",
                    "description": "More sessions follow: pass this as ?cursor= for them.",
                },
            },
        },
        "Message": {
            "type": "object",
            "description": "A stored message exactly as WebSocket subscribers receive it.",
            "required": ["type", "containerID", "timestamp", "seq", "data"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": _ROUTED},
                "containerID": {"type": "string"},
                "timestamp": time,
                "seq": {"type": "integer", "minimum": 1},
                "data": {"type": "object"},
            },
        },
        "PublishedMessage": {
            "type": "object",
            "description": (
                "A message a container publishes (see docs/protocol.md). `containerID` may be "
                "left out: the URL's is used."
            ),
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "description": f"One of {', '.join(_PUBLISHED)}."},
                "containerID": {"type": "string"},
                "timestamp": time,
                "data": {"type": "object"},
                "id": {"type": "integer", "minimum": 1},
                "producer": {"type": "string"},
            },
        },
        "PublishResult": {
            "type": "object",
            "required": ["accepted", "seq"],
            "additionalProperties": False,
            "properties": {
                "accepted": {**count, "description": "Messages taken (every one sent)."},
                "seq": {
                    "type": "array",
                    "description": (
                        "Per message, in order: the seq it was stored with, or null for a "
                        "heartbeat or a repeat of a producer id already stored."
                    ),
                    "items": _nullable("integer", minimum=1),
                },
            },
        },
        "CommandRequest": {
            "type": "object",
            "description": (
                'The command\'s `data`, e.g. {"action": "cancel"} or {"action": "input", '
                '"text": "yes\\n"}, {"action": "approve"}, {"action": "deny", "message": '
                '"not that"}, {"action": "reply", "text": "use pytest"}; or a whole `command` '
                "message."
            ),
            "properties": {
                "action": {"type": "string", "minLength": 1},
                "text": {"type": "string"},
                "requestId": {
                    "type": "string",
                    "description": "approve/deny: the request answered (default: the pending one).",
                },
                "message": {"type": "string", "description": "deny: why, for the agent."},
                "type": {"const": "command"},
                "containerID": {"type": "string"},
                "data": {"type": "object"},
            },
        },
        "CommandResult": {
            "type": "object",
            "required": ["action", "delivered"],
            "additionalProperties": False,
            "properties": {
                "action": {"type": "string"},
                "delivered": {"type": "integer", "minimum": 1},
            },
        },
        "Grant": {
            "type": "object",
            "description": (
                "What the request's token allows (docs/tokens.md). The shared token is admin "
                "over every container, with no sub, exp or jti."
            ),
            "required": ["role", "containers", "sub", "exp", "jti", "publish", "command"],
            "additionalProperties": False,
            "properties": {
                "role": {"enum": ["publisher", "viewer", "operator", "admin"]},
                "containers": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "IDs or glob patterns (`*` for admin).",
                },
                "sub": _nullable("string"),
                "exp": _nullable("number", description="When the token expires (Unix s)."),
                "jti": _nullable("string"),
                "publish": {"type": "boolean", "description": "The role may publish."},
                "command": {"type": "boolean", "description": "The role may send commands."},
            },
        },
        "MintRequest": {
            "type": "object",
            "required": ["role"],
            "additionalProperties": False,
            "properties": {
                "role": {"enum": ["publisher", "viewer", "operator", "admin"]},
                "containers": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "IDs or glob patterns; required but for admin.",
                },
                "ttl": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 86400,
                    "description": "Seconds until the token expires.",
                },
                "sub": {"type": "string", "description": "Who it is for (for the log)."},
            },
        },
        "MintResult": {
            "type": "object",
            "required": ["token", "claims"],
            "additionalProperties": False,
            "properties": {
                "token": {"type": "string", "description": "The JWT (HS256)."},
                "claims": {
                    "type": "object",
                    "required": ["role", "containers", "iat", "exp", "jti"],
                    "properties": {
                        "role": {"type": "string"},
                        "containers": {"type": "array", "items": {"type": "string"}},
                        "iat": {"type": "integer"},
                        "exp": {"type": "integer"},
                        "jti": {"type": "string"},
                        "sub": {"type": "string"},
                    },
                },
            },
        },
        "RevokeRequest": {
            "type": "object",
            "required": ["jti"],
            "additionalProperties": False,
            "properties": {
                "jti": {"type": "string", "minLength": 1, "maxLength": 256},
                "exp": {
                    "type": "number",
                    "description": (
                        "The token's exp: the revocation is kept until then. Without it, the "
                        "exp of a connection holding the token, else for good."
                    ),
                },
            },
        },
        "RevokeResult": {
            "type": "object",
            "required": ["jti", "revoked", "until"],
            "additionalProperties": False,
            "properties": {
                "jti": {"type": "string"},
                "revoked": {"const": True},
                "until": _nullable("number", description="Kept until (Unix s); null: for good."),
            },
        },
        "Error": {
            "type": "object",
            "description": "The protocol's error object; `code` says why, `error` in words.",
            "required": ["type", "data"],
            "properties": {
                "type": {"const": "error"},
                "containerID": {"type": "string"},
                "id": {"type": "integer"},
                "data": {
                    "type": "object",
                    "required": ["code", "error"],
                    "properties": {
                        "code": {
                            "type": "string",
                            "examples": ["invalid_message", "unauthorized", "not_found"],
                        },
                        "error": {"type": "string"},
                        "line": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "The line of the request body that was refused.",
                        },
                    },
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "version"],
            "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
        },
        "Ready": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["ready", "unavailable"]},
                "problems": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "What does not answer (the engine), in words.",
                },
            },
        },
    }


def _parameters() -> dict[str, Schema]:
    def query(name: str, schema: Schema, description: str) -> Schema:
        return {"name": name, "in": "query", "schema": schema, "description": description}

    return {
        "containerID": {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 256},
            "description": "The containerID (percent-encoded; no `*`).",
        },
        "since": query(
            "since", {"type": "integer", "minimum": 0}, "Messages with seq greater than this."
        ),
        "tail": query("tail", {"type": "integer", "minimum": 0}, "The last N messages."),
        "from": query(
            "from",
            {"type": "string", "format": "date-time"},
            "Messages the hub received at or after this RFC 3339 time.",
        ),
        "level": query(
            "level",
            {"enum": list(LEVELS)},
            "Only log lines of this level or more severe; other messages always pass.",
        ),
        "follow": query(
            "follow",
            {"type": "boolean"},
            "Keep streaming live messages (1) after the history. Default 1 for SSE, else 0.",
        ),
        "active": query(
            "active", {"type": "boolean"}, "1: active sessions only; 0: ended ones only."
        ),
        "status": query(
            "status",
            {"type": "string", "minLength": 1, "maxLength": 32},
            "Only sessions with this status (running, error, ...), or active / ended.",
        ),
        "limit": query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": 1000},
            "At most this many sessions (default 1000).",
        ),
        "cursor": query(
            "cursor", {"type": "string"}, "Continue a listing where its last page stopped."
        ),
        "lastEventId": {
            "name": "Last-Event-ID",
            "in": "header",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "SSE resume: the last seq received; replaces since, tail and from.",
        },
    }


def _paths() -> dict[str, Schema]:
    unauthorized = {"$ref": "#/components/responses/Unauthorized"}
    container = {"$ref": "#/components/parameters/containerID"}
    bad = _error("A bad parameter or body; `error` says which and why.")
    forbidden = {"$ref": "#/components/responses/Forbidden"}
    public: list[Schema] = []
    return {
        "/healthz": {
            "get": {
                "summary": "Liveness: the process answers.",
                "operationId": "healthz",
                "security": public,
                "responses": {"200": _json(_ref("Health"), "Alive.")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the engine (history, sessions, fan-out) answers.",
                "operationId": "readyz",
                "security": public,
                "responses": {
                    "200": _json(_ref("Ready"), "Ready to serve."),
                    "503": _json(_ref("Ready"), "A part does not answer; see problems."),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "operationId": "openapi",
                "security": public,
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics, names prefixed tailhub_.",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "The Prometheus text format (OpenMetrics if asked).",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": unauthorized,
                    "403": forbidden,
                },
            }
        },
        "/api/sessions": {
            "get": {
                "summary": "Active sessions first, then recently ended ones, newest first.",
                "operationId": "listSessions",
                "parameters": [
                    {"$ref": f"#/components/parameters/{name}"}
                    for name in ("active", "status", "limit", "cursor")
                ],
                "responses": {
                    "200": _json(_ref("SessionList"), "The sessions."),
                    "400": bad,
                    "401": unauthorized,
                    "503": _error("The engine cannot answer now (unavailable)."),
                },
            }
        },
        "/api/fleet": {
            "get": {
                "summary": "Totals over the sessions the token may read: cost, tokens, by status.",
                "operationId": "getFleet",
                "responses": {
                    "200": _json(_ref("Fleet"), "The totals."),
                    "401": unauthorized,
                },
            }
        },
        "/api/sessions/{id}": {
            "parameters": [container],
            "get": {
                "summary": "One session.",
                "operationId": "getSession",
                "responses": {
                    "200": _json(_ref("Session"), "The session."),
                    "400": bad,
                    "401": unauthorized,
                    "403": forbidden,
                    "404": _error("No session with this containerID is listed."),
                    "503": _error("The engine cannot answer now (unavailable)."),
                },
            },
        },
        "/api/sessions/{id}/logs": {
            "parameters": [container],
            "get": {
                "summary": "A container's messages: history, then live ones with follow.",
                "description": (
                    "NDJSON, one stored message per line, exactly as WebSocket subscribers get "
                    "it; `Accept: text/event-stream` gives server-sent events with `id:` = seq. "
                    "With none of since, tail and from: all kept history. With follow, live "
                    "messages follow the history with no gap and no duplicate, until the client "
                    "leaves, the hub shuts down or the client falls more than max-queue bytes "
                    "behind (resume with since = the last seq received)."
                ),
                "operationId": "getLogs",
                "parameters": [
                    {"$ref": f"#/components/parameters/{name}"}
                    for name in ("since", "tail", "from", "level", "follow", "lastEventId")
                ],
                "responses": {
                    "200": {
                        "description": "The messages, oldest first.",
                        "content": {
                            _NDJSON: {
                                "schema": {"type": "string"},
                                "x-itemSchema": _ref("Message"),
                            },
                            _SSE: {"schema": {"type": "string"}, "x-itemSchema": _ref("Message")},
                        },
                    },
                    "400": bad,
                    "401": unauthorized,
                    "403": forbidden,
                    "404": _error("Nothing is known of this containerID (and follow is off)."),
                    "503": _error("The history store failed, or too many connections."),
                },
            },
        },
        "/api/sessions/{id}/messages": {
            "parameters": [container],
            "post": {
                "summary": "Publish messages for a container, as its WebSocket would.",
                "description": (
                    "`application/json`: the body is one message. Any other type: one message "
                    "per line (NDJSON; use curl --data-binary). Every line is checked before any "
                    "is published: one bad line refuses the request and nothing is stored."
                ),
                "operationId": "publish",
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {"schema": _ref("PublishedMessage")},
                        _NDJSON: {
                            "schema": {"type": "string"},
                            "x-itemSchema": _ref("PublishedMessage"),
                        },
                    },
                },
                "responses": {
                    "200": _json(_ref("PublishResult"), "Every message was taken, in order."),
                    "400": bad,
                    "401": unauthorized,
                    "403": forbidden,
                    "413": _error("The body, or one line, is larger than allowed."),
                    "429": _error("Would open one session more than MAX_SESSIONS (max_sessions)."),
                    "503": _error(
                        "History is more than max-store-lag messages behind: nothing was "
                        "stored, send again later. Or the messages were stored and routed but "
                        "not made durable in time: check /readyz."
                    ),
                },
            },
        },
        "/api/sessions/{id}/commands": {
            "parameters": [container],
            "post": {
                "summary": "Send a command to the container's connection(s).",
                "operationId": "command",
                "requestBody": _body("CommandRequest"),
                "responses": {
                    "200": _json(_ref("CommandResult"), "Sent to `delivered` connections."),
                    "400": bad,
                    "401": unauthorized,
                    "403": forbidden,
                    "409": _error(
                        "No connection publishes for it (no_container); not queued. Or an "
                        "approve/deny names no request the session waits on (not_pending); "
                        "nothing was sent."
                    ),
                    "413": _error("The body is larger than max-message-size."),
                },
            },
        },
        "/api/whoami": {
            "get": {
                "summary": "What the request's token allows: its role and containers.",
                "operationId": "whoami",
                "responses": {
                    "200": _json(_ref("Grant"), "The token's grant."),
                    "401": unauthorized,
                },
            }
        },
        "/api/tokens": {
            "post": {
                "summary": "Mint a scoped token (admin only), signed with the hub's secret.",
                "operationId": "mintToken",
                "requestBody": _body("MintRequest"),
                "responses": {
                    "201": _json(_ref("MintResult"), "The token and its claims."),
                    "400": bad,
                    "401": unauthorized,
                    "403": forbidden,
                    "413": _error("The body is larger than 64 KiB."),
                },
            }
        },
        "/api/tokens/revoked": {
            "post": {
                "summary": "Revoke a token by its jti (admin only), on every hub process.",
                "description": (
                    "From now on the token is refused (401), and its open connections are "
                    "closed with 4401: here at once, on the other processes of the engine "
                    "within revocation-interval."
                ),
                "operationId": "revokeToken",
                "requestBody": _body("RevokeRequest"),
                "responses": {
                    "200": _json(_ref("RevokeResult"), "Revoked."),
                    "400": bad,
                    "401": unauthorized,
                    "403": forbidden,
                    "413": _error("The body is larger than 64 KiB."),
                    "503": _error("The engine cannot keep the revocation now; nothing changed."),
                },
            }
        },
    }


def build_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the HTTP API of hub ``version``; a new object each call."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tailhub HTTP API",
            "version": version,
            "description": (
                "Sessions, logs, publishing and commands over HTTP, beside the WebSocket "
                "protocol of docs/protocol.md. Errors are the protocol's error object."
            ),
        },
        "security": [{"bearer": []}, {"tokenQuery": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": _schemas(),
            "parameters": _parameters(),
            "responses": {
                "Unauthorized": _error(
                    "No token, or a wrong, forged, expired or revoked one (unauthorized)."
                ),
                "Forbidden": _error("The token is valid, but its role or scope does not allow it."),
            },
        },
    }
