"""The AsyncAPI 2.6 document of the CTI event stream (``GET /cti/v1/asyncapi.json``).

One channel, ``/cti/v1/events`` (a WebSocket): what the server sends
(``subscribe``: the events of ``notes/issue12-design.md`` "Event schema"
and the stream control messages) and what a client may send (``publish``:
subscribe, resume, ping). Each message's payload is a JSON Schema; the
tests validate every event a real node sends against them, so the document
and the stream cannot drift apart. docs/cti.md is the prose.
"""

from __future__ import annotations

import copy
from typing import Any

from offhook.cti.client_protocol import MAX_NAMES

__all__ = ["EVENT_TYPES", "asyncapi_document", "message_schema"]

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_NUM: dict[str, Any] = {"type": "number"}
_BOOL: dict[str, Any] = {"type": "boolean"}

_HEAD: dict[str, dict[str, Any]] = {
    "seq": {
        "type": "integer",
        "minimum": 1,
        "description": "This connection's sequence number: 1, 2, ... (events only).",
    },
    "id": {
        "type": "integer",
        "minimum": 0,
        "description": "Node-wide event id, increasing, also across node restarts: "
        "resume after the last one seen.",
    },
    "type": _STR,
    "time": {"type": "number", "description": "When it happened, Unix seconds."},
    "node": {"type": "string", "description": "The node's name."},
    "command": {
        "type": "string",
        "description": "The CTI command (c1, c2, ...) this call follows, when there is one.",
    },
}

_CALL: dict[str, dict[str, Any]] = {
    "call_id": _STR,
    "leg_id": _STR,
    "device": {"type": "string", "description": "The device of this leg."},
    "line": {"type": "string", "description": 'The DN of the leg ("" none).'},
    "direction": {
        "type": "string",
        "enum": ["inbound", "outbound", ""],
        "description": "inbound: the device placed the call; outbound: it is rung.",
    },
    "state": _STR,
    "calling": _STR,
    "calling_name": _STR,
    "called": _STR,
    "original_called": _STR,
    "redirect_reason": {"type": "string", "description": '"" when not redirected.'},
}
_CALL_REQUIRED = ["call_id", "device", "state", "calling", "called"]

# type -> (summary, extra properties, extra required, state value or None)
_EVENTS: dict[str, tuple[str, dict[str, Any], list[str], str | None]] = {
    "device.registered": (
        "A device registered.",
        {"device": _STR, "protocol": _STR},
        ["device", "protocol"],
        None,
    ),
    "device.unregistered": (
        "A device unregistered (or its registration expired).",
        {"device": _STR, "protocol": _STR},
        ["device", "protocol"],
        None,
    ),
    "device.rejected": (
        "A registration was refused.",
        {"device": _STR, "protocol": _STR, "source": _STR, "reason": _STR},
        ["device", "protocol", "reason"],
        None,
    ),
    "line.state": (
        "A line (DN) became idle, ringing or in use.",
        {
            "dn": _STR,
            "partition": _STR,
            "state": {"type": "string", "enum": ["idle", "ringing", "in-use"]},
            "devices": {"type": "array", "items": _STR},
        },
        ["dn", "state"],
        None,
    ),
    "call.initiated": ("A device placed a call.", {}, [], "dialing"),
    "call.offered": ("The call is presented to the device.", {}, [], "offered"),
    "call.ringing": (
        "The device rings (state ringing), or the caller hears ringback (state ringback).",
        {},
        [],
        None,
    ),
    "call.answered": ("The leg is connected.", {}, [], "connected"),
    "call.held": (
        "The call was put on hold.",
        {"held_device": _STR, "by": _STR},
        [],
        "held",
    ),
    "call.resumed": ("The call was taken off hold.", {"by": _STR}, [], "connected"),
    "call.transferred": (
        "The call was transferred: told to the transferring device (role transferrer) and "
        "to the party it moved (role transferee, whose leg is in new_call_id now).",
        {
            "role": {"type": "string", "enum": ["transferrer", "transferee"]},
            "kind": {"type": "string", "enum": ["blind", "consult"]},
            "target": _STR,
            "new_call_id": _STR,
            "by": _STR,
        },
        [],
        "transferred",
    ),
    "call.conferenced": (
        "The call joined a conference.",
        {"bridge": _STR, "other_call_id": _STR, "by": _STR},
        [],
        "conferenced",
    ),
    "call.cleared": (
        "The device's leg ended.",
        {"cause": {**_INT, "description": "Q.850 cause."}, "cause_text": _STR},
        ["cause"],
        "cleared",
    ),
    "call.dtmf": (
        "Digits were received from the device.",
        {"digits": _STR},
        ["digits"],
        "connected",
    ),
    "call.ended": (
        "A call attempt ended (one per call; the last event of a call).",
        {
            "call_id": _STR,
            "calling": _STR,
            "called": _STR,
            "original_called": _STR,
            "cause": _INT,
            "cause_text": _STR,
            "duration": _NUM,
            "answered": _BOOL,
        },
        ["call_id", "calling", "called", "cause", "answered"],
        None,
    ),
    "mwi.changed": (
        "A line's message waiting indicator changed.",
        {"dn": _STR, "partition": _STR, "waiting": _BOOL, "new": _INT, "old": _INT},
        ["dn", "waiting"],
        None,
    ),
    "forward.changed": (
        "A line's forward all changed.",
        {
            "dn": _STR,
            "partition": _STR,
            "destination": {"type": ["string", "null"]},
            "device": _STR,
        },
        ["dn", "destination"],
        None,
    ),
    "dnd.changed": (
        "A device's do not disturb changed.",
        {"device": _STR, "on": _BOOL},
        ["device", "on"],
        None,
    ),
}

EVENT_TYPES: tuple[str, ...] = tuple(_EVENTS)

_CONTROL: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "hello": (
        "The first message of a connection: the newest event id and what the token may see.",
        {
            "last_id": {"type": ["integer", "null"]},
            "scope": {
                "type": "object",
                "properties": {
                    "all": _BOOL,
                    "devices": {"type": "array", "items": _STR},
                    "lines": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"dn": _STR, "partition": _STR},
                        },
                    },
                },
                "required": ["all"],
            },
        },
        ["last_id", "scope"],
    ),
    "subscribed": (
        "The answer to subscribe: what this connection now gets.",
        {
            "all": _BOOL,
            "devices": {"type": "array", "items": _STR},
            "lines": {"type": "array", "items": _STR},
        },
        ["all", "devices", "lines"],
    ),
    "resumed": (
        "The answer to resume: this many events after `after` follow.",
        {"after": _INT, "events": _INT},
        ["after", "events"],
    ),
    "resync": (
        "The events asked for are no longer held: a snapshot of the present "
        "(only what the token may see); events newer than its last_id follow.",
        {
            "snapshot": {
                "type": "object",
                "properties": {
                    "last_id": _INT,
                    "devices": {"type": "array", "items": {"type": "object"}},
                    "lines": {"type": "array", "items": {"type": "object"}},
                    "calls": {"type": "array", "items": {"type": "object"}},
                },
            }
        },
        ["snapshot"],
    ),
    "overflow": (
        "The client fell behind; the connection closes (1013). Reconnect and resume.",
        {"reason": _STR},
        [],
    ),
    "error": (
        "A request was refused (the connection closes after a malformed message).",
        {"reason": _STR},
        ["reason"],
    ),
    "pong": ("The answer to ping.", {"last_id": {"type": ["integer", "null"]}}, []),
}

_NAMES: dict[str, Any] = {
    "type": "array",
    "maxItems": MAX_NAMES,
    "items": {"type": "string", "maxLength": 64},
}
_REQUESTS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "subscribe": (
        "Narrow the stream to these devices and lines (DNs); none named, or all: "
        "true: everything the token may see.",
        {"devices": _NAMES, "lines": _NAMES, "all": _BOOL},
        [],
    ),
    "resume": (
        "Replay the events after this id (or get a resync when it is too old).",
        {"after": {"type": "integer", "minimum": 0}},
        ["after"],
    ),
    "ping": ("Answered with pong.", {}, []),
}


def _key(name: str) -> str:
    return name.replace(".", "_")


def message_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type's payload."""
    _, extra, required, state = _EVENTS[event_type]
    props: dict[str, Any] = {**_HEAD, "type": {"const": event_type}}
    need = ["seq", "id", "type", "time", "node"]
    if event_type.startswith("call.") and event_type != "call.ended":
        props.update(_CALL)
        need += _CALL_REQUIRED
        if state is not None:
            props["state"] = {"const": state}
    props.update(extra)
    need += [r for r in required if r not in need]
    return {"type": "object", "properties": copy.deepcopy(props), "required": need}


def _control_schema(kind: str) -> dict[str, Any]:
    _, extra, required = _CONTROL[kind]
    props = {"type": {"const": kind}, **extra}
    return {"type": "object", "properties": copy.deepcopy(props), "required": ["type", *required]}


def _request_schema(op: str) -> dict[str, Any]:
    _, extra, required = _REQUESTS[op]
    props = {"op": {"const": op}, **extra}
    return {
        "type": "object",
        "properties": copy.deepcopy(props),
        "required": ["op", *required],
        "additionalProperties": False,
    }


def asyncapi_document() -> dict[str, Any]:
    """The whole document (a new dict each time)."""
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for event_type, (summary, *_rest) in _EVENTS.items():
        key = _key(event_type)
        schemas[key] = message_schema(event_type)
        messages[key] = {
            "name": event_type,
            "title": event_type,
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{key}"},
        }
    for kind, (summary, *_rest) in _CONTROL.items():
        key = f"stream_{kind}"
        schemas[key] = _control_schema(kind)
        messages[key] = {
            "name": kind,
            "title": f"{kind} (stream control)",
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{key}"},
        }
    for op, (summary, *_rest) in _REQUESTS.items():
        key = f"request_{op}"
        schemas[key] = _request_schema(op)
        messages[key] = {
            "name": op,
            "title": f"{op} (client request)",
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{key}"},
        }
    received = [
        {"$ref": f"#/components/messages/{k}"} for k in messages if not k.startswith("request_")
    ]
    sent = [{"$ref": f"#/components/messages/{k}"} for k in messages if k.startswith("request_")]
    return {
        "asyncapi": "2.6.0",
        "id": "urn:offhook:cti:v1",
        "info": {
            "title": "offhook CTI events",
            "version": "1",
            "description": (
                "Watch calls, lines and devices of an offhook call manager. Connect to "
                "/cti/v1/events with an API token of a role with CTI (Authorization: Bearer, "
                "or ?token= for browsers); ?after=ID resumes. A client that sends nothing "
                "gets every event its token may see. Every event carries seq (per "
                "connection) and id (node-wide). Commands are REST: /api/v1/cti/... "
                "(the OpenAPI document). See docs/cti.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "offhook": {
                "url": "{host}",
                "protocol": "ws",
                "description": "The [web] listener (wss when it has TLS).",
                "variables": {"host": {"default": "127.0.0.1:8080"}},
                "security": [{"bearer": []}, {"queryToken": []}],
            }
        },
        "channels": {
            "/cti/v1/events": {
                "description": "The event stream of one connection.",
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "token": {"type": "string"},
                                "after": {"type": "integer", "minimum": 0},
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
                "subscribe": {
                    "operationId": "receiveEvents",
                    "summary": "Events and stream control messages, server to client.",
                    "message": {"oneOf": received},
                },
                "publish": {
                    "operationId": "sendRequests",
                    "summary": "Requests, client to server (one JSON object a text frame).",
                    "message": {"oneOf": sent},
                },
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token."},
                "queryToken": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "The API token as a query parameter (browsers).",
                },
            },
            "schemas": schemas,
            "messages": messages,
        },
    }
